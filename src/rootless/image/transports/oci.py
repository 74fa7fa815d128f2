"""OCI image layouts: `oci-archive:` (a layout in a tar) and `oci:` (a directory).

    oci-layout       {"imageLayoutVersion": "1.0.0"}
    index.json       an index; each entry an image (or a multi-platform index), named by
                     the annotation io.containerd.image.name (a full reference) or
                     org.opencontainers.image.ref.name (a reference, or a bare tag)
    blobs/sha256/<hex>

OCISource reads one image of a layout (`load`); OCIDestination writes layouts (`save`).
"""

from __future__ import annotations

import hashlib
import json
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    choose_platform,
    load_json,
    media_type_of,
    parse_index,
)
from rootless.image.transports.base import ImageDestination, ImageSource
from rootless.image.transports.files import blob_name

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class OCISource(ImageSource):
    def __init__(self, files, desc: Descriptor, names: list[str], description: str) -> None:
        self.files, self.desc, self.names = files, desc, names
        self.description = description

    def manifest(self) -> tuple[bytes, str]:
        raw = read_verified(self.files, self.desc, self.description)
        data = load_json(raw, f"manifest of {self.description}")
        return raw, media_type_of(data if isinstance(data, dict) else {},
                                  self.desc.media_type)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.files.open(blob_name(desc.digest))


def read_verified(files, desc: Descriptor, description: str) -> bytes:
    raw = files.read(blob_name(desc.digest))
    if "sha256:" + hashlib.sha256(raw).hexdigest() != desc.digest:
        raise ImageError(f"{description}: manifest {desc.digest} does not match its digest: "
                         "the archive is corrupt")
    return raw


def oci_sources(files, description: str, platform: dict[str, str] | None = None
                ) -> list[OCISource]:
    """One source per image of the layout's index.json, names gathered per manifest."""
    if files.exists("oci-layout"):
        layout = load_json(files.read("oci-layout"), f"{description} oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise ImageError(f"{description}: unsupported OCI layout version {version!r}")
    entries = parse_index(files.read("index.json"), f"{description} index.json")
    by_digest: dict[str, OCISource] = {}
    for entry in entries:
        desc = _single_platform(files, entry, description, platform)
        if desc is None:
            continue
        source = by_digest.setdefault(desc.digest,
                                      OCISource(files, desc, [], description))
        name = entry_name(entry.annotations)
        if name and name not in source.names:
            source.names.append(name)
    if not by_digest:
        raise ImageError(f"{description} holds no image")
    return list(by_digest.values())


def _single_platform(files, entry: Descriptor, description: str,
                     platform: dict[str, str] | None) -> Descriptor | None:
    desc = entry
    for _ in range(4):  # an index of indexes is legal, but not deeply
        if desc.media_type in INDEX_TYPES:
            children = parse_index(read_verified(files, desc, description),
                                   f"{description} index {desc.digest}")
            desc = choose_platform(children, platform, f"{description} index {desc.digest}")
        elif desc.media_type in MANIFEST_TYPES or not desc.media_type:
            return desc
        else:
            return None  # an artifact (signature, attestation): not an image
    raise ImageError(f"{description}: indexes nested too deeply")


def entry_name(annotations: dict[str, str]) -> str | None:
    """The normalised reference an index entry names, if any. A bare tag (`latest`, as
    `skopeo copy ... oci-archive:f.tar` may write) names no repository: None."""
    from rootless.image.reference import parse_reference

    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if not isinstance(value, str) or not value:
            continue
        if key == REF_NAME and not any(c in value for c in ":/@"):
            continue
        try:
            return str(parse_reference(value))
        except ImageError:
            continue
    return None


# ---- writing (save) ----

class OCIDestination(ImageDestination):
    """Writes images into an OCI layout (a tar or a directory, through a sink):
    `copy_image` once per image into the same destination, then `finish`.

        oci-layout            first, so a reader of a stream knows the format at once
        blobs/sha256/<hex>    configs, layers as stored (compressed: digests kept),
                              manifests; each once, however many images share it
        index.json            last: one entry per name of each image, annotated with
                              org.opencontainers.image.ref.name = the full reference
                              (docker.io/library/busybox:latest), as `podman save`
                              writes it: podman load names the image by it, and
                              `skopeo ... oci-archive:FILE:NAME` matches NAME exactly;
                              io.containerd.image.name the same, for containerd and
                              Docker >= 25. An image saved without a name gets one
                              entry with no annotation.

    OCI manifests are written byte-exact (the manifest digest is kept). A Docker schema 2
    manifest is rewritten with OCI media types, as containers/image does when it copies
    into an OCI layout; the config is kept, so the image id is too.
    """

    description = "OCI layout"

    def __init__(self, sink) -> None:
        self.sink = sink
        self.entries: list[Descriptor] = []
        self.manifest_raw, self.manifest_type = b"", ""
        self.sink.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for name in ("blobs", "blobs/sha256"):
            self.sink.add_dir(name)

    def has_blob(self, desc: Descriptor) -> bool:
        return self.sink.has(blob_name(desc.digest))

    def put_blob(self, stream: BinaryIO, desc: Descriptor) -> None:
        self.sink.put_verified(blob_name(desc.digest), stream, desc)

    def put_manifest(self, raw: bytes, media_type: str) -> None:
        self.manifest_raw, self.manifest_type = raw, media_type

    def commit(self, names: list[str]) -> str:
        from rootless.image.manifest import OCI_MANIFEST, parse_manifest

        manifest = parse_manifest(self.manifest_raw, self.manifest_type)
        raw = self.manifest_raw if manifest.media_type == OCI_MANIFEST else \
            _as_oci(self.manifest_raw)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if not self.sink.has(blob_name(digest)):
            self.sink.add_bytes(blob_name(digest), raw)
        for name in names or [None]:
            annotations = {REF_NAME: name, CONTAINERD_NAME: name} if name else {}
            self.entries.append(Descriptor(OCI_MANIFEST, digest, len(raw), annotations))
        return manifest.config.digest

    def finish(self) -> None:
        """Write index.json, after the last image."""
        from rootless.image.manifest import OCI_INDEX

        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [entry.to_json() for entry in self.entries]}
        self.sink.add_bytes("index.json", json.dumps(index).encode())


def _as_oci(raw: bytes) -> bytes:
    """A Docker schema 2 manifest with OCI media types (same config, same layers)."""
    from rootless.image import manifest as m

    types = {m.DOCKER_CONFIG: m.OCI_CONFIG, m.DOCKER_LAYER: m.OCI_LAYER,
             m.DOCKER_LAYER_GZIP: m.OCI_LAYER_GZIP,
             m.DOCKER_FOREIGN_GZIP: m.OCI_LAYER_ND + "+gzip"}
    data = json.loads(raw)
    data["mediaType"] = m.OCI_MANIFEST
    for desc in [data["config"], *data["layers"]]:
        desc["mediaType"] = types.get(desc.get("mediaType"), desc.get("mediaType"))
    return json.dumps(data, separators=(",", ":")).encode()
