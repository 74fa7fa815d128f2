"""The `rootless` command: a typer app; each command group lives in its own module.

Command modules import the engine inside their functions: every module imported here is
paid for by every `rootless run`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from rootless.cli.common import GlobalOptions

app = typer.Typer(
    name="rootless",
    help="Run OCI containers as an ordinary user: no daemon, no setuid helper, no root.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    root: Optional[Path] = typer.Option(
        None, "--root", envvar="ROOTLESS_ROOT",
        help="Store directory (default: $XDG_DATA_HOME/rootless)."),
    debug: bool = typer.Option(False, "--debug", help="Print the runtime's plan."),
) -> None:
    ctx.obj = GlobalOptions(root=root, debug=debug)


def _register() -> None:
    from rootless.cli import image, run, system

    app.add_typer(image.app, name="image", help="Manage images.")
    app.add_typer(system.app, name="system", help="Manage rootless itself.")
    app.command("run", context_settings=run.CONTEXT,
                help="Run a command in a new container.")(run.run)
    app.command("version", help="Show the version.")(system.version)
    image.register_shortcuts(app)


def main() -> None:
    _register()
    sys.exit(invoke(sys.argv[1:]))


def invoke(argv: list[str]) -> int:
    """Run the CLI and turn every failure into Docker's exit codes and one line."""
    import click

    from rootless.errors import EXIT_ENGINE, RootlessError

    try:
        result = app(args=argv, prog_name="rootless", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.UsageError as e:
        _error(_usage_message(e))
        return EXIT_ENGINE
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        return 130
    except RootlessError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _usage_message(e) -> str:
    message = e.format_message()
    command = e.ctx.command_path if e.ctx else "rootless"
    return f"{message[:1].lower()}{message[1:]} (see: {command} --help)"


def _error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
