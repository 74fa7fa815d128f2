"""`rootless logs` and `rootless container logs`: a container's json-file log, its
stdout entries to stdout and its stderr entries to stderr, byte for byte as the
container wrote them (docker prints them raw: no escaping)."""

from __future__ import annotations

import os

import typer

# Buffered output is written out at this size, or at once when following.
_CHUNK = 64 * 1024


def logs(ctx: typer.Context,
         container: str = typer.Argument(..., metavar="CONTAINER"),
         follow: bool = typer.Option(False, "-f", "--follow", help="Follow log output."),
         since: str = typer.Option("", "--since", help='Show logs since a timestamp '
                                   '(e.g. "2013-01-02T13:23:37Z") or relative (e.g. '
                                   '"42m" for 42 minutes).'),
         until: str = typer.Option("", "--until", help='Show logs before a timestamp '
                                   '(e.g. "2013-01-02T13:23:37Z") or relative (e.g. '
                                   '"42m" for 42 minutes).'),
         timestamps: bool = typer.Option(False, "-t", "--timestamps",
                                         help="Show timestamps."),
         details: bool = typer.Option(False, "--details",
                                      help="Show extra details provided to logs."),
         tail: str = typer.Option("all", "-n", "--tail", help="Number of lines to show "
                                  "from the end of the logs."),
         ) -> None:
    """Fetch the logs of a container."""
    from rootless.cli.common import get_store
    from rootless.engine.container_logs import container_logs
    from rootless.engine.logfile import time_rfc3339nano_fixed

    entries = container_logs(get_store(ctx), container, since, until, tail, follow,
                             details)
    out = _Output(immediate=follow)
    for entry in entries:
        data = entry.data
        if timestamps:
            data = time_rfc3339nano_fixed(entry.time).encode() + b" " + data
        out.write(2 if entry.stream == "stderr" else 1, data)
    out.flush()


class _Output:
    """Entries to fd 1 or 2 in their order; consecutive ones of a stream are written
    together unless following (then each as soon as it is read)."""

    def __init__(self, immediate: bool) -> None:
        self.immediate = immediate
        self.fd = 1
        self.pending = bytearray()

    def write(self, fd: int, data: bytes) -> None:
        if fd != self.fd:
            self.flush()
            self.fd = fd
        self.pending += data
        if self.immediate or len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        data = bytes(self.pending)
        self.pending.clear()
        done = 0
        while done < len(data):  # a pipe may take part of it
            done += os.write(self.fd, data[done:] if done else data)


def register(root: typer.Typer, group: typer.Typer) -> None:
    for app in (root, group):
        app.command("logs", help="Fetch the logs of a container.")(logs)
