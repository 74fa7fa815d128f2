"""The runtime's side of a foreground container: forward signals, pump its streams, wait.

Synchronous on purpose: the runtime layer never imports trio, and a foreground
`rootless run` is its own monitor. Without -t the container's stdin, stdout and stderr
are pipes (runtime/process.py) and this module copies between them and our own; with -t,
between its pty and our terminal.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal

from rootless.runtime.process import Started, wait_exit_code
from rootless.runtime.start_process import Streams
from rootless.runtime.terminal import (NOT_FORWARDED as _NOT_FORWARDED, output_raw as
                                       _output_raw, scan_detach_keys,
                                       write_all as _write_all, winsize_of)

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


def wait_foreground(started: Started, stdin: bool = True) -> int:
    if started.console_fd is not None:
        pump_terminal(started.console_fd, stdin)
    elif started.streams is not None:
        pump_streams(started.streams)
    return wait_exit_code(started.pid)


def pump_terminal(master: int, stdin: bool, detach_keys: bytes = b"") -> bool:
    """Copy our stdin (with -i) to the pty and the pty to our stdout until the container
    closes it; our terminal is raw meanwhile, so Ctrl-C travels as a byte to the pty.
    True if the user typed `detach_keys` (exec's ctrl-p ctrl-q) on a terminal: the
    master is then left open for the caller to hand on."""
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
    detached = False
    try:
        if stdin_is_tty:
            tty.setraw(0)
        # as moby's stream copier: keys are looked for on a terminal only; piped input
        # passes byte for byte
        detached = _copy_loop(master, stdin, detach_keys if stdin_is_tty else b"")
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        if out_saved is not None:
            termios.tcsetattr(1, termios.TCSADRAIN, out_saved)
        if not detached:
            os.close(master)
    return detached


def _copy_loop(master: int, stdin: bool, detach_keys: bytes = b"") -> bool:
    """True when the detach keys were typed, False when the container is done."""
    import select

    inputs = [0, master] if stdin else [master]
    matched = 0  # how many of the detach keys in a row we hold back
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
                    return False
                raise
            if not data:
                return False
            _write_all(1, data)
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                inputs.remove(0)  # stdin ended; keep showing output
                continue
            if detach_keys:
                data, matched = scan_detach_keys(data, detach_keys, matched)
                if data is None:
                    return True
            _write_all(master, data)


# ---- pipes (no -t) ---------------------------------------------------------------------

CHUNK = 65536


def pump_streams(streams: Streams) -> None:
    """Copy our stdin (with -i) into the container's, and its stdout and stderr out to
    ours, each in order, until both outputs have closed: every process holding them is
    in the container's pid namespace, which the kernel empties when its init exits.

    A reader of ours that goes away (EPIPE: `rootless run ... | head -1`) ends the copy
    of that stream and closes the container's pipe, so its writer gets SIGPIPE as in a
    shell pipeline; the container's exit code is still ours. Our stdin's end closes the
    container's (EOF there too); a container that closes its stdin ends the copy. Our own
    descriptors are never made non-blocking: they may be the user's terminal, shared."""
    import select

    poller = select.poll()
    outputs = {streams.stdout: 1, streams.stderr: 2}
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    feed = _StdinFeed(streams.stdin, poller) if streams.stdin is not None else None
    try:
        while outputs:
            for fd, events in poller.poll():  # EINTR: retried by Python (PEP 475)
                if fd in outputs:
                    _copy_out(fd, outputs, poller)
                elif feed is not None:
                    feed.on_ready(fd, events)
    finally:
        for fd in outputs:
            os.close(fd)
        if feed is not None:
            feed.close()


def _copy_out(fd: int, outputs: dict[int, int], poller) -> None:
    data = os.read(fd, CHUNK)
    if data:
        try:
            _write_all(outputs[fd], data)
            return
        except OSError:  # EPIPE, EIO, EBADF: nobody reads this stream of ours any more
            pass
    poller.unregister(fd)
    del outputs[fd]
    os.close(fd)


class _StdinFeed:
    """Our stdin into the container's stdin pipe: read a chunk when the pipe's buffer is
    empty, write it as the pipe takes it (non-blocking: the pipe is ours alone)."""

    def __init__(self, pipe: int, poller) -> None:
        import select

        self.select = select
        self.pipe: int | None = pipe
        self.poller = poller
        self.pending = b""
        os.set_blocking(pipe, False)
        poller.register(0, select.POLLIN)
        poller.register(pipe, 0)  # POLLERR alone: the container closed its stdin

    def on_ready(self, fd: int, events: int) -> None:
        if self.pipe is None:  # closed by an earlier event of the same poll
            return
        if fd == 0:
            self._read()
        elif events & (self.select.POLLERR | self.select.POLLNVAL):
            self.close()
        elif events & self.select.POLLOUT:
            self._write()

    def _read(self) -> None:
        try:
            data = os.read(0, CHUNK)
        except OSError:  # EIO (a hung-up terminal), EBADF (no stdin at all): its end
            data = b""
        self.poller.unregister(0)  # until the pipe has taken what we read
        if not data:
            self.close()
            return
        self.pending = data
        self.poller.modify(self.pipe, self.select.POLLOUT)

    def _write(self) -> None:
        try:
            written = os.write(self.pipe, self.pending)
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the container closed its stdin
            self.close()
            return
        self.pending = self.pending[written:]
        if not self.pending:
            self.poller.modify(self.pipe, 0)
            self.poller.register(0, self.select.POLLIN)

    def close(self) -> None:
        """Stop feeding: the container reads EOF once it has read what we wrote."""
        if self.pipe is None:
            return
        try:
            self.poller.unregister(0)
        except KeyError:  # not registered while a chunk waits for the pipe
            pass
        self.poller.unregister(self.pipe)
        os.close(self.pipe)
        self.pipe = None
