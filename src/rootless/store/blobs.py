"""Content-addressed blobs: blobs/sha256/<hex>, verified on the way in.

A blob is written to tmp/ while its sha256 is computed, fsynced, compared with the
digest it claims, and only then renamed into place; so a blob under blobs/ is always
complete and always what its name says, whatever kills the writer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

# the one remover of store trees (by descriptor; files of subordinate ids from the
# storage namespace): kernel/storage_ns.py
from rootless.kernel.storage_ns import remove_tree  # noqa: F401 (used by store users)
from rootless.errors import ImageError

CHUNK = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def digest_hex(digest: str) -> str:
    """The hex of a sha256 digest; anything else (another algorithm, a path) is refused
    before it can become part of a file name."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ImageError(f"unsupported or invalid digest: {str(digest)[:80]!r} "
                         "(want sha256:<64 hex digits>)")
    return digest[7:]


def blob_path(store, digest: str) -> Path:
    return Path(store.blobs_dir) / digest_hex(digest)


def blob_exists(store, digest: str) -> bool:
    return blob_path(store, digest).is_file()


def blob_read(store, digest: str) -> bytes:
    try:
        return blob_path(store, digest).read_bytes()
    except FileNotFoundError:
        raise ImageError(f"blob {digest} is missing from the store") from None


def blob_put_bytes(store, data: bytes, expected: str | None = None) -> str:
    import io

    digest, _ = blob_put_stream(store, io.BytesIO(data), expected, len(data))
    return digest


def blob_put_stream(store, stream: BinaryIO, expected: str | None = None,
                    expected_size: int | None = None, what: str = "blob") -> tuple[str, int]:
    """Copy `stream` into the store; returns (digest, size). With `expected`, a content
    that hashes differently is refused (ImageError) and nothing is stored; with
    `expected_size`, so is one longer, as soon as it is (a registry or archive may send
    more than the manifest declares, without end). Writes stay within the store's free
    space less its reserve (store/space.py)."""
    import hashlib

    from rootless.store.space import SpaceGuard

    if expected is not None:
        digest_hex(expected)
    tmp = store.temp_path("blob")
    h = hashlib.sha256()
    size = 0
    bound = expected_size if expected_size is not None and expected_size >= 0 else None
    name = f"{what} {expected}" if expected else what
    try:
        guard = SpaceGuard(store.tmp_dir, name)
        with open(tmp, "xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if bound is not None and size > bound:
                    raise ImageError(f"{name} is larger than the {bound} bytes its "
                                     "manifest declares: refused")
                guard.charge(len(chunk))
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = "sha256:" + h.hexdigest()
        if expected_size is not None and expected_size >= 0 and size != expected_size:
            raise ImageError(f"{what} {expected or digest} is truncated or corrupt: "
                             f"{size} bytes, want {expected_size}")
        if expected is not None and digest != expected:
            raise ImageError(f"{what} {expected} does not match its digest "
                             f"(content hashes to {digest}): the source is corrupt")
        os.chmod(tmp, 0o444)
        os.rename(tmp, blob_path(store, digest))
    except BaseException:
        _unlink(tmp)
        raise
    return digest, size


def blob_put_file(store, path: Path, digest: str) -> None:
    """Move a file already in tmp/, whose digest the caller computed, into place."""
    os.chmod(path, 0o444)
    os.rename(path, blob_path(store, digest))


def file_digest(path) -> tuple[str, int]:
    """("sha256:<hex>", size) of a file: a layer tar written in tmp/ before it is a blob."""
    import hashlib

    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def blob_remove(store, digest: str) -> None:
    _unlink(blob_path(store, digest))


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


