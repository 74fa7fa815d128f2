"""A kernel floor for testing the fallbacks (DESIGN.md, principle 8).

`ROOTLESS_KERNEL_FLOOR=4.18` makes the code that uses newer kernel calls behave as on
RHEL 8's kernel: each call names the release that brought it, and is treated as
missing (ENOSYS) when that release is above the floor. Unset: the running kernel's
calls are used as they are. The calls are refused in one place, the Syscalls seam's
real class (kernel/syscalls.py, which lists the releases); what is not a call (the
kernel version the rootfs strategy is chosen by) asks kernel_release() here.

`ROOTLESS_KERNEL_FLOOR_LOG=FILE` appends one line, "PID FEATURE", to FILE for each call
the floor refuses, so tests can tell that a run reached its fallbacks (and not only
that it worked): the container's init refuses most of them, where nothing else could
report. The file is opened at the first refusal and kept open, close-on-exec, since
the init refuses some after pivot_root, when host paths are out of its reach.
"""

from __future__ import annotations

import os


def kernel_floor() -> tuple[int, int] | None:
    text = os.environ.get("ROOTLESS_KERNEL_FLOOR", "")
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def below_floor(introduced: tuple[int, int]) -> bool:
    """Whether a call brought by Linux `introduced` is missing under the floor."""
    floor = kernel_floor()
    return floor is not None and introduced > floor


def kernel_release() -> tuple[tuple[int, int], str]:
    """(major, minor) of the kernel as the runtime treats it: the running one's
    (uname(2)), or the floor where it is lower; and its name for messages."""
    release = os.uname().release
    try:
        major, minor = (int(x) for x in release.split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    floor = kernel_floor()
    if floor is not None and floor < (major, minor):
        return floor, f"{release} (ROOTLESS_KERNEL_FLOOR={floor[0]}.{floor[1]})"
    return (major, minor), release


_log: tuple[str, int, int, int] | None = None  # (path, fd, st_dev, st_ino) of the log


def note_refusal(feature: str) -> None:
    """Log a refusal to ROOTLESS_KERNEL_FLOOR_LOG, if set (best effort). The descriptor
    is checked to still be the log's before each write: a process that closes every
    descriptor (a daemon's double fork) may since have reused its number."""
    global _log
    path = os.environ.get("ROOTLESS_KERNEL_FLOOR_LOG")
    if not path:
        return
    if _log is not None:
        try:
            st = os.fstat(_log[1])
            ours = (st.st_dev, st.st_ino) == _log[2:]
        except OSError:
            ours = False
        if ours and _log[0] != path:  # another log asked for: let this one go
            os.close(_log[1])
        if not ours or _log[0] != path:
            _log = None
    try:
        if _log is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            st = os.fstat(fd)
            _log = (path, fd, st.st_dev, st.st_ino)
        os.write(_log[1], f"{os.getpid()} {feature}\n".encode())
    except OSError:
        pass
