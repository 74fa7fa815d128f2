"""`rootless container ...` (ls, rm, inspect; run is cli/run.py) and the docker
shortcuts `rootless ps|rm`."""

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
    import time

    from rootless.cli.common import get_store
    from rootless.engine.container_filters import containers_filtered
    from rootless.engine.containers import image_shown

    store = get_store(ctx)
    rows = containers_filtered(store, filter, all, 1 if latest else last)
    now = time.time()
    if quiet:
        for r in rows:
            print(r.record.id if no_trunc else r.record.short_id)
        return
    # as the docker CLI: a template that shows .Size computes sizes without -s
    size = size or "Size" in format
    entries = [_ps_entry(r, now, no_trunc, image_shown(store, r.record)) for r in rows]
    for row, entry in zip(rows, entries):
        _ps_extra(store, row, entry, size, no_trunc, "Mounts" in format)
    columns = _PS_COLUMNS + (("Size",) if size else ())
    if format:
        from rootless.cli.template import render_rows

        if format.strip() == "table":
            format = "table " + "\\t".join("{{." + key + "}}" for key in columns)
        for line in render_rows(format, entries, _PS_HEADERS):
            print(line)
        return
    from rootless.cli.table import print_table

    print_table([_PS_HEADERS[key] for key in columns],
                [[entry[key] for key in columns] for entry in entries])


def _ps_extra(store, row, entry: dict[str, str], size: bool, no_trunc: bool,
              mounts: bool) -> None:
    """The fields that need config.json (sizes, mounts), only when they are shown."""
    from rootless.engine import container_filters as cf

    if size:
        from rootless.cli.image_views import human_size

        rw, rootfs = cf.container_sizes(store, row)
        entry["Size"] = human_size(rw, 3) + (f" (virtual {human_size(rootfs, 3)})"
                                             if rootfs else "")
    if mounts:
        names = [source for source, _, _ in cf.container_mounts(store, row)]
        entry["Mounts"] = ",".join(n if no_trunc else _truncate(n, 15) for n in names)


# Docker's names for the fields of a `ps` row, and the titles of their table columns.
_PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
    "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "State": "STATE", "LocalVolumes": "LOCAL VOLUMES",
}
_PS_COLUMNS = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")


def _ps_entry(row, now: float, no_trunc: bool, image: str) -> dict[str, str]:
    """One `ps` row as Docker's --format sees it (all values strings, as in docker)."""
    import time

    from rootless.cli.template_funcs import go_quote
    from rootless.engine.container_filters import container_state
    from rootless.engine.containers import human_duration

    record = row.record
    command = record.command if no_trunc else _truncate(record.command, 20)
    created = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(record.created))
    return {
        "ID": record.id if no_trunc else record.short_id, "Image": image,
        "Command": go_quote(command), "CreatedAt": created,
        "RunningFor": f"{human_duration(now - record.created)} ago",
        "Status": row.status(now), "Ports": "", "Names": record.name, "Size": "",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((row.labels or {}).items())),
        "Mounts": "", "Networks": "", "LocalVolumes": "0",
        "State": container_state(row),
    }


def rm(ctx: typer.Context,
       containers: List[str] = typer.Argument(..., help="Container names or ids."),
       force: bool = typer.Option(False, "-f", "--force", help="Kill a running container."),
       volumes: bool = typer.Option(False, "-v", "--volumes",
                                    help="Remove the container's anonymous volumes too.")
       ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.containers import containers_remove

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


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(root: typer.Typer) -> None:
    """The `container` group and docker's top-level spellings ps, rm, inspect."""
    from rootless.cli import container_fs
    from rootless.cli.inspect import container_inspect, inspect

    container_fs.register(root, app)  # diff, export, commit
    app.command("ls", help="List containers.")(ps)
    app.command("ps", help="List containers.")(ps)
    app.command("rm", help="Remove containers.")(rm)
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
