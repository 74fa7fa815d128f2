"""The attach protocol between a container's monitor and the commands attached to it
(`run` in the foreground, `attach`, `start -a`), over a unix stream socket.

Both ways, frames: one byte of kind, three zero bytes, the length as a 32-bit big-endian
number, then the payload: docker's stream multiplexing header (stdcopy), with kinds of
our own beside its 1 (stdout) and 2 (stderr). A client that connects to the socket
first sends one JSON line: {"stdin": bool, "stdout": bool, "stderr": bool}.
"""

from __future__ import annotations

import struct

STDOUT, STDERR = 1, 2  # monitor -> client, as docker's stdcopy
EXIT = 3  # monitor -> client: JSON {"code": N}; the last frame
ERROR = 4  # monitor -> client: JSON {"message": ..., "code": N}
STDIN = 5  # client -> monitor: bytes for the container's stdin; empty: end of input
RESIZE = 6  # client -> monitor: struct winsize (8 bytes), for the container's pty
SIGNAL = 7  # client -> monitor: the signal number as 4 bytes big-endian (--sig-proxy)
CLOSE_OUTPUT = 8  # client -> monitor: 1 byte, the stream it can no longer write (EPIPE)
# an exec's fakeroot listener (runtime/fakeroot.py), after the hello {"fakeroot": true}:
# monitor -> client b"ready" (it serves the container's fakeroot) or b"none"; then
# client -> monitor one such frame carrying the listener descriptor (SCM_RIGHTS)
FAKEROOT = 9

HEADER = struct.Struct(">B3xI")
MAX_PAYLOAD = 1 << 20


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


class FrameReader:
    """Frames out of a byte stream fed in pieces; a length past MAX_PAYLOAD is an error
    (a peer that sends one is not ours)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self.buffer)
            if length > MAX_PAYLOAD:
                raise ValueError(f"attach frame of {length} bytes")
            end = HEADER.size + length
            if len(self.buffer) < end:
                break
            frames.append((kind, bytes(self.buffer[HEADER.size:end])))
            del self.buffer[:end]
        return frames
