"""The `Syscalls` seam: every kernel call the runtime makes goes through one object.

`RealSyscalls` calls the C shim (csrc/) or the os module; `RecordingSyscalls`
(kernel/recording.py) records the calls so the runtime's plan can be unit-tested without
privileges, as youki's `Syscall` trait allows. Failures raise OSError with errno set; the
runtime's executor turns them into messages that name the step.

Old kernels (DESIGN.md, principle 8): each call newer than RHEL 8's 4.18 names the
release that brought it in SINCE, and under ROOTLESS_KERNEL_FLOOR (kernel/floor.py) one
newer than the floor fails here exactly as that kernel fails it: ENOSYS for a missing
system call, EINVAL for a flag or parameter it does not know, EPERM for what it does
not allow in a user namespace. This is the one place the floor is applied; the callers
see what an old kernel answers and take their fallbacks (kernel/features.py lists
them for `system info`).
"""

from __future__ import annotations

import errno
import os
import stat
from abc import ABC, abstractmethod

from rootless.kernel.constants import CLOSE_RANGE_CLOEXEC, FSCONFIG_CMD_CREATE
from rootless.kernel.floor import below_floor, kernel_floor, note_refusal

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Sequence

# The release that brought each newer call, flag or permission (man pages, and the
# kernels' own changelogs where the man page is silent).
SINCE = {
    "fsopen": (5, 2),  # fsopen/fsconfig/fsmount/move_mount/open_tree: the new mount API
    "pidfd_send_signal": (5, 1),
    "pidfd_open": (5, 3),
    "openat2": (5, 6),
    "pidfd_getfd": (5, 6),
    "setns_pidfd": (5, 8),  # setns(2) on a pidfd: before, EINVAL
    "whiteout_mknod": (5, 8),  # mknod of a 0:0 whiteout without CAP_MKNOD: before, EPERM
    "close_range": (5, 9),
    "close_range_cloexec": (5, 11),  # CLOSE_RANGE_CLOEXEC: before, EINVAL
    "userns_overlay": (5, 11),  # overlayfs in a user namespace: before, EPERM
    "mount_setattr": (5, 12),
    # overlayfs's own fsconfig(2) parameters: before, the VFS passed every key on as a
    # legacy option string, and overlayfs refused the unknown ones at the create step
    "overlay_fs_params": (6, 5),
    "lowerdir_plus": (6, 8),  # fsconfig(2) key `lowerdir+` of overlayfs: before, EINVAL
}


class Syscalls(ABC):
    """What the runtime asks of the kernel (an ABC rather than a typing.Protocol: importing
    typing costs ~3 ms of every `run` and `exec`). RealSyscalls and RecordingSyscalls
    derive from it."""

    @abstractmethod
    def unshare(self, flags: int) -> None: ...
    @abstractmethod
    def setns(self, fd: int, nstype: int) -> None: ...
    @abstractmethod
    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None: ...
    @abstractmethod
    def umount2(self, target: str, flags: int = 0) -> None: ...
    @abstractmethod
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    @abstractmethod
    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int,
                      attr_clr: int = 0) -> None: ...
    @abstractmethod
    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int: ...
    @abstractmethod
    def fsopen(self, fstype: str, flags: int = 0) -> int: ...
    @abstractmethod
    def fsconfig(self, fd: int, cmd: int, key: str | None = None, value: str | None = None,
                 aux: int = 0) -> None: ...
    @abstractmethod
    def fsmount(self, fd: int, flags: int = 0, attr_flags: int = 0) -> int: ...
    @abstractmethod
    def move_mount(self, from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
                   flags: int = 0) -> None: ...
    @abstractmethod
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0,
              arg5: int = 0) -> int: ...
    @abstractmethod
    def capget(self) -> tuple[int, int, int]: ...
    @abstractmethod
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    @abstractmethod
    def close_range(self, first: int, last: int, flags: int = 0) -> None: ...
    @abstractmethod
    def sethostname(self, name: str) -> None: ...
    @abstractmethod
    def seccomp_set_filter(self, flags: int, program: bytes) -> int: ...
    @abstractmethod
    def socket(self, domain: int, type: int, protocol: int = 0) -> int: ...
    @abstractmethod
    def memfd_create(self, name: str, flags: int) -> int: ...
    @abstractmethod
    def execveat(self, dirfd: int, path: str, argv: Sequence[str], envp: Sequence[str],
                 flags: int = 0) -> None: ...
    @abstractmethod
    def pidfd_open(self, pid: int) -> int: ...
    @abstractmethod
    def pidfd_send_signal(self, pidfd: int, signum: int) -> None: ...
    @abstractmethod
    def mknod(self, path: str, mode: int, device: int, dir_fd: int) -> None: ...
    @abstractmethod
    def mount_flags(self, fd: int) -> int: ...
    @abstractmethod
    def submounts(self, fd: int) -> list[str]: ...


def floor_refuses(feature: str, err: int = errno.ENOSYS, what: str | None = None,
                  path: str | None = None) -> None:
    """Raise what a kernel without `feature` (a SINCE key) answers, if the floor is
    below the release that brought it."""
    if below_floor(SINCE[feature]):
        note_refusal(feature)
        major, minor = kernel_floor() or (0, 0)
        raise OSError(err, f"{what or feature}: {os.strerror(err)} (kernel floor "
                           f"{major}.{minor})", path)


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


