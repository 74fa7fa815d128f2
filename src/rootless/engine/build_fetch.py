"""ADD's remote sources: an http(s) URL downloaded into a file in the store's tmp/
(spooled in chunks, never held in memory; bounded as a layer is, store/space.py), its
mtime from Last-Modified as docker sets it, verified against --checksum when one is
given."""

from __future__ import annotations

import hashlib
import os

from rootless.engine.build_context import BuildError

TIMEOUT = 60
_CHUNK = 1 << 20


def fetch(url: str, checksum: str | None, path: str) -> tuple[str, int, int]:
    """Download `url` into `path` (a new file); returns its sha256 hex digest, its
    size and its mtime. On any failure, Ctrl-C included, `path` is removed."""
    algorithm, want = _checksum(checksum)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with open(fd, "wb") as out:
            digest, other, size, modified = _download(url, out, path, algorithm)
    except BaseException:
        os.unlink(path)
        raise
    if want is not None:
        got = (other or digest).hexdigest()
        if got != want:
            os.unlink(path)
            raise BuildError(f"digest mismatch for {url}: {algorithm}:{got}, expected "
                             f"{checksum}")
    return digest.hexdigest(), size, _mtime(modified)


def _checksum(checksum: str | None) -> tuple[str, str | None]:
    if not checksum:
        return "sha256", None
    algorithm, _, want = checksum.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512") or not want:
        raise BuildError(f"invalid checksum {checksum!r}: want sha256:HEX")
    return algorithm, want.lower()


def _download(url: str, out, path: str, algorithm: str):
    import requests

    from rootless.errors import ImageError
    from rootless.store.space import SpaceGuard, layer_limit

    digest = hashlib.sha256()
    other = None if algorithm == "sha256" else hashlib.new(algorithm)
    guard = SpaceGuard(os.path.dirname(path), f"ADD {url}", layer_limit())
    size = 0
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code >= 400:
                raise BuildError(f"failed to GET {url} with status {response.status_code} "
                                 f"{response.reason}")
            for chunk in response.iter_content(_CHUNK):
                guard.charge(len(chunk))
                out.write(chunk)
                digest.update(chunk)
                if other is not None:
                    other.update(chunk)
                size += len(chunk)
            modified = response.headers.get("Last-Modified")
    except requests.RequestException as e:
        raise BuildError(f"failed to GET {url}: {e}") from None
    except ImageError as e:
        raise BuildError(str(e)) from None
    return digest, other, size, modified


def _mtime(modified: str | None) -> int:
    import email.utils

    if not modified:
        return 0
    try:
        return int(email.utils.parsedate_to_datetime(modified).timestamp())
    except (TypeError, ValueError):
        return 0
