"""Descriptors over a Unix socket pair (SCM_RIGHTS), with the C module `_socket`.

A container's start passes descriptors between its processes: G sends P the listener
of its fakeroot filter and, with -t, the master of its pty (runtime/process.py). The
socket module does the same, but importing it costs ~1.5 ms (its enums, selectors) on
the path of every start; these are its socketpair, send_fds and recv_fds over the same
calls. What is received is close-on-exec (MSG_CMSG_CLOEXEC): the monitor's later
children (healthchecks) must not inherit a container's listener or pty.
"""

from __future__ import annotations

import _socket
import array


def socketpair():
    """A connected pair of close-on-exec AF_UNIX stream sockets (_socket.socket)."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def send_fds(sock, data: bytes, fds: list[int]) -> None:
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))])


def recv_fds(sock, size: int, most: int) -> tuple[bytes, list[int]]:
    """(the data, the descriptors that came with it: at most `most`)."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(size, _socket.CMSG_LEN(most * fds.itemsize),
                                         _socket.MSG_CMSG_CLOEXEC)
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)
