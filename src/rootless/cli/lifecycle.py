"""`rootless start|stop|restart|kill|pause|unpause|wait|attach`, at the top level and
under `container`, as docker's CLI has them. Several containers where docker takes
several; each one's name is printed as it is done, and the first failure ends the
command with exit 1 after the others were tried (docker's "Error response" lines)."""

from __future__ import annotations

from typing import Callable, List

import typer

from rootless.cli.common import get_store


def _each(ctx: typer.Context, refs: list[str], act: Callable[[object, str], None]) -> int:
    """Act on every container; print each ref done, one error line for each failure."""
    from rootless.cli.main import error
    from rootless.errors import RootlessError

    store = get_store(ctx)
    failed = 0
    for ref in refs:
        try:
            act(store, ref)
        except RootlessError as e:
            error(str(e))
            failed = 1
            continue
        print(ref, flush=True)
    return failed


def start(ctx: typer.Context,
          containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
          attach: bool = typer.Option(False, "-a", "--attach",
                                      help="Attach stdout/stderr and forward signals."),
          interactive: bool = typer.Option(False, "-i", "--interactive",
                                           help="Attach the container's stdin."),
          detach_keys: str = typer.Option(None, "--detach-keys", metavar="KEYS",
                                          help="Keys that detach (default ctrl-p,ctrl-q).")
          ) -> int:
    """Start one or more stopped containers."""
    from rootless.engine.lifecycle import container_start

    if not (attach or interactive):
        return _each(ctx, containers, lambda store, ref: container_start(store, ref))
    if len(containers) > 1:
        from rootless.errors import UsageError

        raise UsageError("you cannot start and attach multiple containers at once")
    return _start_attached(ctx, containers[0], interactive, detach_keys)


def _start_attached(ctx: typer.Context, ref: str, interactive: bool,
                    detach_keys: str | None) -> int:
    from rootless.engine.attach_client import DEFAULT_DETACH_KEYS, DETACHED, attach_session
    from rootless.engine.container_settings import settings_read
    from rootless.engine.containers import container_dir, container_lookup
    from rootless.engine.lifecycle import connect_monitor, container_start
    from rootless.runtime.terminal import winsize_of

    store = get_store(ctx)
    record = container_lookup(store, ref)
    settings = settings_read(container_dir(store, record.id))
    stdin = interactive and settings.open_stdin
    wants = {"stdin": stdin, "stdout": True, "stderr": True}
    launched = container_start(store, ref, wants, winsize_of(0) if settings.tty else None)
    sock = launched.client if launched else connect_monitor(store, record.id, wants)
    if sock is None:
        return 0
    code = attach_session(sock, stdin, settings.tty, True,
                          detach_keys if detach_keys is not None else DEFAULT_DETACH_KEYS,
                          launcher=launched is not None)
    return 0 if code is DETACHED else code


def stop(ctx: typer.Context,
         containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
         time: int = typer.Option(None, "-t", "--time", "--timeout",
                                  help="Seconds to wait before killing it (default: its "
                                       "--stop-timeout, else 10; -1: for ever)."),
         signal: str = typer.Option(None, "-s", "--signal",
                                    help="Signal to send (default: its stop signal).")
         ) -> int:
    """Stop one or more running containers."""
    from rootless.engine.lifecycle import container_stop

    if signal is not None:
        from rootless.engine.signals import parse_signal

        parse_signal(signal)
    return _each(ctx, containers, lambda store, ref: container_stop(store, ref, time, signal))


def restart(ctx: typer.Context,
            containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
            time: int = typer.Option(None, "-t", "--time", "--timeout",
                                     help="Seconds to wait before killing it.")) -> int:
    """Restart one or more containers."""
    from rootless.engine.lifecycle import container_restart

    return _each(ctx, containers, lambda store, ref: container_restart(store, ref, time))


def kill(ctx: typer.Context,
         containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
         signal: str = typer.Option("KILL", "-s", "--signal",
                                    help="Signal to send (default KILL).")) -> int:
    """Kill one or more running containers."""
    from rootless.engine.lifecycle import container_kill
    from rootless.engine.signals import parse_signal

    signum = parse_signal(signal)
    return _each(ctx, containers, lambda store, ref: container_kill(store, ref, signum))


def pause(ctx: typer.Context,
          containers: List[str] = typer.Argument(..., metavar="CONTAINER...")) -> int:
    """Pause all processes within one or more containers."""
    from rootless.engine.lifecycle import container_pause

    return _each(ctx, containers, container_pause)


def unpause(ctx: typer.Context,
            containers: List[str] = typer.Argument(..., metavar="CONTAINER...")) -> int:
    """Unpause all processes within one or more containers."""
    from rootless.engine.lifecycle import container_unpause

    return _each(ctx, containers, container_unpause)


def wait(ctx: typer.Context,
         containers: List[str] = typer.Argument(..., metavar="CONTAINER...")) -> int:
    """Block until one or more containers stop, then print their exit codes."""
    from rootless.cli.main import error
    from rootless.engine.lifecycle import container_wait
    from rootless.errors import RootlessError

    store = get_store(ctx)
    failed = 0
    for ref in containers:
        try:
            print(container_wait(store, ref), flush=True)
        except RootlessError as e:
            error(str(e))
            failed = 1
    return failed


def attach(ctx: typer.Context,
           container: str = typer.Argument(..., metavar="CONTAINER"),
           no_stdin: bool = typer.Option(False, "--no-stdin", help="Do not attach stdin."),
           sig_proxy: bool = typer.Option(True, "--sig-proxy/--no-sig-proxy",
                                          help="Forward received signals (default true)."),
           detach_keys: str = typer.Option(None, "--detach-keys", metavar="KEYS",
                                           help="Keys that detach (default ctrl-p,ctrl-q).")
           ) -> int:
    """Attach local standard input, output, and error streams to a running container."""
    from rootless.engine.attach_client import (DEFAULT_DETACH_KEYS, DETACHED,
                                               attach_session, parse_detach_keys)
    from rootless.engine.container_settings import settings_read
    from rootless.engine.containers import container_dir, container_lookup, container_row
    from rootless.engine.lifecycle import connect_monitor
    from rootless.errors import RootlessError

    keys = detach_keys if detach_keys is not None else DEFAULT_DETACH_KEYS
    parse_detach_keys(keys)
    store = get_store(ctx)
    record = container_lookup(store, container)
    row = container_row(store, record.id)
    if row is None or not row.running:
        raise RootlessError("You cannot attach to a stopped container, start it first")
    if row.state == "paused":
        raise RootlessError("You cannot attach to a paused container, unpause it first")
    settings = settings_read(container_dir(store, record.id))
    stdin = settings.open_stdin and not no_stdin
    sock = connect_monitor(store, record.id, {"stdin": stdin, "stdout": True,
                                              "stderr": True})
    if sock is None:
        raise RootlessError("You cannot attach to a stopped container, start it first")
    code = attach_session(sock, stdin, settings.tty, sig_proxy, keys)
    return 0 if code is DETACHED else code


VERBS = {"start": start, "stop": stop, "restart": restart, "kill": kill, "pause": pause,
         "unpause": unpause, "wait": wait, "attach": attach}


def register(root: typer.Typer, group: typer.Typer) -> None:
    """Each verb at the top level and under `container`: one function, two names."""
    for name, function in VERBS.items():
        help_text = (function.__doc__ or "").strip().splitlines()[0]
        root.command(name, help=help_text)(function)
        group.command(name, help=help_text)(function)
