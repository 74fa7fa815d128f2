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
only when missing and creates the schema only when its version row is missing. Its
paths are str (`store.dir`): pathlib (with the urllib.parse it imports) costs ~3.5 ms,
a fifteenth of a `run`; `store.root` and the other Path attributes are made when first
read, for the commands off the hot paths.
"""

from __future__ import annotations

import os
import sys

from rootless.errors import StoreError
from rootless.store.root import default_dir as _default_dir
from rootless.store.root import store_root


def _load_sqlite():
    """sqlite3's own C module: the package's dbapi2 imports datetime for its date
    adapters, which the store never uses (~0.8 ms of every command); the classes and
    functions are the same (sqlite3.connect is _sqlite3.connect, sqlite3.Error
    _sqlite3.Error). And without functools where it can: the module's init takes
    functools.lru_cache for its statement cache (CPython 3.11, Modules/_sqlite/module.c,
    load_functools_lru_cache), and functools' imports (collections, types, reprlib)
    cost every `run` ~1.7 ms; lru_cache is the C _functools._lru_cache_wrapper either
    way, so a stand-in module hands over exactly that, and is gone once the module is
    loaded. Should a later Python want more of functools, the real one is used."""
    if "functools" in sys.modules:
        import _sqlite3
        return _sqlite3
    import _functools

    def lru_cache(maxsize=128, typed=False):
        def decorating(function):
            return _functools._lru_cache_wrapper(function, maxsize, typed,
                                                 lambda *info: info)
        return decorating

    stand_in = type(sys)("functools")
    stand_in.lru_cache = lru_cache
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3
    except (ImportError, AttributeError):
        _sqlite3 = None
    finally:
        if sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]
    if _sqlite3 is None:
        import _sqlite3
    return _sqlite3


sqlite3 = _load_sqlite()

SUBDIRS = ("blobs", "blobs/sha256", "layers", "containers", "tmp", "owners")
SCHEMA_VERSION = 10  # of state.db (2: containers.finished, 3: images.removed,
# 4: containers.labels, 5: volumes, 6: monitors, 7: layers.owners, 8: build_cache,
# 9: networks, network_endpoints; 10: network_endpoints.requested_ip);
# store/schema.py
# creates and upgrades it


TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only (module docstring)
    from pathlib import Path


def default_root() -> Path:
    """ROOTLESS_ROOT, else $XDG_DATA_HOME/rootless, else ~/.local/share/rootless."""
    from pathlib import Path

    return Path(_default_dir())


class _PathOf:
    """A Path attribute of the store (`store.root`, `store.blobs_dir`, ...), made and
    kept when first read."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, store: "Store | None", owner: type | None = None):
        if store is None:
            return self
        from pathlib import Path

        path = store.__dict__[self.name] = Path(store.dir, *self.parts)
        return path


class Store:
    """An open store. `db` is a sqlite3 connection: wrap every change in `with store.db:`
    (one transaction); `lock()` serialises changes between processes."""

    root = _PathOf()
    blobs_dir = _PathOf("blobs", "sha256")
    layers_dir = _PathOf("layers")
    containers_dir = _PathOf("containers")
    volumes_dir = _PathOf("volumes")
    tmp_dir = _PathOf("tmp")

    def __init__(self, root: str | Path, db: sqlite3.Connection) -> None:
        self.dir = os.fspath(root)  # absolute; what every path of the store starts with
        self._db: sqlite3.Connection | None = db
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self._lock_shared = False
        self._temp_owner = None  # store/temp.py's TempOwner, made when first needed

    @classmethod
    def open(cls, root: Path | str | None = None) -> "Store":
        root = store_root(root)
        _make_dirs(root)
        store = cls(root, _connect(root))
        store._ensure_schema()
        return store

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:  # closed by disconnect(): opened again when needed
            self._db = _connect(self.dir)
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
                raise StoreError(f"the store database {self.dir}/state.db is "
                                 f"unreadable: {e} (move it away to start afresh)") from None
        from rootless.store import schema

        with self.lock():
            schema.create_or_upgrade(self.db, self.root)

    def close(self, exiting: bool = False) -> None:
        """With `exiting` (the process is about to os._exit), the SQLite connection is
        left for the exit to drop: closing the last connection checkpoints the WAL
        (two fsyncs) and deletes it, and the next write makes a new one (two more:
        the WAL's header and its directory), ~4-10 ms of a `run` on this VM's disk.
        Dropped by the exit, as after a crash, the WAL stays, and the next connection
        reads it back (WAL mode is made for that; nothing committed is lost, and
        wal_autocheckpoint keeps it short)."""
        if self._temp_owner is not None:
            self._temp_owner.release()
        if not exiting:
            self.disconnect()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---- locking ----

    def lock(self, shared: bool = False) -> "_StoreLock":
        """flock on <root>/lock, as a context; re-entrant within one Store (a nested
        exclusive lock inside a shared one upgrades it for its duration)."""
        return _StoreLock(self, shared)

    # ---- temporary entries ----

    def temp_path(self, kind: str) -> Path:
        """A fresh name under tmp/ (same filesystem as blobs/ and layers/, so renames are
        atomic), owned by this command (store/temp.py): whatever kills it, what it
        leaves there is removed by the next command's clean_temp()."""
        return self.temp_owner().path(kind)

    def temp_name(self, kind: str) -> str:
        """temp_path's name as a str (for `run`: no pathlib)."""
        return self.temp_owner().name(kind)

    def temp_owner(self):
        """This command's TempOwner of tmp/ entries (store/temp.py)."""
        if self._temp_owner is None:
            from rootless.store.temp import TempOwner

            self._temp_owner = TempOwner(self.dir)
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


def _connect(root: str) -> sqlite3.Connection:
    path = os.path.join(root, "state.db")
    try:
        # the sqlite3 module's default: DML opens a transaction, `with db:` ends it
        db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the store database {path}: {e}") from None
    return db


def _make_dirs(root: str) -> None:
    if os.path.isdir(os.path.join(root, "tmp")):
        return
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        for sub in SUBDIRS:
            try:
                os.mkdir(os.path.join(root, sub), mode=0o700)
            except FileExistsError:
                if not os.path.isdir(os.path.join(root, sub)):
                    raise
    except OSError as e:
        raise StoreError(f"cannot create the store at {root}: "
                         f"{(e.strerror or str(e)).lower()} (use --root or ROOTLESS_ROOT "
                         "to put it elsewhere)") from None


class _StoreLock:
    """Store.lock()'s context (a class, not contextlib.contextmanager: contextlib imports
    collections and functools, ~3 ms of every `run`)."""

    def __init__(self, store: Store, shared: bool) -> None:
        self.store, self.shared, self.take = store, shared, False
        self.outer_depth, self.outer_shared = 0, False

    def __enter__(self) -> Store:
        import fcntl

        store = self.store
        if store._lock_fd is None:
            store._lock_fd = os.open(os.path.join(store.dir, "lock"),
                                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.outer_depth, self.outer_shared = store._lock_depth, store._lock_shared
        self.take = self.outer_depth == 0 or (self.outer_shared and not self.shared)
        if self.take:
            fcntl.flock(store._lock_fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
            store._lock_shared = self.shared
        store._lock_depth += 1
        return store

    def __exit__(self, *exc) -> None:
        import fcntl

        store = self.store
        store._lock_depth -= 1
        if self.take:
            if self.outer_depth == 0:
                fcntl.flock(store._lock_fd, fcntl.LOCK_UN)
            else:
                fcntl.flock(store._lock_fd, fcntl.LOCK_SH)
            store._lock_shared = self.outer_shared
