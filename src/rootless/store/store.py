"""The local store: one directory, opened cheaply by every command.

    <root>/blobs/sha256/<hex>   content-addressed blobs (store/blobs.py)
    <root>/layers/<chain-hex>/  extracted layer trees, the lowerdirs of overlayfs
    <root>/containers/<id>/     container directories (engine/containers.py)
    <root>/tmp/                 temporary entries, renamed into place when complete
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
from rootless.kernel.procs import pid_alive

SUBDIRS = ("blobs", "blobs/sha256", "layers", "containers", "tmp")
SCHEMA_VERSION = 3  # of state.db (2: containers.finished, 3: images.removed); store/schema.py creates and upgrades it


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
        self.db = db
        self.blobs_dir = root / "blobs" / "sha256"
        self.layers_dir = root / "layers"
        self.containers_dir = root / "containers"
        self.tmp_dir = root / "tmp"
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self._lock_shared = False

    @classmethod
    def open(cls, root: Path | str | None = None) -> "Store":
        root = Path(root) if root else default_root()
        root = root if root.is_absolute() else Path.cwd() / root
        _make_dirs(root)
        try:
            # the sqlite3 module's default: DML opens a transaction, `with db:` ends it
            db = sqlite3.connect(root / "state.db", timeout=30, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store database {root / 'state.db'}: {e}") \
                from None
        store = cls(root, db)
        store._ensure_schema()
        return store

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
        self.db.close()
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
        atomic). Names carry the creating pid: entries of dead processes are removed by
        clean_temp(), so a killed command leaves nothing that lasts."""
        return self.tmp_dir / f"{kind}-{os.getpid()}-{os.urandom(6).hex()}"

    def clean_temp(self, own: bool = False) -> None:
        """Remove tmp/ entries whose creating process is gone; with `own`, this
        process's too (a failed command, whose abandoned threads may still write)."""
        from rootless.store.blobs import remove_tree

        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return
        for name in names:
            parts = name.split("-")
            if len(parts) < 3 or not parts[-2].isdigit():
                continue
            pid = int(parts[-2])
            if (own and pid == os.getpid()) or not pid_alive(pid):
                try:
                    remove_tree(self.tmp_dir / name)
                except FileNotFoundError:
                    pass  # its writer moved it into place meanwhile


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

