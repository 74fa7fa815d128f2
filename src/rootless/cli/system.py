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
         format: str = typer.Option("", "--format", "-f", help="`json` for JSON.")) -> None:
    import json

    from rootless.cli.common import get_store
    from rootless.engine.info import system_info

    data = system_info(get_store(ctx))
    if format == "json":
        print(json.dumps(data, indent=2))
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
