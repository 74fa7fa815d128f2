"""Entering a running container (exec): the cgroup and the namespaces of its init.

The plan's JoinCgroup and JoinNamespaces steps run here, in the intermediate process C
of runtime/process.py's start_joined, before the fork that makes the exec'd process.

The init is named by (pid, start time), never by a pid alone (kernel/procs.py): a
container whose init has exited may have its pid reused by any process of the host, and
an exec must then fail rather than enter that process's namespaces.

- Linux >= 5.8: pidfd_open(2) the init, check its start time after opening (the pidfd
  then names that process for good), and setns(2) on the pidfd with every flag at once:
  the kernel enters the user namespace first and the others with the capabilities it
  gives, atomically (setns(2), "Since Linux 5.8").
- Older kernels (RHEL 8's 4.18; setns refuses a pidfd with EINVAL): open every
  /proc/PID/ns/* file first (after entering the mount namespace /proc is the
  container's), check the start time again (so the files belong to the process we
  named), then enter them one by one, the user namespace first, since it grants the
  capabilities the others need, and the mount namespace last.

The caller has made itself non-dumpable before this (runc CVE-2016-9962): from the first
setns on, processes of the container could otherwise ptrace it, or open its
/proc/PID/exe (the host's interpreter) and its descriptors, until it execs the helper.
"""

from __future__ import annotations

import errno
import os

from rootless.errors import RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel.cgroup2 import cgroup2_mount, host_dir
from rootless.kernel.procs import ProcessHandle, alive_as, open_namespaces
from rootless.kernel.syscalls import Syscalls

# entry order of the fallback: user first, mount last
NAMESPACE_FILES = ((k.CLONE_NEWUSER, "user"), (k.CLONE_NEWIPC, "ipc"),
                   (k.CLONE_NEWUTS, "uts"), (k.CLONE_NEWNET, "net"),
                   (k.CLONE_NEWPID, "pid"), (k.CLONE_NEWCGROUP, "cgroup"),
                   (k.CLONE_NEWNS, "mnt"))


def init_gone(pid: int) -> RuntimeSetupError:
    return RuntimeSetupError(f"the container's init (pid {pid}) is gone: it exited, or its "
                             "pid now names another process; nothing was joined")


def join_namespaces(sys: Syscalls, pid: int, start_time: int, flags: int) -> None:
    try:
        handle = ProcessHandle(pid, start_time)
    except ProcessLookupError:
        raise init_gone(pid) from None
    try:
        if handle.fd is not None and _join_by_pidfd(sys, handle.fd, pid, flags):
            return
        _join_by_files(sys, pid, start_time, flags)
    finally:
        handle.close()


def _join_by_pidfd(sys: Syscalls, pidfd: int, pid: int, flags: int) -> bool:
    """True once joined; False where the kernel takes no pidfd in setns (before 5.8)."""
    try:
        sys.setns(pidfd, flags)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        if e.errno == errno.ESRCH:  # it exited after we named it
            raise init_gone(pid) from e
        raise RuntimeSetupError(f"join the container's namespaces: "
                                f"{os.strerror(e.errno).lower()}") from e
    return True


def _join_by_files(sys: Syscalls, pid: int, start_time: int, flags: int) -> None:
    wanted = [(flag, name) for flag, name in NAMESPACE_FILES if flags & flag]
    try:  # all opened first, then the start time checked: the files are the init's
        fds = open_namespaces(pid, start_time, tuple(name for _, name in wanted))
    except ProcessLookupError:
        raise init_gone(pid) from None
    try:
        for (flag, name), fd in zip(wanted, fds):
            try:
                sys.setns(fd, flag)
            except OSError as e:
                raise RuntimeSetupError(f"join the container's {name} namespace: "
                                        f"{os.strerror(e.errno).lower()}") from e
    finally:
        for fd in fds:
            os.close(fd)


def join_cgroup(pid: int, start_time: int) -> None:
    """Best effort, as the runtime's cgroup handling is when rootless: where the init
    sits in another cgroup v2 group (its limits) and the user may write to it, move this
    process there, so the exec'd process counts against the same limits; elsewhere it
    stays where it is (the init is then in the cgroup its command started in)."""
    theirs, ours = _cgroup_path(str(pid)), _cgroup_path("self")
    if theirs is None or theirs == ours or not alive_as(pid, start_time):
        return
    # where cgroup2 is mounted: /sys/fs/cgroup/unified on a hybrid host (kernel/cgroup2)
    mount = cgroup2_mount()
    target = host_dir(mount, theirs) if mount else None
    try:
        if target is None:
            return
        fd = os.open(f"{target}/cgroup.procs", os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"0")  # 0: the writing process (cgroup-v2.rst, "cgroup.procs")
    except OSError:
        pass
    finally:
        os.close(fd)


def _cgroup_path(pid: str) -> str | None:
    """The cgroup v2 path of a process ("0::/path" in /proc/PID/cgroup), or None if it
    has none, is outside our cgroup namespace, or was removed."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            lines = f.read(65536).decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::/"):
            path = line[3:]
            if ".." in path.split("/") or path.endswith(" (deleted)"):
                return None
            return path.rstrip("/") or None
    return None
