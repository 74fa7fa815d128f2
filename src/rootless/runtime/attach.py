"""The runtime's side of a foreground container: forward signals, pump a terminal, wait.

Synchronous on purpose: the runtime layer never imports trio, and a foreground
`rootless run` is its own monitor.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal

from rootless.runtime.process import wait_exit_code

# What `docker run --sig-proxy` forwards: everything a user may send, minus what the
# kernel or the terminal handle (SIGCHLD, SIGKILL, SIGSTOP, job control, SIGWINCH).
_NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGTSTP,
                  signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGURG,
                  signal.SIGPIPE, signal.SIGCONT}


class SignalForwarder:
    """Installed before the container is forked, so a signal that arrives while it
    starts is held and delivered as soon as its pid is known, never lost or fatal."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        for sig in signal.valid_signals():
            if sig in _NOT_FORWARDED:
                continue
            try:
                signal.signal(sig, self._on_signal)
            except (OSError, ValueError):
                pass

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def target(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self._on_signal(signum, None)
        self.pending.clear()


def wait_foreground(pid: int, console_fd: int | None, stdin: bool = True) -> int:
    if console_fd is not None:
        pump_terminal(console_fd, stdin)
    return wait_exit_code(pid)


def winsize_of(fd: int) -> bytes | None:
    import termios

    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def pump_terminal(master: int, stdin: bool) -> None:
    """Copy our stdin (with -i) to the pty and the pty to our stdout until the container
    closes it; our terminal is raw meanwhile, so Ctrl-C travels as a byte to the pty."""
    import termios  # only -t needs these; `run` without it should not load them
    import tty
    stdin_is_tty = stdin and os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_is_tty else None
    # without -i our terminal stays cooked (Ctrl-C still signals us, and we forward
    # it), but output processing is off: the container's pty already made "\r\n"
    out_saved = _output_raw(1) if not stdin_is_tty else None

    def resize(_signum: int, _frame: object) -> None:
        size = winsize_of(0)
        if size:
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)

    signal.signal(signal.SIGWINCH, resize)
    try:
        if stdin_is_tty:
            tty.setraw(0)
        _copy_loop(master, stdin)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        if out_saved is not None:
            termios.tcsetattr(1, termios.TCSADRAIN, out_saved)
        os.close(master)


def _output_raw(fd: int) -> list | None:
    import termios

    if not os.isatty(fd):
        return None
    saved = termios.tcgetattr(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSADRAIN, attrs)
    return saved


def _copy_loop(master: int, stdin: bool) -> None:
    import select

    inputs = [0, master] if stdin else [master]
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as e:
                if e.errno == errno.EIO:  # every slave end closed: the container is done
                    return
                raise
            if not data:
                return
            _write_all(1, data)
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                inputs.remove(0)  # stdin ended; keep showing output
                continue
            _write_all(master, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
