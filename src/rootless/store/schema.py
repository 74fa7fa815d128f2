"""The SQLite schema of state.db, created once and versioned.

Image ids are config digests ("sha256:<hex>"); tag and digest names are fully
normalised references ("docker.io/library/busybox:latest"); layers are keyed by chain id
("sha256:<hex>"), their tree living in layers/<hex>/.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rootless.errors import StoreError
from rootless.store.store import SCHEMA_VERSION as VERSION

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,            -- sha256:<hex> of the config blob
    config TEXT NOT NULL,           -- the config JSON, as stored in the blob
    manifest_digest TEXT,           -- sha256:<hex> of the manifest blob
    manifest_type TEXT,             -- its media type
    layers TEXT NOT NULL,           -- JSON list of chain ids, lowest first
    created REAL,                   -- the config's `created`, seconds since the epoch
    added REAL NOT NULL,            -- when it entered this store
    size INTEGER NOT NULL DEFAULT 0, -- bytes of file content in its layers
    removed INTEGER NOT NULL DEFAULT 0 -- `rmi -f`'d while stopped containers use it:
                                       -- gone for every command, kept for their layers
);

CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,          -- docker.io/library/busybox:latest
    image_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags (image_id);

CREATE TABLE IF NOT EXISTS digests (
    name TEXT PRIMARY KEY,          -- docker.io/library/busybox@sha256:<manifest hex>
    image_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS digests_image ON digests (image_id);

CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,      -- sha256:<hex>; the tree is layers/<hex>/
    diff_id TEXT NOT NULL,          -- sha256 of the uncompressed tar
    parent TEXT,                    -- chain id of the layer below, NULL for the lowest
    size INTEGER NOT NULL,          -- bytes of file content
    blob_digest TEXT,               -- the (compressed) blob it came from, in blobs/
    blob_size INTEGER,
    media_type TEXT,
    added REAL NOT NULL,
    owners TEXT                     -- how its files hold their owners: 'records'
                                    -- (override_stat, single-id mode) or 'ids ...' (the
                                    -- subordinate range they are mapped into); NULL:
                                    -- stored before schema 7, records
);

CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,            -- 64 hex
    name TEXT UNIQUE,
    image_id TEXT,
    image_name TEXT,
    created REAL,
    state TEXT,
    command TEXT,
    spec_path TEXT,
    pid INTEGER,
    exit_code INTEGER,
    auto_remove INTEGER,
    finished REAL,                  -- when it last exited
    labels TEXT,                    -- JSON object: the image's labels, then --label's
    init_start INTEGER,             -- the start time of `pid` (the container's init),
                                    -- in clock ticks since boot: a reused pid differs
    monitor_pid INTEGER,            -- the monitor that is the parent of `pid`
    started REAL,                   -- when it last started
    restart_count INTEGER NOT NULL DEFAULT 0,
    stopped_by_user INTEGER NOT NULL DEFAULT 0  -- `stop`/`kill`: no restart policy
);
CREATE INDEX IF NOT EXISTS containers_image ON containers (image_id);

CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,          -- docker's rule, or 64 hex for an anonymous one;
                                    -- the tree is volumes/<name>/_data, as docker's
    created REAL NOT NULL,
    labels TEXT NOT NULL,           -- JSON object
    options TEXT NOT NULL,          -- JSON object: --opt K=V (the local driver's)
    anonymous INTEGER NOT NULL DEFAULT 0  -- made by `-v /path`: goes with `rm -v`, --rm
);

CREATE TABLE IF NOT EXISTS container_volumes (  -- which containers use which volume:
    container_id TEXT NOT NULL,                 -- `volume rm` and prune refuse those
    volume TEXT NOT NULL,
    PRIMARY KEY (container_id, volume)
);
CREATE INDEX IF NOT EXISTS container_volumes_volume ON container_volumes (volume);

CREATE TABLE IF NOT EXISTS build_cache (  -- `build`'s steps: what each one made
    key TEXT PRIMARY KEY,           -- sha256 of the parent image, the instruction, the
                                    -- build args it sees and its sources' digests
    image_id TEXT NOT NULL,         -- the image after the step (untagged: hidden from
                                    -- `images` unless -a; `image prune` removes it)
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache (image_id);

CREATE TABLE IF NOT EXISTS networks (  -- user networks (`network create`); the predefined
                                       -- bridge, host and none are no rows
    id TEXT PRIMARY KEY,            -- 64 hex
    name TEXT NOT NULL UNIQUE,      -- docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]*
    driver TEXT NOT NULL,           -- bridge
    subnet TEXT NOT NULL,           -- IPv4 CIDR, "10.89.0.0/24"; no two overlap
    gateway TEXT NOT NULL,          -- an address of the subnet, "10.89.0.1"
    internal INTEGER NOT NULL DEFAULT 0,  -- --internal: no route out
    labels TEXT NOT NULL,           -- JSON object
    options TEXT NOT NULL,          -- JSON object: --opt K=V
    created REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS network_endpoints (  -- which container is on which network:
    network_id TEXT NOT NULL,                   -- `network rm` refuses a network in use
    container_id TEXT NOT NULL,
    seq INTEGER NOT NULL,           -- 1, 2, ...: the order the container was connected
    ip TEXT NOT NULL,               -- its address on the network
    aliases TEXT NOT NULL,          -- JSON list: --network-alias, connect --alias
    requested_ip TEXT NOT NULL DEFAULT '',  -- --ip, connect --ip (inspect's IPAMConfig)
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, ip)         -- two containers never get one address
);
CREATE INDEX IF NOT EXISTS network_endpoints_container ON network_endpoints (container_id);
"""


