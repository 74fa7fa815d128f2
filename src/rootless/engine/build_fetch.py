"""ADD's remote sources: an http(s) URL downloaded whole (bounded), its mtime from
Last-Modified as docker sets it, verified against --checksum when one is given."""

from __future__ import annotations

import hashlib

from rootless.engine.build_context import BuildError

FETCH_LIMIT = 1 << 30
TIMEOUT = 60


def fetch(url: str, checksum: str | None) -> tuple[bytes, int]:
    import email.utils

    import requests

    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code >= 400:
                raise BuildError(f"failed to GET {url} with status {response.status_code} "
                                 f"{response.reason}")
            chunks, size = [], 0
            for chunk in response.iter_content(1 << 20):
                size += len(chunk)
                if size > FETCH_LIMIT:
                    raise BuildError(f"{url}: larger than {FETCH_LIMIT} bytes")
                chunks.append(chunk)
            modified = response.headers.get("Last-Modified")
    except requests.RequestException as e:
        raise BuildError(f"failed to GET {url}: {e}") from None
    data = b"".join(chunks)
    if checksum:
        algorithm, _, want = checksum.partition(":")
        if algorithm not in ("sha256", "sha384", "sha512") or not want:
            raise BuildError(f"invalid checksum {checksum!r}: want sha256:HEX")
        got = hashlib.new(algorithm, data).hexdigest()
        if got != want.lower():
            raise BuildError(f"digest mismatch for {url}: {algorithm}:{got}, expected "
                             f"{checksum}")
    mtime = 0
    if modified:
        try:
            mtime = int(email.utils.parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            mtime = 0
    return data, mtime
