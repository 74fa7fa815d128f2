"""`rootless container inspect` and the top-level `rootless inspect`: their options; the
bodies are cli/inspect_show.py's (which cli/hot.py reaches without typer)."""

from __future__ import annotations

from typing import List, Optional

import typer


def container_inspect(ctx: typer.Context,
                      containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
                      format: str = typer.Option("", "--format", "-f",
                                                 help="A Go template, printed once per "
                                                      "container, or `json`."),
                      size: bool = typer.Option(False, "-s", "--size",
                                                help="Display total file sizes.")) -> int:
    """Show details of containers, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.cli.inspect_show import container_inspect_print

    return container_inspect_print(lambda: get_store(ctx), containers, format, size)


def inspect(ctx: typer.Context,
            names: List[str] = typer.Argument(..., metavar="NAME|ID..."),
            type: Optional[str] = typer.Option(None, "--type",
                                               help="Only look for this type of object: "
                                                    "container or image."),
            format: str = typer.Option("", "--format", "-f",
                                       help="A Go template, printed once per object, "
                                            "or `json`."),
            size: bool = typer.Option(False, "-s", "--size",
                                      help="Display total file sizes if the type is "
                                           "container.")) -> int:
    """Show details of containers or images, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.cli.inspect_show import inspect_print

    return inspect_print(lambda: get_store(ctx), names, type, format, size)
