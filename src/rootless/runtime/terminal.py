"""Small pieces of terminal and stream handling that both the runtime's foreground
pumps (runtime/attach.py) and an attached command (engine/attach_client.py) use: light
on purpose (os, fcntl, signal), so a command that only attaches to a container's monitor
loads nothing of the runtime."""

from __future__ import annotations

import fcntl
import os
import signal

# What `docker run --sig-proxy` forwards: everything a user may send, minus what the
# kernel or the terminal handle (SIGCHLD, SIGKILL, SIGSTOP, job control, SIGWINCH).
NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGTSTP,
                 signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH, signal.SIGURG,
                 signal.SIGPIPE, signal.SIGCONT}


def winsize_of(fd: int) -> bytes | None:
    import termios

    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def output_raw(fd: int) -> list | None:
    import termios

    if not os.isatty(fd):
        return None
    saved = termios.tcgetattr(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSADRAIN, attrs)
    return saved


def scan_detach_keys(data: bytes, keys: bytes, matched: int) -> tuple[bytes | None, int]:
    """(what to pass on, how many keys are now held back) for a chunk of input, where
    `matched` keys were held back before it; (None, 0) once the whole sequence came. A
    broken sequence is passed on as typed."""
    out = bytearray()
    for byte in data:
        if byte == keys[matched]:
            matched += 1
            if matched == len(keys):
                return None, 0
            continue
        out += keys[:matched]
        matched = 1 if byte == keys[0] else 0
        if not matched:
            out.append(byte)
    return bytes(out), matched


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # someone else made our shared descriptor non-blocking
            import select

            select.select([], [fd], [])
            continue
        view = view[written:]
