"""Published ports of a slirp4netns container: the monitor's own forwarder.

slirp4netns's port handler (its API's add_hostfwd) carries every byte through libslirp's
user-mode TCP stack; podman's rootlessport avoids it, and so do we: a child of the
monitor accepts on the host and connects inside the container's network namespace,
then moves the bytes with splice(2), kernel socket to kernel socket, never through
a user-mode stack. (pasta forwards ports itself and needs none of this.)

How it gets a socket "inside": the listening sockets are bound by the monitor, on the
host, before the fork (so a taken port fails the start with a clear error); the child
then joins the container's user and network namespaces (setns(2), user first: the
network namespace is owned by it). A socket keeps the namespace it was created in
(socket(7)), so the host listeners go on accepting host clients, and every socket the
child creates from then on connects inside the container. The child makes itself
non-dumpable first: a process of the container, root in that user namespace, must not
ptrace it or open its descriptors (ptrace(2), PR_SET_DUMPABLE; runc CVE-2016-9962).

What is lost: the client's address. The container sees connections from 127.0.0.1
(the forwarder connects to the container's loopback, as rootlessport does), where
pasta keeps the client's own address. UDP: each client address gets its own
connected socket inside, and replies go back to that client.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket

from rootless.errors import RootlessError

PIPE_SIZE = 1 << 20  # fcntl(2) F_SETPIPE_SZ: fewer splice calls per MiB
UDP_FLOWS = 1024  # client addresses remembered per UDP port (oldest dropped)


def listeners_bind(forwards: list[tuple[str, str, int, int]]) -> list[tuple]:
    """[(socket, proto, container port)] bound on the host; RootlessError for a taken
    port, nothing left bound."""
    bound: list[tuple] = []
    try:
        for proto, ip, host, ctr in forwards:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
            s = socket.socket(family, kind)
            bound.append((s, proto, ctr))
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip or "0.0.0.0", host))
            except OSError as e:
                raise RootlessError(f"bind for {ip or '0.0.0.0'}:{host}/{proto} failed: "
                                    f"port is already allocated ({e.strerror.lower()})"
                                    ) from None
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            s.setblocking(False)
    except BaseException:
        for s, _, _ in bound:
            s.close()
        raise
    return bound


def forwarder_start(forwards: list[tuple[str, str, int, int]], ns_fds: list[int]) -> int:
    """Bind, then fork the forwarder; its pid (our child, dying with us)."""
    bound = listeners_bind(forwards)
    monitor = os.getpid()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                _forwarder_main(bound, ns_fds, monitor)
            finally:
                os._exit(0)
    finally:
        for s, _, _ in bound:
            s.close()
    return pid


def _enter(ns_fds: list[int], monitor: int, keep: set[int]) -> None:
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    sys = RealSyscalls()
    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
        if fd > 2 and fd not in keep:  # the monitor's: the container's stdio, sockets
            try:
                os.close(fd)
            except OSError:
                pass
    sys.prctl(k.PR_SET_DUMPABLE, 0)
    sys.setns(ns_fds[0], k.CLONE_NEWUSER)
    sys.setns(ns_fds[1], k.CLONE_NEWNET)
    for fd in ns_fds:
        os.close(fd)
    # after setns: a change of credentials clears the parent-death signal (prctl(2))
    sys.prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != monitor:
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)


def _forwarder_main(bound: list[tuple], ns_fds: list[int], monitor: int) -> None:
    _enter(ns_fds, monitor, {s.fileno() for s, _, _ in bound} | set(ns_fds))
    sel = selectors.DefaultSelector()
    for s, proto, ctr in bound:
        handler = _TcpListener(s, ctr, sel) if proto == "tcp" else _UdpPort(s, ctr, sel)
        sel.register(s, selectors.EVENT_READ, handler.ready)
    while True:
        for key, mask in sel.select():
            key.data(key.fileobj, mask)


class _TcpListener:
    def __init__(self, sock, port: int, sel) -> None:
        self.sock, self.port, self.sel = sock, port, sel

    def ready(self, _sock, _mask) -> None:
        try:
            client, _ = self.sock.accept()
        except OSError:
            return
        inner = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        inner.settimeout(5)
        try:  # to the container's loopback: completes at once, or is refused
            inner.connect(("127.0.0.1", self.port))
        except OSError:
            client.close()
            inner.close()
            return
        _Pair(client, inner, self.sel)


class _Way:
    """One direction of a connection: src -> pipe -> dst, by splice(2)."""

    def __init__(self, src, dst) -> None:
        import fcntl

        self.src, self.dst = src, dst
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        self.pending = 0
        self.eof = False
        self.done = False

    def pull(self) -> None:
        try:
            n = os.splice(self.src.fileno(), self.w, PIPE_SIZE,
                          flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if n == 0:
            self.eof = True
        self.pending += n
        self.push()

    def push(self) -> None:
        while self.pending:
            try:
                n = os.splice(self.r, self.dst.fileno(), self.pending,
                              flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
            except BlockingIOError:
                return
            except OSError:  # the other side is gone: drop what is left
                self.pending, self.eof = 0, True
                break
            self.pending -= n
        if self.eof and not self.done:
            self.done = True
            try:
                self.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


class _Pair:
    """A host client and its connection inside; each socket is watched for what it
    can do next: read while its way out is empty, write while its way in is not."""

    def __init__(self, a, b, sel) -> None:
        a.setblocking(False)
        b.setblocking(False)
        self.a, self.b, self.sel = a, b, sel
        self.ab, self.ba = _Way(a, b), _Way(b, a)
        self.events = {a: 0, b: 0}
        self._watch()

    def ready(self, sock, mask) -> None:
        out, back = (self.ab, self.ba) if sock is self.a else (self.ba, self.ab)
        if mask & selectors.EVENT_WRITE:
            back.push()
        if mask & selectors.EVENT_READ and not out.pending and not out.eof:
            out.pull()
        if self.ab.done and self.ba.done:
            self.close()
        else:
            self._watch()

    def _watch(self) -> None:
        for s, way_out, way_in in ((self.a, self.ab, self.ba), (self.b, self.ba, self.ab)):
            events = (0 if way_out.pending or way_out.eof else selectors.EVENT_READ) | (
                selectors.EVENT_WRITE if way_in.pending else 0)
            if events == self.events[s]:
                continue
            if not events:
                self.sel.unregister(s)
            elif not self.events[s]:
                self.sel.register(s, events, self.ready)
            else:
                self.sel.modify(s, events, self.ready)
            self.events[s] = events

    def close(self) -> None:
        for s in (self.a, self.b):
            if self.events[s]:
                self.sel.unregister(s)
            s.close()
        self.ab.close()
        self.ba.close()


class _UdpPort:
    def __init__(self, sock, port: int, sel) -> None:
        self.sock, self.port, self.sel = sock, port, sel
        self.flows: dict = {}  # client address -> connected socket inside

    def ready(self, _sock, _mask) -> None:
        try:
            data, client = self.sock.recvfrom(65535)
        except OSError:
            return
        inner = self.flows.get(client)
        if inner is None:
            inner = self._flow(client)
        try:
            inner.send(data)
        except OSError as e:
            if e.errno != errno.ECONNREFUSED:
                return

    def _flow(self, client):
        if len(self.flows) >= UDP_FLOWS:
            oldest = next(iter(self.flows))
            old = self.flows.pop(oldest)
            self.sel.unregister(old)
            old.close()
        inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        inner.setblocking(False)
        inner.connect(("127.0.0.1", self.port))
        self.flows[client] = inner
        self.sel.register(inner, selectors.EVENT_READ,
                          lambda s, m: self._reply(s, client))
        return inner

    def _reply(self, inner, client) -> None:
        try:
            data = inner.recv(65535)
            self.sock.sendto(data, client)
        except OSError:
            pass
