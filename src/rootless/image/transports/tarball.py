"""The `tarball` transport: a root filesystem tar becomes a one-layer image, what
`docker image import` does. The config gets this host's os/architecture, no Cmd or Env
unless `--change` gives them, and a history entry "Imported from <source>".

gzip and zstd tars are kept as they are (their digest differs from the diff id);
bzip2 and xz, which no image manifest can name, are served uncompressed: then the blob
itself is the inflated tar, so ROOTLESS_LAYER_LIMIT bounds its size too, before it is
written (store/space.py bounds what the unpacking writes).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import BinaryIO

from rootless.image.manifest import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    host_platform,
    make_manifest,
    rfc3339,
)
from rootless.image.transports.base import ImageSource

_KEPT = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}


class TarballSource(ImageSource):
    def __init__(self, path: Path, source_name: str = "-", changes: list[str] = (),
                 message: str = "", platform: dict[str, str] | None = None) -> None:
        from rootless.image.compression import detect

        self.path = Path(path)
        self.description = f"tarball {source_name}"
        with open(self.path, "rb") as f:
            self.kind = detect(f.read(6))
        layer = self._layer_descriptor()
        created = rfc3339(time.time())
        comment = message or f"Imported from {source_name}"
        config_section: dict = {}
        if changes:
            from rootless.image.changes import apply_changes

            apply_changes(config_section, list(changes))
        config = {**(platform or host_platform()), "created": created,
                  "config": config_section,
                  "rootfs": {"type": "layers", "diff_ids": [self.diff_id]},
                  "history": [{"created": created, "comment": comment}],
                  "comment": comment}
        self.config_raw = json.dumps(config, separators=(",", ":")).encode()
        config_desc = Descriptor(OCI_CONFIG, _sha256(self.config_raw), len(self.config_raw))
        self.layer = layer
        self.raw_manifest = make_manifest(config_desc, [layer], OCI_MANIFEST)
        self.blobs = {config_desc.digest: "config", layer.digest: "layer"}

    def _layer_descriptor(self) -> Descriptor:
        with open(self.path, "rb") as f:
            digest, size = _hash(f)
        if self.kind == "none":
            self.diff_id = digest
            return Descriptor(OCI_LAYER, digest, size)
        with self._uncompressed() as f:
            self.diff_id, plain_size = _hash(f)
        if self.kind in _KEPT:
            return Descriptor(_KEPT[self.kind], digest, size)
        from rootless.store.space import LIMIT_ENV, human, layer_limit

        limit = layer_limit()
        if limit is not None and plain_size > limit:
            from rootless.errors import ImageError

            raise ImageError(f"{self.description} is {human(plain_size)} uncompressed, "
                             f"more than {human(limit)} ({LIMIT_ENV}): refused")
        return Descriptor(OCI_LAYER, self.diff_id, plain_size)

    def _uncompressed(self):
        from contextlib import contextmanager

        from rootless.image.compression import decompressed

        @contextmanager
        def reader():
            with open(self.path, "rb") as raw:
                stream = decompressed(raw, self.description)
                ok = False
                try:
                    yield stream
                    ok = True
                finally:
                    stream.close(check=ok)
        return reader()

    def manifest(self) -> tuple[bytes, str]:
        return self.raw_manifest, OCI_MANIFEST

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        import io

        what = self.blobs.get(desc.digest)
        if what == "config":
            return io.BytesIO(self.config_raw)
        if what == "layer" and self.kind not in _KEPT:
            return _Closing(self._uncompressed())
        if what == "layer":
            return open(self.path, "rb")
        from rootless.errors import ImageError

        raise ImageError(f"{self.description}: no blob {desc.digest}")


class _Closing:
    """A context-manager reader over a generator-based context manager."""

    def __init__(self, manager) -> None:
        self.manager = manager
        self.stream = None

    def __enter__(self):
        self.stream = self.manager.__enter__()
        return self.stream

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


def _hash(stream) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    while chunk := stream.read(1 << 20):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
