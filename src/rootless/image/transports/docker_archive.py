"""`docker-archive:`, what `docker save` and `podman save` write (read here for `load`;
written by DockerArchiveDestination below for `save`):

    manifest.json   [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                      "Layers": ["<dir>/layer.tar", ...]}, ...]   several images
    <hex>.json      the image config (or blobs/sha256/<hex> in Docker >= 25)
    <dir>/layer.tar  layers, usually uncompressed; shared ones may be symlinks

There is no registry manifest in it, so the source writes one (Docker schema 2). An
uncompressed layer's digest is its diff id from the config, which the destination
verifies as it copies; a compressed one is hashed when the source opens.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    MAX_MANIFEST,
    OCI_LAYER_ZSTD,
    Descriptor,
    load_json,
    make_manifest,
    parse_config,
)
from rootless.image.transports.base import ImageDestination, ImageSource

_LAYER_TYPES = {"none": DOCKER_LAYER, "gzip": DOCKER_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}


class DockerArchiveSource(ImageSource):
    def __init__(self, files, entry: dict, description: str) -> None:
        self.files, self.description = files, description
        config_path, layer_paths = _entry_paths(entry, description)
        self.config_raw = files.read(config_path)
        config = parse_config(self.config_raw, f"{description} config {config_path}")
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layer_paths):
            raise ImageError(f"{description}: {config_path} lists {len(diff_ids)} layers, "
                             f"manifest.json {len(layer_paths)}")
        self.paths: dict[str, str] = {}
        config_desc = Descriptor(DOCKER_CONFIG, _sha256(self.config_raw), len(self.config_raw))
        self.paths[config_desc.digest] = config_path
        layers = [self._layer(path, diff_id) for path, diff_id in zip(layer_paths, diff_ids)]
        self.raw_manifest = make_manifest(config_desc, layers, DOCKER_MANIFEST)
        self.names = _names(entry.get("RepoTags"), description)

    def _layer(self, path: str, diff_id: str) -> Descriptor:
        from rootless.image.compression import detect

        with self.files.open(path) as f:
            kind = detect(f.read(6))
        if kind not in _LAYER_TYPES:
            raise ImageError(f"{self.description}: layer {path} is {kind}-compressed, "
                             "which image archives do not use")
        size = self.files.size(path)
        digest = diff_id if kind == "none" else _sha256_stream(self.files.open(path))
        self.paths[digest] = path
        return Descriptor(_LAYER_TYPES[kind], digest, size)

    def manifest(self) -> tuple[bytes, str]:
        return self.raw_manifest, DOCKER_MANIFEST

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        path = self.paths.get(desc.digest)
        if path is None:
            raise ImageError(f"{self.description}: no blob {desc.digest}")
        return self.files.open(path)


def docker_sources(files, description: str) -> list[DockerArchiveSource]:
    data = load_json(files.read("manifest.json"), f"{description} manifest.json")
    if not isinstance(data, list) or not data:
        raise ImageError(f"{description}: manifest.json lists no image")
    return [DockerArchiveSource(files, entry, description) for entry in data]


def _entry_paths(entry, description: str) -> tuple[str, list[str]]:
    if not isinstance(entry, dict):
        raise ImageError(f"{description}: manifest.json entries must be objects")
    config, layers = entry.get("Config"), entry.get("Layers")
    if not isinstance(config, str) or not isinstance(layers, list) or \
            not all(isinstance(p, str) for p in layers):
        raise ImageError(f"{description}: a manifest.json entry lacks Config or Layers")
    return config, layers


def _names(repo_tags, description: str) -> list[str]:
    from rootless.image.reference import parse_reference

    names = []
    for tag in repo_tags or []:
        if not isinstance(tag, str):
            raise ImageError(f"{description}: RepoTags must be strings")
        names.append(str(parse_reference(tag)))
    return names


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _sha256_stream(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    with stream:
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def archive_manifest_json(images: list[tuple[str, list[str], list[str]]]) -> bytes:
    """manifest.json for a docker-archive being written: (config path, RepoTags, layer
    paths) per image."""
    return json.dumps([{"Config": c, "RepoTags": tags, "Layers": layers}
                       for c, tags, layers in images]).encode()


# ---- writing (save) ----

class DockerArchiveDestination(ImageDestination):
    """Writes images into a docker-archive: `copy_image` once per image into the same
    destination, then `finish`. The layout is what podman 4 (containers/image's
    docker/internal/tarfile writer) writes:

        <config hex>.json                        the image config, byte-exact (the id)
        <diff id hex>.tar                        each layer uncompressed, once per archive
        <v1 id>/layer.tar -> ../<diff id hex>.tar, <v1 id>/json, <v1 id>/VERSION
        manifest.json                            [{Config, RepoTags, Layers}, ...]
        repositories                             {"docker.io/library/busybox":
                                                  {"latest": "<top v1 id>"}}

    Why: `podman load` (4.3) tries an OCI archive before a docker-archive, so a Docker
    >= 25 style tar carrying index.json too would load in podman as OCI: one image per
    archive, one name per image. Without index.json podman, skopeo and docker all take
    manifest.json, which keeps every image and all their RepoTags. Layers are written
    uncompressed, as docker save and podman do: docker load checks each layer.tar's
    content digest against the config's diff ids, and the Layers entries then name
    content whose digest is its diff id. Layer files sit at the top level, named by diff
    id, so a layer shared by several images is written once; the per-layer v1
    directories (symlinks, legacy json, VERSION) and `repositories` are for loaders that
    predate manifest.json (docker < 1.10).
    """

    description = "docker-archive"

    def __init__(self, sink, spool_dir: Path) -> None:
        self.sink, self.spool_dir = sink, spool_dir
        self.diff_ids: dict[str, str] = {}  # blob digest (as stored) -> diff id
        self.configs: dict[str, bytes] = {}
        self.entries: list[tuple[str, list[str], list[str]]] = []
        self.repositories: dict[str, dict[str, str]] = {}
        self.manifest_raw, self.manifest_type = b"", ""

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self.diff_ids or desc.digest in self.configs

    def put_blob(self, stream: BinaryIO, desc: Descriptor) -> None:
        from rootless.image.manifest import LAYER_TYPES

        if desc.media_type in LAYER_TYPES or not desc.media_type:
            self.diff_ids[desc.digest] = self._put_layer(stream, desc)
            return
        raw = stream.read(MAX_MANIFEST + 1)
        if len(raw) != desc.size or _sha256(raw) != desc.digest:
            raise ImageError(f"config {desc.digest[:19]} does not match its digest: the "
                             "store is corrupt")
        self.sink.add_bytes(f"{desc.digest[7:]}.json", raw)
        self.configs[desc.digest] = raw

    def _put_layer(self, stream: BinaryIO, desc: Descriptor) -> str:
        """Write the layer uncompressed as <diff id hex>.tar; returns its diff id."""
        import tempfile

        from rootless.image.compression import Hashing, Prefixed, decompressed, detect

        head = stream.read(6)
        if detect(head) == "none":
            self.sink.put_verified(f"{desc.digest[7:]}.tar", Prefixed(head, stream), desc)
            return desc.digest
        packed = Hashing(Prefixed(head, stream))
        plain = decompressed(packed, f"layer {desc.digest[:19]}")
        ok = False
        # spooled: a tar member's size goes in its header, before its data
        with tempfile.TemporaryFile(dir=self.spool_dir) as spool:
            try:
                diff = Hashing(plain)
                while chunk := diff.read(1 << 20):
                    spool.write(chunk)
                ok = True
            finally:
                plain.close(check=ok)
            packed.drain()
            if packed.digest != desc.digest or packed.size != desc.size:
                raise ImageError(f"layer {desc.digest[:19]} does not match its digest: "
                                 "the store is corrupt")
            name = f"{diff.digest[7:]}.tar"
            if not self.sink.has(name):
                spool.seek(0)
                self.sink.add_stream(name, spool, diff.size)
        return diff.digest

    def put_manifest(self, raw: bytes, media_type: str) -> None:
        self.manifest_raw, self.manifest_type = raw, media_type

    def commit(self, names: list[str]) -> str:
        from rootless.image.manifest import parse_manifest

        manifest = parse_manifest(self.manifest_raw, self.manifest_type)
        config_raw = self.configs[manifest.config.digest]
        config = parse_config(config_raw)
        diff_ids = [self.diff_ids[layer.digest] for layer in manifest.layers]
        if diff_ids != config["rootfs"]["diff_ids"]:
            raise ImageError(f"image {manifest.config.digest[:19]}: its layers' content is "
                             "not what its config lists (diff ids): the store is corrupt")
        top = self._legacy_layers(diff_ids, config, manifest.config.digest)
        tags = _repo_tags(names)
        for repo, tag in tags:
            self.repositories.setdefault(repo, {})[tag] = top
        self.entries.append((f"{manifest.config.digest[7:]}.json",
                             [f"{repo}:{tag}" for repo, tag in tags],
                             [f"{d[7:]}.tar" for d in diff_ids]))
        return manifest.config.digest

    def _legacy_layers(self, diff_ids: list[str], config: dict, config_digest: str) -> str:
        """The v1 directories; returns the top one's id. Ids are chain ids (so images
        sharing layers share directories), the top one mixed with the config digest so
        that two images on the same layers get their own top (docker's v1 ids mix in
        the config too; any unique, loop-free ids do, loaders allocate new ones)."""
        from rootless.image.manifest import chain_ids

        parent = ""
        chains = chain_ids(diff_ids)
        for i, (chain, diff_id) in enumerate(zip(chains, diff_ids)):
            last = i == len(diff_ids) - 1
            v1_id = _sha256(f"{chain} {config_digest}".encode())[7:] if last else chain[7:]
            if not self.sink.has(f"{v1_id}/VERSION"):
                legacy = {"id": v1_id, **({"parent": parent} if parent else {})}
                if last:
                    legacy.update({k: config[k] for k in _LEGACY_KEYS if k in config})
                self.sink.add_dir(v1_id)
                self.sink.add_symlink(f"{v1_id}/layer.tar", f"../{diff_id[7:]}.tar")
                self.sink.add_bytes(f"{v1_id}/json", json.dumps(legacy).encode())
                self.sink.add_bytes(f"{v1_id}/VERSION", b"1.0")
            parent = v1_id
        return parent

    def finish(self) -> None:
        """Write manifest.json and repositories, after the last image."""
        self.sink.add_bytes("manifest.json", archive_manifest_json(self.entries))
        if self.repositories:
            self.sink.add_bytes("repositories", json.dumps(self.repositories).encode())


_LEGACY_KEYS = ("architecture", "config", "container", "container_config", "created",
                "docker_version", "os")


def _repo_tags(names: list[str]) -> list[tuple[str, str]]:
    """(repository, tag) for RepoTags and `repositories`, the repository in full
    (docker.io/library/busybox) as podman writes it: `podman load` takes a short
    `busybox:latest` for localhost/busybox, while docker load normalises either. Digest
    references name no tag and are left out, as docker does."""
    from rootless.image.reference import parse_reference

    result = []
    for name in names:
        ref = parse_reference(name)
        if ref.tag and not ref.digest and (ref.name, ref.tag) not in result:
            result.append((ref.name, ref.tag))
    return result
