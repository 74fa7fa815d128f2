"""The FUSE overlay's READ answers: large reads straight from a mapping of the file.

A READ answered with os.pread copies the data twice: the file's pages into a new
Python bytes, then that into the kernel's page of the FUSE file (libfuse's
fuse_reply_buf is a writev(2) to /dev/fuse). fuse-overlayfs copies it once: it
splices the file into a pipe and the pipe into the device. pyfuse3 cannot splice, but
it answers with any buffer (PyObject_GetBuffer, pyfuse3 >= 3.3), so a large read is
answered with a slice of a read-only shared mapping of the file: the kernel's writev
then copies straight from the file's own page cache, once. Readahead asks for 128 KiB
at a time here (the kernel's default readahead window, which a FUSE server can lower
but not raise: fuse_send_init / process_init_reply), and each such READ costs one
copy less and no allocation.

Where a mapping would be wrong, the read is a pread as before: small reads (a
mapping's set-up costs more than the copy it saves), reads that reach the end of the
file (the short read must stay short), and files a mapping cannot be made of. The
file is fstat'ed at every mapped read, so a mapping never outlives its file: one
replaced under the descriptor (a copy-up dup2's the upper copy over it), grown past
it, or shrunk under it (a truncate) is mapped again before it is read. Nothing in
this process ever touches the mapped memory itself: only the kernel reads it, in the
writev, so even a file shrunk by someone else between the fstat and the writev (the
store's owner, outside the container) fails that one request (the writev's copy
faults, EFAULT, and the kernel ends the READ with an error) and never raises SIGBUS
here.
"""

from __future__ import annotations

import mmap
import os

# Below this, pread: the READs of small files and of a sequential read's first,
# small readahead windows (the window doubles from 16-32 KiB to 128 KiB).
MAP_MIN = 64 * 1024


class Reads:
    """The mappings of the open files, by descriptor (the request's fh)."""

    def __init__(self) -> None:
        self.maps: dict[int, tuple[mmap.mmap, int, int]] = {}  # fh -> (map, dev, ino)

    def read(self, fh: int, off: int, size: int):
        if size < MAP_MIN:
            return os.pread(fh, size, off)
        st = os.fstat(fh)
        end = off + size
        if end > st.st_size:
            return os.pread(fh, size, off)
        mapped = self.maps.get(fh)
        if (mapped is None or len(mapped[0]) < end or len(mapped[0]) > st.st_size
                or mapped[1] != st.st_dev or mapped[2] != st.st_ino):
            mapped = self._map(fh, st)
            if mapped is None:
                return os.pread(fh, size, off)
        return memoryview(mapped[0])[off:end]

    def _map(self, fh: int, st: os.stat_result) -> tuple[mmap.mmap, int, int] | None:
        self.forget(fh)
        try:
            mapped = (mmap.mmap(fh, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ),
                      st.st_dev, st.st_ino)
        except (OSError, ValueError):  # a file of a filesystem without mmap
            return None
        self.maps[fh] = mapped
        return mapped

    def forget(self, fh: int) -> None:
        """At the descriptor's release (and before a new mapping of it)."""
        mapped = self.maps.pop(fh, None)
        if mapped is not None:
            try:
                mapped[0].close()
            except BufferError:  # a slice still exported: unmapped when it goes
                pass
