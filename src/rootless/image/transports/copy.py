"""The one copy routine: an image from any ImageSource to any ImageDestination.

Blobs the destination already has are not read again; each blob is verified by the
destination as it is written; the manifest goes last and `commit` makes the image
visible, so an interrupted copy leaves only unreferenced (verified) blobs behind.
"""

from __future__ import annotations

from typing import Callable

from rootless.image.manifest import Descriptor, parse_manifest
from rootless.image.transports.base import ImageDestination, ImageSource

Progress = Callable[[str, Descriptor], None]  # (event, blob): "skip" | "copy" | "done"


def copy_image(source: ImageSource, dest: ImageDestination, names: list[str] | None = None,
               progress: Progress | None = None) -> str:
    """Copy one image; returns the image id the destination gives it. `names` default
    to the names the source carries."""
    raw, media_type = source.manifest()
    manifest = parse_manifest(raw, media_type, f"manifest of {source.description}")
    for desc in [manifest.config, *manifest.layers]:
        if dest.has_blob(desc):
            _tell(progress, "skip", desc)
            continue
        _tell(progress, "copy", desc)
        with source.open_blob(desc) as stream:
            dest.put_blob(stream, desc)
        _tell(progress, "done", desc)
    dest.put_manifest(raw, manifest.media_type)
    return dest.commit(list(source.names) if names is None else names)


def _tell(progress: Progress | None, event: str, desc: Descriptor) -> None:
    if progress:
        progress(event, desc)
