"""The `rootless` typer app; each command group lives in its own module.

`rootless run` normally never gets here (cli/main.py takes a faster path); command
modules import the engine inside their functions, so `rootless --help` stays quick.
"""

from __future__ import annotations

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
    storage_opt: Optional[list[str]] = typer.Option(
        None, "--storage-opt", metavar="KEY=VALUE",
        help="Storage option, podman's name (ignore_chown_errors=true); also "
             "ROOTLESS_STORAGE_OPT."),
) -> None:
    # cli/main.py applied them before parsing (the fast paths never come here)
    ctx.obj = GlobalOptions(root=root, debug=debug)


def _register() -> None:
    from rootless.cli import container, image, network, run, system, volume

    app.add_typer(image.app, name="image", help="Manage images.")
    app.add_typer(volume.app, name="volume", help="Manage volumes.")
    app.add_typer(network.app, name="network", help="Manage networks.")
    app.add_typer(system.app, name="system", help="Manage rootless itself.")
    app.command("run", help=run.HELP_SUMMARY + " (see: rootless run --help)",
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                  "help_option_names": []})(run_passthrough)
    app.command("version", help="Show the version.")(system.version)
    app.command("info", help=system.INFO_HELP)(system.info)
    container.register(app)
    container.app.command("run", help=run.HELP_SUMMARY + " (see: rootless run --help)",
                          context_settings={"ignore_unknown_options": True,
                                            "allow_extra_args": True,
                                            "help_option_names": []})(run_passthrough)
    for verb in ("create",):
        passthrough = _passthrough(verb)
        context = {"ignore_unknown_options": True, "allow_extra_args": True,
                   "help_option_names": []}
        app.command(verb, help=run.CREATE_SUMMARY + f" (see: rootless {verb} --help)",
                    context_settings=context)(passthrough)
        container.app.command(verb, help=run.CREATE_SUMMARY +
                              f" (see: rootless {verb} --help)",
                              context_settings=context)(passthrough)
    from rootless.cli import lifecycle

    lifecycle.register(app, container.app)
    from rootless.cli.exec import HELP_SUMMARY as EXEC_SUMMARY

    for group in (app, container.app):  # parsed by cli/exec.py; here for --help and paths
        group.command("exec", help=EXEC_SUMMARY + " (see: rootless exec --help)",
                      context_settings={"ignore_unknown_options": True,
                                        "allow_extra_args": True,
                                        "help_option_names": []})(exec_passthrough)
    image.register_shortcuts(app)
    from rootless.cli import registry

    registry.register(app, image.app)
    from rootless.cli import build

    build.register(app, image.app)
    from rootless.cli import bundle

    app.command("bundle", help=bundle.HELP)(bundle.bundle)


def _passthrough(verb: str):
    def passthrough(ctx: typer.Context) -> int:
        from rootless.cli.common import global_options
        from rootless.cli.main import guarded
        from rootless.cli.run import run_main

        opts = global_options(ctx)
        return guarded(lambda: run_main(ctx.args, str(opts.root) if opts.root else None,
                                        opts.debug, verb))

    return passthrough


def exec_passthrough(ctx: typer.Context) -> int:
    from rootless.cli.common import global_options
    from rootless.cli.exec import exec_main
    from rootless.cli.main import guarded

    opts = global_options(ctx)
    return guarded(lambda: exec_main(ctx.args, str(opts.root) if opts.root else None,
                                     opts.debug))


def run_passthrough(ctx: typer.Context) -> int:
    from rootless.cli.common import global_options
    from rootless.cli.run import run_main

    from rootless.cli.main import guarded

    opts = global_options(ctx)
    return guarded(lambda: run_main(ctx.args, str(opts.root) if opts.root else None,
                                    opts.debug))


def invoke(argv: list[str]) -> int:
    """Run the typer app. As docker's CLI: a bad flag exits 125, any other failure of a
    command that runs no container exits 1."""
    import click

    from rootless.cli.main import error
    from rootless.errors import EXIT_ENGINE, RootlessError, UsageError

    _register()
    try:
        result = app(args=argv, prog_name="rootless", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `rootless`, `rootless image`: help
            print(e.format_message())
            return 0
        error(_usage_message(e))
        return EXIT_ENGINE
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        return 130
    except UsageError as e:
        error(str(e))
        return EXIT_ENGINE
    except RootlessError as e:
        error(str(e))
        return 1


def _usage_message(e) -> str:
    message = e.format_message()
    command = e.ctx.command_path if e.ctx else "rootless"
    return f"{message[:1].lower()}{message[1:]} (see: {command} --help)"
