"""Small questions about host processes, and handles on them that survive pid reuse.

A pid alone names whatever process holds that number now; a container's init is named
by (pid, start time) instead: the start time (field 22 of /proc/PID/stat, in clock
ticks since boot) of a reused pid differs. A `ProcessHandle` opens a pidfd (Linux 5.3,
pidfd_open(2)) and checks the start time after opening, so a signal sent through it can
only reach the process that was recorded; on older kernels (RHEL 8's 4.18) it checks the
start time before each kill(2), which leaves only the window between two syscalls.
"""

from __future__ import annotations

import os
import select
import time


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (EPERM: it does, owned by someone else)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stat_fields(path: str, dir_fd: int | None = None) -> list[str] | None:
    """The fields of a proc stat file (/proc/PID/stat, /proc/PID/task/TID/stat; or
    `path` under a descriptor of a /proc/PID directory) after the command name, which
    may hold spaces and parentheses: split after the last ')'; field 3 (state) is
    index 0. None if the process is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)  # one read: the kernel makes the file whole, ~300 bytes
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2:].decode("ascii", "replace").split()


def _stat_fields(pid: int) -> list[str] | None:
    return stat_fields(f"/proc/{pid}/stat")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def proc_state(pid: int) -> str | None:
    """One letter of proc(5): R S D Z T t X...; None if the process is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def alive_as(pid: int, started: int | None) -> bool:
    """Whether `pid` is still the process that started at `started` (and not a zombie)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from one scan of /proc (a process that forks
    during the scan may be missed: callers that must catch all of them scan again)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


class ProcessHandle:
    """A process named by (pid, start time); signals reach it or nobody."""

    def __init__(self, pid: int, started: int | None) -> None:
        self.pid = pid
        self.started = started
        self.fd: int | None = None
        from rootless.kernel.syscalls import RealSyscalls

        self._sys = RealSyscalls()  # where a kernel floor below 5.3 refuses pidfds
        try:
            self.fd = self._sys.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (Linux < 5.3), or already reaped
            self.fd = None
        if not alive_as(pid, started):  # checked after the open: the fd is the one
            self.close()
            raise ProcessLookupError(pid)

    def signal(self, signum: int) -> bool:
        """Send `signum`; False if the process is gone."""
        try:
            if self.fd is not None:
                self._sys.pidfd_send_signal(self.fd, signum)
            elif alive_as(self.pid, self.started):
                os.kill(self.pid, signum)
            else:
                return False
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float | None) -> bool:
        """Wait until the process has exited (a zombie counts: its pid namespace is
        empty by then, the kernel kills the rest before the init becomes one); True if it
        did within `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not alive_as(self.pid, self.started):
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                return False
            if self.fd is not None:  # readable once the process has exited
                select.select([self.fd], [], [], left)
            else:
                time.sleep(min(0.01, left if left is not None else 0.01))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "ProcessHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_namespaces(pid: int, started: int, names: tuple[str, ...]) -> list[int]:
    """Close-on-exec descriptors of the namespaces `names` ("user", "net", ...) of the
    process (pid, start time), in that order; ProcessLookupError if it is gone, or if
    its pid now names another process (checked after opening: the files we then hold
    are that process's). The process must be dumpable, or have exec'd in a namespace
    our user owns (ptrace access mode, proc(5))."""
    fds: list[int] = []
    try:
        for name in names:
            try:
                fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                raise ProcessLookupError(pid) from None
        if not alive_as(pid, started):
            raise ProcessLookupError(pid)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def open_user_namespaces(pid: int, started: int, names: tuple[str, ...]):
    """open_namespaces(pid, started, ("user", *names)), and the maps of that user
    namespace as we see them (kernel/idmap.read_maps), read first: open_namespaces's
    check of the start time after opening covers both. (fds, maps)."""
    from rootless.kernel.idmap import read_maps

    try:
        maps = read_maps(pid)
    except (OSError, ValueError, TypeError):
        raise ProcessLookupError(pid) from None
    return open_namespaces(pid, started, ("user", *names)), maps
