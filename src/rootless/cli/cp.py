"""`rootless cp` and `rootless container cp`: files between a container and the host
(engine/container_cp.py). As docker's CLI, every failure exits 1."""

from __future__ import annotations

import typer

HELP = ("Copy files/folders between a container and the local filesystem. "
        "CONTAINER:SRC_PATH DEST_PATH|- or SRC_PATH|- CONTAINER:DEST_PATH; '-' is a tar "
        "stream on stdin or stdout.")


def cp(ctx: typer.Context,
       source: str = typer.Argument(..., metavar="SRC", help="CONTAINER:SRC_PATH, a local "
                                    "path, or - (a tar on stdin)."),
       dest: str = typer.Argument(..., metavar="DEST", help="CONTAINER:DEST_PATH, a local "
                                  "path, or - (a tar on stdout)."),
       archive: bool = typer.Option(False, "-a", "--archive",
                                    help="Archive mode (copy all uid/gid information)."),
       follow_link: bool = typer.Option(False, "-L", "--follow-link",
                                        help="Always follow symbol link in SRC_PATH."),
       quiet: bool = typer.Option(False, "-q", "--quiet",
                                  help="Suppress progress output during copy. Progress "
                                  "output is automatically suppressed if no terminal is "
                                  "attached."),
       ) -> None:
    import sys

    from rootless.cli.common import get_store
    from rootless.engine.container_cp import container_cp

    result = container_cp(get_store(ctx), source, dest, archive, follow_link)
    if result is not None and not quiet and sys.stdout.isatty():
        from rootless.cli.image_views import human_size
        from rootless.cli.printable import escape_controls

        print(escape_controls(f"Successfully copied {human_size(result.size, 3)} to "
                              f"{result.dest}"), file=sys.stderr)


def register(root: typer.Typer, group: typer.Typer) -> None:
    for app in (root, group):
        app.command("cp", help=HELP)(cp)
