"""`rootless ps` and `rootless rm`."""

from __future__ import annotations

from typing import List

import typer


def ps(ctx: typer.Context,
       all: bool = typer.Option(False, "-a", "--all", help="Show stopped containers too."),
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show ids."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output.")
       ) -> None:
    import time

    from rootless.cli.common import get_store
    from rootless.cli.table import print_table
    from rootless.engine.containers import container_list, human_duration

    rows = [r for r in container_list(get_store(ctx)) if all or r.running]
    now = time.time()
    if quiet:
        for r in rows:
            print(r.record.id if no_trunc else r.record.short_id)
        return
    table = []
    for r in rows:
        command = r.record.command if no_trunc else _truncate(r.record.command, 20)
        table.append([r.record.id if no_trunc else r.record.short_id, r.record.image_name,
                      f'"{command}"', f"{human_duration(now - r.record.created)} ago",
                      r.status(now), "", r.record.name])
    print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
                table)


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
