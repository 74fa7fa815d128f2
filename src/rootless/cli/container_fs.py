"""`rootless diff|export|commit` (and under `container`): a stopped container's
filesystem (engine/container_fs.py, engine/commit.py)."""

from __future__ import annotations

from typing import List, Optional

import typer


def diff(ctx: typer.Context,
         container: str = typer.Argument(..., help="Container name or id.")) -> None:
    from rootless.cli.common import get_store
    from rootless.cli.printable import escape_controls
    from rootless.engine.container_fs import container_diff

    for line in container_diff(get_store(ctx), container):
        print(escape_controls(line))


def export(ctx: typer.Context,
           container: str = typer.Argument(..., help="Container name or id."),
           output: Optional[str] = typer.Option(None, "-o", "--output", metavar="FILE",
                                                help="Write to a file, not stdout.")
           ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.container_fs import container_export

    container_export(get_store(ctx), container, output)


def commit(ctx: typer.Context,
           container: str = typer.Argument(..., help="Container name or id."),
           repository: Optional[str] = typer.Argument(None, metavar="[REPOSITORY[:TAG]]"),
           author: str = typer.Option("", "-a", "--author",
                                      help='Author (e.g., "Jane <jane@example.com>").'),
           message: str = typer.Option("", "-m", "--message", help="Commit message."),
           change: List[str] = typer.Option([], "-c", "--change",
                                            help="Apply a Dockerfile instruction "
                                            "(CMD, ENV, ...) to the image."),
           pause: bool = typer.Option(True, "-p", "--pause", help="Pause the container "
                                      "while committing (a stopped one needs none)."),
           ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.commit import container_commit

    print(container_commit(get_store(ctx), container, repository, author, message,
                           list(change), pause))


def register(root: typer.Typer, group: typer.Typer) -> None:
    for app in (root, group):
        app.command("diff", help="Show the changes to a container's filesystem.")(diff)
        app.command("export", help="Write a container's filesystem as a tar.")(export)
        app.command("commit", help="Make a new image from a container's changes.")(commit)
