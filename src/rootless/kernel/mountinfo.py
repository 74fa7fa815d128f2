"""The mount tree below one mount, from /proc/self/mountinfo (proc(5)).

Where mount_setattr(2) (Linux 5.12) is missing, setting a mount's attributes
recursively means remounting each mount of the subtree in turn (runtime/mount_attrs.py),
as runc and crun did before it. The subtree is found by mount id: the mount a
descriptor is on is its fdinfo `mnt_id` (Linux 3.15), and each mountinfo line names its
own id and its parent's, so no path string decides what belongs to the subtree.
"""

from __future__ import annotations


def mount_id(fd: int) -> int:
    """The id of the mount `fd` is on (the `mnt_id:` line of /proc/self/fdinfo/FD)."""
    with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
        for line in f.read(4096).decode().splitlines():
            key, _, value = line.partition(":")
            if key == "mnt_id":
                return int(value)
    raise OSError(f"no mnt_id in /proc/self/fdinfo/{fd}")


def parse(text: str) -> list[tuple[int, int, str]]:
    """(mount id, parent id, mount point) of each line, mount points unescaped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and fields[0].isdigit() and fields[1].isdigit():
            mounts.append((int(fields[0]), int(fields[1]), _unescape(fields[4])))
    return mounts


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo (octal); every other
    byte as it is, so each backslash starts an escape."""
    first, *rest = text.split("\\")
    parts = [first]
    for part in rest:
        digits = part[:3]
        if len(digits) == 3 and all(c in "01234567" for c in digits):
            parts.append(chr(int(digits, 8)) + part[3:])
        else:
            parts.append("\\" + part)
    return "".join(parts)


def below(mounts: list[tuple[int, int, str]], top: int) -> list[str]:
    """The mount points of every mount under mount `top`, relative to its mount point,
    parents before their children (mount points may repeat: stacked mounts)."""
    points = {mid: point for mid, _, point in mounts}
    if top not in points:
        return []
    base = points[top].rstrip("/") + "/"
    found, todo, seen = [], [top], {top}
    while todo:
        parent = todo.pop(0)
        for mid, pid, point in mounts:
            if pid == parent and mid not in seen and point.startswith(base):
                seen.add(mid)
                todo.append(mid)
                found.append(point[len(base):])
    return found


def submounts(top: int) -> list[str]:
    with open("/proc/self/mountinfo", "rb") as f:
        text = f.read().decode(errors="surrogateescape")
    return below(parse(text), top)
