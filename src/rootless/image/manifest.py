"""Manifests, indexes and configs: OCI image-spec v1 and Docker image manifest v2.2.

Only what the transports and the store need: parse a manifest into descriptors, pick a
platform out of an index / manifest list, compute chain ids, and build the manifest of
an image we assemble ourselves.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from rootless.errors import ImageError

MAX_MANIFEST = 4 << 20  # what registries accept, and what we read

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_ND,
               OCI_LAYER_ND + "+gzip", OCI_LAYER_ND + "+zstd",
               DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_GZIP)


class Descriptor(NamedTuple):
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = {}
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                                "size": self.size}
        if self.platform:
            data["platform"] = self.platform
        if self.annotations:
            data["annotations"] = self.annotations
        return data


class Manifest(NamedTuple):
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


def load_json(raw: bytes, what: str) -> Any:
    if len(raw) > MAX_MANIFEST:
        raise ImageError(f"{what} is larger than {MAX_MANIFEST >> 20} MiB: refused")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what} is not valid JSON: {e}") from None


def descriptor(data: Any, what: str) -> Descriptor:
    if not isinstance(data, dict):
        raise ImageError(f"{what}: a descriptor must be a JSON object")
    digest, size = data.get("digest"), data.get("size")
    media_type = data.get("mediaType") or ""
    if not isinstance(digest, str) or not isinstance(size, int) or size < 0 \
            or not isinstance(media_type, str):
        raise ImageError(f"{what}: descriptor without a valid digest and size")
    from rootless.store.blobs import digest_hex

    digest_hex(digest)
    annotations = data.get("annotations") or {}
    platform = data.get("platform")
    return Descriptor(media_type, digest, size,
                      annotations if isinstance(annotations, dict) else {},
                      platform if isinstance(platform, dict) else None)


def media_type_of(data: dict[str, Any], fallback: str = "") -> str:
    media_type = data.get("mediaType") or fallback
    if not media_type:
        # OCI allows mediaType to be absent: tell manifests from indexes by shape
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    return media_type


def parse_manifest(raw: bytes, media_type: str = "", what: str = "manifest") -> Manifest:
    data = load_json(raw, what)
    if not isinstance(data, dict):
        raise ImageError(f"{what} is not a JSON object")
    media_type = media_type_of(data, media_type)
    if media_type not in MANIFEST_TYPES:
        raise ImageError(f"{what} has unsupported media type {media_type!r}")
    if data.get("schemaVersion") != 2:
        raise ImageError(f"{what}: unsupported schemaVersion {data.get('schemaVersion')!r}")
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what} has no layer list")
    config = descriptor(data.get("config"), f"{what} config")
    if config.size > MAX_MANIFEST:  # refused before it is fetched, not once read whole
        raise ImageError(f"{what}: its config is declared larger than "
                         f"{MAX_MANIFEST >> 20} MiB: refused")
    parsed = [descriptor(layer, f"{what} layer {i}") for i, layer in enumerate(layers)]
    for layer in parsed:
        if layer.media_type and layer.media_type not in LAYER_TYPES:
            raise ImageError(f"{what}: unsupported layer media type {layer.media_type!r}")
    return Manifest(media_type, config, parsed)


def parse_index(raw: bytes, what: str = "index") -> list[Descriptor]:
    data = load_json(raw, what)
    if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
        raise ImageError(f"{what} has no manifest list")
    return [descriptor(m, f"{what} entry {i}") for i, m in enumerate(data["manifests"])]


# ---- platforms ----

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64", "armv7l": "arm", "armv6l": "arm", "mips64": "mips64le"}


def host_platform() -> dict[str, str]:
    """This machine as a Go/OCI platform: {"os": "linux", "architecture": "amd64"}."""
    import platform

    machine = platform.machine()
    result = {"os": "linux", "architecture": _ARCH.get(machine, machine)}
    if machine.startswith("armv"):
        result["variant"] = machine[3:5]
    elif machine in ("aarch64", "arm64"):
        result["variant"] = "v8"
    return result


def choose_platform(entries: list[Descriptor], want: dict[str, str] | None = None,
                    what: str = "index") -> Descriptor:
    """The entry of an index that matches `want` (default: this host)."""
    want = want or host_platform()
    candidates = [e for e in entries if e.media_type in MANIFEST_TYPES + INDEX_TYPES or
                  not e.media_type]
    matching = [e for e in candidates if e.platform and
                e.platform.get("os") == want["os"] and
                e.platform.get("architecture") == want["architecture"]]
    if want.get("variant"):
        exact = [e for e in matching if e.platform.get("variant") in (None, want["variant"])]
        matching = exact or matching
    if matching:
        return matching[0]
    if len(candidates) == 1 and not candidates[0].platform:
        return candidates[0]
    have = ", ".join(sorted({f"{e.platform.get('os')}/{e.platform.get('architecture')}"
                             for e in candidates if e.platform})) or "none"
    raise ImageError(f"{what} has no image for {want['os']}/{want['architecture']} "
                     f"(it has: {have})")


# ---- configs ----

def parse_config(raw: bytes, what: str = "image config") -> dict[str, Any]:
    data = load_json(raw, what)
    if not isinstance(data, dict):
        raise ImageError(f"{what} is not a JSON object")
    rootfs = data.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ImageError(f"{what} has no rootfs.diff_ids")
    from rootless.store.blobs import digest_hex

    for diff_id in rootfs["diff_ids"]:
        digest_hex(diff_id)
    return data


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI image-spec: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) +
    " " + DiffID(Ln))."""
    import hashlib

    result: list[str] = []
    for diff_id in diff_ids:
        if not result:
            result.append(diff_id)
        else:
            text = f"{result[-1]} {diff_id}".encode()
            result.append("sha256:" + hashlib.sha256(text).hexdigest())
    return result


def created_timestamp(config: dict[str, Any]) -> float | None:
    """The config's RFC 3339 `created`, as seconds since the epoch."""
    value = config.get("created")
    if not isinstance(value, str) or not value:
        return None
    from datetime import datetime

    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Go writes nanoseconds; Python takes at most microseconds
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def rfc3339(timestamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_manifest(config: Descriptor, layers: list[Descriptor],
                  media_type: str = OCI_MANIFEST) -> bytes:
    data = {"schemaVersion": 2, "mediaType": media_type, "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers]}
    return json.dumps(data, separators=(",", ":")).encode()
