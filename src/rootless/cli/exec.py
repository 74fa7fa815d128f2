"""`rootless exec` (and `rootless container exec`), parsed without typer.

exec is measured against podman's like run (scripts/bench: `exec CONTAINER true`), and
importing typer and click alone takes ~45 ms; so, as cli/run.py does for run, exec's flags
are data here, read the way docker's are (`-it`, `-e K=V`, `--env=K=V`; options stop at
CONTAINER, everything after it is the command, untouched), and cli/main.py calls
exec_main before any typer import. The typer app only lists exec in `rootless --help`.
"""

from __future__ import annotations

from collections import namedtuple

from rootless.errors import UsageError

# cli/run.py's Flag (names, dest, kind: "bool" | "value" | "list", help, metavar), not
# imported from there (~1 ms of its FLAGS); a plain namedtuple: typing.NamedTuple under
# `from __future__ import annotations` compiles each field's annotation (typing's
# ForwardRef), ~0.1 ms a field
Flag = namedtuple("Flag", "names dest kind help metavar", defaults=("",))

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
_BY_NAME = {name: flag for flag in FLAGS for name in flag.names}

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
    values: dict = {f.dest: ([] if f.kind == "list" else None) for f in FLAGS}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg == "--help":
            values["help"] = True
            return values
        if not arg.startswith("-") or arg == "-":
            break
        i = _parse_one(argv, i, values)
    if len(argv) - i < 2:
        raise UsageError('"rootless exec" requires at least 2 arguments: CONTAINER COMMAND '
                         "(see: rootless exec --help)")
    values["container"], values["command"] = argv[i], argv[i + 1:]
    return values


def _parse_one(argv: list[str], i: int, values: dict) -> int:
    arg = argv[i]
    if arg.startswith("--"):
        name, eq, inline = arg.partition("=")
        return _take(_flag(name), argv, i, values, inline if eq else None)
    for pos in range(1, len(arg)):  # -it, -e K=V, -eK=V: the first with a value ends it
        flag = _flag("-" + arg[pos])
        if flag.kind != "bool":
            return _take(flag, argv, i, values, arg[pos + 1:] or None)
        values[flag.dest] = True
    return i + 1


def _flag(name: str) -> Flag:
    flag = _BY_NAME.get(name)
    if flag is None:
        raise UsageError(f"unknown flag: {name} (see: rootless exec --help)")
    return flag


def _take(flag: Flag, argv: list[str], i: int, values: dict, inline: str | None) -> int:
    if flag.kind == "bool":
        if inline is not None and inline not in ("true", "false"):
            raise UsageError(f"invalid value {inline!r} for {flag.names[-1]}")
        values[flag.dest] = inline != "false"
        return i + 1
    if inline is None:
        if i + 1 >= len(argv):
            raise UsageError(f"flag needs an argument: {flag.names[-1]}")
        inline, i = argv[i + 1], i + 1
    if flag.kind == "list":
        values[flag.dest].append(inline)
    else:
        values[flag.dest] = inline
    return i + 1


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
