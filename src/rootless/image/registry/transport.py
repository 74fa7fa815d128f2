"""`docker://` ends of the copy routine.

RegistrySource: one image of a repository, by tag or digest; an index / manifest list
is narrowed to one platform (default: this host) and the chosen manifest's digest is
checked against the index entry. Blobs are streamed; the destination verifies them.

RegistryDestination: blobs are HEAD-checked (present ones are skipped), mounted from
another repository of the same registry when the image is known there, else uploaded
in one PUT (small blobs) or in PATCH chunks; the manifest is PUT last, with its own
media type, under the destination's tag (or its digest when pushed by digest).
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import (
    INDEX_TYPES,
    Descriptor,
    choose_platform,
    parse_index,
    parse_manifest,
)
from rootless.image.reference import Reference
from rootless.image.registry.client import Registry
from rootless.image.transports.base import ImageDestination, ImageSource

CHUNK_DEFAULT = 32 << 20  # blobs larger than this are sent in PATCH chunks of this size


def chunk_size() -> int:
    try:
        return max(1, int(os.environ.get("ROOTLESS_PUSH_CHUNK", CHUNK_DEFAULT)))
    except ValueError:
        return CHUNK_DEFAULT


class RegistrySource(ImageSource):
    def __init__(self, registry: Registry, ref: Reference,
                 platform: dict[str, str] | None = None) -> None:
        self.registry, self.ref, self.platform = registry, ref, platform
        self.names = [str(ref)]
        self.description = f"{ref}"
        self._manifest: tuple[bytes, str] | None = None
        self.digest = ""

    def manifest(self) -> tuple[bytes, str]:
        if self._manifest is None:
            self._manifest = self._resolve()
        return self._manifest

    def _resolve(self) -> tuple[bytes, str]:
        repo = self.ref.path
        raw, media_type, digest = self.registry.manifest_get(
            repo, self.ref.digest or self.ref.tag or "latest")
        if media_type in INDEX_TYPES:
            what = f"manifest list of {self.ref}"
            entry = choose_platform(parse_index(raw, what), self.platform, what)
            raw, media_type, digest = self.registry.manifest_get(repo, entry.digest)
            if media_type in INDEX_TYPES:
                raise ImageError(f"{what}: entry {entry.digest[:19]} is itself an index")
        elif self.platform:
            self._check_platform(raw, media_type)
        self.digest = digest
        return raw, media_type

    def _check_platform(self, raw: bytes, media_type: str) -> None:
        """A single-platform image pulled with --platform must be that platform."""
        import json

        manifest = parse_manifest(raw, media_type, f"manifest of {self.ref}")
        with self.open_blob(manifest.config) as stream:
            config = stream.read(manifest.config.size + 1)
        try:
            data = json.loads(config)
        except ValueError:
            return  # the copy verifies and parses the config itself
        want = self.platform or {}
        have = (data.get("os"), data.get("architecture"))
        if have != (want.get("os"), want.get("architecture")):
            raise ImageError(f"image {self.ref} is for {have[0]}/{have[1]}, not "
                             f"{want.get('os')}/{want.get('architecture')}")

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.registry.blob_open(self.ref.path, desc.digest)  # type: ignore

    def close(self) -> None:
        self.registry.close()


class RegistryDestination(ImageDestination):
    def __init__(self, registry: Registry, ref: Reference,
                 mount_from: list[str] = ()) -> None:
        self.registry, self.ref = registry, ref
        self.mount_from = [repo for repo in mount_from if repo != ref.path]
        self.description = str(ref)
        self.raw: bytes | None = None
        self.media_type = ""
        self.digest = ""
        self.mounted: dict[str, str] = {}  # digest -> the repository it was mounted from

    def has_blob(self, desc: Descriptor) -> bool:
        return self.registry.blob_exists(self.ref.path, desc.digest)

    def put_blob(self, stream: BinaryIO, desc: Descriptor) -> None:
        repo = self.ref.path
        url = None
        for source in self.mount_from:
            url = self.registry.upload_start(repo, (desc.digest, source))
            if url is None:
                self.mounted[desc.digest] = source
                return
            break  # not mounted: the registry started an upload instead; use it
        url = url or self.registry.upload_start(repo)
        size, h = chunk_size(), hashlib.sha256()
        if desc.size <= size:
            data = stream.read()
            h.update(data)
            _check(h, len(data), desc)
            self.registry.upload_finish(repo, url, desc.digest, data)
        else:
            offset = 0
            while chunk := stream.read(size):
                h.update(chunk)
                url = self.registry.upload_chunk(repo, url, chunk, offset)
                offset += len(chunk)
            _check(h, offset, desc)
            self.registry.upload_finish(repo, url, desc.digest)

    def put_manifest(self, raw: bytes, media_type: str) -> None:
        self.raw, self.media_type = raw, media_type

    def commit(self, names: list[str]) -> str:
        if self.raw is None:
            raise ImageError("no manifest was written before commit")
        manifest = parse_manifest(self.raw, self.media_type)
        reference = self.ref.digest or self.ref.tag or "latest"
        self.digest = self.registry.manifest_put(self.ref.path, reference, self.raw,
                                                 manifest.media_type)
        return manifest.config.digest


def _check(h, size: int, desc: Descriptor) -> None:
    digest = "sha256:" + h.hexdigest()
    if size != desc.size or digest != desc.digest:
        raise ImageError(f"blob {desc.digest[:19]}: the local copy ({size} bytes, "
                         f"{digest[:19]}) does not match its descriptor: the store is "
                         "corrupt")
