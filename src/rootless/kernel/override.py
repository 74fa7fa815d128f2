"""The ownership record of the layer format: `user.containers.override_stat`.

containers-storage and fuse-overlayfs keep the owner, mode and device numbers a file
should have, where the kernel cannot hold them (one mapped id, no CAP_MKNOD), in this
xattr as "UID:GID:0MODE" or "UID:GID:0MODE:char-MAJOR-MINOR" (block-...). It is written
by the layer unpacker (image/layers.py), by `cp` and by our FUSE overlay (fs/fuse_*),
and read back by diff/commit/export and the FUSE overlay: one codec, here, below all of
them, as kernel/paths.py holds the layer format's whiteout markers.
"""

from __future__ import annotations

import stat

OVERRIDE_XATTR = "user.containers.override_stat"


def override_value(uid: int, gid: int, mode: int, kind: str = "") -> str:
    """containers-storage's override_stat: "UID:GID:0MODE" or "UID:GID:0MODE:KIND"."""
    value = f"{uid}:{gid}:0{mode & 0o7777:o}"
    return f"{value}:{kind}" if kind else value


def device_kind(kind: int, dev: tuple[int, int]) -> str:
    """The KIND part of a device's record: "char-MAJOR-MINOR" or "block-..."; "" else."""
    if kind == stat.S_IFCHR:
        return f"char-{dev[0]}-{dev[1]}"
    if kind == stat.S_IFBLK:
        return f"block-{dev[0]}-{dev[1]}"
    return ""


def parse_override(value: str | None) -> tuple[int, int, int, int, tuple[int, int]] | None:
    """(uid, gid, mode, kind, (major, minor)) of an override_stat record, None if the
    record is malformed (then the kernel's values stand)."""
    from rootless.kernel.idmap import parse_id, valid_id

    if not value:
        return None
    parts = value.split(":")
    if len(parts) not in (3, 4):
        return None
    uid, gid = parse_id(parts[0]), parse_id(parts[1])
    if not (parts[2].isascii() and parts[2].isdigit()):  # int(x, 8) takes "+7", "0o7"
        return None
    mode = int(parts[2], 8) if set(parts[2]) <= set("01234567") else -1
    # a container can write this record on its own files: never -1 ("unchanged"), never
    # an id past the last one, never bits beyond the permission ones
    if not (valid_id(uid) and valid_id(gid) and 0 <= mode <= 0o7777):
        return None
    kind, dev = 0, (0, 0)
    if len(parts) == 4:
        name, _, numbers = parts[3].partition("-")
        major, _, minor = numbers.partition("-")
        if name not in ("char", "block") or not (major.isascii() and major.isdigit()
                                                 and minor.isascii() and minor.isdigit()):
            return None
        kind = stat.S_IFCHR if name == "char" else stat.S_IFBLK
        dev = (int(major), int(minor))
        if dev[0] > 0xFFF or dev[1] > 0xFFFFF:  # what a Linux dev_t holds
            return None
    return uid, gid, mode, kind, dev
