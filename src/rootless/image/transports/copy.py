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
# copies the blobs the destination lacks; the engine's copies several at once
BlobCopier = Callable[[ImageSource, ImageDestination, list[Descriptor], "Progress | None"],
                      None]


def copy_image(source: ImageSource, dest: ImageDestination, names: list[str] | None = None,
               progress: Progress | None = None,
               copy_blobs: BlobCopier | None = None) -> str:
    """Copy one image; returns the image id the destination gives it. `names` default
    to the names the source carries."""
    raw, media_type = source.manifest()
    manifest = parse_manifest(raw, media_type, f"manifest of {source.description}")
    missing: list[Descriptor] = []
    for desc in [manifest.config, *manifest.layers]:
        if desc.digest in {d.digest for d in missing}:
            continue  # a blob twice in one image is copied once
        if dest.has_blob(desc):
            _tell(progress, "skip", desc)
        else:
            missing.append(desc)
    (copy_blobs or copy_blobs_in_turn)(source, dest, missing, progress)
    dest.put_manifest(raw, manifest.media_type)
    return dest.commit(list(source.names) if names is None else names)


def copy_blobs_in_turn(source: ImageSource, dest: ImageDestination,
                       descs: list[Descriptor], progress: Progress | None) -> None:
    for desc in descs:
        copy_blob(source, dest, desc, progress)


def copy_blob(source: ImageSource, dest: ImageDestination, desc: Descriptor,
              progress: Progress | None) -> None:
    _tell(progress, "copy", desc)
    with source.open_blob(desc) as stream:
        dest.put_blob(stream, desc)
    _tell(progress, "done", desc)


def _tell(progress: Progress | None, event: str, desc: Descriptor) -> None:
    if progress:
        progress(event, desc)
