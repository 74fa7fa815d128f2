"""The last step in the container's init (G): its standard streams, then the exec helper.

G is still the host's interpreter; what it execs is the static helper from the sealed
memfd the runtime made (runtime/helper.py), and the helper resets the signals, looks the
command up in the container's PATH, execs it or reports why not (126/127, Docker's
wording), and with --init stays pid 1 above it (csrc/exec_helper.c).
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import stat
import termios

from rootless.errors import RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel import fdpass
from rootless.kernel.syscalls import Syscalls
from rootless.records import record
from rootless.runtime.helper import helper_argv
from rootless.runtime.plan import Exec

# Everything this module needs is imported above: it runs after pivot_root, when the
# host's Python files are no longer reachable.


@record
class Streams:
    """One side of the pipes that are a container's stdio without -t."""

    stdin: int | None  # None: no -i (the container reads /dev/null)
    stdout: int
    stderr: int


def exec_command(step: Exec, stdio, streams: Streams | None, console, error_w: int,
                 helper: int, sys: Syscalls) -> None:
    """Never returns: execveat(2) of the helper, or an exception to report."""
    if stdio.terminal:
        _attach_terminal(console, stdio.winsize)
    else:
        # our own session: the user's Ctrl-C reaches only the runtime, which forwards it
        # (as `docker run` proxies signals), and never twice; and no controlling
        # terminal, so /dev/tty opens none of the user's
        os.setsid()
        _attach_pipes(streams)
    if console is not None:
        console.close()
    # No runtime descriptor may reach the container (runc CVE-2024-21626): everything
    # above stdio closes at execve but the error pipe, which the helper keeps until the
    # command's own execve closes it: that EOF tells P the command started.
    close_range = _cloexec_from_3(sys)
    os.set_inheritable(error_w, True)
    for fd in range(3, 3 + stdio.preserve_fds):  # rootless-oci --preserve-fds
        try:
            os.set_inheritable(fd, True)
        except OSError:  # EBADF: a gap the caller left
            pass
    if stdio.park_fd is not None:
        os.set_inheritable(stdio.park_fd, True)
    argv = helper_argv(step, error_w, close_range, stdio.preserve_fds, stdio.park_fd)
    try:
        sys.execveat(helper, "", argv, step.env, k.AT_EMPTY_PATH)
    except OSError as e:
        raise RuntimeSetupError(f"start the exec helper: {e.strerror.lower()}") from e
    raise RuntimeSetupError("start the exec helper: execveat returned")


def _cloexec_from_3(sys: Syscalls) -> bool:
    """Mark every descriptor above 2 close-on-exec: close_range(2) with
    CLOSE_RANGE_CLOEXEC (Linux 5.11), else one by one, each fd /proc/self/fd lists (the
    container's /proc by now; without one, every number below RLIMIT_NOFILE). False
    where close_range could not: the helper is then told not to try it either."""
    try:
        sys.close_range(3, 0xFFFFFFFF, k.CLOSE_RANGE_CLOEXEC)
        return True
    except OSError as e:  # ENOSYS before 5.9, EINVAL for the flag before 5.11, EPERM
        # from a seccomp profile that predates the call (one we run inside of)
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            raise
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:  # EBADF: listdir's own descriptor, closed by now
                pass
    return False


def _attach_pipes(streams: Streams | None) -> None:
    """The runtime's pipes (stdin: /dev/null without -i) become 0, 1 and 2; without
    pipes (exec -d) all three are /dev/null."""
    if streams is None:
        null = _open_null()
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.close(null)
        return
    stdin = streams.stdin
    if stdin is None:
        stdin = _open_null()
    # lift every source above 2 first: one of them may itself be 0, 1 or 2 (a runtime
    # started with a standard descriptor closed), which an earlier dup2 would replace
    lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (stdin, *streams[1:])]
    for target, fd in enumerate(lifted):
        os.dup2(fd, target)
        os.close(fd)


NULL_DEVICE = os.makedev(1, 3)  # Documentation/admin-guide/devices.txt


def _open_null() -> int:
    """The container's /dev/null, which a running container (exec) may have replaced:
    opened without blocking (a FIFO would hang us) and refused unless the null device."""
    fd = os.open("/dev/null", os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != NULL_DEVICE:
        os.close(fd)
        raise RuntimeSetupError("the container's /dev/null is not the null device")
    os.set_blocking(fd, True)
    return fd


def _attach_terminal(console, winsize: bytes | None) -> None:
    """A pty from the container's own devpts; its master goes to the runtime."""
    os.setsid()
    master, slave = os.openpty()
    if winsize:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    if console is not None:
        fdpass.send_fds(console, b"m", [master])
    os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
