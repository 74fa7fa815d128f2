"""Docker's flag grammar for the commands parsed without typer (run, create, exec):
`--name=V`, `--name V`, combined short flags `-it`, `-eK=V`; bool flags take `=true` or
`=false`. Each command keeps its own table of Flags; this is the one parser of them.

Flag is a @record (rootless/records.py): neither typing.NamedTuple nor
collections.namedtuple, whose imports are on the path of `run` and `exec`."""

from __future__ import annotations

from rootless.errors import UsageError
from rootless.records import record


@record
class Flag:
    names: tuple[str, ...]
    dest: str
    kind: str  # "bool" | "value" | "list"
    help: str
    metavar: str = ""


def by_name(flags) -> dict:
    return {name: flag for flag in flags for name in flag.names}


def parse_options(argv: list[str], flags, table: dict, command: str) -> tuple[dict, int]:
    """The flags before the first operand (or `--`): (values by dest, the operand's
    index); values["help"] is True, and parsing stops, at `--help`."""
    values: dict = {f.dest: ([] if f.kind == "list" else None) for f in flags}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return values, i + 1
        if arg == "--help":
            values["help"] = True
            return values, i
        if not arg.startswith("-") or arg == "-":
            break
        i = parse_flag(argv, i, values, table, command)
    return values, i


def parse_flag(argv: list[str], i: int, values: dict, table: dict, command: str) -> int:
    """Read the flag at argv[i] (and its value) into `values`; the next index."""
    arg = argv[i]
    if arg.startswith("--"):
        name, eq, inline = arg.partition("=")
        return _take(_flag(table, name, command), argv, i, values, inline if eq else None)
    for pos in range(1, len(arg)):  # -it, -e K=V, -eK=V: the first with a value ends it
        flag = _flag(table, "-" + arg[pos], command)
        if flag.kind != "bool":
            return _take(flag, argv, i, values, arg[pos + 1:] or None)
        values[flag.dest] = True
    return i + 1


def _flag(table: dict, name: str, command: str):
    flag = table.get(name)
    if flag is None:
        raise UsageError(f"unknown flag: {name} (see: rootless {command} --help)")
    return flag


def _take(flag, argv: list[str], i: int, values: dict, inline: str | None) -> int:
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
