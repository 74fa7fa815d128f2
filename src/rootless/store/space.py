"""How much one import, load or pull may write into the store.

Every image is hostile: a 10 MB gzip layer can inflate to 10 GB, a blob can be longer
than its manifest says, a tar can hold millions of empty files. The store shares its
filesystem with everything else the user (and, on a shared server, everyone else)
keeps there, so what one layer may write is bounded, counted as it is written:

- `ROOTLESS_LAYER_LIMIT=SIZE` (bytes, or 500M, 10G, ...: binary multiples, as docker's
  --memory) bounds the bytes one layer writes when it is unpacked: its files' data, the
  holes of sparse files not counted. Unset, the bound is the free space of the store's
  filesystem less a reserve.
- Always, whatever the limit: the filesystem keeps a reserve free, min(1 GiB, 5% of
  its size) bytes and min(1M, 5% of its inodes) inodes, for the user's other work and
  for the store's own database. Free space is re-read every 16 MiB or 1024 entries
  written (one statvfs(2)), so layers unpacked in parallel, and other programs, are
  seen too; between two reads a writer may overshoot by that much, which the reserve
  absorbs.

A guard also carries a `stop` event: set by another thread (a cancelled pull), the next
check raises WriteStopped, so a thread unpacking in-process stops within one interval.
"""

from __future__ import annotations

import os
import re

from rootless.errors import ImageError, UsageError

LIMIT_ENV = "ROOTLESS_LAYER_LIMIT"
RESERVE_BYTES = 1 << 30
RESERVE_INODES = 1 << 20
RESERVE_SHARE = 20  # 1/20: 5% of the filesystem, when that is less than the above
CHECK_BYTES = 16 << 20
CHECK_ENTRIES = 1024
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}
_SIZE = re.compile(r"(\d+)(?:\.(\d+))?\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)


class WriteStopped(Exception):
    """The writer's `stop` event was set: its caller was cancelled."""


def parse_size(text: str, what: str = LIMIT_ENV) -> int:
    """'8388608', '8M', '8MiB', '1.5G' -> bytes (binary multiples)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"invalid {what} {text!r} (want a size in bytes, or with a unit "
                         "such as 500M or 10G)")
    whole, fraction, unit = match.groups()
    shift = _UNITS[unit.lower()]
    value = int(whole) << shift
    if fraction:
        value += (int(fraction) << shift) // 10 ** len(fraction)
    return value


def layer_limit() -> int | None:
    """ROOTLESS_LAYER_LIMIT in bytes; None when unset (free space less the reserve)."""
    text = os.environ.get(LIMIT_ENV, "").strip()
    return parse_size(text) if text else None


def human(size: int) -> str:
    """1536 -> '1.5 KiB', as a limit is named in errors."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class SpaceGuard:
    """Counts what one writer puts on the store's filesystem (`path`: a directory on
    it) and refuses (ImageError naming `what`) the write that would pass `limit` bytes
    or eat into the filesystem's reserve. `charge(n)` before writing n bytes, `entry()`
    before making a file, directory or link: an integer comparison each, until a
    checkpoint is passed."""

    def __init__(self, path, what: str, limit: int | None = None, stop=None) -> None:
        self.path, self.what, self.limit, self.stop = path, what, limit, stop
        self.written = self.entries = 0
        self.checkpoint = self.entry_checkpoint = 0
        self.allowed = self.entries_allowed = 0
        self.reserve = 0
        self._measure()

    def charge(self, size: int) -> None:
        self.written += size
        if self.written > self.checkpoint:
            self._check()

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.entry_checkpoint:
            self._check()

    def _check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise WriteStopped(self.what)
        if self.limit is not None and self.written > self.limit:
            raise ImageError(f"{self.what} unpacks to more than {human(self.limit)} "
                             f"({LIMIT_ENV}): refused")
        self._measure()
        if self.written > self.allowed:
            raise ImageError(
                f"{self.what} needs more than {human(max(self.allowed, 0))}, what the "
                f"store's filesystem has free beyond its {human(self.reserve)} reserve: "
                "refused (free some space, or move the store with --root)")
        if self.entries > self.entries_allowed:
            raise ImageError(f"{self.what} holds more files than the store's filesystem "
                             "has inodes free, less its reserve: refused")

    def _measure(self) -> None:
        """Re-read the free space; set the next checkpoints."""
        unknown = 1 << 62
        try:
            st = os.statvfs(self.path)
        except OSError:  # a filesystem that will not say (some FUSE ones): no bound
            st = None
        if st is not None and st.f_blocks:
            self.reserve = min(RESERVE_BYTES, st.f_blocks * st.f_frsize // RESERVE_SHARE)
            self.allowed = self.written + st.f_bavail * st.f_frsize - self.reserve
        else:
            self.allowed = unknown
        self.checkpoint = min(self.written + CHECK_BYTES, self.allowed)
        if self.limit is not None:
            self.checkpoint = min(self.checkpoint, self.limit)
        if st is not None and st.f_files:  # 0 where inodes are not counted (btrfs)
            reserve = min(RESERVE_INODES, st.f_files // RESERVE_SHARE)
            self.entries_allowed = self.entries + st.f_favail - reserve
        else:
            self.entries_allowed = unknown
        self.entry_checkpoint = min(self.entries + CHECK_ENTRIES, self.entries_allowed)
