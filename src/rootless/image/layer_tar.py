"""Reading a hostile layer tar with Python's tarfile, bounded: the header side of
image/layers.py.

Headers: tarfile reads a PAX header, a GNU long name or long link whole into memory,
whatever size the tar declares, keeps what PAX global headers say for every later
member, and keeps every sparse map entry it is given. Here each of those is capped at
1 MiB (as Go's archive/tar caps them: `maxSpecialFileSize`), global headers at 1 MiB in
all, and a sparse map at 64Ki segments, so a layer cannot make the unpacker hold
gigabytes; the number parsing errors CPython lets through as ValueError become tar
errors.

Sparse members (GNU type 'S' and the PAX sparse formats 0.0, 0.1 and 1.0, which tarfile
parses into `member.sparse`) are written as holes: each data segment is read from the
archive and written at its offset with pwrite(2), then ftruncate(2) gives the file its
declared size. tarfile's own reader would hand out the holes as zeros, so a 1.5 KB tar
declaring 16 GiB would write 16 GiB; here it writes its few data bytes, and only those
count against the layer's limit (store/space.py). The map is checked first: segments in
order, not overlapping, inside the declared size; otherwise the entry is refused (an
unordered map would also send tarfile's reader into an endless loop).
"""

from __future__ import annotations

import os
import tarfile

from rootless.errors import ImageError

MAX_HEADER = 1 << 20
MAX_SEGMENTS = 1 << 16
_CHUNK = 1 << 20
_SPECIAL = {tarfile.XHDTYPE: "pax", tarfile.XGLTYPE: "pax global",
            tarfile.SOLARIS_XHDTYPE: "pax", tarfile.GNUTYPE_LONGNAME: "long name",
            tarfile.GNUTYPE_LONGLINK: "long link name"}


class BoundedInfo(tarfile.TarInfo):
    """A TarInfo whose special headers are bounded (pass as tarfile.open's tarinfo=)."""

    def _proc_member(self, tar):
        if self.type in _SPECIAL and self.size > MAX_HEADER:
            raise tarfile.ReadError(f"a {_SPECIAL[self.type]} header of {self.size} bytes "
                                    f"(more than {MAX_HEADER >> 20} MiB)")
        if self.type == tarfile.XGLTYPE:  # global headers add up, for every later member
            tar.global_pax_read = getattr(tar, "global_pax_read", 0) + self.size
            if tar.global_pax_read > MAX_HEADER:
                raise tarfile.ReadError(f"pax global headers of more than "
                                        f"{MAX_HEADER >> 20} MiB in all")
        try:
            return super()._proc_member(tar)
        except ValueError as e:  # int() of a sparse map or size (CPython 3.11)
            raise tarfile.ReadError(f"a malformed number in a header ({e})") from None

    def _proc_sparse(self, tar):
        """Old GNU sparse ('S'): four segments in the header, more in extension blocks
        (21 each) for as long as each says another follows; here, not forever."""
        structs, extended, realsize = self._sparse_structs
        del self._sparse_structs
        while extended:
            if len(structs) > MAX_SEGMENTS:
                raise tarfile.ReadError(f"a sparse map of more than {MAX_SEGMENTS} segments")
            block = tar.fileobj.read(tarfile.BLOCKSIZE)
            if len(block) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("unexpected end of data in a sparse map")
            for pos in range(0, 21 * 24, 24):
                try:
                    offset = tarfile.nti(block[pos:pos + 12])
                    length = tarfile.nti(block[pos + 12:pos + 24])
                except ValueError:
                    break
                if offset and length:
                    structs.append((offset, length))
            extended = bool(block[504])
        self.sparse = structs
        self.offset_data = tar.fileobj.tell()
        tar.offset = self.offset_data + self._block(self.size)
        self.size = realsize
        return self

    def _proc_gnusparse_10(self, next, pax_headers, tar):
        """PAX sparse 1.0: the map is decimal text (a count, then offset and length
        lines) at the start of the data, padded to whole blocks."""
        numbers: list[int] = []
        count, buf, read = None, b"", 0
        while count is None or len(numbers) < 2 * count:
            while b"\n" not in buf:
                if len(buf) > 64:  # a number has 20 digits at most
                    raise tarfile.ReadError("a malformed sparse map")
                block = tar.fileobj.read(tarfile.BLOCKSIZE)
                read += len(block)
                if len(block) < tarfile.BLOCKSIZE or read > MAX_HEADER:
                    raise tarfile.ReadError("a sparse map that is truncated or larger "
                                            f"than {MAX_HEADER >> 20} MiB")
                buf += block
            line, buf = buf.split(b"\n", 1)
            if count is None:
                count = int(line)
                if count > MAX_SEGMENTS:
                    raise tarfile.ReadError(f"a sparse map of {count} segments")
            else:
                numbers.append(int(line))
        next.offset_data = tar.fileobj.tell()
        next.sparse = list(zip(numbers[::2], numbers[1::2]))


def sparse_segments(member, what: str) -> list[tuple[int, int]]:
    """The data segments (offset, length) of a sparse member, checked; the empty ones
    (GNU tar ends a file that ends in a hole with one at its size) left out."""
    size, segments, end = member.size, [], 0
    refused = f"{what}: sparse entry {member.name!r}"
    if not isinstance(size, int) or size < 0:
        raise ImageError(f"{refused} declares a negative size: refused")
    if len(member.sparse) > MAX_SEGMENTS:
        raise ImageError(f"{refused} has more than {MAX_SEGMENTS} segments: refused")
    for offset, length in member.sparse:
        if offset < 0 or length < 0 or offset > size or length > size - offset:
            raise ImageError(f"{refused} has a segment ({offset}, {length}) outside its "
                             f"size {size}: refused")
        if not length:
            continue
        if offset < end:
            raise ImageError(f"{refused} has segments out of order or overlapping: "
                             "refused")
        segments.append((offset, length))
        end = offset + length
    return segments


def write_sparse(tar, member, fd: int, guard, what: str) -> None:
    """Write a sparse member's data segments at their offsets into `fd` (a new empty
    file), holes left as holes; `guard` is charged the data bytes only."""
    segments = sparse_segments(member, what)
    stream = tar.fileobj  # the stream tarfile reads, at this member's data (forward only)
    stream.seek(member.offset_data)
    for offset, length in segments:
        while length:
            chunk = stream.read(min(length, _CHUNK))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data")
            guard.charge(len(chunk))
            _pwrite_all(fd, chunk, offset)
            offset += len(chunk)
            length -= len(chunk)
    os.ftruncate(fd, member.size)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done
