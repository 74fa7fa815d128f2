"""The local store as a transport end.

StoreSource: an image of the store, read back (for save and push): the manifest and
blobs exactly as they came in, so a pushed layer keeps its digest.

StoreDestination: blobs go to the CAS as they arrive (verified); `commit` has the
layers that are not in the store yet unpacked (each into tmp/, checked against the
config's diff id, then renamed into layers/<chain-id>: one after the other here, or in
parallel by the engine's `unpack`), then records the image and its names in one
transaction under the store's exclusive lock. Until then nothing refers to what was
written, so an interrupted load or pull leaves the store as it was, plus some
verified, unreferenced blobs.
"""

from __future__ import annotations

import json
import os
import time
from typing import BinaryIO, Callable, NamedTuple

from rootless.errors import ImageError
from rootless.image.manifest import (
    Descriptor,
    Manifest,
    chain_ids,
    created_timestamp,
    parse_config,
    parse_manifest,
)
from rootless.image.layers import LayerResult
from rootless.kernel.storage_ns import RECORDS
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


class LayerJob(NamedTuple):
    """One layer of an image, as the store keeps it: layers/<chain_id>."""
    chain_id: str
    parent: str | None
    diff_id: str
    desc: Descriptor  # its blob


def layer_jobs(manifest: Manifest, diff_ids: list[str]) -> list[LayerJob]:
    """The layers of an image, lowest first; refuses a config that disagrees with the
    manifest on their number."""
    if len(diff_ids) != len(manifest.layers):
        raise ImageError(f"image {manifest.config.digest[:19]}: the manifest has "
                         f"{len(manifest.layers)} layers, the config {len(diff_ids)}")
    chains = chain_ids(diff_ids)
    return [LayerJob(chains[i], chains[i - 1] if i else None, diff_ids[i], desc)
            for i, desc in enumerate(manifest.layers)]


def unpack_in_turn(store, jobs: list[LayerJob]) -> list[int]:
    """Make every layer exist, one after the other in this process; their sizes."""
    return [layer_ensure(store, job) for job in jobs]


class StoreDestination(ImageDestination):
    """`unpack(store, jobs) -> sizes` makes the image's layers exist before it is
    recorded; the engine passes one that unpacks in parallel processes."""

    description = "local store"

    def __init__(self, store, unpack: Callable[[object, list[LayerJob]], list[int]]
                 = unpack_in_turn) -> None:
        self.store, self.unpack = store, unpack
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
        jobs = layer_jobs(manifest, diff_ids)
        sizes = self.unpack(self.store, jobs)
        image = md.ImageRow(manifest.config.digest, config_raw.decode(), manifest_digest,
                            manifest.media_type, [job.chain_id for job in jobs],
                            created_timestamp(config), time.time(), sum(sizes))
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


def layer_size(store, chain_id: str) -> int | None:
    """The size of layers/<chain-id> if it is in the store, complete and recorded."""
    row = md.layer_get(store, chain_id)
    if row is not None and md.layer_dir(store, chain_id).is_dir():
        return row.size
    return None


def layer_ids():
    """How this user's layers are stored now: kernel/storage_ns.StorageIds with a
    subordinate range (true owners), None in single-id mode (override_stat records)."""
    from rootless.kernel.storage_ns import storage_ids
    from rootless.store.options import storage_flag

    return storage_ids(squash=storage_flag("ignore_chown_errors"))


def layer_ensure(store, job: LayerJob) -> int:
    """Make layers/<chain-id> exist, unpacking its blob here if needed (in a storage
    namespace with a subordinate range: a forked child of this process); its size."""
    size = layer_size(store, job.chain_id)
    if size is not None:
        return size
    from rootless.kernel.storage_ns import call_as_root

    ids = layer_ids()
    tmp = layer_tmp(store)
    try:
        blob, what = blob_path(store, job.desc.digest), f"layer {job.desc.digest[:19]}"
        if ids is None:
            result = _unpack_file(blob, tmp, what, None)
        else:
            result = call_as_root(_unpack_file, blob, tmp, what, ids, maps=ids.maps)
        return layer_install(store, job, tmp, result, ids)
    finally:
        remove_tree(tmp)


def _unpack_file(blob, tmp, what: str, ids) -> LayerResult:
    from rootless.image.layers import unpack_layer

    with open(blob, "rb") as f:
        return unpack_layer(f, tmp, what, ids=ids)


def layer_tmp(store):
    """A fresh empty directory in tmp/ to unpack a layer into."""
    tmp = store.temp_path("layer")
    tmp.mkdir(mode=0o700)
    return tmp


def layer_install(store, job: LayerJob, tmp, result: LayerResult, ids=None) -> int:
    """Check the unpacked tree `tmp` against the image config's diff id, then move it
    to layers/<chain-id> and record it, with how it was stored (`ids`: its storage
    namespace, else override_stat records); returns its size. `tmp` is gone or left
    for the caller to remove."""
    desc = job.desc
    if result.diff_id != job.diff_id:
        raise ImageError(f"layer {desc.digest[:19]}: its content (diff id "
                         f"{result.diff_id[:19]}) is not what the image config says "
                         f"({job.diff_id[:19]}): the image is corrupt")
    if result.file_caps:
        from rootless.image.file_caps import apply_file_caps

        apply_file_caps(tmp, result.file_caps, f"layer {desc.digest[:19]}")
    with store.lock():
        size = layer_size(store, job.chain_id)
        if size is not None:
            return size  # another command unpacked it meanwhile
        _install(store, tmp, job.chain_id, result.unapplied_xattrs)
        with store.db:
            md.layer_add(store, md.LayerRow(job.chain_id, job.diff_id, job.parent,
                                            result.size, desc.digest, desc.size,
                                            desc.media_type, time.time(),
                                            ids.key() if ids is not None else RECORDS))
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
