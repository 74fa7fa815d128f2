"""Rows of state.db about user networks: `networks` and `network_endpoints`.

Plain data access; the policy (names, subnets, which address a container gets, what
may be removed) lives in engine/networks.py. Every change that reads before it writes
runs in `immediate()`: SQLite's BEGIN IMMEDIATE takes the database's write lock before
the first read, so two commands allocating at once are serialised by SQLite itself
(the second waits out the busy timeout) and never both see an address as free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from rootless.records import record


@record
class NetworkRow:
    id: str  # 64 hex
    name: str
    driver: str  # bridge; host and null for the predefined host and none
    subnet: str  # "10.89.0.0/24"; "" for the predefined networks
    gateway: str  # "10.89.0.1"; ""
    internal: bool
    labels: dict[str, str]
    options: dict[str, str]
    created: float | None  # None: a predefined network (it has no creation)


@record
class EndpointRow:
    network_id: str
    container_id: str
    seq: int  # 1, 2, ...: the order the container was connected to its networks
    ip: str  # "10.89.0.2"
    aliases: list[str]
    requested_ip: str = ""  # --ip: the same as ip; "" when the address was allocated

    @property
    def endpoint_id(self) -> str:
        """docker's EndpointID (64 hex): derived, the same for the same pair."""
        import hashlib

        return hashlib.sha256(f"{self.network_id}/{self.container_id}".encode()).hexdigest()


_NETWORK_COLUMNS = "id, name, driver, subnet, gateway, internal, labels, options, created"
_ENDPOINT_COLUMNS = "network_id, container_id, seq, ip, aliases, requested_ip"


def _network(row) -> NetworkRow:
    return NetworkRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]),
                      _object(row[6]), _object(row[7]), row[8])


def _endpoint(row) -> EndpointRow:
    try:
        aliases = json.loads(row[4])
    except ValueError:
        aliases = []
    if not isinstance(aliases, list):
        aliases = []
    return EndpointRow(row[0], row[1], row[2], row[3], [str(a) for a in aliases],
                       row[5] or "")


def _object(text: str) -> dict[str, str]:
    """A labels/options column; a damaged one reads as empty."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


@contextmanager
def immediate(store) -> Iterator[None]:
    """One transaction that holds SQLite's write lock from its first statement on
    (BEGIN IMMEDIATE): committed on success, rolled back on any error."""
    db = store.db
    if db.in_transaction:  # an implicit transaction a caller left open: end it first
        db.commit()
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


# ---- networks ----

def network_insert(store, row: NetworkRow) -> None:
    store.db.execute(f"INSERT INTO networks ({_NETWORK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                     (row.id, row.name, row.driver, row.subnet, row.gateway,
                      int(row.internal), json.dumps(row.labels, sort_keys=True),
                      json.dumps(row.options, sort_keys=True), row.created))


def network_get(store, network_id: str) -> NetworkRow | None:
    row = store.db.execute(f"SELECT {_NETWORK_COLUMNS} FROM networks WHERE id=?",
                           (network_id,)).fetchone()
    return _network(row) if row else None


def network_by_name(store, name: str) -> NetworkRow | None:
    row = store.db.execute(f"SELECT {_NETWORK_COLUMNS} FROM networks WHERE name=?",
                           (name,)).fetchone()
    return _network(row) if row else None


def networks_with_prefix(store, prefix: str, limit: int = 2) -> list[NetworkRow]:
    """Networks whose id starts with `prefix`, at most `limit` (compared as text: no
    LIKE wildcards)."""
    return [_network(r) for r in store.db.execute(
        f"SELECT {_NETWORK_COLUMNS} FROM networks WHERE substr(id, 1, ?)=? LIMIT ?",
        (len(prefix), prefix, limit))]


def networks_all(store) -> list[NetworkRow]:
    return [_network(r) for r in store.db.execute(
        f"SELECT {_NETWORK_COLUMNS} FROM networks ORDER BY name")]


def network_delete(store, network_id: str) -> None:
    store.db.execute("DELETE FROM networks WHERE id=?", (network_id,))


# ---- endpoints ----

def endpoint_insert(store, row: EndpointRow) -> None:
    store.db.execute(f"INSERT INTO network_endpoints ({_ENDPOINT_COLUMNS}) "
                     "VALUES (?,?,?,?,?,?)", (row.network_id, row.container_id, row.seq,
                                              row.ip, json.dumps(row.aliases),
                                              row.requested_ip))


def endpoint_get(store, network_id: str, container_id: str) -> EndpointRow | None:
    row = store.db.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM network_endpoints "
                           "WHERE network_id=? AND container_id=?",
                           (network_id, container_id)).fetchone()
    return _endpoint(row) if row else None


def endpoint_delete(store, network_id: str, container_id: str) -> bool:
    """True if there was one."""
    cursor = store.db.execute("DELETE FROM network_endpoints WHERE network_id=? AND "
                              "container_id=?", (network_id, container_id))
    return cursor.rowcount > 0


def endpoints_delete_container(store, container_id: str) -> None:
    """Every endpoint of a container (it is being removed); inside the caller's
    transaction."""
    store.db.execute("DELETE FROM network_endpoints WHERE container_id=?", (container_id,))


def endpoints_of_container(store, container_id: str) -> list[tuple[NetworkRow, EndpointRow]]:
    columns = ", ".join(f"n.{c.strip()}" for c in _NETWORK_COLUMNS.split(",")) + ", " + \
        ", ".join(f"e.{c.strip()}" for c in _ENDPOINT_COLUMNS.split(","))
    rows = store.db.execute(
        f"SELECT {columns} FROM network_endpoints e JOIN networks n ON n.id = e.network_id "
        "WHERE e.container_id=? ORDER BY e.seq", (container_id,)).fetchall()
    return [(_network(r[:9]), _endpoint(r[9:])) for r in rows]


def endpoints_of_network(store, network_id: str) -> list[EndpointRow]:
    """In the order they were made (the earliest connected first)."""
    return [_endpoint(r) for r in store.db.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM network_endpoints WHERE network_id=? "
        "ORDER BY rowid", (network_id,))]


def endpoint_ips(store, network_id: str) -> set[str]:
    return {r[0] for r in store.db.execute(
        "SELECT ip FROM network_endpoints WHERE network_id=?", (network_id,))}


def endpoint_max_seq(store, container_id: str) -> int:
    row = store.db.execute("SELECT MAX(seq) FROM network_endpoints WHERE container_id=?",
                           (container_id,)).fetchone()
    return row[0] or 0


def networks_in_use(store) -> set[str]:
    """Ids of the networks some container has an endpoint on."""
    return {r[0] for r in store.db.execute(
        "SELECT DISTINCT network_id FROM network_endpoints")}


def container_names(store, container_ids: list[str]) -> dict[str, str]:
    """container id -> name, for those that exist."""
    if not container_ids:
        return {}
    marks = ",".join("?" * len(container_ids))
    return dict(store.db.execute(
        f"SELECT id, name FROM containers WHERE id IN ({marks})", container_ids))
