"""Where the archive writers (`save`) put their files: a tar (a file, or a stream such as
stdout) or a directory (an OCI layout).

A sink is all or nothing. A tar file is written under a temporary name in the target's
own directory and a directory is built under one; `commit` renames it into place (one
rename(2), on the same filesystem), `abort` removes it. So a failed or interrupted save
leaves no target at all, and never a truncated one that a later `load` trips on. Only
a stream (stdout) cannot be taken back: a failure midway leaves a short tar there, as
with `docker save` itself.

Every blob is verified against its descriptor while it is written (`put_verified`):
content that does not hash to its digest aborts the save.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from rootless.errors import ImageError
from rootless.image.compression import Hashing
from rootless.image.manifest import Descriptor

_CHUNK = 1 << 20


class Sink:
    description: str

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def add_bytes(self, name: str, data: bytes) -> None:
        import io

        self.add_stream(name, io.BytesIO(data), len(data))

    def add_stream(self, name: str, stream: BinaryIO, size: int) -> None:
        """Write exactly `size` bytes of `stream` as file `name`."""
        raise NotImplementedError

    def add_symlink(self, name: str, target: str) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def put_verified(self, name: str, stream: BinaryIO, desc: Descriptor) -> None:
        """Write a blob as `name`, refusing (ImageError) content that is not `desc`."""
        hashing = Hashing(stream)
        self.add_stream(name, hashing, desc.size)
        if hashing.read(1) or hashing.digest != desc.digest:
            raise ImageError(f"blob {desc.digest[:19]} does not match its digest or size: "
                             "the store is corrupt (try: rootless rmi, then load or pull "
                             "the image again)")


class TarSink(Sink):
    """A tar written to `path` (under a temporary name until commit), or to `stream`
    (`description` names it in errors)."""

    def __init__(self, path: Path | None = None, stream: BinaryIO | None = None,
                 description: str = "standard output") -> None:
        self.path, self.tmp, self.file = path, None, None
        self.names: set[str] = set()
        if path is not None:
            self.description = str(path)
            self.tmp = _temp_name(path)
            try:
                self.file = open(self.tmp, "xb")
            except OSError as e:
                raise ImageError(f"cannot write {path}: {e.strerror.lower()}") from None
            stream = self.file
        else:
            self.description = description
        self.stream = stream
        # "w|": a plain stream, never seeked, so a pipe works as well as a file
        self.tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)

    def has(self, name: str) -> bool:
        return name in self.names

    def _info(self, name: str, kind: bytes, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.size = kind, size
        # what podman and docker 25 write: root-owned, fixed time, so equal images give
        # equal archives
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.mtime = 0
        return info

    def add_dir(self, name: str) -> None:
        if name not in self.names:
            self._write(self._info(name, tarfile.DIRTYPE), None)

    def add_stream(self, name: str, stream: BinaryIO, size: int) -> None:
        self._write(self._info(name, tarfile.REGTYPE, size), stream)

    def add_symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE)
        info.linkname, info.mode = target, 0o777
        self._write(info, None)

    def _write(self, info: tarfile.TarInfo, stream: BinaryIO | None) -> None:
        try:
            self.tar.addfile(info, stream)
        except OSError as e:
            if e.strerror:  # the output failed (disk full, broken pipe)
                raise ImageError(f"cannot write {self.description}: "
                                 f"{e.strerror.lower()}") from None
            # tarfile's own "unexpected end of data": a blob shorter than its size
            raise ImageError(f"{info.name}: blob is shorter than its descriptor says: "
                             "the store is corrupt") from None
        self.names.add(info.name)

    def commit(self) -> None:
        try:
            self.tar.close()
            if self.file is not None:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
                os.replace(self.tmp, self.path)
                self.tmp = None
            else:
                self.stream.flush()
        except OSError as e:
            raise ImageError(f"cannot write {self.description}: "
                             f"{(e.strerror or str(e)).lower()}") from None

    def abort(self) -> None:
        # drop the tar without its end blocks: tarfile's stream would otherwise write
        # them when collected, into an output that just failed
        self.tar.closed = True
        self.tar.fileobj.closed = True
        if self.file is not None:
            self.file.close()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


class DirSink(Sink):
    """A directory built under a temporary name beside `path`, renamed onto it on commit
    (rename(2) replaces an empty directory, so an empty `path` may already exist)."""

    def __init__(self, path: Path) -> None:
        self.path, self.description = path, str(path)
        self.tmp = _temp_name(path)
        try:
            os.mkdir(self.tmp, 0o755)
        except OSError as e:
            raise ImageError(f"cannot write {path}: {e.strerror.lower()}") from None

    def _target(self, name: str) -> Path:
        # names come from this package only (fixed names, blobs/sha256/<validated hex>)
        return self.tmp / name

    def has(self, name: str) -> bool:
        return os.path.lexists(self._target(name))

    def add_dir(self, name: str) -> None:
        os.makedirs(self._target(name), 0o755, exist_ok=True)

    def add_stream(self, name: str, stream: BinaryIO, size: int) -> None:
        target = self._target(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        left = size
        try:
            with open(target, "xb") as out:
                while left and (chunk := stream.read(min(left, _CHUNK))):
                    out.write(chunk)
                    left -= len(chunk)
        except OSError as e:
            raise ImageError(f"cannot write {self.path}: {e.strerror.lower()}") from None
        if left:
            raise ImageError(f"{name}: blob is shorter than its descriptor says: the store "
                             "is corrupt")

    def add_symlink(self, name: str, target: str) -> None:
        os.symlink(target, self._target(name))

    def commit(self) -> None:
        try:
            os.rename(self.tmp, self.path)
        except OSError as e:
            reason = "it exists and is not empty" if e.errno in (39, 17) else \
                e.strerror.lower()
            raise ImageError(f"cannot write {self.path}: {reason}") from None
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is not None:
            from rootless.store.blobs import remove_tree

            remove_tree(self.tmp)
            self.tmp = None


def _temp_name(path: Path) -> Path:
    """A hidden name in the target's directory (so the final rename stays on one
    filesystem), carrying the pid so a leftover's owner can be told."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
