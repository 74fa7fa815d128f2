"""Layer compression: gzip, zstd, bzip2, xz or none, told apart by their magic bytes.

Decompression errors (a truncated or corrupt stream) surface as ImageError naming the
layer, never as zlib/lzma tracebacks. zstd uses the `zstandard` module when installed,
else the `zstd` program, else says how to get one of them.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from rootless.errors import ImageError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


def detect(head: bytes) -> str:
    """"gzip" | "zstd" | "bzip2" | "xz" | "none"."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


class Prefixed:
    """A reader that returns `head` before the rest of `stream` (to peek at magic bytes
    of streams that cannot seek)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head, self.stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.stream.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.stream.read(n - len(data))
            return data
        return self.stream.read(n)


class Hashing:
    """Counts and sha256-hashes everything read through it."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


class Counting:
    """Reports how many bytes have been read through it: `report(count)` after each
    read, or at most every `every` seconds (and at the end) when given."""

    def __init__(self, stream, report, every: float = 0.0) -> None:
        import time

        self.stream, self.report, self.every = stream, report, every
        self.count, self.clock, self.last = 0, time.monotonic, 0.0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.count += len(data)
        now = self.clock()
        if not data or now - self.last >= self.every:
            self.last = now
            self.report(self.count)
        return data

    def __getattr__(self, name: str):
        # fileno, seekable, seek: the zstd program reads the file itself (then the
        # count stops, and progress with it; the unpack does not)
        return getattr(self.stream, name)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "Counting":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ReadAhead:
    """Reads `inner` in a thread of its own, up to DEPTH blocks ahead of the consumer.
    Decompression and hashing release the GIL, so a layer's bytes are inflated and
    hashed on one core while tar headers are parsed and files written on another (as
    `gzip -d | tar -x` does). The thread never outlives close(), which every user
    calls in a `finally`; an error in `inner` is raised by the read that reaches it."""

    BLOCK = 1 << 20
    DEPTH = 8

    def __init__(self, inner) -> None:
        import queue
        import threading

        self.inner, self.queue = inner, queue.Queue(self.DEPTH)
        self.stop = threading.Event()
        self.block, self.offset, self.eof = b"", 0, False
        self.thread = threading.Thread(target=self._produce, name="rootless-read-ahead",
                                       daemon=True)
        self.thread.start()

    def _produce(self) -> None:
        try:
            while not self.stop.is_set():
                data = self.inner.read(self.BLOCK)
                self.queue.put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self.queue.put(e)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        parts, have = [], 0
        while have < n:
            if self.offset >= len(self.block):
                if self.eof or not self._next_block():
                    break
            piece = self.block[self.offset:self.offset + n - have]
            self.offset += len(piece)
            have += len(piece)
            parts.append(piece)
        return b"".join(parts)

    def _next_block(self) -> bool:
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.eof = True
            raise item
        self.block, self.offset = item, 0
        self.eof = not item
        return bool(item)

    def drain(self) -> None:
        while self.read(self.BLOCK):
            pass

    def close(self) -> None:
        """Stop the thread and wait for it: drained, a blocked put returns at once."""
        import queue

        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self.thread.join()


class _Checked:
    """Turns a decompressor's own exceptions into ImageError naming `what`."""

    def __init__(self, stream, what: str, errors: tuple[type[BaseException], ...],
                 closer=None) -> None:
        self.stream, self.what, self.errors, self.closer = stream, what, errors, closer

    def read(self, n: int = -1) -> bytes:
        try:
            return self.stream.read(n)
        except self.errors as e:
            raise ImageError(f"{self.what} is corrupt or truncated: {e}") from None

    def close(self, check: bool = True) -> None:
        """Release the decompressor; with `check`, raise if it failed (zstd program)."""
        if self.closer:
            self.closer(check)


class GzipStream:
    """gzip (one or more members) read with zlib in large input chunks. Faster than
    gzip.GzipFile, which feeds zlib a tar block at a time and computes the CRC a second
    time in Python; zlib's gzip mode (wbits 31) checks each member's CRC and length
    itself. Output is bounded by each read's size, so a gzip bomb costs no memory."""

    CHUNK = 1 << 18

    def __init__(self, source) -> None:
        import zlib

        self.source, self.zlib = source, zlib
        self.inflater = zlib.decompressobj(31)
        self.done = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        parts, have = [], 0
        while have < n and not self.done:
            data = self._input()
            if data is None:
                break
            out = self.inflater.decompress(data, n - have)
            if out:
                parts.append(out)
                have += len(out)
        return b"".join(parts)

    def _input(self) -> bytes | None:
        """The next compressed bytes to feed, None at the clean end of the last member."""
        if self.inflater.eof:  # a member ended: another may follow
            rest = self.inflater.unused_data or self.source.read(self.CHUNK)
            if not rest:
                self.done = True
                return None
            self.inflater = self.zlib.decompressobj(31)
            return rest
        if self.inflater.unconsumed_tail:
            return self.inflater.unconsumed_tail
        data = self.source.read(self.CHUNK)
        if not data:
            raise EOFError("compressed file ended before the end-of-stream marker was "
                           "reached")
        return data


def decompressed(stream: BinaryIO, what: str) -> _Checked:
    """A reader of the uncompressed bytes of `stream`; call close() when done."""
    head = stream.read(6)
    kind = detect(head)
    source = Prefixed(head, stream)
    if kind == "gzip":
        import zlib

        return _Checked(GzipStream(source), what, (EOFError, zlib.error))
    if kind == "bzip2":
        import bz2

        return _Checked(bz2.BZ2File(source), what, (OSError, EOFError, ValueError))
    if kind == "xz":
        import lzma

        return _Checked(lzma.LZMAFile(source), what, (lzma.LZMAError, EOFError))
    if kind == "zstd":
        return _zstd(stream, source, what)
    return _Checked(source, what, ())


def _zstd(stream: BinaryIO, source: Prefixed, what: str) -> _Checked:
    try:
        import zstandard
    except ImportError:
        return _zstd_program(stream, what)
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
    return _Checked(reader, what, (zstandard.ZstdError, EOFError))


def _zstd_program(stream: BinaryIO, what: str) -> _Checked:
    import os
    import shutil
    import subprocess

    program = shutil.which("zstd")
    if not program or not hasattr(stream, "fileno") or not stream.seekable():
        raise ImageError(f"{what} is zstd-compressed: install the zstandard Python module "
                         "or the zstd program to read it")
    stream.seek(0)
    os.lseek(stream.fileno(), 0, os.SEEK_SET)  # a buffered reader may not have moved the fd
    proc = subprocess.Popen([program, "-dcq"], stdin=stream, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)

    def close(check: bool) -> None:
        proc.stdout.close()
        if not check:
            proc.kill()
        _, err = proc.communicate()
        if check and proc.returncode not in (0, -13):  # -SIGPIPE: we stopped reading early
            message = err.decode(errors="replace").strip().splitlines()
            raise ImageError(f"{what} is corrupt or truncated: zstd: "
                             f"{message[-1] if message else proc.returncode}")

    return _Checked(proc.stdout, what, (OSError,), close)
