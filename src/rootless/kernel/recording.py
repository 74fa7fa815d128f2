"""A `Syscalls` double that records calls instead of making them.

It lets tests check the order and arguments of what the runtime would do, without
namespaces or privileges. It never stands in for a real container run.
"""

from __future__ import annotations

import os

from rootless.kernel.syscalls import Syscalls


class RecordingSyscalls(Syscalls):
    def __init__(self, fail: dict[str, int] | None = None, mount_flags: int = 0,
                 submounts: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple] = []
        self.fail = fail or {}  # method name -> errno to raise
        self._next_fd = 1000
        self._mount_flags = mount_flags  # what statvfs says of every mount
        self._submounts = list(submounts)  # what mountinfo says is below every mount

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise OSError(self.fail[name], os.strerror(self.fail[name]))

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def unshare(self, flags):
        self._record("unshare", flags)

    def setns(self, fd, nstype):
        self._record("setns", fd, nstype)

    def mount(self, source, target, fstype, flags=0, data=None):
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target, flags=0):
        self._record("umount2", target, flags)

    def pivot_root(self, new_root, put_old):
        self._record("pivot_root", new_root, put_old)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0):
        self._record("mount_setattr", dirfd, path, flags, attr_set, attr_clr)

    def fsopen(self, fstype, flags=0):
        self._record("fsopen", fstype, flags)
        return _real_fd()  # the executor closes what it is given

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0):
        self._record("fsconfig", fd, cmd, key, value, aux)

    def fsmount(self, fd, flags=0, attr_flags=0):
        self._record("fsmount", fd, flags, attr_flags)
        return _real_fd()

    def move_mount(self, from_dirfd, from_path, to_dirfd, to_path, flags=0):
        self._record("move_mount", from_dirfd, from_path, to_dirfd, to_path, flags)

    def openat2(self, dirfd, path, flags, mode, resolve):
        self._record("openat2", dirfd, path, flags, mode, resolve)
        self._next_fd += 1
        return self._next_fd

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0):
        self._record("prctl", option, arg2)
        return 0

    def capget(self):
        self._record("capget")
        return (0, 0, 0)

    def capset(self, effective, permitted, inheritable):
        self._record("capset", effective, permitted, inheritable)

    def close_range(self, first, last, flags=0):
        self._record("close_range", first, last, flags)

    def sethostname(self, name):
        self._record("sethostname", name)

    def socket(self, domain, type, protocol=0):
        self._record("socket", domain, type, protocol)
        self._next_fd += 1
        return self._next_fd

    def seccomp_set_filter(self, flags, program):
        self._record("seccomp_set_filter", flags, len(program))
        return 0

    def memfd_create(self, name, flags):
        self._record("memfd_create", name, flags)
        return _real_fd()

    def execveat(self, dirfd, path, argv, envp, flags=0):
        self._record("execveat", dirfd, path, tuple(argv), tuple(envp), flags)

    def pidfd_open(self, pid):
        self._record("pidfd_open", pid)
        return _real_fd()

    def pidfd_send_signal(self, pidfd, signum):
        self._record("pidfd_send_signal", pidfd, signum)

    def mknod(self, path, mode, device, dir_fd):
        self._record("mknod", path, mode, device)

    def mount_flags(self, fd):
        self._record("mount_flags", fd)
        return self._mount_flags

    def submounts(self, fd):
        self._record("submounts", fd)
        return list(self._submounts)


def _real_fd() -> int:
    """A real descriptor (of /dev/null) standing for one the kernel would give."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
