"""The two interfaces every transport implements, after containers/image (skopeo):

- ImageSource: one image to read: its manifest (already narrowed to one platform) and
  its blobs by descriptor. Archives holding several images give one source per image.
- ImageDestination: somewhere to write one image: blobs first (each verified against its
  descriptor), then the manifest, then `commit` with the names to give it.

transports/copy.py moves an image from any source to any destination; pull, push,
save, load and import are that one routine with different ends. A registry transport
(issue 3) implements the same two classes over HTTP.
"""

from __future__ import annotations

from typing import BinaryIO

from rootless.image.manifest import Descriptor


class ImageSource:
    """One image, readable. `names` are the normalised references the source gives it
    (RepoTags of a docker-archive, ref.name of an OCI index entry); may be empty."""

    names: list[str] = []
    description: str = "image source"

    def manifest(self) -> tuple[bytes, str]:
        """The raw manifest bytes (kept byte-exact: their digest is the image's
        manifest digest) and their media type."""
        raise NotImplementedError

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """A readable stream of the blob (a context manager); the destination verifies
        its digest and size, so sources need not."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageDestination:
    description: str = "image destination"

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the blob is already there (it is then not copied again)."""
        return False

    def put_blob(self, stream: BinaryIO, desc: Descriptor) -> None:
        """Store a blob; refuse (ImageError) content whose digest or size differs from
        `desc`, storing nothing."""
        raise NotImplementedError

    def put_manifest(self, raw: bytes, media_type: str) -> None:
        raise NotImplementedError

    def commit(self, names: list[str]) -> str:
        """Make the image visible under `names` (normalised references); returns its id
        ("sha256:<config digest hex>"). Nothing is visible before this returns."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageDestination":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
