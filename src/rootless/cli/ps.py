"""`rootless ps` and `container ls|ps|list`: the rows of docker's `ps`, and how they
print. No typer here: cli/hot.py reaches this without it, cli/container.py with it."""

from __future__ import annotations


def ps_print(store, all: bool = False, quiet: bool = False, size: bool = False,
             last: int = -1, latest: bool = False, no_trunc: bool = False,
             filter: list[str] | tuple[str, ...] = (), format: str = "") -> None:
    import time

    from rootless.engine.container_filters import containers_filtered
    from rootless.engine.containers import image_shown

    rows = containers_filtered(store, filter, all, 1 if latest else last)
    now = time.time()
    if quiet:
        for r in rows:
            print(r.record.id if no_trunc else r.record.short_id)
        return
    # as the docker CLI: a template that shows .Size computes sizes without -s
    size = size or "Size" in format
    entries = [ps_entry(r, now, no_trunc, image_shown(store, r.record)) for r in rows]
    for row, entry in zip(rows, entries):
        ps_extra(store, row, entry, size, no_trunc, "Mounts" in format)
        if row.state == "running":  # "Up 3 minutes (healthy)"
            from rootless.engine.containers import container_path
            from rootless.engine.health import health_status, status_suffix
            from rootless.net.ports import ports_display

            entry["Ports"] = ports_display(container_path(store, row.record.id))

            entry["Status"] += status_suffix(health_status(store, row))
    columns = PS_COLUMNS + (("Size",) if size else ())
    if format:
        from rootless.cli.template import render_rows

        if format.strip() == "table":
            format = "table " + "\\t".join("{{." + key + "}}" for key in columns)
        for line in render_rows(format, entries, PS_HEADERS):
            print(line)
        return
    from rootless.cli.table import print_table

    print_table([PS_HEADERS[key] for key in columns],
                [[entry[key] for key in columns] for entry in entries])


def ps_extra(store, row, entry: dict[str, str], size: bool, no_trunc: bool,
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
PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
    "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "State": "STATE", "LocalVolumes": "LOCAL VOLUMES",
}
PS_COLUMNS = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")


def ps_entry(row, now: float, no_trunc: bool, image: str) -> dict[str, str]:
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


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
