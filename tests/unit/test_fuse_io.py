"""The FUSE overlay's READ answers (fs/fuse_io.py): large reads are slices of a mapping of
the file, never stale, never past its end; small ones and the file's last bytes are
preads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rootless.fs.fuse_io import MAP_MIN, Reads

CHUNK = 128 * 1024  # a READ of a sequential reader (the kernel's readahead window)


@pytest.fixture
def reads():
    reads = Reads()
    yield reads
    for fh in list(reads.maps):
        reads.forget(fh)


def open_file(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def test_a_large_read_is_answered_from_a_mapping_not_a_copy(tmp_path, reads):
    fd = open_file(tmp_path / "f", os.urandom(4 * CHUNK))
    got = reads.read(fd, CHUNK, CHUNK)
    assert isinstance(got, memoryview)
    assert bytes(got) == (tmp_path / "f").read_bytes()[CHUNK:2 * CHUNK]
    os.close(fd)


def test_a_small_read_is_a_pread(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"s" * (4 * CHUNK))
    assert reads.read(fd, 0, MAP_MIN - 1) == b"s" * (MAP_MIN - 1)
    assert fd not in reads.maps
    os.close(fd)


def test_a_read_past_the_end_is_short(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"e" * (CHUNK + 10))
    assert reads.read(fd, CHUNK, CHUNK) == b"e" * 10
    assert reads.read(fd, 2 * CHUNK, CHUNK) == b""
    os.close(fd)


def test_a_read_sees_a_write_made_after_the_mapping(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"a" * (2 * CHUNK))
    reads.read(fd, 0, CHUNK)
    os.pwrite(fd, b"b" * CHUNK, 0)
    assert bytes(reads.read(fd, 0, CHUNK)) == b"b" * CHUNK
    os.close(fd)


def test_a_grown_file_is_mapped_again_to_its_new_end(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"g" * CHUNK)
    reads.read(fd, 0, CHUNK)
    os.pwrite(fd, b"h" * CHUNK, CHUNK)
    assert bytes(reads.read(fd, CHUNK, CHUNK)) == b"h" * CHUNK
    os.close(fd)


def test_a_shrunk_file_is_mapped_again_before_it_is_read(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"t" * (4 * CHUNK))
    reads.read(fd, 2 * CHUNK, CHUNK)
    os.ftruncate(fd, 2 * CHUNK)
    assert bytes(reads.read(fd, 0, CHUNK)) == b"t" * CHUNK
    assert len(reads.maps[fd][0]) == 2 * CHUNK  # never a mapping past the end
    os.close(fd)


def test_a_file_replaced_under_the_descriptor_reads_the_new_file(tmp_path, reads):
    """A copy-up dup2's the upper copy over a reader's descriptor (fs/fuse_upper.py):
    the same descriptor, the same size, another file."""
    fd = open_file(tmp_path / "lower", b"o" * (2 * CHUNK))
    reads.read(fd, 0, CHUNK)
    new = open_file(tmp_path / "upper", b"n" * (2 * CHUNK))
    os.dup2(new, fd, inheritable=False)
    os.close(new)
    assert bytes(reads.read(fd, 0, CHUNK)) == b"n" * CHUNK
    os.close(fd)


def test_forget_unmaps_even_while_a_slice_is_still_held(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"k" * (2 * CHUNK))
    held = reads.read(fd, 0, CHUNK)
    reads.forget(fd)
    assert fd not in reads.maps
    assert bytes(held[:4]) == b"kkkk"  # the mapping goes with its last slice
    os.close(fd)


def test_an_empty_file_reads_empty(tmp_path, reads):
    fd = open_file(tmp_path / "f", b"")
    assert reads.read(fd, 0, CHUNK) == b""
    os.close(fd)
