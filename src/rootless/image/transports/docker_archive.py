"""`docker-archive:`, what `docker save` and `podman save` write:

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
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER_ZSTD,
    Descriptor,
    load_json,
    make_manifest,
    parse_config,
)
from rootless.image.transports.base import ImageSource

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
    paths) per image. (Used by `save`, issue 3.)"""
    return json.dumps([{"Config": c, "RepoTags": tags, "Layers": layers}
                       for c, tags, layers in images]).encode()
