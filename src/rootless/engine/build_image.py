"""What a build step leaves: an image in the store, untagged, made of its parent's
layers (plus the step's own layer, when it changed files) and the step's config.

Every step is stored through the one copy routine (image/transports/copy.py) into the
store destination, as `commit` stores its image, so a later step can run a container
from it and a later build can reuse it from the cache (engine/build_cache.py). A step
that changed no files writes only a config and a manifest: a few hundred bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import BinaryIO

from rootless.image.manifest import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, Descriptor,
                                     make_manifest, parse_manifest)
from rootless.image.transports.base import ImageSource
from rootless.store.blobs import file_digest

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def scratch_config() -> dict:
    """The config of `FROM scratch`: no layers, no settings, this machine's platform."""
    machine = platform.machine()
    return {"architecture": _ARCH.get(machine, machine), "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


def parent_layers(store, image_id: str | None) -> list[Descriptor]:
    """The layer descriptors of a stored image's manifest ([] for scratch)."""
    if image_id is None:
        return []
    from rootless.store import metadata as md
    from rootless.store.blobs import blob_read

    row = md.image_get(store, image_id)
    manifest = parse_manifest(blob_read(store, row.manifest_digest), row.manifest_type or "",
                              f"manifest of image {image_id[7:19]}")
    return list(manifest.layers)


class StepSource(ImageSource):
    """A parent image's layers, an optional new layer (an uncompressed tar file) and a
    config, as an image source for the store destination."""

    description = "build step"

    def __init__(self, store, layers: list[Descriptor], config: dict,
                 layer: Descriptor | None, layer_path: Path | None) -> None:
        self.store, self.layer_path, self.layer = store, layer_path, layer
        self.names: list[str] = []
        if layer is not None:
            layers = [*layers, layer]
        self.config_raw = json.dumps(config, separators=(",", ":")).encode()
        self.config = Descriptor(DOCKER_CONFIG, "sha256:" + hashlib.sha256(
            self.config_raw).hexdigest(), len(self.config_raw))
        self.raw_manifest = make_manifest(self.config, layers, DOCKER_MANIFEST)

    def manifest(self) -> tuple[bytes, str]:
        return self.raw_manifest, DOCKER_MANIFEST

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        import io

        from rootless.store.blobs import blob_path

        if desc.digest == self.config.digest:
            return io.BytesIO(self.config_raw)
        if self.layer is not None and desc.digest == self.layer.digest:
            return open(self.layer_path, "rb")
        return open(blob_path(self.store, desc.digest), "rb")


def store_step(store, parent_id: str | None, config: dict,
               layer_path: Path | None = None) -> str:
    """Store the image a step made; returns its id. `config` is complete but for the new
    layer's diff id, which is added here."""
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination

    config = json.loads(json.dumps(config))  # the caller's stays as it was
    layer = None
    if layer_path is not None:  # read once: a layer may be gigabytes
        digest, size = file_digest(layer_path)
        layer = Descriptor(DOCKER_LAYER, digest, size)
        config["rootfs"]["diff_ids"] = [*config["rootfs"]["diff_ids"], digest]
    source = StepSource(store, parent_layers(store, parent_id), config, layer, layer_path)
    return copy_image(source, StoreDestination(store), [])
