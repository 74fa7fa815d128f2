"""`rootless volume create|ls|inspect|rm|prune`: parse, call engine/volumes.py, render."""

from __future__ import annotations

from typing import List, Optional

import typer

app = typer.Typer(name="volume", help="Manage volumes.", no_args_is_help=True,
                  add_completion=False)

_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
            "Labels": "LABELS", "Scope": "SCOPE", "CreatedAt": "CREATED",
            "Options": "OPTIONS"}
PRUNE_WARNING = "WARNING! This will remove anonymous local volumes not used by at least " \
                "one container."
PRUNE_ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one " \
                    "container."


@app.command("create")
def create(ctx: typer.Context,
           name: Optional[str] = typer.Argument(None, metavar="[VOLUME]"),
           driver: str = typer.Option("local", "-d", "--driver", help="Volume driver."),
           label: List[str] = typer.Option([], "--label", metavar="K=V",
                                           help="Set a label on the volume."),
           opt: List[str] = typer.Option([], "-o", "--opt", metavar="K=V",
                                         help="Driver options (type=tmpfs, o=size=64m)."),
           ) -> None:
    """Create a volume."""
    from rootless.cli.common import get_store
    from rootless.engine.volumes import volume_create

    print(volume_create(get_store(ctx), name, tuple(label), driver, tuple(opt)))


def _entry(store, row) -> dict[str, str]:
    from rootless.engine.volumes import volume_json

    obj = volume_json(store, row)
    return {"Driver": obj["Driver"], "Name": obj["Name"], "Mountpoint": obj["Mountpoint"],
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(row.labels.items())),
            "Scope": obj["Scope"], "CreatedAt": obj["CreatedAt"],
            "Options": ",".join(f"{k}={v}" for k, v in sorted(row.options.items()))}


@app.command("ls")
def ls(ctx: typer.Context,
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show names."),
       filter: List[str] = typer.Option([], "-f", "--filter", metavar="KEY=VALUE",
                                        help="name=, label=KEY[=VALUE], dangling=true|false, "
                                             "driver=local"),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json`.")) -> None:
    """List volumes."""
    from rootless.cli.common import get_store
    from rootless.engine.volumes import volumes_filtered

    store = get_store(ctx)
    rows = volumes_filtered(store, filter)
    if quiet:
        for row in rows:
            print(row.name)
        return
    from rootless.cli.image_views import print_rows

    entries = [_entry(store, row) for row in rows]
    print_rows(format or "table {{.Driver}}\t{{.Name}}", entries, _HEADERS)


@app.command("inspect")
def inspect(ctx: typer.Context,
            names: List[str] = typer.Argument(..., metavar="VOLUME..."),
            format: str = typer.Option("", "-f", "--format",
                                       help="A Go template, printed once per volume.")
            ) -> None:
    """Show details of volumes, as a JSON array."""
    import json

    from rootless.cli.common import get_store
    from rootless.engine.volumes import volumes_inspect

    if format:
        from rootless.cli.template import parse

        template = parse(format)
        for obj in volumes_inspect(get_store(ctx), names):
            print(template.execute(obj))
        return
    print(json.dumps(volumes_inspect(get_store(ctx), names), indent=4))


@app.command("rm")
def rm(ctx: typer.Context,
       names: List[str] = typer.Argument(..., metavar="VOLUME..."),
       force: bool = typer.Option(False, "-f", "--force",
                                  help="No error for a volume that does not exist.")) -> None:
    """Remove volumes (not one a container uses)."""
    from rootless.cli.common import get_store
    from rootless.engine.volumes import volumes_remove

    for name in volumes_remove(get_store(ctx), names, force):
        print(name)


app.command("list", hidden=True)(ls)  # docker's aliases of `volume ls|rm`
app.command("remove", hidden=True)(rm)


@app.command("prune")
def prune(ctx: typer.Context,
          all: bool = typer.Option(False, "-a", "--all",
                                   help="Named volumes too, not only anonymous ones."),
          force: bool = typer.Option(False, "-f", "--force",
                                     help="Do not prompt for confirmation."),
          filter: List[str] = typer.Option([], "--filter", metavar="FILTER",
                                           help="label=KEY[=VALUE], label!=KEY[=VALUE], "
                                                "all=true")) -> None:
    """Remove volumes no container uses."""
    from rootless.cli.common import get_store
    from rootless.cli.image_views import confirm, human_size
    from rootless.engine.image_list import parse_filters
    from rootless.engine.volumes import PRUNE_FILTERS, volumes_prune

    parse_filters(filter, PRUNE_FILTERS)  # a bad filter fails before the question
    if not force and not confirm(PRUNE_ALL_WARNING if all else PRUNE_WARNING):
        from rootless.errors import RootlessError

        raise RootlessError("volume prune has been cancelled")
    report = volumes_prune(get_store(ctx), filter, all)
    if report.deleted:
        print("Deleted Volumes:")
        print("\n".join(report.deleted) + "\n")
    print(f"Total reclaimed space: {human_size(report.reclaimed, 4)}")