class RealSyscalls(Syscalls):
    """Syscalls on this kernel, through the C shim."""

    def unshare(self, flags: int) -> None:
        _check(_lib()[1].rl_unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        if below_floor(SINCE["setns_pidfd"]) and _is_pidfd(fd):
            floor_refuses("setns_pidfd", errno.EINVAL, "setns")
        _check(_lib()[1].rl_setns(fd, nstype), "setns")

    def mount(self, source, target, fstype, flags=0, data=None) -> None:
        if fstype == "overlay":  # we mount only inside user namespaces
            floor_refuses("userns_overlay", errno.EPERM, "mount", target)
        lib = _lib()[1]
        rc = lib.rl_mount(_cstr(source), _cstr(target), _cstr(fstype), flags, _cstr(data))
        _check(rc, "mount", target)

    def umount2(self, target, flags=0) -> None:
        _check(_lib()[1].rl_umount2(target.encode(), flags), "umount", target)

    def pivot_root(self, new_root, put_old) -> None:
        _check(_lib()[1].rl_pivot_root(new_root.encode(), put_old.encode()), "pivot_root",
               new_root)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0) -> None:
        floor_refuses("mount_setattr", path=path)
        rc = _lib()[1].rl_mount_setattr(dirfd, path.encode(), flags, attr_set, attr_clr, 0, 0)
        _check(rc, "mount_setattr", path)

    def openat2(self, dirfd, path, flags, mode, resolve) -> int:
        """As os.open reports failures (the plain strerror): it is the in-root resolver's
        open (kernel/paths.py), whose callers name what they were opening."""
        floor_refuses("openat2", what="openat2", path=path)
        ffi, lib = _lib()
        fd = lib.rl_openat2(dirfd, os.fsencode(path), flags, mode, resolve)
        if fd < 0:
            err = ffi.errno
            raise OSError(err, os.strerror(err), path)
        return fd

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0) -> int:
        return _check(_lib()[1].rl_prctl(option, arg2, arg3, arg4, arg5), "prctl")

    def fsopen(self, fstype, flags=0) -> int:
        floor_refuses("fsopen")
        fd = _check(_lib()[1].rl_fsopen(fstype.encode(), flags), "fsopen")
        _LEGACY_LOWERDIR_PLUS.discard(fd)  # a new context: nothing passed on yet
        return fd

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0) -> None:
        floor_refuses("fsopen", what="fsconfig")
        if key == "lowerdir+" and below_floor(SINCE["lowerdir_plus"]):
            if below_floor(SINCE["overlay_fs_params"]):  # taken, refused at the create
                _LEGACY_LOWERDIR_PLUS.add(fd)
                note_refusal("lowerdir_plus")
                return
            floor_refuses("lowerdir_plus", errno.EINVAL, "fsconfig", value)
        if cmd == FSCONFIG_CMD_CREATE and fd in _LEGACY_LOWERDIR_PLUS:
            _LEGACY_LOWERDIR_PLUS.discard(fd)  # overlayfs: unrecognized mount option
            floor_refuses("lowerdir_plus", errno.EINVAL, "fsconfig")
        _check(_lib()[1].rl_fsconfig(fd, cmd, _cstr(key), _cstr(value), aux), "fsconfig",
               value)

    def fsmount(self, fd, flags=0, attr_flags=0) -> int:
        floor_refuses("fsopen", what="fsmount")
        return _check(_lib()[1].rl_fsmount(fd, flags, attr_flags), "fsmount")

    def move_mount(self, from_dirfd, from_path, to_dirfd, to_path, flags=0) -> None:
        floor_refuses("fsopen", what="move_mount")
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
        floor_refuses("close_range")
        if flags & CLOSE_RANGE_CLOEXEC:  # an unknown flag to 5.9 and 5.10
            floor_refuses("close_range_cloexec", errno.EINVAL, "close_range")
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

    def pidfd_open(self, pid) -> int:
        floor_refuses("pidfd_open")
        return os.pidfd_open(pid)

    def pidfd_send_signal(self, pidfd, signum) -> None:
        import signal

        floor_refuses("pidfd_send_signal")
        signal.pidfd_send_signal(pidfd, signum)

    def mknod(self, path, mode, device, dir_fd) -> None:
        if stat.S_ISCHR(mode) and device == 0:  # a whiteout
            floor_refuses("whiteout_mknod", errno.EPERM, "mknod", path)
        os.mknod(path, mode, device, dir_fd=dir_fd)

    def mount_flags(self, fd) -> int:
        """The read-only, nosuid, nodev and noexec flags of the mount `fd` is on, as
        MS_* flags (statvfs(3)'s ST_RDONLY ... ST_NOEXEC are the same numbers). The
        atime flags are left out: a remount that names none keeps the mount's own
        (mount(2), MS_REMOUNT), which are as locked as these in a user namespace."""
        return os.fstatvfs(fd).f_flag & _MOUNT_FLAGS

    def submounts(self, fd) -> list[str]:
        """The mounts below the one `fd` is the root of, as paths relative to it, parents
        first (from /proc/self/mountinfo; the fd's own mount by its fdinfo mnt_id).
        runtime/mount_attrs.py has imported the module before any pivot_root."""
        from rootless.kernel import mountinfo

        return mountinfo.submounts(mountinfo.mount_id(fd))


_MOUNT_FLAGS = 1 | 2 | 4 | 8  # MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
# fsopen contexts given a `lowerdir+` under a floor below 6.5, which a kernel of then
# would have taken as a legacy option and refused at the create step
_LEGACY_LOWERDIR_PLUS: set[int] = set()


def _is_pidfd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
    except OSError:
        return False
