"""A layer stored in single-id mode, its owners in override_stat records, turned into
one stored with its true owners (image/layers.py says what each mode writes): run as
root of the storage namespace (kernel/storage_ns.py), where chown to the range works.

Every entry is reached by descriptor (kernel/tree.py: iteratively, never into a
symlink), and changed through an O_PATH descriptor of it, never a path: the store is
ours, but its trees came from images. For each record "UID:GID:0MODE[:KIND]":

- chown to UID:GID, then chmod to MODE (chown(2) clears setuid/setgid, which the
  record keeps and the file on disk had lost), then the record goes; a file
  capability (security.capability, which chown also clears) is set again after;
- a device record (KIND) stays: its empty placeholder file gets the owner and mode,
  as a layer unpacked with true owners has them;
- an owner the range cannot map refuses the layer (or, with ignore_chown_errors, is
  squashed to 0 with the setid bits dropped, and the record kept) as unpacking does.

A record is removed only after its file has the record's owner and mode, so a
migration killed midway can be run again: what is done has no record left.
Records in the sidecar (layers/<hex>.xattrs.json, a filesystem without user
xattrs) are applied the same way.
"""

from __future__ import annotations

import errno
import json
import os
import stat

from rootless.errors import ImageError
from rootless.image.layers import CAPABILITY_XATTR, OVERRIDE_XATTR, parse_override


def migrate_layer(layer: str, ids, what: str) -> int:
    """Give the files of the layer directory `layer` the owners their records say
    (`ids`: kernel/storage_ns.StorageIds); how many records were applied."""
    from rootless.kernel.tree import walk_tree

    count = 0

    def enter(fd: int, _: os.stat_result) -> list[str]:
        nonlocal count
        subdirs = []
        with os.scandir(fd) as entries:
            listed = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in listed:
            if is_dir:
                subdirs.append(name)
            record = _record(fd, name)
            if record is not None:
                count += _apply_at(fd, name, record, ids, what)
        return subdirs

    parent, name = os.path.split(layer.rstrip("/"))
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walk_tree(parent_fd, name, enter)
    finally:
        os.close(parent_fd)
    return count + _migrate_sidecar(layer, ids, what)


def _record(dir_fd: int, name: str) -> str | None:
    try:  # through the directory's /proc link: the last component is not followed
        value = os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", OVERRIDE_XATTR,
                            follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            raise
        return None
    return value.decode("ascii", "replace")


def _apply_at(dir_fd: int, name: str, record: str, ids, what: str) -> int:
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return _apply(fd, name, record, ids, what, in_xattr=True)
    finally:
        os.close(fd)


def _apply(fd: int, path: str, record: str, ids, what: str, in_xattr: bool) -> int:
    """Apply one record to the O_PATH descriptor `fd`; 1 if it was, 0 if it is not a
    valid record (left as it is: the kernel's values stand, as they did)."""
    parsed = parse_override(record)
    st = os.fstat(fd)
    if parsed is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return 0
    uid, gid, mode, kind, dev = parsed
    keep = bool(kind)
    if not ids.mapped(uid, gid):
        if not ids.squash:
            raise ImageError(f"{what}: potentially insufficient UIDs or GIDs available in "
                             f"user namespace (requested {uid}:{gid} for /{path}): check "
                             "/etc/subuid and /etc/subgid (or --storage-opt "
                             "ignore_chown_errors=true)")
        uid, gid = ids.squashed(uid, gid)
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
        keep = True
    link = f"/proc/self/fd/{fd}"
    cap = _get_cap(link) if stat.S_ISREG(st.st_mode) else None
    os.chown(link, uid, gid)
    os.chmod(link, mode)  # after the chown, which clears setuid/setgid
    if cap is not None:
        os.setxattr(link, CAPABILITY_XATTR, cap)
    if in_xattr and not keep:  # a squashed owner's record names the tar's ids: kept
        os.removexattr(link, OVERRIDE_XATTR)
    return 1


def _get_cap(link: str) -> bytes | None:
    try:
        return os.getxattr(link, CAPABILITY_XATTR)
    except OSError:
        return None


def _migrate_sidecar(layer: str, ids, what: str) -> int:
    """Records of a filesystem without user xattrs, kept beside the layer."""
    from rootless.kernel.paths import open_in_root

    sidecar = layer.rstrip("/") + ".xattrs.json"
    try:
        with open(sidecar) as f:
            records = json.load(f)
    except (FileNotFoundError, ValueError):
        return 0
    if not isinstance(records, dict):
        return 0
    count, root = 0, os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path, xattrs in list(records.items()):
            record = xattrs.get(OVERRIDE_XATTR) if isinstance(xattrs, dict) else None
            if not isinstance(record, str):
                continue
            try:
                fd = open_in_root(root, path, os.O_PATH | os.O_NOFOLLOW)
            except OSError:
                continue  # gone, or no longer what was recorded: nothing to show wrong
            try:
                count += _apply(fd, path, record, ids, what, in_xattr=False)
            finally:
                os.close(fd)
            parsed = parse_override(record)
            if parsed and not parsed[3] and ids.mapped(parsed[0], parsed[1]):
                del xattrs[OVERRIDE_XATTR]
                if not xattrs:
                    del records[path]
    finally:
        os.close(root)
    tmp = f"{sidecar}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(records, f)
    os.replace(tmp, sidecar)
    return count
