"""The hot read-only commands without typer: `ps` (`container ls|ps|list`), `images`
(`image ls|list`), `image inspect`, `inspect` and `container inspect`.

Scripts and shell prompts run these all the time, and importing typer and click costs
~45 ms, more than the work itself (podman answers them in ~25 ms). So cli/main.py
offers them here first. The option tables below are the typer commands' own (a unit
test compares them with the click commands typer builds, option by option), parsed
with click's rules: options anywhere among the arguments, `--opt=value`, `-abc` and
`-n5` clusters, the last value of an option wins, `--` ends the options. Whatever this
parser does not take as it is (--help, an unknown option, a value click would refuse,
a missing or extra argument) goes to typer untouched, which prints the same help and
the same errors as ever. The bodies are the ones the typer commands call (cli/ps.py,
cli/image_views.py, cli/inspect_show.py), with the exit codes cli/app.py's invoke
gives: 125 for bad input, 1 for any other failure of a command that runs nothing.

Nothing is imported at module level: every command but `run` passes through here.
"""

from __future__ import annotations

FLAG, TEXT, INT, LIST = "flag", "text", "int", "list"


def _options(**params: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """all=("-a --all", FLAG) -> {"-a": ("all", FLAG), "--all": ("all", FLAG)}."""
    return {name: (param, kind) for param, (names, kind) in params.items()
            for name in names.split()}


# (options, defaults, name of the positional parameter, fewest, most positionals)
_PS = (_options(all=("-a --all", FLAG), quiet=("-q --quiet", FLAG), size=("-s --size", FLAG),
                last=("-n --last", INT), latest=("-l --latest", FLAG),
                no_trunc=("--no-trunc", FLAG), filter=("-f --filter", LIST),
                format=("--format", TEXT)),
       {"all": False, "quiet": False, "size": False, "last": -1, "latest": False,
        "no_trunc": False, "filter": [], "format": ""}, None, 0, 0)
_IMAGES = (_options(all=("-a --all", FLAG), quiet=("-q --quiet", FLAG),
                    no_trunc=("--no-trunc", FLAG), digests=("--digests", FLAG),
                    filter=("-f --filter", LIST), format=("--format", TEXT)),
           {"all": False, "quiet": False, "no_trunc": False, "digests": False, "filter": [],
            "format": ""}, "reference", 0, 1)
_IMAGE_INSPECT = (_options(format=("--format -f", TEXT)), {"format": ""}, "images", 1, None)
_CONTAINER_INSPECT = (_options(format=("--format -f", TEXT), size=("-s --size", FLAG)),
                      {"format": "", "size": False}, "containers", 1, None)
_INSPECT = (_options(type=("--type", TEXT), format=("--format -f", TEXT),
                     size=("-s --size", FLAG)),
            {"type": None, "format": "", "size": False}, "names", 1, None)

# each spelling -> (its typer command's function, as cli/app.py registers it; its table)
COMMANDS = {
    ("ps",): ("ps", _PS), ("container", "ls"): ("ps", _PS),
    ("container", "ps"): ("ps", _PS), ("container", "list"): ("ps", _PS),
    ("images",): ("images", _IMAGES), ("image", "ls"): ("images", _IMAGES),
    ("image", "list"): ("images", _IMAGES),
    ("image", "inspect"): ("image_inspect", _IMAGE_INSPECT),
    ("container", "inspect"): ("container_inspect", _CONTAINER_INSPECT),
    ("inspect",): ("inspect", _INSPECT),
}


def hot_command(argv: list[str], root: str | None):
    """A function of no arguments that runs the command `argv` names (after the global
    options) and returns its exit code; None when `argv` is no hot command or not one
    this parser takes as it is."""
    for length in (1, 2):
        found = COMMANDS.get(tuple(argv[:length]))
        if found:
            break
    else:
        return None
    if root == "":
        return None  # typer reads `--root ""` as the current directory
    name, table = found
    params = parse(argv[length:], table)
    if params is None:
        return None
    return lambda: _exit_code(_BODIES[name], root, params)


def parse(args: list[str], table: tuple) -> dict | None:
    """The parameters click would give the command, or None where click would fail or
    print help (typer then does exactly that)."""
    options, defaults, positional, fewest, most = table
    params = {k: list(v) if isinstance(v, list) else v for k, v in defaults.items()}
    rest: list[str] = []
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg == "--":
            rest += args
            break
        if arg[:2] == "--":
            name, eq, value = arg.partition("=")
            if not _take(options.get(name), value if eq else None, args, params):
                return None
        elif arg[:1] == "-" and len(arg) > 1:
            if not _take_cluster(arg, args, options, params):
                return None
        else:
            rest.append(arg)
    if len(rest) < fewest or most is not None and len(rest) > most:
        return None
    if positional:
        params[positional] = rest if most is None else (rest[0] if rest else None)
    return params


def _take_cluster(arg: str, args: list[str], options: dict, params: dict) -> bool:
    """`-aq`, `-n5`, `-fname=x`: flags in turn; an option that takes a value takes the
    rest of the word, else the next word (click's _match_short_opt)."""
    for i, ch in enumerate(arg[1:], start=2):
        option = options.get("-" + ch)
        if option is None:
            return False
        if option[1] != FLAG:
            return _take(option, arg[i:] if i < len(arg) else None, args, params)
        _take(option, None, args, params)
    return True


def _take(option: tuple[str, str] | None, value: str | None, args: list[str],
          params: dict) -> bool:
    """Store one option's value (`value` given with it, else the next word); False
    where click would refuse it."""
    if option is None:
        return False
    param, kind = option
    if kind == FLAG:
        if value is not None:
            return False  # "--all=x": click says the option takes no value
        params[param] = True
        return True
    if value is None:
        if not args:
            return False
        value = args.pop(0)
    if kind == INT:
        try:
            value = int(value)
        except ValueError:
            return False
    if kind == LIST:
        params[param].append(value)
    else:
        params[param] = value
    return True


def _exit_code(body, root: str | None, params: dict) -> int:
    """Run `body` as cli/app.py's invoke runs a typer command (cli/main.py's guarded
    handles the rest): bad input 125, any other error of ours 1. The stores it opened
    are closed here: cli/main.py then exits without the interpreter's teardown (~4 ms
    of these commands), so nothing else would release them."""
    from rootless.cli.main import error
    from rootless.errors import RootlessError, UsageError

    try:
        result = body(root, params)
    except UsageError:
        raise
    except RootlessError as e:
        error(str(e))
        return 1
    finally:
        while _opened:
            _opened.pop().close(exiting=True)
    return result if isinstance(result, int) else 0


_opened: list = []  # the stores the running command opened


def _store(root: str | None):
    from rootless.store import Store

    store = Store.open(root)
    _opened.append(store)
    return store


def _ps(root: str | None, p: dict) -> None:
    from rootless.cli.ps import ps_print

    ps_print(_store(root), p["all"], p["quiet"], p["size"], p["last"], p["latest"],
             p["no_trunc"], p["filter"], p["format"])


def _images(root: str | None, p: dict) -> None:
    from rootless.cli.image_views import images_print

    images_print(_store(root), p["reference"], p["quiet"], p["no_trunc"], p["digests"],
                 p["filter"], p["format"], p["all"])


def _image_inspect(root: str | None, p: dict) -> None:
    from rootless.cli.inspect_show import image_inspect_print

    image_inspect_print(lambda: _store(root), p["images"], p["format"])


def _container_inspect(root: str | None, p: dict) -> int:
    from rootless.cli.inspect_show import container_inspect_print

    return container_inspect_print(lambda: _store(root), p["containers"], p["format"],
                                   p["size"])


def _inspect(root: str | None, p: dict) -> int:
    from rootless.cli.inspect_show import inspect_print

    return inspect_print(lambda: _store(root), p["names"], p["type"], p["format"], p["size"])


_BODIES = {"ps": _ps, "images": _images, "image_inspect": _image_inspect,
           "container_inspect": _container_inspect, "inspect": _inspect}
