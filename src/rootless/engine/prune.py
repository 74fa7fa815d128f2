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
