"""`docker image history`: an image's config `history`, newest first, each step with
the size of the layer it made.

The config's history entries with `empty_layer` false correspond, in order, to the
image's layers (rootfs.diff_ids); the others (ENV, CMD, ...) made no layer and have
size 0. As Docker without the builder's intermediate images, only the top row has an
id; the rows below are `<missing>`.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from rootless.errors import ImageError
from rootless.store import metadata as md

MISSING = "<missing>"


class HistoryRow(NamedTuple):
    id: str  # the image id on the top row, "<missing>" below
    created: float | None  # seconds since the epoch
    created_by: str
    size: int  # bytes of the layer this step made, 0 for an empty layer
    comment: str


def image_history(store, name: str) -> list[HistoryRow]:
    from rootless.engine.images import image_lookup

    image_id = image_lookup(store, name)
    row = md.image_get(store, image_id)
    config = json.loads(row.config)
    sizes = [_layer_size(store, chain) for chain in row.layers]
    history = config.get("history")
    if not isinstance(history, list) or not history:
        # No history (an image built by hand): one row per layer, as podman shows it.
        history = [{"created": config.get("created")} for _ in row.layers] \
            or [{"created": config.get("created"), "empty_layer": True}]
    rows = _rows(history, sizes, name)
    rows.reverse()
    rows[0] = rows[0]._replace(id=image_id)
    return rows


def _rows(history: list, sizes: list[int], name: str) -> list[HistoryRow]:
    from rootless.image.manifest import created_timestamp

    rows = []
    layer = 0
    for entry in history:
        if not isinstance(entry, dict):
            raise ImageError(f"image {name}: its config has a malformed history entry")
        size = 0
        if not entry.get("empty_layer"):
            if layer >= len(sizes):
                raise ImageError(f"image {name}: its config history names more non-empty "
                                 f"layers than the image's {len(sizes)}")
            size = sizes[layer]
            layer += 1
        rows.append(HistoryRow(MISSING, created_timestamp({"created": entry.get("created")}),
                               str(entry.get("created_by") or ""), size,
                               str(entry.get("comment") or "")))
    return rows


def _layer_size(store, chain_id: str) -> int:
    layer = md.layer_get(store, chain_id)
    return layer.size if layer else 0
