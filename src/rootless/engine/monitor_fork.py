"""The command's side of a container's monitor (engine/monitor.py): fork it, hand it the
container, hear whether the container started.

`run` imports this module, not the monitor's: the monitor process brings in its own
modules (the runtime, the cffi shim, socket, pathlib) after the fork, while the command
creates the container beside it, so that neither waits for the other's imports. So this
module imports nothing the command does not need itself: the socket pair of an attached
run is made by the C module `_socket` and becomes a socket.socket on each side only
after the fork (importing socket costs ~2 ms, with its enums and selectors).
"""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.errors import EXIT_ENGINE, RootlessError
from rootless.records import record

# in the container's directory: held by its monitor while it lives; its attach socket
MONITOR_LOCK = "monitor.lock"
ATTACH_SOCKET = "attach"


@record
class Launched:
    pid: int  # the container's init
    start_time: int | None
    client: object | None  # a socket.socket attached from the start, when asked


def fork_monitor(root: str, detach: bool, interactive: bool, tty: bool) -> "PendingMonitor":
    """The monitor of the container `run` is about to create, forked first so that its
    imports overlap the creation: `run` forks it as soon as its flags are read, before
    it imports the engine or SQLite, so that the monitor is ready (imports done, the
    exec helper's sealed copy made) when the container is."""
    wants = None if detach else {"stdin": interactive, "stdout": True, "stderr": True}
    winsize = None
    if tty and wants is not None:
        from rootless.runtime.terminal import winsize_of

        winsize = winsize_of(0)
    return PendingMonitor(root, wants, winsize)


class PendingMonitor:
    """A monitor forked before it knows its container: `run` forks it first, so that its
    own imports (the runtime, the cffi shim: ~6 ms) overlap the container's creation.
    It waits for the container's id on a pipe; if the pipe closes first (the command
    failed, or was killed), it exits without a word. The caller has no SQLite
    connection open (Store.disconnect says why): `run` forks it before it opens the
    store, so that it never closes one (Store.close)."""

    def __init__(self, root, attach: dict | None = None,
                 winsize: bytes | None = None) -> None:
        self.report_r, report_w = os.pipe2(os.O_CLOEXEC)
        go_r, self.go_w = os.pipe2(os.O_CLOEXEC)
        self.ours, theirs = None, None
        if attach is not None:
            import _socket

            self.ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.pid = os.fork()
        if self.pid == 0:  # its copies of our ends go with _quiet_descriptors
            from rootless.engine.monitor import monitor_main

            monitor_main(root, go_r, report_w, theirs, attach, winsize)
        os.close(report_w)
        os.close(go_r)
        if theirs is not None:
            theirs.close()

    def start(self, container_id: str, meanwhile=None) -> Launched:
        """Hand the monitor its container; return once it runs. `meanwhile()` is work
        of the caller's done while the monitor starts it (importing what comes next)."""
        try:
            os.write(self.go_w, container_id.encode())
        except OSError:  # it died: its report says why
            pass
        if self.ours is not None:  # while the monitor starts the container
            import socket

            self.ours = socket.socket(fileno=self.ours.detach())
        if meanwhile is not None:
            meanwhile()
        data = self._finish()
        try:
            report = jsonfast.loads(data.decode(errors="replace") or "{}")
        except ValueError:
            report = {}
        if "pid" not in report:
            if self.ours is not None:
                self.ours.close()
            _raise_report(report)
        return Launched(int(report["pid"]), report.get("start"), self.ours)

    def cancel(self) -> None:
        """No container after all: the monitor exits."""
        self._finish()
        if self.ours is not None:
            self.ours.close()

    def _finish(self) -> bytes:
        os.close(self.go_w)
        os.waitpid(self.pid, 0)  # the first child exits as soon as the monitor is forked
        data = _read_all(self.report_r)
        os.close(self.report_r)
        return data


def _raise_report(report: dict) -> None:
    from rootless.runtime.process import _ERRORS_BY_CODE

    code = report.get("code", EXIT_ENGINE)
    code = code if type(code) is int else EXIT_ENGINE
    err = _ERRORS_BY_CODE.get(code, RootlessError)(
        str(report.get("message") or "the container's monitor failed to start"))
    err.exit_code = code
    raise err


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
