"""`ps -f KEY=VALUE`, `-n N`, `-l`, `-s` and `container prune`, with moby's semantics
(daemon/list.go): values of one key OR (label: all must match, as moby's MatchKVList);
different keys AND; name= and id= are unanchored regular expressions; status= shows
stopped containers too; -n N keeps the N newest that pass, stopped ones included.

Everything but volume= and -s is answered from state.db: `ps` reads a container's
config.json only when one of those asks for its mounts or its storage driver.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rootless.engine.containers import (ContainerRow, container_dir, container_list,
                                        container_lookup)
from rootless.engine.image_list import labels_match, parse_filters, until_cutoff
from rootless.errors import ImageError
from rootless.records import record

PS_FILTERS = ("name", "id", "status", "exited", "label", "ancestor", "before", "since",
              "volume", "health")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
PRUNE_FILTERS = ("until", "label", "label!")


def container_state(row: ContainerRow) -> str:
    """Docker's State word; a container whose process is gone reads as exited."""
    return row.state


def containers_filtered(store, filters: list[str], all_: bool = False,
                        last: int = -1) -> list[ContainerRow]:
    """`ps`'s rows, newest first."""
    spec = parse_filters(filters, PS_FILTERS)
    _check_values(spec)
    all_ = all_ or "status" in spec or last > 0
    rows = container_list(store)
    keep = _predicate(store, spec)
    before = _position(store, rows, spec.get("before"))
    since = _position(store, rows, spec.get("since"))
    result = []
    for index, row in enumerate(rows):
        if before is not None and index <= before:
            continue  # created after (or is) the before= container
        if since is not None and index >= since:
            break
        if not all_ and not row.running:
            continue
        if keep(row):
            result.append(row)
            if 0 < last == len(result):
                break
    return result


def _check_values(spec: dict[str, list[str]]) -> None:
    for key, allowed in (("status", STATES), ("health", HEALTH)):
        for value in spec.get(key, []):
            if value not in allowed:
                raise ImageError(f"invalid filter '{key}={value}'")
    for value in spec.get("exited", []):
        if not re.fullmatch(r"[+-]?[0-9]+", value):
            raise ImageError(f"invalid filter 'exited={value}'")


def _position(store, rows: list[ContainerRow], values: list[str] | None) -> int | None:
    """Where the container named by before=/since= sits in `rows` (the last value
    wins, as in moby); NotFoundError if it names none."""
    if not values:
        return None
    wanted = container_lookup(store, values[-1]).id
    return next(i for i, row in enumerate(rows) if row.record.id == wanted)


def _regex_any(patterns: list[str], *texts: str) -> bool:
    """moby's filters.Match: a value equal to the text, or an unanchored regular
    expression found in it; a pattern that does not compile matches nothing."""
    for pattern in patterns:
        for text in texts:
            if pattern == text:
                return True
            try:
                if re.search(pattern, text):
                    return True
            except re.error:
                pass
    return False


def _predicate(store, spec: dict[str, list[str]]) -> Callable[[ContainerRow], bool]:
    checks: list[Callable[[ContainerRow], bool]] = []
    if "name" in spec:
        checks.append(lambda r: _regex_any(spec["name"], "/" + r.record.name, r.record.name))
    if "id" in spec:
        checks.append(lambda r: _regex_any(spec["id"], r.record.id))
    if "label" in spec:
        checks.append(lambda r: labels_match(r.labels or {}, spec["label"]))
    if "exited" in spec:
        codes = {int(v) for v in spec["exited"]}
        checks.append(lambda r: container_state(r) == "exited" and r.exit_code in codes)
    if "status" in spec:
        checks.append(lambda r: container_state(r) in spec["status"])
    if "health" in spec:
        from rootless.engine.health import health_status

        checks.append(lambda r: health_status(store, r) in spec["health"])
    if "volume" in spec:
        checks.append(lambda r: bool(set(spec["volume"]) & _mount_names(store, r)))
    if "ancestor" in spec:
        images = _ancestor_ids(store, spec["ancestor"])
        checks.append(lambda r: r.record.image_id in images)
    return lambda row: all(check(row) for check in checks)


def _ancestor_ids(store, refs: list[str]) -> set[str]:
    """The images ancestor= names (a name, an id or an id prefix); one that names no
    image matches nothing, as in moby (which only logs it)."""
    from rootless.engine.images import image_lookup
    from rootless.errors import RootlessError

    found = set()
    for ref in refs:
        try:
            found.add(image_lookup(store, ref))
        except RootlessError:
            pass
    return found


def container_mounts(store, row: ContainerRow) -> list[tuple[str, str, bool]]:
    """(source, destination, read-only) of the container's -v mounts, from config.json;
    a volume's source is its name, as docker's ps shows and volume= matches it."""
    from rootless.engine.container_inspect import spec_read, user_binds
    from rootless.engine.volumes import volume_name_of

    cdir = container_dir(store, row.record.id)
    spec, _ = spec_read(cdir / "config.json")
    return [(volume_name_of(store.root, source) or source, dest, ro)
            for source, dest, ro in user_binds(spec, cdir)]


def _mount_names(store, row: ContainerRow) -> set[str]:
    """What volume= matches (moby's rule): a volume's name, a bind's source, or a
    mount's destination."""
    return {part for source, dest, _ in container_mounts(store, row) for part in (source, dest)}


def container_sizes(store, row: ContainerRow) -> tuple[int, int]:
    """(SizeRw, SizeRootFs) as `inspect -s` counts them."""
    from rootless.engine.container_inspect import graph_driver, sizes, spec_read

    cdir = container_dir(store, row.record.id)
    spec, _ = spec_read(cdir / "config.json")
    found = sizes(store, row.record.image_id, cdir, graph_driver(spec)[0])
    return found["SizeRw"], found["SizeRootFs"]


@record
class PruneReport:
    deleted: list[str]  # full ids
    reclaimed: int  # bytes the containers had written


def containers_prune(store, filters: list[str]) -> PruneReport:
    """`container prune`: every container that is not running and passes until= (made
    before) and label=/label!=, removed as `rm` removes one."""
    from rootless.engine.containers import remove_tree

    spec = parse_filters(filters, PRUNE_FILTERS)
    cutoff = until_cutoff(spec["until"]) if spec.get("until") else None
    store.clean_temp(remove=remove_tree)
    deleted, reclaimed = [], 0
    with store.lock():
        for row in container_list(store):
            labels = row.labels or {}
            if row.running or (cutoff is not None and not row.record.created < cutoff):
                continue
            if not (labels_match(labels, spec.get("label", [])) and
                    labels_match(labels, spec.get("label!", []), negate=True)):
                continue
            size = _remove_if_stopped(store, row.record.id)
            if size is not None:
                reclaimed += size
                deleted.append(row.record.id)
    return PruneReport(deleted, reclaimed)


def _remove_if_stopped(store, container_id: str) -> int | None:
    """Remove a container that is still stopped once its op lock is ours (a `run` or
    `start` may hold it meanwhile); its size, or None if it was left."""
    from rootless.engine.containers import container_op_lock, container_remove, container_row
    from rootless.engine.disk_usage import container_size
    from rootless.engine.lifecycle import monitor_alive

    with container_op_lock(store, container_id):
        row = container_row(store, container_id)
        if row is None or row.running or monitor_alive(store, container_id):
            return None
        size = container_size(container_dir(store, container_id))
        container_remove(store, container_id)
        return size
