"""The local store as a transport end.

StoreSource: an image of the store, read back (for save and push): the manifest and
blobs exactly as they came in, so a pushed layer keeps its digest.

StoreDestination: blobs go to the CAS as they arrive (verified); `commit` unpacks the
layers that are not in the store yet (each into tmp/, checked against the config's diff
id, then renamed into layers/<chain-id>), then records the image and its names in one
transaction under the store's exclusive lock. Until then nothing refers to what was
written, so an interrupted load or pull leaves the store as it was, plus some
verified, unreferenced blobs.
"""

from __future__ import annotations

import json
import os
import time
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import (
    Descriptor,
    Manifest,
    chain_ids,
    created_timestamp,
    parse_config,
    parse_manifest,
)
from rootless.image.transports.base import ImageDestination, ImageSource
from rootless.store import metadata as md
from rootless.store.blobs import (
    blob_exists,
    blob_path,
    blob_put_bytes,
    blob_put_stream,
    blob_read,
    remove_tree,
)


class StoreSource(ImageSource):
    def __init__(self, store, image_id: str, names: list[str] | None = None) -> None:
        row = md.image_get(store, image_id)
        if row is None or not row.manifest_digest:
            raise ImageError(f"no such image in the store: {image_id}")
        self.store, self.row = store, row
        self.names = list(names) if names is not None else md.tags_of(store, image_id)
        self.description = f"image {image_id[7:19]}"

    def manifest(self) -> tuple[bytes, str]:
        return blob_read(self.store, self.row.manifest_digest), self.row.manifest_type or ""

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        try:
            return open(blob_path(self.store, desc.digest), "rb")
        except FileNotFoundError:
            raise ImageError(f"{self.description}: blob {desc.digest[:19]} is missing from "
                             "the store") from None


class StoreDestination(ImageDestination):
    description = "local store"

    def __init__(self, store) -> None:
        self.store = store
        self.manifest_raw: bytes | None = None
        self.manifest_type = ""

    def has_blob(self, desc: Descriptor) -> bool:
        return blob_exists(self.store, desc.digest)

    def put_blob(self, stream: BinaryIO, desc: Descriptor) -> None:
        blob_put_stream(self.store, stream, desc.digest, desc.size,
                        what="blob")

    def put_manifest(self, raw: bytes, media_type: str) -> None:
        self.manifest_raw, self.manifest_type = raw, media_type

    def commit(self, names: list[str]) -> str:
        if self.manifest_raw is None:
            raise ImageError("no manifest was written before commit")
        manifest = parse_manifest(self.manifest_raw, self.manifest_type)
        manifest_digest = blob_put_bytes(self.store, self.manifest_raw)
        config_raw = blob_read(self.store, manifest.config.digest)
        config = parse_config(config_raw)
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest.layers):
            raise ImageError(f"image {manifest.config.digest[:19]}: the manifest has "
                             f"{len(manifest.layers)} layers, the config {len(diff_ids)}")
        chains = chain_ids(diff_ids)
        size = 0
        for i, desc in enumerate(manifest.layers):
            parent = chains[i - 1] if i else None
            size += layer_ensure(self.store, chains[i], parent, diff_ids[i], desc)
        image = md.ImageRow(manifest.config.digest, config_raw.decode(), manifest_digest,
                            manifest.media_type, chains, created_timestamp(config),
                            time.time(), size)
        return image_record(self.store, image, names, manifest)


def image_record(store, image: md.ImageRow, names: list[str], manifest: Manifest) -> str:
    """Insert the image row (kept if present) and point `names` at it, atomically."""
    from rootless.image.reference import parse_reference

    with store.lock():
        for chain in image.layers:  # an `rmi` may have removed a layer meanwhile
            if md.layer_get(store, chain) is None or not md.layer_dir(store, chain).is_dir():
                raise ImageError(f"layer {chain[:19]} vanished from the store while the "
                                 "image was being written (another command removed it): "
                                 "try again")
        with store.db:
            md.image_add(store, image)
            for name in names:
                ref = parse_reference(name)
                if ref.digest:
                    md.digest_set(store, str(ref), image.id)
                else:
                    md.tag_set(store, str(ref), image.id)
    return image.id


def layer_ensure(store, chain_id: str, parent: str | None, diff_id: str,
                 desc: Descriptor) -> int:
    """Make layers/<chain-id> exist (unpacking the blob if needed); returns its size."""
    row = md.layer_get(store, chain_id)
    final = md.layer_dir(store, chain_id)
    if row is not None and final.is_dir():
        return row.size
    from rootless.image.layers import unpack_layer

    tmp = store.temp_path("layer")
    tmp.mkdir(mode=0o700)
    try:
        with open(blob_path(store, desc.digest), "rb") as f:
            result = unpack_layer(f, tmp, f"layer {desc.digest[:19]}")
        if result.diff_id != diff_id:
            raise ImageError(f"layer {desc.digest[:19]}: its content (diff id "
                             f"{result.diff_id[:19]}) is not what the image config says "
                             f"({diff_id[:19]}): the image is corrupt")
        with store.lock():
            row = md.layer_get(store, chain_id)
            if row is not None and final.is_dir():
                return row.size  # another command unpacked it meanwhile
            _install(store, tmp, chain_id, result.unapplied_xattrs)
            with store.db:
                md.layer_add(store, md.LayerRow(chain_id, diff_id, parent, result.size,
                                                desc.digest, desc.size, desc.media_type,
                                                time.time()))
    finally:
        remove_tree(tmp)
    return result.size


def _install(store, tmp, chain_id: str, unapplied: dict) -> None:
    """Rename the unpacked tree into place (replacing a copy without a row: a
    command killed between rename and insert left it, complete but unrecorded)."""
    final = md.layer_dir(store, chain_id)
    sidecar = final.with_name(final.name + ".xattrs.json")
    if unapplied:
        tmp_sidecar = store.temp_path("xattrs")
        tmp_sidecar.write_text(json.dumps(unapplied))
        os.replace(tmp_sidecar, sidecar)
    if final.is_dir():
        old = store.temp_path("old-layer")
        os.rename(final, old)
        remove_tree(old)
    os.rename(tmp, final)
