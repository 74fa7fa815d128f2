"""The command's side of an attached container (`run` in the foreground, `attach`,
`start -a`): our stdin to the monitor, its frames to our stdout and stderr, until the
container's exit code arrives or the user detaches.

With -t our terminal is raw while attached, so Ctrl-C travels as a byte to the
container's pty; the detach keys (docker's ctrl-p ctrl-q) end the session and leave the
container running. With --sig-proxy (docker's default) the signals we receive are sent
on to the container's init through the monitor.
"""

from __future__ import annotations

import os
import select
import signal

from rootless import jsonfast
from rootless.engine import attach_frames as af
from rootless.errors import UsageError
from rootless.runtime.terminal import (NOT_FORWARDED as _NOT_FORWARDED,
                                       output_raw as _output_raw, scan_detach_keys,
                                       write_all as _write_all, winsize_of)

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
DETACHED = object()  # what attach_session returns when the user detached


def parse_detach_keys(text: str) -> bytes:
    """docker's --detach-keys: comma-separated `ctrl-X` (X one of a-z @ [ \\ ] ^ _) or
    single characters; "" turns detaching off."""
    if text == "":
        return b""
    keys = bytearray()
    for part in text.split(","):
        if part.startswith("ctrl-") and len(part) == 6:
            c = part[5].lower()
            if "a" <= c <= "z":
                keys.append(ord(c) - ord("a") + 1)
                continue
            specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in specials:
                keys.append(specials[c])
                continue
        elif len(part) == 1 and part.isascii():
            keys.append(ord(part))
            continue
        raise UsageError(f"invalid detach keys ({text}): each key is ctrl-X or one "
                         "character, separated by commas")
    return bytes(keys)


class _Session:
    def __init__(self, sock, stdin: bool, tty: bool, detach_keys: bytes,
                 launcher: bool) -> None:
        self.sock = sock
        self.stdin = stdin
        self.tty = tty
        # as moby's stream copier: the detach keys are looked for only on a terminal;
        # piped input is passed on byte for byte
        self.keys = detach_keys if stdin and tty else b""
        self.matched = 0  # how many detach keys in a row we hold back
        self.launcher = launcher
        self.closed_outputs: set[int] = set()
        self.reader = af.FrameReader()

    def send(self, kind: int, payload: bytes = b"") -> None:
        try:
            self.sock.sendall(af.frame(kind, payload))
        except OSError:
            pass

    def run(self) -> int | None:
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        if self.stdin:
            poller.register(0, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == 0:
                    if self._from_stdin() is DETACHED:
                        return DETACHED
                    if not self.stdin:
                        poller.unregister(0)
                    continue
                data = self.sock.recv(65536)
                if not data:  # the monitor went away without an exit code
                    return 255
                code = self._frames(data)
                if code is not None:
                    return code

    def _from_stdin(self):
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        if not data:
            self.send(af.STDIN)  # end of input
            self.stdin = False
            return None
        if self.keys:
            data = self._scan_keys(data)
            if data is DETACHED:
                return DETACHED
        if data:
            self.send(af.STDIN, data)
        return None

    def _scan_keys(self, data: bytes):
        """Hold back a prefix of the detach sequence; DETACHED when it is complete."""
        out, self.matched = scan_detach_keys(data, self.keys, self.matched)
        return DETACHED if out is None else out

    def _frames(self, data: bytes) -> int | None:
        for kind, payload in self.reader.feed(data):
            if kind in (af.STDOUT, af.STDERR):
                self._output(kind, payload)
            elif kind == af.EXIT:
                code = jsonfast.loads(payload).get("code")
                return code if type(code) is int else 255
        return None

    def _output(self, stream: int, payload: bytes) -> None:
        if stream in self.closed_outputs:
            return
        try:
            _write_all(stream, payload)
        except OSError:  # EPIPE: nobody reads this stream of ours any more
            self.closed_outputs.add(stream)
            if self.launcher:
                self.send(af.CLOSE_OUTPUT, bytes([stream]))


def attach_session(sock, stdin: bool, tty: bool, sig_proxy: bool = True,
                   detach_keys: str = DEFAULT_DETACH_KEYS, launcher: bool = False,
                   interruptible: bool = False):
    """Pump until the container exits (its exit code) or the user detaches (DETACHED).
    `interruptible` (a build's RUN): Ctrl-C raises KeyboardInterrupt here, so the
    caller removes what it made."""
    session = _Session(sock, stdin, tty, parse_detach_keys(detach_keys), launcher)
    saved = _proxy_signals(session) if sig_proxy else {}
    if not sig_proxy and not interruptible:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends us, not the container
    terminal = None
    try:
        if tty:
            terminal = _Terminal(session, stdin)
        return session.run()
    finally:
        if terminal is not None:
            terminal.restore()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        sock.close()


def _proxy_signals(session: _Session) -> dict:
    saved = {}

    def forward(signum: int, _frame) -> None:
        session.send(af.SIGNAL, signum.to_bytes(4, "big"))

    for sig in signal.valid_signals():
        if sig in _NOT_FORWARDED:
            continue
        try:
            saved[sig] = signal.signal(sig, forward)
        except (OSError, ValueError):
            pass
    return saved


class _Terminal:
    """Our terminal while attached to a container's pty: raw with -i (keys go to the
    container), output processing off without (the pty already made "\\r\\n"), and its
    size sent along now and on every SIGWINCH."""

    def __init__(self, session: _Session, stdin: bool) -> None:
        import termios
        import tty

        self.saved = termios.tcgetattr(0) if stdin and os.isatty(0) else None
        self.out_saved = _output_raw(1) if self.saved is None else None
        if self.saved is not None:
            tty.setraw(0)
        self.session = session
        self.previous = signal.signal(signal.SIGWINCH, self._resize)
        self._resize()

    def _resize(self, *_: object) -> None:
        size = winsize_of(0) if os.isatty(0) else winsize_of(1)
        if size:
            self.session.send(af.RESIZE, size)

    def restore(self) -> None:
        import termios

        signal.signal(signal.SIGWINCH, self.previous)
        if self.saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        if self.out_saved is not None:
            termios.tcsetattr(1, termios.TCSADRAIN, self.out_saved)
