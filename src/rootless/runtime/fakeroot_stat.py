"""The fakeroot's stat answers (`--security-opt fakeroot-stat`): with one mapped id the
kernel shows every file of the container's root as owned by that id (or the overflow
id), whatever chown recorded; with this option the filter also sends the stat family
(stat, lstat, fstat, newfstatat, statx) to the monitor, which answers a file that has
an ownership record (user.containers.override_stat, or the sidecar of a symlink or
fifo) with the kernel's own metadata patched from it: `ls -l` shows exactly what chown
set, devices show as devices. Every other call (no record, another mount, a pipe or
socket descriptor, an error to report) is let through to the kernel (CONTINUE), which
answers it as unfiltered.

The file is found as runtime/fakeroot_files.py finds chown's (the calling thread's
root, cwd or descriptor, the path read from its memory after the notification is
checked, the one in-root resolver), and the answer is written into the thread's own
buffer through /proc/TID/mem, opened before the notification is checked again. The
struct layouts are the kernel's (x86-64's struct stat, the generic one of arm64, struct
statx); other ABIs are let through.

Each answered call costs a round trip to the monitor: `scripts/bench --fakeroot`
measures it.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from rootless.kernel.override import parse_override
from rootless.runtime.fakeroot_files import (AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW,
                                             CONTINUE, FileCall, Target, write_memory)

AT_NO_AUTOMOUNT = 0x800
AT_STATX_SYNC_TYPE = 0x6000
STATX_BASIC_STATS = 0x7FF
# struct stat: x86-64 (asm/stat.h) and the generic layout arm64 uses (asm-generic/stat.h)
_STAT_X86_64 = struct.Struct("=QQQIIIiQqqq6q3q")
_STAT_GENERIC = struct.Struct("=QQIIIIQQqiiq6qII")
_STATX = struct.Struct("=IIQIIIHHQQQQ" + "qIi" * 4 + "IIIIQII")  # the first 160 bytes
STATX_SIZE = 256


def stat_call(fakeroot, fd: int, call, name: str, native_x86: bool):
    """The handler of the stat family (runtime/fakeroot.py's HANDLERS)."""
    parsed = _parse(call, name)
    if not isinstance(parsed, tuple):
        return parsed
    file_call, buf = parsed
    files = fakeroot.files
    target = files._open(fd, call.n, file_call)
    if target is None:
        return None
    if not isinstance(target, Target):
        return CONTINUE  # the kernel says why (ENOENT, EACCES, a socket's descriptor)
    try:
        record = parse_override(files._record(target))
        if record is None:
            return CONTINUE
        data = pack(name, target.st, record, native_x86)
    finally:
        os.close(target.fd)
    return write_memory(fd, call.n, [(buf, data)])


def _parse(call, name: str):
    """(FileCall, buffer address), or an answer: CONTINUE, an errno."""
    if call.compat:
        return CONTINUE
    if name in ("stat", "lstat"):
        return FileCall(AT_FDCWD, call.ptr(0), name == "stat", False), call.ptr(1)
    if name == "fstat":
        if call.s32(0) < 0:
            return errno.EBADF
        return FileCall(call.u32(0), None, True, True), call.ptr(1)
    if name == "newfstatat":
        flags = call.u32(3)
        if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
            return CONTINUE  # the kernel's EINVAL
        return _at(call, flags), call.ptr(2)
    flags = call.u32(2)  # statx(dirfd, path, flags, mask, buf)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        return CONTINUE
    return _at(call, flags), call.ptr(4)


def _at(call, flags: int) -> FileCall:
    return FileCall(call.u32(0), call.ptr(1), not flags & AT_SYMLINK_NOFOLLOW,
                    bool(flags & AT_EMPTY_PATH))


def patched(st: os.stat_result, record) -> tuple[int, int, int, int]:
    """(mode, uid, gid, rdev) as the record says: its owner and permission bits, and a
    recorded device's type and numbers."""
    uid, gid, mode, kind, dev = record
    kind_bits, rdev = stat.S_IFMT(st.st_mode), st.st_rdev
    if kind in (stat.S_IFCHR, stat.S_IFBLK):  # recorded as an empty regular file
        kind_bits, rdev = kind, os.makedev(*dev)
    return kind_bits | (mode & 0o7777), uid, gid, rdev


def pack(name: str, st: os.stat_result, record, native_x86: bool) -> bytes:
    mode, uid, gid, rdev = patched(st, record)
    times = []
    for ns in (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns):
        times += [ns // 1_000_000_000, ns % 1_000_000_000]
    if name == "statx":
        return _statx(st, mode, uid, gid, rdev)
    if native_x86:
        return _STAT_X86_64.pack(st.st_dev, st.st_ino, st.st_nlink, mode, uid, gid, 0, rdev,
                                 st.st_size, st.st_blksize, st.st_blocks, *times, 0, 0, 0)
    return _STAT_GENERIC.pack(st.st_dev, st.st_ino, mode, st.st_nlink, uid, gid, rdev, 0,
                              st.st_size, st.st_blksize, 0, st.st_blocks, *times, 0, 0)


def _statx(st: os.stat_result, mode: int, uid: int, gid: int, rdev: int) -> bytes:
    def ts(ns: int) -> tuple[int, int, int]:
        return ns // 1_000_000_000, ns % 1_000_000_000, 0

    head = _STATX.pack(STATX_BASIC_STATS, st.st_blksize, 0, st.st_nlink, uid, gid, mode, 0,
                       st.st_ino, st.st_size, st.st_blocks, 0, *ts(st.st_atime_ns),
                       0, 0, 0,  # no birth time (not in STATX_BASIC_STATS)
                       *ts(st.st_ctime_ns), *ts(st.st_mtime_ns), os.major(rdev),
                       os.minor(rdev), os.major(st.st_dev), os.minor(st.st_dev), 0, 0, 0)
    return head + bytes(STATX_SIZE - len(head))
