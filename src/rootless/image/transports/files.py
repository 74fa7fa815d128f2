"""Read-only access to the files of an image archive or layout, by name.

Names inside an archive are lookup keys, never host paths: TarFiles reads members of a
tar (random access, seeking over data); DirFiles reads a directory but only under names
this package builds itself from validated digests (`blobs/sha256/<64 hex>`) or fixed
names (`index.json`, `oci-layout`, `manifest.json`), and never follows symlinks out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.manifest import MAX_MANIFEST


def member_key(name: str) -> str:
    """`./a//b/` -> `a/b`: how tar writers spell the same member differently."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def blob_name(digest: str) -> str:
    from rootless.store.blobs import digest_hex

    return f"blobs/sha256/{digest_hex(digest)}"


class Files:
    """What TarFiles and DirFiles share: reading a small file whole, bounded."""

    description: str

    def open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def read(self, name: str, limit: int = MAX_MANIFEST) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"{self.description}: {name} is larger than {limit} bytes")
        return data


class TarFiles(Files):
    def __init__(self, path: Path, description: str) -> None:
        import tarfile

        self.description = description
        try:
            self.tar = tarfile.open(path, mode="r:")
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"{description} is not a valid tar archive: {e}") from None
        self.members = {member_key(m.name): m for m in members}

    def exists(self, name: str) -> bool:
        return member_key(name) in self.members

    def size(self, name: str) -> int:
        return self._member(name).size

    def open(self, name: str) -> BinaryIO:
        stream = self.tar.extractfile(self._member(name))
        if stream is None:
            raise ImageError(f"{self.description}: {name} is not a readable file in the "
                             "archive")
        return stream

    def close(self) -> None:
        self.tar.close()

    def _member(self, name: str):
        """The member holding the data of `name`, through symlinks and hardlinks (docker
        save links layers shared between images: `abc/layer.tar -> ../def/layer.tar`)."""
        import posixpath

        key = member_key(name)
        for _ in range(16):
            member = self.members.get(key)
            if member is None:
                raise ImageError(f"{self.description}: {name} is missing from the archive "
                                 "(truncated, or not an image archive?)")
            if member.issym():
                key = member_key(posixpath.normpath(
                    posixpath.join(posixpath.dirname(key), member.linkname)))
            elif member.islnk():
                key = member_key(member.linkname)
            else:
                return member
        raise ImageError(f"{self.description}: {name} is a loop of links")


class DirFiles(Files):
    def __init__(self, path: Path, description: str) -> None:
        self.description = description
        self.root_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open_fd(self, name: str) -> int:
        from rootless.kernel.paths import open_in_root

        try:
            return open_in_root(self.root_fd, member_key(name),
                                os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ImageError(f"{self.description}: {name} is missing") from None

    def exists(self, name: str) -> bool:
        try:
            os.close(self._open_fd(name))
        except ImageError:
            return False
        return True

    def size(self, name: str) -> int:
        fd = self._open_fd(name)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def open(self, name: str) -> BinaryIO:
        return os.fdopen(self._open_fd(name), "rb")

    def close(self) -> None:
        os.close(self.root_fd)
