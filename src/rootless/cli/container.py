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
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output."),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json` (one object per line).")
       ) -> None:
    import time

    from rootless.cli.common import get_store
    from rootless.cli.table import print_table
    from rootless.engine.containers import container_list, image_shown

    store = get_store(ctx)
    rows = [r for r in container_list(store) if all or r.running]
    now = time.time()
    if quiet:
        for r in rows:
            print(r.record.id if no_trunc else r.record.short_id)
        return
    entries = [_ps_entry(r, now, no_trunc, image_shown(store, r.record)) for r in rows]
    if format:
        from rootless.cli.template import render_rows

        if format.strip() == "table":
            format = "table " + "\\t".join("{{." + key + "}}" for key in _PS_COLUMNS)
        for line in render_rows(format, entries, _PS_HEADERS):
            print(line)
        return
    print_table([_PS_HEADERS[key] for key in _PS_COLUMNS],
                [[entry[key] for key in _PS_COLUMNS] for entry in entries])


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
    from rootless.engine.containers import human_duration

    record = row.record
    command = record.command if no_trunc else _truncate(record.command, 20)
    created = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(record.created))
    return {
        "ID": record.id if no_trunc else record.short_id, "Image": image,
        "Command": go_quote(command), "CreatedAt": created,
        "RunningFor": f"{human_duration(now - record.created)} ago",
        "Status": row.status(now), "Ports": "", "Names": record.name, "Size": "",
        "Labels": "", "Mounts": "", "Networks": "", "LocalVolumes": "0",
        "State": "running" if row.running else
                 "created" if record.state == "created" else "exited",
    }


def rm(ctx: typer.Context,
       containers: List[str] = typer.Argument(..., help="Container names or ids."),
       force: bool = typer.Option(False, "-f", "--force", help="Kill a running container.")
       ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.containers import containers_remove

    store = get_store(ctx)
    with store.lock():
        for ref in containers_remove(store, containers, force):
            print(ref)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def register(root: typer.Typer) -> None:
    """The `container` group and docker's top-level spellings ps, rm, inspect."""
    from rootless.cli.inspect import container_inspect, inspect

    app.command("ls", help="List containers.")(ps)
    app.command("ps", help="List containers.")(ps)
    app.command("rm", help="Remove containers.")(rm)
    app.command("inspect", help="Show details of containers, as a JSON array.")(
        container_inspect)
    root.add_typer(app, name="container", help="Manage containers.")
    root.command("ps", help="List containers.")(ps)
    root.command("rm", help="Remove containers.")(rm)
    root.command("inspect", help="Show details of containers or images, as a JSON "
                 "array.")(inspect)
