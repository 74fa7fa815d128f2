"""The stream plumbing under layer unpacking: gzip read in large chunks, and the
read-ahead thread that inflates while tar entries are written."""

from __future__ import annotations

import gzip
import io
import threading
import zlib

import pytest

from rootless.errors import ImageError
from rootless.image.compression import GzipStream, ReadAhead, decompressed

DATA = bytes(range(256)) * 4096  # 1 MiB


def read_all(stream, size: int) -> bytes:
    parts = []
    while chunk := stream.read(size):
        assert len(chunk) <= size
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("size", [1, 511, 65536, 1 << 22])
def test_gzip_stream_returns_the_data_in_reads_no_larger_than_asked(size):
    data = DATA[:200_000] if size == 1 else DATA
    assert read_all(GzipStream(io.BytesIO(gzip.compress(data))), size) == data


def test_gzip_stream_reads_every_member_of_a_multi_member_file():
    packed = gzip.compress(b"first ") + gzip.compress(b"second")
    assert GzipStream(io.BytesIO(packed)).read() == b"first second"


def test_gzip_stream_refuses_a_truncated_file():
    with pytest.raises(EOFError):
        GzipStream(io.BytesIO(gzip.compress(DATA)[:-100])).read()


def test_gzip_stream_refuses_a_wrong_checksum():
    packed = bytearray(gzip.compress(b"some data"))
    packed[-8] ^= 0xFF  # the crc32 in the trailer
    with pytest.raises(zlib.error):
        GzipStream(io.BytesIO(bytes(packed))).read()


def test_gzip_stream_refuses_trailing_garbage():
    with pytest.raises(zlib.error):
        GzipStream(io.BytesIO(gzip.compress(b"x") + b"garbage")).read()


def test_decompressed_names_the_layer_in_its_error():
    with pytest.raises(ImageError, match="layer sha256:abc is corrupt or truncated"):
        decompressed(io.BytesIO(gzip.compress(DATA)[:-100]), "layer sha256:abc").read()


def test_read_ahead_gives_the_same_bytes_in_any_read_size():
    for size in (1000, 65536, 3 << 20):
        ahead = ReadAhead(io.BytesIO(DATA * 3))
        try:
            assert read_all(ahead, size) == DATA * 3
        finally:
            ahead.close()


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def read(self, n: int) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise ImageError("layer x is corrupt or truncated")
        return b"a" * n


def test_read_ahead_raises_the_inner_error_where_the_reader_reaches_it():
    ahead = ReadAhead(Failing())
    try:
        assert len(ahead.read(2 * ReadAhead.BLOCK)) == 2 * ReadAhead.BLOCK
        with pytest.raises(ImageError, match="corrupt"):
            ahead.read(1)
    finally:
        ahead.close()


class Endless:
    def read(self, n: int) -> bytes:
        return b"z" * n


def test_read_ahead_closed_early_stops_its_thread():
    before = threading.active_count()
    ahead = ReadAhead(Endless())
    ahead.read(10)
    ahead.close()
    assert not ahead.thread.is_alive()
    assert threading.active_count() == before
