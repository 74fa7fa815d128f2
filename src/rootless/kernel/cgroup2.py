"""Where the cgroup v2 hierarchy is, and where a process sits in it.

Read from /proc (proc(5): mountinfo, PID/cgroup), never assumed: a unified host mounts
cgroup2 at /sys/fs/cgroup, a hybrid one (systemd's "hybrid" mode: the controllers in
cgroup v1 hierarchies, an empty v2 tree beside them) at /sys/fs/cgroup/unified, and a
process in a cgroup namespace sees paths relative to that namespace's root.
engine/cgroups.py makes containers' cgroups; runtime/join.py moves an exec into one.
"""

from __future__ import annotations

import os


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space), proc(5)."""
    if "\\" not in field:  # the usual case: `re` is not imported for it
        return field
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cgroup2_mount() -> tuple[str, str] | None:
    """(mount point, the hierarchy's directory mounted there) of a cgroup2 mount: at
    /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one (cgroup
    v1 controllers with an empty v2 tree beside them, systemd's "hybrid" mode)."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields, _, tail = line.partition(" - ")
                if tail.split(" ", 1)[0] != "cgroup2":
                    continue
                parts = fields.split()
                mount = (_unescape(parts[4]), _unescape(parts[3]))
                if mount[1] == "/":
                    return mount
                found = found or mount
    except (OSError, IndexError):
        return None
    return found


def process_cgroup(pid: int | str = "self") -> str | None:
    """The process's cgroup v2 path ("0::PATH" in /proc/PID/cgroup), as its reader's
    cgroup namespace sees it; None if it is in no v2 hierarchy."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            text = f.read(65536).decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:].removesuffix(" (deleted)")
    return None


def host_dir(mount: tuple[str, str], path: str) -> str | None:
    """The directory of cgroup `path` under the mount; None if the mount does not show
    it (a path outside this namespace's root reads /../...)."""
    point, root = mount
    if ".." in path.split("/") or not (
            path == root or path.startswith(root.rstrip("/") + "/")):
        return None
    rest = path[len(root.rstrip("/")):].lstrip("/")
    return os.path.join(point, rest) if rest else point
