"""store/: where the store lives, its layout and schema, CAS blobs, locks, temp cleanup."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ok

from rootless.errors import ImageError, StoreError
from rootless.store import Store, default_root, schema
from rootless.store.blobs import (
    blob_exists,
    blob_path,
    blob_put_bytes,
    blob_put_stream,
    digest_hex,
    remove_tree,
)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- where ----

def test_default_root_is_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.delenv("ROOTLESS_ROOT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "rootless"


def test_default_root_without_xdg_is_local_share(monkeypatch, tmp_path):
    monkeypatch.delenv("ROOTLESS_ROOT", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_root() == tmp_path / ".local" / "share" / "rootless"


def test_rootless_root_env_overrides_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ROOTLESS_ROOT", str(tmp_path / "env"))
    assert default_root() == tmp_path / "env"


def test_explicit_root_overrides_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ROOTLESS_ROOT", str(tmp_path / "env"))
    s = Store.open(tmp_path / "explicit")
    assert s.root == tmp_path / "explicit"
    assert not (tmp_path / "env").exists()
    s.close()


# ---- layout and schema ----

def test_layout_and_private_root(store):
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    for sub in ("blobs/sha256", "layers", "containers", "tmp"):
        assert (store.root / sub).is_dir()
    assert store.layers_dir == store.root / "layers"
    assert store.containers_dir == store.root / "containers"
    assert store.tmp_dir == store.root / "tmp"


def test_schema_version_and_wal(store):
    assert schema.current_version(store.db) == schema.VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.container
def test_create_leaves_the_wal_to_the_next_command(rootless, busybox):
    """Closing the last connection checkpoints the WAL (two fsyncs) and deletes it (two
    more when the next write makes it again): a command that exits leaves it instead,
    as a crash would, and the next one reads it back."""
    cid = ok(rootless("create", "--name", "made", busybox, "true")).strip()
    assert (Path(rootless.env["ROOTLESS_ROOT"]) / "state.db-wal").stat().st_size > 0
    assert ok(rootless("ps", "-aq", "--no-trunc")).split() == [cid]


def test_containers_table_has_the_agreed_columns(store):
    columns = [r[1] for r in store.db.execute("PRAGMA table_info(containers)")]
    assert columns == ["id", "name", "image_id", "image_name", "created", "state", "command",
                       "spec_path", "pid", "exit_code", "auto_remove", "finished", "labels",
                       "init_start", "monitor_pid", "started", "restart_count",
                       "stopped_by_user"]


def test_a_version_1_store_gains_the_finished_column(tmp_path):
    import sqlite3 as sq

    from rootless.store import Store

    root = tmp_path / "old"
    root.mkdir()
    db = sq.connect(root / "state.db")
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES (1);"
                     "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT UNIQUE, "
                     "image_id TEXT, image_name TEXT, created REAL, state TEXT, command TEXT,"
                     " spec_path TEXT, pid INTEGER, exit_code INTEGER, auto_remove INTEGER);")
    db.close()
    store = Store.open(root)
    columns = [r[1] for r in store.db.execute("PRAGMA table_info(containers)")]
    assert columns[-7:-5] == ["finished", "labels"]
    assert columns[-5:] == ["init_start", "monitor_pid", "started", "restart_count",
                            "stopped_by_user"]


def test_a_version_3_store_keeps_its_containers_and_gains_the_labels_column(tmp_path):
    import sqlite3 as sq

    from rootless.engine.containers import container_list
    from rootless.store import Store

    root = tmp_path / "old"
    root.mkdir()
    db = sq.connect(root / "state.db")
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES (3);"
                     "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT UNIQUE, "
                     "image_id TEXT, image_name TEXT, created REAL, state TEXT, command TEXT,"
                     " spec_path TEXT, pid INTEGER, exit_code INTEGER, auto_remove INTEGER,"
                     " finished REAL);"
                     "INSERT INTO containers (id, name, state, auto_remove) VALUES "
                     "('c1', 'web', 'exited', 0);")
    db.close()
    store = Store.open(root)
    (row,) = container_list(store)
    assert (row.record.name, row.labels) == ("web", None)  # made before labels: none kept


def test_a_version_2_store_keeps_its_images_and_gains_the_removed_column(tmp_path):
    import sqlite3 as sq

    from rootless.store import Store
    from rootless.store import metadata as md

    root = tmp_path / "old"
    root.mkdir()
    db = sq.connect(root / "state.db")
    db.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES (2);"
                     "CREATE TABLE images (id TEXT PRIMARY KEY, config TEXT NOT NULL, "
                     "manifest_digest TEXT, manifest_type TEXT, layers TEXT NOT NULL, "
                     "created REAL, added REAL NOT NULL, size INTEGER NOT NULL DEFAULT 0);"
                     "INSERT INTO images VALUES ('sha256:x', '{}', NULL, NULL, '[]', 1, 2, 3);")
    db.close()
    store = Store.open(root)
    (image,) = md.images_listed(store)
    assert image.id == "sha256:x" and image.size == 3 and image.removed is False


def test_container_names_are_unique(store):
    with store.db:
        store.db.execute("INSERT INTO containers (id, name) VALUES ('a' , 'x')")
    with pytest.raises(sqlite3.IntegrityError):
        with store.db:
            store.db.execute("INSERT INTO containers (id, name) VALUES ('b', 'x')")


def test_reopen_keeps_data(tmp_path):
    s = Store.open(tmp_path / "s")
    with s.db:
        s.db.execute("INSERT INTO tags (name, image_id) VALUES ('n', 'i')")
    s.close()
    s = Store.open(tmp_path / "s")
    assert s.db.execute("SELECT image_id FROM tags").fetchall() == [("i",)]
    s.close()


def test_newer_schema_refused(tmp_path):
    s = Store.open(tmp_path / "s")
    with s.db:
        s.db.execute("UPDATE schema_version SET version=99")
    s.close()
    with pytest.raises(StoreError, match="newer rootless"):
        Store.open(tmp_path / "s")


def test_unwritable_location_is_a_store_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="cannot create the store"):
        Store.open(locked / "store")


def test_open_imports_nothing_heavy(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from rootless.store import Store
        Store.open({str(tmp_path / 's')!r})
        heavy = [m for m in ("trio", "tarfile", "requests", "typer", "gzip", "json")
                 if m in sys.modules]
        print(",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


# ---- blobs ----

def test_blob_verified_and_stored_read_only(store):
    data = b"config bytes"
    digest = blob_put_bytes(store, data, sha(data))
    assert digest == sha(data)
    assert blob_path(store, digest).read_bytes() == data
    assert stat.S_IMODE(os.stat(blob_path(store, digest)).st_mode) == 0o444


def test_blob_with_wrong_digest_refused_and_nothing_left(store):
    wrong = sha(b"other")
    with pytest.raises(ImageError, match="does not match its digest"):
        blob_put_bytes(store, b"content", wrong)
    assert not blob_exists(store, wrong)
    assert os.listdir(store.blobs_dir) == []
    assert os.listdir(store.tmp_dir) == []


def test_truncated_blob_refused(store):
    data = b"0123456789"
    with pytest.raises(ImageError, match="truncated"):
        blob_put_stream(store, io.BytesIO(data[:5]), sha(data), len(data))
    assert os.listdir(store.blobs_dir) == []


def test_blob_rewrite_is_idempotent(store):
    data = b"same"
    blob_put_bytes(store, data, sha(data))
    blob_put_bytes(store, data, sha(data))
    assert os.listdir(store.blobs_dir) == [sha(data)[7:]]


@pytest.mark.parametrize("bad", ["sha256:../../etc/passwd", "sha512:" + "0" * 128,
                                 "sha256:" + "A" * 64, "/etc/passwd", "sha256:abc"])
def test_invalid_digest_never_becomes_a_path(bad):
    with pytest.raises(ImageError, match="digest"):
        digest_hex(bad)


# ---- locks ----

def _try_lock(root: Path, shared: bool) -> bool:
    """Can another process take the lock right now (non-blocking)?"""
    code = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(root / 'lock')!r}, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if {shared} else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(1)
    """)
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_exclusive_lock_excludes_other_processes(store):
    with store.lock():
        assert not _try_lock(store.root, shared=True)
        assert not _try_lock(store.root, shared=False)
    assert _try_lock(store.root, shared=False)


def test_shared_lock_admits_readers_not_writers(store):
    with store.lock(shared=True):
        assert _try_lock(store.root, shared=True)
        assert not _try_lock(store.root, shared=False)


def test_lock_is_reentrant_and_upgrades(store):
    with store.lock(shared=True):
        with store.lock():
            assert not _try_lock(store.root, shared=True)
            with store.lock():
                pass
            assert not _try_lock(store.root, shared=True)
        assert _try_lock(store.root, shared=True)
        assert not _try_lock(store.root, shared=False)
    assert _try_lock(store.root, shared=False)


# ---- temporary entries ----

def test_clean_temp_removes_entries_of_dead_processes(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = store.tmp_dir / f"layer-{dead}-abcdef"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub").chmod(0o000)
    mine = store.temp_path("layer")
    mine.mkdir()
    store.clean_temp()
    assert not stale.exists()
    assert mine.exists()


def test_remove_tree_handles_mode_000_directories(tmp_path):
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    (tree / "a" / "b").chmod(0o000)
    (tree / "a").chmod(0o500)
    remove_tree(tree)
    assert not tree.exists()
