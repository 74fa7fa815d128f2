"""Descriptors over a Unix socket pair (SCM_RIGHTS), with the C module `_socket`.

A container's start passes descriptors between its processes: G sends P the listener
of its fakeroot filter and, with -t, the master of its pty (runtime/process.py). The
socket module does the same, but importing it costs ~1.5 ms (its enums, selectors) on
the path of every start; these are its socketpair, send_fds and recv_fds over the same
calls (the descriptors packed with struct, not array: array imports collections.abc).
What is received is close-on-exec (MSG_CMSG_CLOEXEC): the monitor's later
children (healthchecks) must not inherit a container's listener or pty.
"""

from __future__ import annotations

import _socket
import struct

_INT = struct.calcsize("i")  # a descriptor in SCM_RIGHTS: a C int


def socketpair():
    """A connected pair of close-on-exec AF_UNIX stream sockets (_socket.socket)."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def send_fds(sock, data: bytes, fds: list[int]) -> None:
    packed = struct.pack(f"{len(fds)}i", *fds)
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, packed)])


def recv_fds(sock, size: int, most: int) -> tuple[bytes, list[int]]:
    """(the data, the descriptors that came with it: at most `most`)."""
    fds: list[int] = []
    data, ancillary, _, _ = sock.recvmsg(size, _socket.CMSG_LEN(most * _INT),
                                         _socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(payload) // _INT
            fds.extend(struct.unpack(f"{count}i", payload[:count * _INT]))
    return data, fds
