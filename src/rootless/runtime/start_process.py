"""The last step in the container's init: stdio, terminal, optional init, execve."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import termios

from rootless.errors import CannotInvokeError, CommandNotFoundError
from rootless.kernel import constants as k
from rootless.kernel.syscalls import Syscalls
from rootless.runtime.init import serve_as_init
from rootless.runtime.plan import Exec

# Everything this module needs is imported above: it runs after pivot_root, when the
# host's Python files are no longer reachable.

# Python ignores these at start-up; a container must get the default dispositions back
# (subprocess's restore_signals does the same).
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def exec_command(step: Exec, stdio, console, error_w: int,
                 sys: Syscalls) -> None:
    if stdio.terminal:
        _attach_terminal(console, stdio.winsize)
    else:
        # our own session: the user's Ctrl-C reaches only the runtime, which forwards it
        # (as `docker run` proxies signals), and never twice.
        os.setsid()
        if not stdio.stdin:
            _stdin_from_devnull()
    if console is not None:
        console.close()
    for sig in _RESTORED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    # No runtime descriptor may reach the container (runc CVE-2024-21626): everything
    # above stdio closes at execve, the error pipe included, which is how P learns the
    # exec succeeded.
    sys.close_range(3, 0xFFFFFFFF, k.CLOSE_RANGE_CLOEXEC)
    if step.init:
        _fork_under_init(step, error_w)
    _execve(step)


def _stdin_from_devnull() -> None:
    fd = os.open("/dev/null", os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)


def _attach_terminal(console, winsize: bytes | None) -> None:
    """A pty from the container's own devpts; its master goes to the runtime."""
    import socket  # already in sys.modules: runtime.process loaded it before the fork

    os.setsid()
    master, slave = os.openpty()
    if winsize:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    if console is not None:
        socket.send_fds(console, [b"m"], [master])
    os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def _execve(step: Exec) -> None:
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in step.env)
    program = step.args[0]
    try:
        os.execvpe(program, list(step.args), env)
    except OSError as e:
        raise exec_error(program, e) from e


def exec_error(program: str, e: OSError) -> Exception:
    """Docker's wording and exit code for a command that could not be started."""
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        if "/" in program:
            return CommandNotFoundError(
                f'exec: "{program}": stat {program}: no such file or directory')
        return CommandNotFoundError(f'exec: "{program}": executable file not found in $PATH')
    if e.errno in (errno.EACCES, errno.EPERM, errno.EISDIR):
        return CannotInvokeError(f'exec: "{program}": permission denied')
    if e.errno == errno.ENOEXEC:
        return CannotInvokeError(f'exec: "{program}": exec format error')
    return CannotInvokeError(f'exec: "{program}": {os.strerror(e.errno or 0).lower()}')


def _fork_under_init(step: Exec, error_w: int) -> None:
    """--init: this process stays pid 1, reaps every zombie and forwards signals."""
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        if os.isatty(0):
            _become_foreground()
        return  # the caller execs the command
    os.close(error_w)
    serve_as_init(child)


def _become_foreground() -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpid())
    except OSError:
        pass
    signal.signal(signal.SIGTTOU, old)
