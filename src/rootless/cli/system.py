"""`rootless system ...` and `rootless version`."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def version() -> None:
    import platform

    from rootless import __version__

    print(f"Version:      {__version__}")
    print(f"Python:       {platform.python_version()}")
    print(f"Kernel:       {platform.release()}")
    print(f"OS/Arch:      linux/{platform.machine()}")


@app.command("info", help="Show what this machine offers and what rootless chose.")
def info(ctx: typer.Context,
         format: str = typer.Option("", "--format", "-f",
                                    help="`json` for JSON, or a Go template.")) -> None:
    import json

    from rootless.cli.common import get_store
    from rootless.engine.info import system_info

    data = system_info(get_store(ctx))
    if format == "json":
        print(json.dumps(data, indent=2))
        return
    if format:
        from rootless.cli.template import render

        print(render(format, data))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key}:")
            for v in value:
                print(f"  - {v}")
        else:
            print(f"{key}: {value}")


@app.command("df", help="Show disk usage: images, containers, volumes, build cache.")
def df(ctx: typer.Context,
       verbose: bool = typer.Option(False, "-v", "--verbose",
                                    help="Show detailed information on space usage."),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json` (one object per line).")) -> None:
    import time

    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.disk_usage import disk_usage
    from rootless.errors import UsageError

    if verbose and format:
        raise UsageError("--format is not supported with -v/--verbose")
    usage = disk_usage(get_store(ctx))  # read-only, best effort: no lock to wait for
    lines = views.df_verbose(usage, time.time()) if verbose else None
    if lines is None:
        from rootless.cli.template import render_rows

        lines = render_rows(format or views.DF_TABLE, views.df_summary(usage),
                            views.DF_HEADERS)
    print("\n".join(lines))
