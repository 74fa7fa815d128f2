"""The monitor's streams: the container's output to its json-file log and to attached
clients, attached clients' input to the container, until the container's init has
exited and its outputs have closed.

One poll(2) loop, no threads and no trio: the monitor of an idle container must stay
small (under 20 MB resident; trio alone adds 13 MB and 80-140 ms of imports here), and a
foreground `run` waits on this loop for the container's exit code.

Output is never dropped: while a client has more than CLIENT_BACKLOG bytes unsent, the
container's output is not read (its writes block, as they would on a slow terminal).
"""

from __future__ import annotations

import errno
import json
import os
import select
from collections.abc import Callable

from rootless.engine import attach_frames as af

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the monitor starts a container without it
    import socket

CHUNK = 65536
CLIENT_BACKLOG = 1 << 20
IN, OUT = select.POLLIN, select.POLLOUT


class Client:
    """One attached command: what it wants, and what is still to be sent to it."""

    def __init__(self, sock: socket.socket, wants: dict | None, launcher: bool = False):
        sock.setblocking(False)
        self.sock = sock
        self.launcher = launcher  # the `run`/`start -a` that made the monitor
        self.wants = wants  # None until its hello line has arrived
        self.hello = bytearray()
        self.reader = af.FrameReader()
        self.out = bytearray()
        self.fakeroot = False  # an exec handing over its fakeroot listener

    def want(self, key: str) -> bool:
        return bool(self.wants and self.wants.get(key))

    def send(self, kind: int, payload: bytes = b"") -> None:
        self.out += af.frame(kind, payload)
        self.flush()

    def flush(self) -> None:
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client is gone: nothing more will reach it
            self.out.clear()
            return
        del self.out[:sent]

    def flush_all(self, timeout: float) -> None:
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(self.out)
        except OSError:
            pass
        self.out.clear()