def _add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    if columns and column not in columns:  # idempotent: safe to run twice
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


# What turns version N into N+1 for stores made before it; run before SCHEMA, whose
# CREATE ... IF NOT EXISTS leaves existing tables as they are.
UPGRADES = {
    1: lambda db: _add_column(db, "containers", "finished", "REAL"),
    2: lambda db: _add_column(db, "images", "removed", "INTEGER NOT NULL DEFAULT 0"),
    3: lambda db: _add_column(db, "containers", "labels", "TEXT"),
    4: lambda db: None,  # 5 adds the volumes tables, which SCHEMA creates
    5: lambda db: [_add_column(db, "containers", column, kind) for column, kind in (
        ("init_start", "INTEGER"), ("monitor_pid", "INTEGER"), ("started", "REAL"),
        ("restart_count", "INTEGER NOT NULL DEFAULT 0"),
        ("stopped_by_user", "INTEGER NOT NULL DEFAULT 0"))],
    6: lambda db: _add_column(db, "layers", "owners", "TEXT"),
    7: lambda db: None,  # 8 adds the build_cache table, which SCHEMA creates
    8: lambda db: None,  # 9 adds the networks tables, which SCHEMA creates
    9: lambda db: _add_column(db, "network_endpoints", "requested_ip",
                              "TEXT NOT NULL DEFAULT ''"),
}


def current_version(db: sqlite3.Connection) -> int | None:
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return row[0] if row else None


def create_or_upgrade(db: sqlite3.Connection, root: Path) -> None:
    """Called with the store's exclusive lock held."""
    try:
        db.execute("PRAGMA journal_mode=WAL")
        version = None
        try:
            version = current_version(db)
        except sqlite3.OperationalError:
            pass
        if version == VERSION:
            return
        if version is not None and version > VERSION:
            raise StoreError(f"the store at {root} was written by a newer rootless "
                             f"(schema {version} > {VERSION}); upgrade rootless")
        for v in range(version or VERSION, VERSION):
            with db:
                UPGRADES[v](db)
        db.executescript("BEGIN IMMEDIATE;" + SCHEMA +
                         f"DELETE FROM schema_version; INSERT INTO schema_version "
                         f"VALUES ({VERSION}); COMMIT;")
    except sqlite3.Error as e:
        raise StoreError(f"cannot initialise the store database in {root}: {e}") from None
