"""The local store: one directory, opened cheaply by every command.

    <root>/blobs/sha256/<hex>   content-addressed blobs (store/blobs.py)
    <root>/layers/<chain-hex>/  extracted layer trees, the lowerdirs of overlayfs
    <root>/containers/<id>/     container directories (engine/containers.py)
    <root>/volumes/<name>/_data named volumes, made when first needed (engine/volumes.py)
    <root>/tmp/                 temporary entries, renamed into place when complete;
                                each owned by a live command or reclaimed (store/temp.py)
    <root>/owners/              flock(2)ed by each live command that has tmp/ entries
    <root>/state.db             SQLite in WAL mode (store/schema.py)
    <root>/lock                 flock(2): exclusive for changes that must not
                                interleave (removing images, renaming layers in),
                                shared for readers that must not see them half-done

Store.open is on the `rootless run` path: it imports nothing heavy, makes directories
only when missing and creates the schema only when its version row is missing.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rootless.errors import StoreError

SUBDIRS = ("blobs", "blobs/sha256", "layers", "containers", "tmp", "owners")
SCHEMA_VERSION = 6  # of state.db (2: containers.finished, 3: images.removed,
# 4: containers.labels, 5: volumes, 6: monitors); store/schema.py creates and upgrades it


def default_root() -> Path:
    """ROOTLESS_ROOT, else $XDG_DATA_HOME/rootless, else ~/.local/share/rootless."""
    env = os.environ.get("ROOTLESS_ROOT")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME")
    if data and os.path.isabs(data):
        return Path(data) / "rootless"
    return Path.home() / ".local" / "share" / "rootless"


class Store:
    """An open store. `db` is a sqlite3 connection: wrap every change in `with store.db:`
    (one transaction); `lock()` serialises changes between processes."""

    def __init__(self, root: Path, db: sqlite3.Connection) -> None:
        self.root = root
        self._db: sqlite3.Connection | None = db
        self.blobs_dir = root / "blobs" / "sha256"
        self.layers_dir = root / "layers"
        self.containers_dir = root / "containers"
        self.volumes_dir = root / "volumes"
        self.tmp_dir = root / "tmp"
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self._lock_shared = False
        self._temp_owner = None  # store/temp.py's TempOwner, made when first needed

    @classmethod
    def open(cls, root: Path | str | None = None) -> "Store":
        root = Path(root) if root else default_root()
        root = root if root.is_absolute() else Path.cwd() / root
        _make_dirs(root)
        store = cls(root, _connect(root))
        store._ensure_schema()
        return store

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:  # closed by disconnect(): opened again when needed
            self._db = _connect(self.root)
        return self._db

    def disconnect(self) -> None:
        """Close the database connection; the next use of `db` opens a new one. A
        command disconnects before it forks a process that will open its own (the
        container's monitor): SQLite's per-process lock bookkeeping must not be
        inherited across fork(2), or the two processes' writes and the WAL they share
        go wrong ("How To Corrupt An SQLite Database File", 2.6)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def reconnect(self) -> None:
        """disconnect(), then a new connection at once."""
        self.disconnect()
        _ = self.db

    def _ensure_schema(self) -> None:
        try:
            row = self.db.execute("SELECT version FROM schema_version").fetchone()
            if row and row[0] == SCHEMA_VERSION:
                return
        except sqlite3.DatabaseError as e:
            if "no such table" not in str(e):
                raise StoreError(f"the store database {self.root / 'state.db'} is "
                                 f"unreadable: {e} (move it away to start afresh)") from None
        from rootless.store import schema

        with self.lock():
            schema.create_or_upgrade(self.db, self.root)

    def close(self) -> None:
        if self._temp_owner is not None:
            self._temp_owner.release()
        self.disconnect()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---- locking ----

    @contextmanager
    def lock(self, shared: bool = False) -> Iterator["Store"]:
        """flock on <root>/lock; re-entrant within one Store (a nested exclusive lock
        inside a shared one upgrades it for its duration)."""
        import fcntl

        if self._lock_fd is None:
            self._lock_fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                    0o600)
        outer_depth, outer_shared = self._lock_depth, self._lock_shared
        take = outer_depth == 0 or (outer_shared and not shared)
        if take:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            self._lock_shared = shared
        self._lock_depth += 1
        try:
            yield self
        finally:
            self._lock_depth -= 1
            if take:
                if outer_depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                else:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
                self._lock_shared = outer_shared

    # ---- temporary entries ----

    def temp_path(self, kind: str) -> Path:
        """A fresh name under tmp/ (same filesystem as blobs/ and layers/, so renames are
        atomic), owned by this command (store/temp.py): whatever kills it, what it
        leaves there is removed by the next command's clean_temp()."""
        return self.temp_owner().path(kind)

    def temp_owner(self):
        """This command's TempOwner of tmp/ entries (store/temp.py)."""
        if self._temp_owner is None:
            from rootless.store.temp import TempOwner

            self._temp_owner = TempOwner(self.root)
        return self._temp_owner

    def release_temp(self) -> None:
        """Give up this command's claim on tmp/ now (its entries there are gone): a
        long-lived process (a container's monitor) must not leave its owner file
        behind for the next command to reclaim."""
        if self._temp_owner is not None:
            self._temp_owner.release()
            self._temp_owner = None

    def clean_temp(self, own: bool = False, remove=None) -> None:
        """Remove tmp/ entries whose owner is gone; with `own`, this command's too (a
        failed command, whose abandoned threads may still write). `remove` removes
        one entry (default: kernel/remove.py's; the engine passes one that falls back
        to a user namespace); what it cannot remove is left, never an error."""
        from rootless.store.temp import temp_clean

        own_token = self._temp_owner.token if own and self._temp_owner else None
        temp_clean(self.root, own_token, remove)


def _connect(root: Path) -> sqlite3.Connection:
    try:
        # the sqlite3 module's default: DML opens a transaction, `with db:` ends it
        db = sqlite3.connect(root / "state.db", timeout=30, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the store database {root / 'state.db'}: {e}") \
            from None
    return db


def _make_dirs(root: Path) -> None:
    if (root / "tmp").is_dir():
        return
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in SUBDIRS:
            (root / sub).mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store at {root}: "
                         f"{(e.strerror or str(e)).lower()} (use --root or ROOTLESS_ROOT "
                         "to put it elsewhere)") from None