class Pump:
    """The streams of one run of a container (a restart makes a new Pump)."""

    def __init__(self, started, tty: bool, log, stdin_once: bool,
                 signal_init: Callable[[int], None]) -> None:
        self.tty = tty
        self.log = log
        self.stdin_once = stdin_once
        self.signal_init = signal_init
        if tty:
            master = started.console_fd
            self.outputs = {master: af.STDOUT} if master is not None else {}
            self.stdin_fd = master
        else:
            streams = started.streams
            self.outputs = {streams.stdout: af.STDOUT, streams.stderr: af.STDERR}
            self.stdin_fd = streams.stdin
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        self.stdin_buf = bytearray()
        self.stdin_closing = False  # close the container's stdin once stdin_buf is written
        self.clients: list[Client] = []
        # other descriptors of the monitor's (the fakeroot's listeners): fd ->
        # on_ready(mask), which returns False when the fd is done with
        self.watched: dict[int, Callable[[int], bool]] = {}
        # where an exec's fakeroot listener goes; None: this container has no fakeroot
        self.on_listener: Callable[[int], None] | None = None

    def watch(self, fd: int, on_ready: Callable[[int], bool]) -> None:
        self.watched[fd] = on_ready

    # ---- the loop ----

    def run(self, listener: socket.socket | None, wake_fd: int, on_wake: Callable[[], None],
            done: Callable[[], bool], timer: Callable[[], float | None]) -> None:
        """Until done() (the init has exited) and every output has closed. timer()
        returns seconds to the next deadline (healthchecks) and runs what is due."""
        while not (done() and not self.outputs):
            events = self._interest(listener, wake_fd, done())
            timeout = timer()
            poller = select.poll()
            for fd, mask in events.items():
                poller.register(fd, mask)
            ready = poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
            for fd, mask in ready:
                self._dispatch(fd, mask, listener, wake_fd, on_wake)

    def _interest(self, listener, wake_fd: int, exited: bool) -> dict[int, int]:
        events: dict[int, int] = {wake_fd: IN}
        for fd in self.watched:
            events[fd] = IN
        if not any(len(c.out) > CLIENT_BACKLOG for c in self.clients):
            for fd in self.outputs:
                events[fd] = events.get(fd, 0) | IN
        if self.stdin_fd is not None and self.stdin_buf and not exited:
            events[self.stdin_fd] = events.get(self.stdin_fd, 0) | OUT
        if listener is not None:
            events[listener.fileno()] = IN
        stdin_full = len(self.stdin_buf) > CLIENT_BACKLOG
        for c in self.clients:
            events[c.sock.fileno()] = (0 if stdin_full else IN) | (OUT if c.out else 0)
        return events

    def _dispatch(self, fd: int, mask: int, listener, wake_fd: int, on_wake) -> None:
        if fd == wake_fd:
            on_wake()
            return
        on_ready = self.watched.get(fd)
        if on_ready is not None:
            if not on_ready(mask):
                del self.watched[fd]
            return
        if listener is not None and fd == listener.fileno():
            self._accept(listener)
            return
        if fd in self.outputs and mask & (IN | select.POLLHUP | select.POLLERR):
            self._read_output(fd)
        if fd == self.stdin_fd and mask & (OUT | select.POLLERR):
            self._write_stdin(mask)
        client = next((c for c in self.clients if c.sock.fileno() == fd), None)
        if client is not None:
            if mask & OUT:
                client.flush()
            if mask & (IN | select.POLLHUP | select.POLLERR):
                self._read_client(client)

    # ---- the container's side ----

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: every pty slave closed, the container is done
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._close_output(fd)
            return
        stream = self.outputs[fd]
        if self.log is not None:
            self.log.write("stdout" if stream == af.STDOUT else "stderr", data)
        key = "stdout" if stream == af.STDOUT else "stderr"
        for c in self.clients:
            if c.want(key):
                c.send(stream, data)

    def _close_output(self, fd: int) -> None:
        del self.outputs[fd]
        if fd == self.stdin_fd:  # the pty master: one descriptor for both ways
            self.stdin_fd = None
            self.stdin_buf.clear()
        os.close(fd)

    def _write_stdin(self, mask: int) -> None:
        try:
            written = os.write(self.stdin_fd, self.stdin_buf) if not mask & select.POLLERR \
                else -1
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the container closed its stdin
            written = -1
        if written < 0:
            self._close_stdin()
            return
        del self.stdin_buf[:written]
        if not self.stdin_buf and self.stdin_closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        self.stdin_buf.clear()
        if self.stdin_fd is not None and not self.tty:
            os.close(self.stdin_fd)
        elif self.stdin_fd is not None:
            os.write(self.stdin_fd, b"\x04")  # a pty has no end of input but ^D
        if not self.tty:
            self.stdin_fd = None

    # ---- clients ----

    def add_client(self, client: Client) -> None:
        self.clients.append(client)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        self.add_client(Client(sock, None))

    def _read_client(self, client: Client) -> None:
        if client.fakeroot:
            self._read_listener(client)
            return
        try:
            data = client.sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        if client.wants is None:
            data = self._hello(client, data)
            if client.wants is None or not data:
                return
        try:
            frames = client.reader.feed(data)
        except ValueError:
            self._drop(client)
            return
        for kind, payload in frames:
            self._client_frame(client, kind, payload)

    def _hello(self, client: Client, data: bytes) -> bytes:
        client.hello += data
        line, sep, rest = bytes(client.hello).partition(b"\n")
        if not sep:
            if len(client.hello) > 4096:
                self._drop(client)
            return b""
        try:
            wants = json.loads(line)
        except ValueError:
            wants = None
        if not isinstance(wants, dict):
            self._drop(client)
            return b""
        client.wants = wants
        if wants.get("fakeroot") is True:
            client.fakeroot = True
            client.send(af.FAKEROOT, b"ready" if self.on_listener else b"none")
            return b""
        return rest

    def _read_listener(self, client: Client) -> None:
        """An exec's fakeroot listener (attach_frames.FAKEROOT): served from now on if
        it is one (kernel/notify.is_listener), closed otherwise."""
        from rootless.kernel.notify import is_listener

        from rootless.kernel.fdpass import recv_fds

        try:
            # close-on-exec as they arrive: the monitor's later children (healthchecks,
            # restarts) must not inherit an exec's listener
            data, fds = recv_fds(client.sock, CHUNK, 4)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        for fd in fds:
            if self.on_listener is not None and is_listener(fd):
                self.on_listener(fd)
            else:
                os.close(fd)
        if not data:
            self._drop(client)

    def _client_frame(self, client: Client, kind: int, payload: bytes) -> None:
        if kind == af.STDIN and client.want("stdin") and self.stdin_fd is not None:
            if payload:
                self.stdin_buf += payload
            elif self.stdin_once:
                self.stdin_closing = True
                if not self.stdin_buf:
                    self._close_stdin()
        elif kind == af.RESIZE and self.tty and len(payload) == 8 and \
                self.stdin_fd is not None:
            import fcntl
            import termios

            try:
                fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ, payload)
            except OSError:
                pass
        elif kind == af.SIGNAL and len(payload) == 4:
            self.signal_init(int.from_bytes(payload, "big"))
        elif kind == af.CLOSE_OUTPUT and client.launcher and payload in (b"\x01", b"\x02"):
            # the foreground run's reader went away (`run ... | head -1`): close the
            # container's end too, so its writer gets SIGPIPE as in a shell pipeline
            stream = payload[0]
            for fd, s in list(self.outputs.items()):
                if s == stream and not self.tty:
                    self._close_output(fd)

    def _drop(self, client: Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
            if client.want("stdin") and self.stdin_once and self.stdin_fd is not None:
                self.stdin_closing = True
                if not self.stdin_buf:
                    self._close_stdin()
            client.sock.close()

    def finish(self, payload: dict, kind: int = af.EXIT) -> None:
        """Everything still owed to the clients, then the last frame, then goodbye."""
        data = json.dumps(payload).encode()
        for c in self.clients:
            c.out += af.frame(kind, data)
            c.flush_all(10.0)
            c.sock.close()
        self.clients.clear()
        for fd in list(self.outputs):
            self._close_output(fd)
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None
