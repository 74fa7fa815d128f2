"""`rootless top|stats|port` (and under `container`): a running container's processes,
resource use and published ports (engine/container_top.py, container_stats.py,
container_ports.py)."""

from __future__ import annotations

from typing import List, Optional

import typer

# The first reading of `stats` compares against one this much earlier (docker's
# --no-stream waits for two of the daemon's one-second readings; half a second
# keeps the command quick and CPU % within 2% at 100 clock ticks a second); then a
# new table every second, as docker's.
FIRST_INTERVAL = 0.5
INTERVAL = 1.0

STATS_HEADERS = {
    "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}
STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
               "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
CLEAR_SCREEN = "\033[2J\033[H"  # docker's: erase the display, cursor home


def top(ctx: typer.Context,
        container: str = typer.Argument(..., metavar="CONTAINER"),
        ps_args: Optional[List[str]] = typer.Argument(None, metavar="[ps OPTIONS]")
        ) -> None:
    """Display the running processes of a container."""
    from rootless.cli.common import get_store
    from rootless.cli.printable import escape_controls
    from rootless.cli.template_funcs import tabwrite
    from rootless.engine.container_top import container_top

    titles, rows = container_top(get_store(ctx), container, list(ps_args or []))
    # a process of the container names itself: escape what would reach the terminal
    lines = ["\t".join(escape_controls(cell) for cell in row) for row in [titles, *rows]]
    for line in tabwrite(lines, minwidth=20, padding=3):
        print(line)


def port(ctx: typer.Context,
         container: str = typer.Argument(..., metavar="CONTAINER"),
         private: Optional[str] = typer.Argument(None, metavar="[PRIVATE_PORT[/PROTO]]")
         ) -> None:
    """List port mappings or a specific mapping for the container."""
    from rootless.cli.common import get_store
    from rootless.engine.container_ports import container_port

    for line in container_port(get_store(ctx), container, private):
        print(line)


def stats(ctx: typer.Context,
          containers: Optional[List[str]] = typer.Argument(None, metavar="[CONTAINER...]"),
          all: bool = typer.Option(False, "-a", "--all", help="Show all containers "
                                   "(default shows just running)."),
          no_stream: bool = typer.Option(False, "--no-stream", help="Disable streaming "
                                         "stats and only pull the first result."),
          no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output."),
          format: str = typer.Option("", "--format", help="A Go template, `table "
                                     "TEMPLATE`, or `json` (one object per line)."),
          ) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    import sys
    import time

    from rootless.cli.common import get_store
    from rootless.cli.template import render_rows

    store = get_store(ctx)
    watched = _Watched(store, list(containers or []), all)
    template = STATS_TABLE if format.strip() in ("", "table") else format
    watched.sample()
    time.sleep(FIRST_INTERVAL)
    while True:
        entries = [_stats_entry(label, record, numbers, no_trunc)
                   for label, record, numbers in watched.sample()]
        lines = render_rows(template, entries, STATS_HEADERS)
        text = "\n".join(lines) + "\n" if lines else ""
        sys.stdout.write(text if no_stream else CLEAR_SCREEN + text)
        sys.stdout.flush()
        if no_stream or watched.empty():
            return
        time.sleep(INTERVAL)


class _Watched:
    """The containers `stats` shows: those named (until removed), or every running
    one (with -a every one), looked up again for each table as docker's event
    watcher would add and drop them."""

    def __init__(self, store, refs: list[str], all: bool) -> None:
        from rootless.engine.containers import container_lookup

        self.store, self.all, self.named = store, all, bool(refs)
        self.samplers: dict[str, tuple[str, object]] = {}
        for ref in refs:
            record = container_lookup(store, ref)
            self._add(ref, record)

    def _add(self, label: str, record) -> None:
        from rootless.engine.container_stats import Sampler

        if record.id not in self.samplers:
            self.samplers[record.id] = (label, Sampler(self.store, record))

    def _refresh(self) -> None:
        from rootless.engine.containers import container_list

        rows = [r for r in container_list(self.store) if self.all or r.running]
        for row in rows:  # newest first, as docker lists them; new ones at the end
            self._add(row.record.short_id, row.record)
        shown = {row.record.id for row in rows}
        for cid in [c for c in self.samplers if c not in shown]:
            del self.samplers[cid]

    def sample(self) -> list[tuple[str, object, dict]]:
        if not self.named:
            self._refresh()
        found = []
        for cid, (label, sampler) in list(self.samplers.items()):
            numbers = sampler.sample()
            if numbers is None:  # removed
                del self.samplers[cid]
                continue
            found.append((label, sampler.record, numbers))
        return found

    def empty(self) -> bool:
        return self.named and not self.samplers


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, four significant digits ("1.5MiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"


def _stats_entry(label: str, record, n: dict, no_trunc: bool) -> dict[str, str]:
    """One row as docker's stats formatter shows it."""
    from rootless.cli.image_views import human_size

    return {
        "Container": label, "Name": record.name or "--",
        "ID": record.id if no_trunc else record.short_id,
        "CPUPerc": f"{n['cpu']:.2f}%",
        "MemUsage": f"{bytes_size(n['memory'])} / {bytes_size(n['limit'])}",
        "MemPerc": f"{n['memory_percent']:.2f}%",
        "NetIO": f"{human_size(n['net_rx'])} / {human_size(n['net_tx'])}",
        "BlockIO": f"{human_size(n['block_read'])} / {human_size(n['block_write'])}",
        "PIDs": str(int(n["pids"])),
    }


def register(root: typer.Typer, group: typer.Typer) -> None:
    # docker's top takes every word after the container as a ps option (cobra's
    # SetInterspersed(false)): `top c -o pid,comm` is not an option of ours
    top_settings = {"ignore_unknown_options": True, "allow_interspersed_args": False}
    for app in (root, group):
        app.command("top", help="Display the running processes of a container.",
                    context_settings=top_settings)(top)
        app.command("stats", help="Display a live stream of container(s) resource "
                    "usage statistics.")(stats)
        app.command("port", help="List port mappings or a specific mapping for the "
                    "container.")(port)
