"""The `Syscalls` seam: every kernel call the runtime makes goes through one object.

`RealSyscalls` calls the C shim (csrc/) or the os module; `RecordingSyscalls`
(kernel/recording.py) records the calls so the runtime's plan can be unit-tested without
privileges, as youki's `Syscall` trait allows. Failures raise OSError with errno set; the
runtime's executor turns them into messages that name the step.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import Protocol


class Syscalls(Protocol):
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None: ...
    def umount2(self, target: str, flags: int = 0) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int,
                      attr_clr: int = 0) -> None: ...
    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int: ...
    def fsopen(self, fstype: str, flags: int = 0) -> int: ...
    def fsconfig(self, fd: int, cmd: int, key: str | None = None, value: str | None = None,
                 aux: int = 0) -> None: ...
    def fsmount(self, fd: int, flags: int = 0, attr_flags: int = 0) -> int: ...
    def move_mount(self, from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
                   flags: int = 0) -> None: ...
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int: ...
    def capget(self) -> tuple[int, int, int]: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def close_range(self, first: int, last: int, flags: int = 0) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def seccomp_set_filter(self, flags: int, program: bytes) -> int: ...
    def socket(self, domain: int, type: int, protocol: int = 0) -> int: ...
    def memfd_create(self, name: str, flags: int) -> int: ...
    def execveat(self, dirfd: int, path: str, argv: Sequence[str], envp: Sequence[str],
                 flags: int = 0) -> None: ...


def _lib():  # the shim is imported on first use: `rootless --help` need not load it
    from rootless._shim import ffi, lib

    return ffi, lib


def _check(rc: int, what: str, path: str | None = None) -> int:
    if rc < 0:
        ffi, _ = _lib()
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return rc


def _cstr(value: str | None):
    ffi, _ = _lib()
    return ffi.NULL if value is None else value.encode()


class RealSyscalls:
    """Syscalls on this kernel, through the C shim."""

    def unshare(self, flags: int) -> None:
        _check(_lib()[1].rl_unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        _check(_lib()[1].rl_setns(fd, nstype), "setns")

    def mount(self, source, target, fstype, flags=0, data=None) -> None:
        lib = _lib()[1]
        rc = lib.rl_mount(_cstr(source), _cstr(target), _cstr(fstype), flags, _cstr(data))
        _check(rc, "mount", target)

    def umount2(self, target, flags=0) -> None:
        _check(_lib()[1].rl_umount2(target.encode(), flags), "umount", target)

    def pivot_root(self, new_root, put_old) -> None:
        _check(_lib()[1].rl_pivot_root(new_root.encode(), put_old.encode()), "pivot_root",
               new_root)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0) -> None:
        rc = _lib()[1].rl_mount_setattr(dirfd, path.encode(), flags, attr_set, attr_clr, 0, 0)
        _check(rc, "mount_setattr", path)

    def openat2(self, dirfd, path, flags, mode, resolve) -> int:
        return _check(_lib()[1].rl_openat2(dirfd, path.encode(), flags, mode, resolve),
                      "openat2", path)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0) -> int:
        return _check(_lib()[1].rl_prctl(option, arg2, arg3, arg4, arg5), "prctl")

    def fsopen(self, fstype, flags=0) -> int:
        return _check(_lib()[1].rl_fsopen(fstype.encode(), flags), "fsopen")

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0) -> None:
        _check(_lib()[1].rl_fsconfig(fd, cmd, _cstr(key), _cstr(value), aux), "fsconfig",
               value)

    def fsmount(self, fd, flags=0, attr_flags=0) -> int:
        return _check(_lib()[1].rl_fsmount(fd, flags, attr_flags), "fsmount")

    def move_mount(self, from_dirfd, from_path, to_dirfd, to_path, flags=0) -> None:
        _check(_lib()[1].rl_move_mount(from_dirfd, from_path.encode(), to_dirfd,
                                        to_path.encode(), flags), "move_mount", to_path)

    def capget(self) -> tuple[int, int, int]:
        ffi, lib = _lib()
        eff, prm, inh = (ffi.new("uint32_t[2]") for _ in range(3))
        _check(lib.rl_capget(0, eff, prm, inh), "capget")
        return tuple(int(v[0]) | int(v[1]) << 32 for v in (eff, prm, inh))  # type: ignore

    def capset(self, effective, permitted, inheritable) -> None:
        ffi, lib = _lib()
        words = [ffi.new("uint32_t[2]", [v & 0xFFFFFFFF, v >> 32])
                 for v in (effective, permitted, inheritable)]
        _check(lib.rl_capset(*words), "capset")

    def close_range(self, first, last, flags=0) -> None:
        _check(_lib()[1].rl_close_range(first, last, flags), "close_range")

    def sethostname(self, name) -> None:
        raw = name.encode()
        _check(_lib()[1].rl_sethostname(raw, len(raw)), "sethostname")

    def socket(self, domain, type, protocol=0) -> int:
        return _check(_lib()[1].rl_socket(domain, type | os.O_CLOEXEC, protocol), "socket")

    def seccomp_set_filter(self, flags, program) -> int:
        ffi, lib = _lib()
        buf = ffi.from_buffer(program)
        return _check(lib.rl_seccomp_set_filter(flags, buf, len(program) // 8), "seccomp")

    def memfd_create(self, name, flags) -> int:
        return os.memfd_create(name, flags)

    def execveat(self, dirfd, path, argv, envp, flags=0) -> None:
        """Returns only by raising: execveat(2) replaces this process when it works."""
        ffi, lib = _lib()
        strings = [os.fsencode(s) for s in (*argv, *envp)]
        if any(b"\0" in s for s in strings):  # execve(2) cannot carry one: refuse, as os does
            raise OSError(errno.EINVAL, "execveat: an argument or variable holds a NUL byte")
        cells = [ffi.new("char[]", s) for s in strings]  # alive until the call returns
        argv_c = ffi.new("char *[]", [*cells[:len(argv)], ffi.NULL])
        envp_c = ffi.new("char *[]", [*cells[len(argv):], ffi.NULL])
        _check(lib.rl_execveat(dirfd, path.encode(), argv_c, envp_c, flags), "execveat")
