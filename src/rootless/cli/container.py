"""`rootless container ...` (ls, rm, inspect; run is cli/run.py, the body of ls is
cli/ps.py) and the docker shortcuts `rootless ps|rm`."""

from __future__ import annotations

from typing import List

import typer

app = typer.Typer(name="container", help="Manage containers.", no_args_is_help=True,
                  add_completion=False)


def ps(ctx: typer.Context,
       all: bool = typer.Option(False, "-a", "--all", help="Show stopped containers too."),
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show ids."),
       size: bool = typer.Option(False, "-s", "--size", help="Show sizes."),
       last: int = typer.Option(-1, "-n", "--last", help="Show the N last created "
                                "containers (all states)."),
       latest: bool = typer.Option(False, "-l", "--latest",
                                   help="Show the latest created container (all states)."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output."),
       filter: List[str] = typer.Option(
           [], "-f", "--filter", metavar="KEY=VALUE",
           help="name=, id=, status=, exited=, label=KEY[=VALUE], ancestor=IMAGE, "
                "before=CONTAINER, since=CONTAINER, volume=, health="),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json` (one object per line).")
       ) -> None:
    from rootless.cli.common import get_store
    from rootless.cli.ps import ps_print

    ps_print(get_store(ctx), all, quiet, size, last, latest, no_trunc, filter, format)


def rm(ctx: typer.Context,
       containers: List[str] = typer.Argument(..., help="Container names or ids."),
       force: bool = typer.Option(False, "-f", "--force", help="Kill a running container."),
       volumes: bool = typer.Option(False, "-v", "--volumes",
                                    help="Remove the container's anonymous volumes too.")
       ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.lifecycle import containers_remove

    store = get_store(ctx)
    with store.lock():
        for ref in containers_remove(store, containers, force, volumes):
            print(ref)


def prune(ctx: typer.Context,
          force: bool = typer.Option(False, "-f", "--force",
                                     help="Do not prompt for confirmation."),
          filter: List[str] = typer.Option([], "--filter", metavar="FILTER",
                                           help="until=TIMESTAMP|DURATION, "
                                                "label=KEY[=VALUE], label!=KEY[=VALUE].")
          ) -> None:
    """Remove all stopped containers."""
    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.container_filters import PRUNE_FILTERS, containers_prune
    from rootless.engine.image_list import parse_filters

    parse_filters(filter, PRUNE_FILTERS)  # a bad filter fails before the question
    if not force and not views.confirm("WARNING! This will remove all stopped containers."):
        from rootless.errors import RootlessError

        raise RootlessError("container prune has been cancelled")
    report = containers_prune(get_store(ctx), filter)
    if report.deleted:
        print("Deleted Containers:")
        print("\n".join(report.deleted) + "\n")
    print(f"Total reclaimed space: {views.human_size(report.reclaimed, 4)}")


def rename(ctx: typer.Context,
           container: str = typer.Argument(..., metavar="CONTAINER"),
           new_name: str = typer.Argument(..., metavar="NEW_NAME")) -> None:
    """Rename a container."""
    from rootless.cli.common import get_store
    from rootless.engine.containers import container_rename

    store = get_store(ctx)
    with store.lock():
        container_rename(store, container, new_name)


def register(root: typer.Typer) -> None:
    """The `container` group and docker's top-level spellings ps, rm, inspect."""
    from rootless.cli import container_fs
    from rootless.cli.inspect import container_inspect, inspect

    container_fs.register(root, app)  # diff, export, commit
    from rootless.cli import cp

    cp.register(root, app)  # cp
    from rootless.cli import logs, stats

    logs.register(root, app)  # logs
    stats.register(root, app)  # top, stats, port
    app.command("ls", help="List containers.")(ps)
    app.command("ps", help="List containers.")(ps)
    app.command("list", help="List containers.", hidden=True)(ps)  # docker's aliases
    app.command("rm", help="Remove containers.")(rm)
    app.command("remove", help="Remove containers.", hidden=True)(rm)
    app.command("prune", help="Remove all stopped containers.")(prune)
    app.command("rename", help="Rename a container.")(rename)
    root.command("rename", help="Rename a container.")(rename)
    app.command("inspect", help="Show details of containers, as a JSON array.")(
        container_inspect)
    root.add_typer(app, name="container", help="Manage containers.")
    root.command("ps", help="List containers.")(ps)
    root.command("rm", help="Remove containers.")(rm)
    root.command("inspect", help="Show details of containers or images, as a JSON "
                 "array.")(inspect)
