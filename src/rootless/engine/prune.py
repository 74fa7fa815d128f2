"""`docker image prune`: remove dangling images (no tag, no digest name), or with
`all` every image no container was created from, through the same untag and delete
steps as `rmi` (engine/images.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from rootless.store import metadata as md

PRUNE_FILTERS = ("until", "label", "label!")


class PruneReport(NamedTuple):
    lines: list[str]  # as docker prints them: "untagged: busybox:latest", "deleted: sha256:..."
    reclaimed: int  # bytes of the layers removed


def image_prune(store, all_images: bool = False, filters: Iterable[str] = ()) -> PruneReport:
    from rootless.engine.image_list import config_of, image_predicate, parse_filters
    from rootless.engine.images import _delete_image, _untag

    spec = parse_filters(filters, PRUNE_FILTERS)
    lines: list[str] = []
    reclaimed = 0
    with store.lock():
        keep = image_predicate(store, spec)
        sizes = {layer.chain_id: layer.size for layer in md.layers_all(store)}
        in_use = set(md.container_counts(store))
        for image in md.images_listed(store):
            names = md.tags_of(store, image.id) + md.digests_of(store, image.id)
            if image.id in in_use or (names and not all_images):
                continue
            if not keep(image, config_of(image)):
                continue
            lines += [_docker_case(line) for line in _untag(store, names)]
            deleted = _delete_image(store, image.id)
            # The first line names the image; the rest are its layers' chain ids.
            reclaimed += sum(sizes.get(line.split(": ", 1)[1], 0) for line in deleted[1:])
            lines += [_docker_case(line) for line in deleted]
    return PruneReport(lines, reclaimed)


def _docker_case(line: str) -> str:
    """rmi prints "Untagged: x"; prune's report says "untagged: x"."""
    return line[:1].lower() + line[1:]


class SystemPruneReport(NamedTuple):
    containers: list[str]  # full ids
    networks: list[str]  # names
    volumes: list[str]  # names
    images: list[str]  # "untagged: ..." / "deleted: ..." lines
    reclaimed: int


def system_prune_check(filters: Iterable[str], volumes: bool) -> None:
    """Before docker's question: the filters each prune accepts (until= is no volume
    filter: docker refuses it with --volumes)."""
    from rootless.engine.image_list import parse_filters
    from rootless.errors import UsageError

    spec = parse_filters(filters, PRUNE_FILTERS)
    if volumes and "until" in spec:
        raise UsageError('the "until" filter is not supported with "--volumes"')


def system_prune(store, all_images: bool = False, volumes: bool = False,
                 filters: Iterable[str] = ()) -> SystemPruneReport:
    """`docker system prune`, in docker's order: stopped containers, user networks no
    container is on, anonymous unused volumes with `volumes`, images (dangling, or every
    unused one with `all_images`), (build cache: none yet). Each step is the one
    routine its own prune command uses."""
    from rootless.engine.container_filters import containers_prune
    from rootless.engine.networks import network_prune

    filters = list(filters)
    system_prune_check(filters, volumes)
    containers = containers_prune(store, filters)
    networks = network_prune(store, filters)
    reclaimed, removed_volumes = containers.reclaimed, []
    if volumes:
        from rootless.engine.volumes import volumes_prune

        report = volumes_prune(store, filters)
        removed_volumes, reclaimed = report.deleted, reclaimed + report.reclaimed
    images = image_prune(store, all_images, filters)
    return SystemPruneReport(containers.deleted, networks, removed_volumes, images.lines,
                             reclaimed + images.reclaimed)
