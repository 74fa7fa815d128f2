"""Container records: a row in the store's `containers` table and a directory.

A container directory holds config.json (the OCI spec), upper/ work/ rootfs/ and the
generated hosts, hostname and resolv.conf. The row is written in one transaction with
the directory already in place, and removed before the directory is, so a killed
command never leaves a row pointing at nothing.
"""

from __future__ import annotations

import os
import time

from rootless.errors import NotFoundError, RootlessError
from rootless.kernel.procs import pid_alive
from rootless.records import record

_ADJECTIVES = ("agile", "brave", "calm", "eager", "fond", "gentle", "happy", "jolly",
               "keen", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "swift",
               "tender", "vivid", "wise", "zen")
_NAMES = ("babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "hypatia",
          "knuth", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon",
          "thompson", "turing", "wozniak")


class NameInUseError(RootlessError):
    pass


# moby's RestrictedNamePattern (daemon/names): one leading "/" is docker's own spelling
# of a name, and a name of one character is refused.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def name_check(name: str) -> str:
    """A name as docker stores it (without its leading "/"), or docker's refusal."""
    bare = name[1:] if name.startswith("/") else name
    if len(bare) < 2 or not bare[0].isascii() or not bare[0].isalnum() or \
            not set(bare) <= _NAME_CHARS:
        raise RootlessError(f"Invalid container name ({name}), only "
                         "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare


def name_in_use(name: str, owner: str) -> NameInUseError:
    return NameInUseError(
        f'Conflict. The container name "/{name}" is already in use by container '
        f'"{owner}". You have to remove (or rename) that container to be able to reuse '
        "that name.")


@record
class ContainerRecord:
    id: str
    name: str
    image_id: str
    image_name: str
    command: str
    created: float
    state: str
    auto_remove: bool

    @property
    def short_id(self) -> str:
        return self.id[:12]


def labels_merge(image_config: dict, labels: dict[str, str]) -> dict[str, str]:
    """A container's labels, as docker keeps them: the image's, then --label's."""
    found = image_config.get("Labels")
    merged = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
    merged.update(labels)
    return merged


# Annotations the runtimes act on (ours: run.rootless.*, crun's and ours: run.oci.*):
# a label, which an image may set, must never become one of them.
_RESERVED_ANNOTATIONS = ("run.",)


def labels_annotations(labels: dict[str, str]) -> dict[str, str]:
    """The labels that go into config.json's annotations: not the reserved ones."""
    return {k: v for k, v in labels.items() if not k.startswith(_RESERVED_ANNOTATIONS)}


TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` and `exec` do without pathlib (store/store.py)
    from pathlib import Path


def container_dir(store, container_id: str) -> Path:
    from pathlib import Path

    return Path(container_path(store, container_id))


def container_path(store, container_id: str) -> str:
    """container_dir as a str (for `run`, `exec` and the monitor: no pathlib)."""
    return os.path.join(store.dir, "containers", container_id)


def random_name() -> str:
    pick = os.urandom(2)  # not `random`: importing it costs a millisecond per run
    return f"{_ADJECTIVES[pick[0] % len(_ADJECTIVES)]}_{_NAMES[pick[1] % len(_NAMES)]}"


def container_create(store, image_id: str, image_name: str, command: str,
                     name: str | None, auto_remove: bool,
                     labels: dict[str, str] | None = None) -> ContainerRecord:
    """The row, and an empty directory: made in tmp/ and renamed into place once the
    row is in, so a command killed in between leaves an entry the next clean_temp
    removes, never a directory no row names."""
    cid = os.urandom(32).hex()
    name = None if name is None else name_check(name)
    record = ContainerRecord(cid, name or random_name(), image_id, image_name, command,
                             time.time(), "created", auto_remove)
    tmp = store.temp_name("new-container")  # one owner per command (store/temp.py)
    os.mkdir(tmp, mode=0o700)
    # its op lock is ours before the directory is in place, and until we release it
    # (container_release): no `rm` or `prune` can take a container being set up
    _HELD[cid] = _lock_file(os.path.join(tmp, OP_LOCK))
    try:
        record = _insert(store, record, name is None, labels or {})
        os.rename(tmp, container_path(store, cid))
    except BaseException:
        from rootless.kernel.remove import rmtree_owned

        container_release(cid)
        with store.db:
            store.db.execute("DELETE FROM containers WHERE id=?", (cid,))
        rmtree_owned(tmp)
        raise
    return record


_HELD: dict[str, int] = {}  # container id -> its op lock, held by this process


def container_release(container_id: str) -> None:
    """Give up the op lock container_create took."""
    fd = _HELD.pop(container_id, None)
    if fd is not None:
        os.close(fd)


def _lock_file(path) -> int:
    from rootless.kernel.flock import open_locked

    return open_locked(path)


def _insert(store, record: ContainerRecord, generated_name: bool,
            labels: dict[str, str]) -> ContainerRecord:
    from rootless import jsonfast

    from rootless.store.store import sqlite3  # the C module (store/store.py)

    for attempt in range(20):
        name = record.name if attempt == 0 else f"{random_name()}{attempt}"
        try:
            with store.db:
                store.db.execute(
                    "INSERT INTO containers (id, name, image_id, image_name, created, state,"
                    " command, spec_path, auto_remove, labels) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (record.id, name, record.image_id, record.image_name, record.created,
                     record.state, record.command,
                     os.path.join(container_path(store, record.id), "config.json"),
                     int(record.auto_remove), jsonfast.dumps(labels, sort_keys=True)))
            return record._replace(name=name)
        except sqlite3.IntegrityError:
            if not generated_name:
                raise name_in_use(record.name, _owner_of(store, record.name)) from None
    raise NameInUseError("could not find a free container name")


def _owner_of(store, name: str) -> str:
    row = store.db.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
    return row[0] if row else ""


def container_rename(store, ref: str, new_name: str) -> None:
    """docker rename: the name rule, then the new name in one UPDATE (the UNIQUE
    column refuses a taken one, even against a concurrent create)."""
    import sqlite3

    if not ref or not new_name:
        raise RootlessError("Neither old nor new names may be empty")
    name = name_check(new_name)
    record = container_lookup(store, ref)
    if record.name == name:
        raise RootlessError("Renaming a container with the same name as its current "
                            "name")
    try:
        with store.db:
            store.db.execute("UPDATE containers SET name=? WHERE id=?", (name, record.id))
    except sqlite3.IntegrityError:
        raise name_in_use(name, _owner_of(store, name)) from None
    _rename_on_networks(store, record.id)


def _rename_on_networks(store, container_id: str) -> None:
    """Its peers on user networks find it by its new name (their /etc/hosts)."""
    from rootless.engine.networks import endpoints_of_container

    networks = [network for network, _ in endpoints_of_container(store, container_id)]
    if networks:
        from rootless.engine.network_live import refresh_hosts

        for network in networks:
            refresh_hosts(store, network)


def container_set_state(store, container_id: str, state: str, pid: int | None = None,
                        exit_code: int | None = None) -> None:
    finished = time.time() if state == "exited" else None
    with store.db:
        store.db.execute(
            "UPDATE containers SET state=?, pid=?, exit_code=?, finished=? WHERE id=?",
            (state, pid, exit_code, finished, container_id))


def container_remove(store, container_id: str, volumes: bool = False) -> None:
    """The row, then the directory; the volumes it used are free again, and with
    `volumes` (docker's `rm -v`, `run --rm`) its anonymous ones are removed."""
    # its image, if `rmi -f` removed it: this may have been its last user
    removed = store.db.execute(
        "SELECT images.id FROM containers JOIN images ON images.id = containers.image_id "
        "WHERE containers.id=? AND images.removed=1", (container_id,)).fetchone()
    from rootless.store.networks import endpoints_delete_container

    with store.db:  # its network endpoints go with the row (engine/networks.py)
        store.db.execute("DELETE FROM containers WHERE id=?", (container_id,))
        endpoints_delete_container(store, container_id)
    _remove_dir(store, container_path(store, container_id))
    from rootless.engine.cgroups import cgroup_cleanup

    cgroup_cleanup(container_id)  # what a monitor killed with SIGKILL left behind
    if store.db.execute("SELECT 1 FROM container_volumes WHERE container_id=? LIMIT 1",
                        (container_id,)).fetchone():
        from rootless.engine.volumes import volumes_detach

        volumes_detach(store, container_id, volumes)
    if removed:
        from rootless.engine.images import image_release

        image_release(store, removed[0])


def _remove_dir(store, path: str) -> None:
    """Move a container's directory into tmp/ (gone from containers/ at once), then
    remove it there: a command killed midway leaves an entry of tmp/ that the next
    clean_temp finishes, never a directory no row names."""
    doomed = store.temp_name("old-container")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    remove_tree(doomed)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a tree of the store; files that subordinate ids created inside it are
    not ours to delete from outside, so removal falls back to the storage namespace
    (kernel/storage_ns.py)."""
    from rootless.kernel.storage_ns import remove_tree as remove

    remove(path)


def container_lookup(store, ref: str) -> ContainerRecord:
    rows = store.db.execute(
        "SELECT id, name, image_id, image_name, command, created, state, auto_remove "
        # a prefix compared as text, not LIKE: `%` or `_` in a reference is no wildcard
        "FROM containers WHERE name=? OR substr(id, 1, ?)=?",
        (ref, max(len(ref), 1), ref)).fetchall()
    # docker's order: a full id, then a name, then a unique id prefix
    exact = [r for r in rows if ref in (r[0], r[1])]
    rows = exact[:1] or rows
    if len(rows) != 1:
        raise NotFoundError(f"no such container: {ref}")
    return ContainerRecord(*rows[0][:7], bool(rows[0][7]))


@record
class ContainerRow:
    record: ContainerRecord
    pid: int | None
    exit_code: int | None
    finished: float | None = None
    labels: dict[str, str] | None = None  # None: made before containers had labels
    init_start: int | None = None  # the start time of `pid` (kernel/procs.start_time)
    monitor_pid: int | None = None
    started: float | None = None
    restart_count: int = 0
    stopped_by_user: bool = False

    @property
    def state(self) -> str:
        """Docker's State.Status, checked against the processes: a record that says
        running while its init is gone (a monitor killed with it) reads as exited."""
        state = self.record.state
        if state in ("running", "paused"):
            return state if self.init_alive else "exited"
        if state == "restarting":
            return state if self.monitor_pid and pid_alive(self.monitor_pid) else "exited"
        return state if state in ("created", "removing") else "exited"

    @property
    def init_alive(self) -> bool:
        from rootless.kernel.procs import alive_as

        return self.pid is not None and alive_as(self.pid, self.init_start)

    @property
    def running(self) -> bool:
        """Docker's State.Running: paused and restarting containers are running too."""
        return self.state in ("running", "paused", "restarting")

    def status(self, now: float) -> str:
        state = self.state
        since = self.started or self.record.created
        if state == "running":
            return f"Up {human_duration(now - since)}"
        if state == "paused":
            return f"Up {human_duration(now - since)} (Paused)"
        if state == "created":
            return "Created"
        if state == "removing":
            return "Removal In Progress"
        code = "" if self.exit_code is None else f" ({self.exit_code})"
        when = "" if self.finished is None else f" {human_duration(now - self.finished)} ago"
        if state == "restarting":
            return f"Restarting{code}{when}"
        return f"Exited{code if self.exit_code is not None else ' (255)'}{when}"


_ROW_COLUMNS = ("id, name, image_id, image_name, command, created, state, auto_remove, pid,"
                " exit_code, finished, labels, init_start, monitor_pid, started,"
                " restart_count, stopped_by_user")


def _row(r: tuple) -> ContainerRow:
    return ContainerRow(ContainerRecord(*r[:7], bool(r[7])), r[8], r[9], r[10],
                        labels_load(r[11]), r[12], r[13], r[14], r[15] or 0, bool(r[16]))


def container_list(store) -> list[ContainerRow]:
    """Every container, newest first."""
    rows = store.db.execute(
        f"SELECT {_ROW_COLUMNS} FROM containers ORDER BY created DESC").fetchall()
    return [_row(r) for r in rows]


def container_row(store, container_id: str) -> ContainerRow | None:
    """One container's row by its full id; None once it is removed."""
    r = store.db.execute(f"SELECT {_ROW_COLUMNS} FROM containers WHERE id=?",
                         (container_id,)).fetchone()
    return _row(r) if r else None


def labels_load(text: str | None) -> dict[str, str] | None:
    """The labels column (None for a container made before it); a damaged one reads
    as no labels."""
    from rootless import jsonfast

    if text is None:
        return None
    try:
        labels = jsonfast.loads(text)
    except ValueError:
        return {}
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def image_shown(store, record: ContainerRecord) -> str:
    """What `ps` prints as a container's image: the name it was run with while that
    name still means the same image, else the image's short id (docker's rule)."""
    from rootless.engine.images import image_lookup
    from rootless.errors import RootlessError

    try:
        if image_lookup(store, record.image_name) == record.image_id:
            return record.image_name
    except RootlessError:
        pass
    return record.image_id[7:19]


def container_record_auto_remove(store, container_id: str) -> bool:
    row = store.db.execute("SELECT auto_remove FROM containers WHERE id=?",
                           (container_id,)).fetchone()
    return bool(row and row[0])


OP_LOCK = "lock"


class container_op_lock:  # noqa: N801  a context, named as the function it replaced
    """flock on the container's own lock file, for start, stop, restart, rm and the
    monitor's restart decision: one at a time per container. Whoever holds it re-reads
    the row (a second `rm` finds it gone: "no such container"). The file goes with the
    directory; a row whose directory never got into place (its command was killed
    between the two) has nothing to guard but the row, and goes unlocked. (A class:
    contextlib's imports cost every `run` ~3 ms.)"""

    def __init__(self, store, container_id: str) -> None:
        self.store, self.container_id, self.fd = store, container_id, None

    def __enter__(self) -> None:
        if self.container_id in _HELD:  # ours since we created it
            return
        try:
            self.fd = _lock_file(os.path.join(container_path(self.store, self.container_id),
                                              OP_LOCK))
        except (FileNotFoundError, NotADirectoryError):
            pass

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration: the words of `docker ps` and `docker images`."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes, hours = s // 60, round(s / 3600)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
