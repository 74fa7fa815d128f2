"""The fakeroot's sidecar: owners of files that cannot carry a user xattr.

The fakeroot records a chown in the file's `user.containers.override_stat` xattr
(kernel/override.py), but Linux refuses user.* xattrs on symlinks, fifos, sockets and
device nodes (xattr(7): "user extended attributes ... only for regular files and
directories"). Their records go to one JSON file in the container's directory instead,
keyed by the path inside the container (relative, as diff and commit name entries):

    {"version": 1, "entries": {"usr/bin/awk": {"kind": "symlink",
                                               "target": "/etc/alternatives/awk",
                                               "value": "0:42:0777"}}}

A record names what it was made for (the kind, and a symlink's target) and applies only
to an entry that still matches, so a symlink removed and made again elsewhere does not
inherit it; one replaced by an identical symlink at the same path does (the record
cannot tell them apart). diff, commit and export read it (engine/container_tree.py).
The file is written whole (temp + rename) by the monitor's fakeroot, its only writer.
"""

from __future__ import annotations

import json
import os
import stat

OWNERS_FILE = "fakeroot-owners.json"
MAX_BYTES = 16 << 20
KINDS = {stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket",
         stat.S_IFCHR: "char", stat.S_IFBLK: "block"}


def owners_read(directory: str) -> dict[str, dict]:
    """The records of the container whose directory is `directory`; {} if none (or the
    file is unreadable: then the kernel's owners stand, as for a bad xattr)."""
    from rootless.kernel.paths import read_regular_path

    try:
        data = json.loads(read_regular_path(os.path.join(directory, OWNERS_FILE), MAX_BYTES))
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {path: record for path, record in entries.items()
            if isinstance(path, str) and isinstance(record, dict)
            and isinstance(record.get("value"), str)}


def owners_write(directory: str, entries: dict[str, dict]) -> None:
    path = os.path.join(directory, OWNERS_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, json.dumps({"version": 1, "entries": entries},
                                separators=(",", ":")).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def owners_record(kind: int, target: str | None, value: str) -> dict:
    record = {"kind": KINDS.get(kind, "?"), "value": value}
    if target is not None:
        record["target"] = target
    return record


def owners_value(entries: dict[str, dict], path: str, kind: int,
                 target: str | None) -> str | None:
    """The override_stat value recorded for `path` if it still names this entry (the
    same kind; for a symlink, the same target), else None."""
    record = entries.get(path)
    if record is None or record.get("kind") != KINDS.get(kind):
        return None
    if kind == stat.S_IFLNK and record.get("target") != target:
        return None
    return record["value"]
