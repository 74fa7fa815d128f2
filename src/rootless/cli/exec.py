"""`rootless exec` (and `rootless container exec`), parsed without typer.

exec is measured against podman's like run (scripts/bench: `exec CONTAINER true`), and
importing typer and click alone takes ~45 ms; so, as cli/run.py does for run, exec's flags
are data here, read the way docker's are (`-it`, `-e K=V`, `--env=K=V`; options stop at
CONTAINER, everything after it is the command, untouched), and cli/main.py calls
exec_main before any typer import. The typer app only lists exec in `rootless --help`.
"""

from __future__ import annotations

from rootless.cli.flags import Flag, by_name, parse_options
from rootless.errors import UsageError

FLAGS = (
    Flag(("-d", "--detach"), "detach", "bool", "Detached mode: run the command in the "
         "background"),
    Flag(("--detach-keys",), "detach_keys", "value",
         "Keys that detach from the command (default ctrl-p,ctrl-q)", "KEYS"),
    Flag(("-e", "--env"), "env", "list", "Set an environment variable", "K=V"),
    Flag(("--env-file",), "env_files", "list", "Read environment variables from a file",
         "FILE"),
    Flag(("-i", "--interactive"), "interactive", "bool", "Keep stdin open"),
    Flag(("--privileged",), "privileged", "bool",
         "Give the command every capability (the container's seccomp filter stays)"),
    Flag(("-t", "--tty"), "tty", "bool", "Allocate a pseudo-TTY"),
    Flag(("-u", "--user"), "user", "value", "User: NAME|UID[:GROUP|GID]", "USER"),
    Flag(("-w", "--workdir"), "workdir", "value", "Working directory in the container",
         "DIR"),
)
_BY_NAME = by_name(FLAGS)

HELP_SUMMARY = "Execute a command in a running container."


def usage(command: str = "exec") -> str:
    lines = [f"Usage: rootless {command} [OPTIONS] CONTAINER COMMAND [ARG...]", "",
             HELP_SUMMARY, "", "Options:"]
    for flag in FLAGS:
        names = ", ".join(flag.names) + (f" {flag.metavar}" if flag.metavar else "")
        lines.append(f"  {names:<28} {flag.help}")
    lines.append(f"  {'--help':<28} Show this message and exit.")
    return "\n".join(lines)


def parse(argv: list[str]) -> dict:
    """Docker's grammar: flags, CONTAINER, then the command, untouched."""
    values, i = parse_options(argv, FLAGS, _BY_NAME, "exec")
    if values.get("help"):
        return values
    if len(argv) - i < 2:
        raise UsageError('"rootless exec" requires at least 2 arguments: CONTAINER COMMAND '
                         "(see: rootless exec --help)")
    values["container"], values["command"] = argv[i], argv[i + 1:]
    return values


def exec_main(argv: list[str], root: str | None, debug: bool) -> int:
    import gc
    import os

    # no collection while the modules load and the process starts (~2 ms of ~30: there
    # is no cyclic garbage to find yet); back on before a session that may last hours
    gc.disable()
    values = parse(argv)
    if values.get("help"):
        print(usage())
        return 0
    detach, tty = bool(values["detach"]), bool(values["tty"])
    interactive = bool(values["interactive"]) and not detach  # docker: -d leaves stdin
    if tty and interactive and not os.isatty(0):
        raise UsageError("the input device is not a TTY (drop -t, or run from a terminal)")
    keys = b""
    if values["detach_keys"] is not None or (tty and interactive):
        from rootless.engine.attach_client import DEFAULT_DETACH_KEYS, parse_detach_keys

        keys = parse_detach_keys(DEFAULT_DETACH_KEYS if values["detach_keys"] is None
                                 else values["detach_keys"])
    from rootless.engine.containers import container_lookup
    from rootless.engine.exec import exec_start
    from rootless.runtime.terminal import winsize_of
    from rootless.runtime.process import StdioOptions
    from rootless.store import Store

    store = Store.open(root)
    record = container_lookup(store, values["container"])
    stdio = StdioOptions(stdin=interactive, terminal=tty, detached=detach,
                         winsize=winsize_of(0) if tty and not detach else None)

    def start():
        return exec_start(store, record.id, values["command"], env=tuple(values["env"]),
                          user=values["user"], workdir=values["workdir"],
                          privileged=bool(values["privileged"]), stdio=stdio,
                          env_files=tuple(values["env_files"]), debug=debug)

    if detach:
        start()
        return 0
    return _attached(start, stdio, keys)


def _attached(start, stdio, keys: bytes) -> int:
    """Forward our signals to the command (it sits in a session of its own), pump its
    streams, and return its exit code; 0 if the user detached (-it, ctrl-p ctrl-q)."""
    from rootless.runtime.attach import SignalForwarder, pump_terminal, wait_foreground
    from rootless.runtime.process import wait_exit_code

    forwarder = SignalForwarder()
    started = start()
    forwarder.target(started.pid)
    import gc

    gc.enable()
    if started.console_fd is None:
        return wait_foreground(started, stdio.stdin)
    if pump_terminal(started.console_fd, stdio.stdin, keys):
        from rootless.engine.exec import exec_terminal_keep

        exec_terminal_keep(started.console_fd)
        return 0
    return wait_exit_code(started.pid)
