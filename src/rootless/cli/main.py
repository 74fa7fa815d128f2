"""The `rootless` console script: the run fast path, the read-only commands' (cli/hot.py),
else the typer app (cli/app.py).

Every failure ends here as Docker would end it: one line on stderr, exit 125 for the
engine's own errors, 126/127 when the command cannot run, else the container's code.
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Callable

FAST_COMMANDS = {("run",): "run", ("container", "run"): "run", ("create",): "create",
                 ("container", "create"): "create"}


def main() -> None:
    sys.exit(dispatch(sys.argv[1:]))


def dispatch(argv: list[str]) -> int:
    if any(a.startswith("--storage-opt") for a in argv):
        failed = guarded(lambda: apply_storage_options(argv))
        if failed:
            return failed
    parsed = split_global_options(argv)
    if parsed is not None:
        root, debug, rest = parsed
        for command, verb in FAST_COMMANDS.items():
            if tuple(rest[: len(command)]) == command:
                from rootless.cli.run import run_main

                args = rest[len(command):]
                return exit_now(guarded(lambda: run_main(args, root, debug, verb)))
        if rest[:1] == ["exec"] or rest[:2] == ["container", "exec"]:  # without typer
            from rootless.cli.exec import exec_main

            args = rest[2:] if rest[0] == "container" else rest[1:]
            return exit_now(guarded(lambda: exec_main(args, root, debug)))
        from rootless.cli.hot import hot_command  # ps, images, inspect: without typer

        body = hot_command(rest, root)
        if body is not None:
            return exit_now(guarded(body))
    from rootless.cli.app import invoke

    argv = spell_out_bare_flags(argv)
    return guarded(lambda: invoke(argv))


# Go-style boolean flags that also take `=BOOL` (podman's --tls-verify, docker's
# history -H), per command: what a bare one becomes.
BARE_FLAGS = {
    **{command: {"--tls-verify": "--tls-verify=true"}
       for command in ("pull", "push", "login", "search")},
    "history": {"-H": "--human=true", "--human": "--human=true"},
}


def spell_out_bare_flags(argv: list[str]) -> list[str]:
    """click gives an option with an optional value the next word (the image name) as
    its value; Go's flags never do. So a bare one is spelled out before parsing, for
    the commands that have one, up to `--`."""
    parsed = split_global_options(argv)
    rest = parsed[2] if parsed else []
    command = rest[1:2] if rest[:1] == ["image"] else rest[:1]
    flags = BARE_FLAGS.get(command[0]) if command else None
    if not flags:
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [flags.get(a, a) if i < end else a for i, a in enumerate(argv)]


def split_global_options(argv: list[str]) -> tuple[str | None, bool, list[str]] | None:
    """`--root DIR`, `--root=DIR` and `--debug` before the command (and `--storage-opt
    K=V`, applied by apply_storage_options); None if anything else comes first (typer
    then parses it and says what is wrong)."""
    import os

    root, debug, i = os.environ.get("ROOTLESS_ROOT") or None, False, 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--debug":
            debug = True
        elif arg in ("--root", "--storage-opt") and i + 1 < len(argv):
            root, i = (argv[i + 1] if arg == "--root" else root), i + 1
        elif arg.startswith("--root="):
            root = arg.split("=", 1)[1]
        elif not arg.startswith("--storage-opt="):
            return None
        i += 1
    return root, debug, argv[i:]


def apply_storage_options(argv: list[str]) -> int:
    """The global `--storage-opt K=V` options (before the command), checked and put in
    the environment for this command and the processes it starts (store/options.py)."""
    from rootless.store.options import add_storage_option

    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in ("--root", "--storage-opt") and i + 1 < len(argv):
            if arg == "--storage-opt":
                add_storage_option(argv[i + 1])
            i += 1
        elif arg.startswith("--storage-opt="):
            add_storage_option(arg.split("=", 1)[1])
        elif arg != "--debug" and not arg.startswith("--root="):
            break
        i += 1
    return 0


def guarded(body: Callable[[], int]) -> int:
    """Every failure as one line; a bug too (ROOTLESS_DEBUG=1 shows its traceback)."""
    import os

    from rootless.errors import EXIT_ENGINE, RootlessError

    try:
        return body()
    except RootlessError as e:
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        error(f"{(e.strerror or str(e)).lower()}{where}")
        return EXIT_ENGINE
    except Exception as e:
        if os.environ.get("ROOTLESS_DEBUG"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (ROOTLESS_DEBUG=1 shows where; "
              "please report it)")
        return EXIT_ENGINE


def exit_now(code: int) -> int:
    """Exit without the interpreter's teardown, which frees every module's objects: ~6 ms,
    a sixth of an `exec`, measured against podman's. Only stdio holds anything to keep."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os._exit(code)


def error(message: str) -> None:
    """Messages quote image names, paths and manifests: never an escape sequence raw."""
    from rootless.cli.printable import escape_controls

    print(f"Error: {escape_controls(message, keep=chr(10))}", file=sys.stderr)
