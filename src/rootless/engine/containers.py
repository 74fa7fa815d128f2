"""Container records: a row in the store's `containers` table and a directory.

A container directory holds config.json (the OCI spec), upper/ work/ rootfs/ and the
generated hosts, hostname and resolv.conf. The row is written in one transaction with
the directory already in place, and removed before the directory is, so a killed
command never leaves a row pointing at nothing.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple
from pathlib import Path

from rootless.errors import NotFoundError, RootlessError
from rootless.kernel.procs import pid_alive

_ADJECTIVES = ("agile", "brave", "calm", "eager", "fond", "gentle", "happy", "jolly",
               "keen", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "swift",
               "tender", "vivid", "wise", "zen")
_NAMES = ("babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "hypatia",
          "knuth", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon",
          "thompson", "turing", "wozniak")


class NameInUseError(RootlessError):
    pass


class ContainerRecord(NamedTuple):
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


def container_dir(store, container_id: str) -> Path:
    return Path(store.containers_dir) / container_id


def random_name() -> str:
    pick = os.urandom(2)  # not `random`: importing it costs a millisecond per run
    return f"{_ADJECTIVES[pick[0] % len(_ADJECTIVES)]}_{_NAMES[pick[1] % len(_NAMES)]}"


def container_create(store, image_id: str, image_name: str, command: str,
                     name: str | None, auto_remove: bool) -> ContainerRecord:
    """The row, and an empty directory: made in tmp/ and renamed into place once the
    row is in, so a command killed in between leaves an entry the next clean_temp
    removes, never a directory no row names."""
    from rootless.store.temp import TempOwner

    cid = os.urandom(32).hex()
    record = ContainerRecord(cid, name or random_name(), image_id, image_name, command,
                             time.time(), "created", auto_remove)
    with TempOwner(store.root) as owner:
        tmp = owner.path("new-container")
        tmp.mkdir(mode=0o700)
        try:
            record = _insert(store, record, name is None)
            os.rename(tmp, container_dir(store, cid))
        except BaseException:
            from rootless.kernel.remove import rmtree_owned

            with store.db:
                store.db.execute("DELETE FROM containers WHERE id=?", (cid,))
            rmtree_owned(tmp)
            raise
    return record


def _insert(store, record: ContainerRecord, generated_name: bool) -> ContainerRecord:
    import sqlite3

    for attempt in range(20):
        name = record.name if attempt == 0 else f"{random_name()}{attempt}"
        try:
            with store.db:
                store.db.execute(
                    "INSERT INTO containers (id, name, image_id, image_name, created, state,"
                    " command, spec_path, auto_remove) VALUES (?,?,?,?,?,?,?,?,?)",
                    (record.id, name, record.image_id, record.image_name, record.created,
                     record.state, record.command,
                     str(container_dir(store, record.id) / "config.json"),
                     int(record.auto_remove)))
            return record._replace(name=name)
        except sqlite3.IntegrityError:
            if not generated_name:
                raise NameInUseError(
                    f'the container name "{record.name}" is already in use '
                    f'(try: rootless rm {record.name})') from None
    raise NameInUseError("could not find a free container name")


def container_set_state(store, container_id: str, state: str, pid: int | None = None,
                        exit_code: int | None = None) -> None:
    finished = time.time() if state == "exited" else None
    with store.db:
        store.db.execute(
            "UPDATE containers SET state=?, pid=?, exit_code=?, finished=? WHERE id=?",
            (state, pid, exit_code, finished, container_id))


def container_remove(store, container_id: str) -> None:
    # its image, if `rmi -f` removed it: this may have been its last user
    removed = store.db.execute(
        "SELECT images.id FROM containers JOIN images ON images.id = containers.image_id "
        "WHERE containers.id=? AND images.removed=1", (container_id,)).fetchone()
    with store.db:
        store.db.execute("DELETE FROM containers WHERE id=?", (container_id,))
    _remove_dir(store, container_dir(store, container_id))
    if removed:
        from rootless.engine.images import image_release

        image_release(store, removed[0])


def _remove_dir(store, path: Path) -> None:
    """Move a container's directory into tmp/ (gone from containers/ at once), then
    remove it there: a command killed midway leaves an entry of tmp/ that the next
    clean_temp finishes, never a directory no row names."""
    from rootless.store.temp import TempOwner

    with TempOwner(store.root) as owner:
        doomed = owner.path("old-container")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        remove_tree(doomed)


def remove_tree(path: Path) -> None:
    """Remove a tree of the store; files that subordinate ids created inside it are
    not ours to delete from outside, so removal falls back to a user namespace."""
    from rootless.kernel.remove import rmtree_owned

    try:
        rmtree_owned(path)
    except PermissionError:
        from rootless.engine.unshare import rmtree_in_userns

        rmtree_in_userns(path)


def container_lookup(store, ref: str) -> ContainerRecord:
    rows = store.db.execute(
        "SELECT id, name, image_id, image_name, command, created, state, auto_remove "
        "FROM containers WHERE name=? OR id=? OR id LIKE ?", (ref, ref, ref + "%")).fetchall()
    if len(rows) != 1:
        raise NotFoundError(f"no such container: {ref}")
    return ContainerRecord(*rows[0][:7], bool(rows[0][7]))


class ContainerRow(NamedTuple):
    record: ContainerRecord
    pid: int | None
    exit_code: int | None
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.record.state == "running" and self.pid is not None and pid_alive(self.pid)

    def status(self, now: float) -> str:
        if self.running:
            return f"Up {human_duration(now - self.record.created)}"
        if self.record.state == "created":
            return "Created"
        code = "" if self.exit_code is None else f" ({self.exit_code})"
        when = "" if self.finished is None else f" {human_duration(now - self.finished)} ago"
        return f"Exited{code}{when}"



def container_list(store) -> list[ContainerRow]:
    rows = store.db.execute(
        "SELECT id, name, image_id, image_name, command, created, state, auto_remove, pid,"
        " exit_code, finished FROM containers ORDER BY created DESC").fetchall()
    return [ContainerRow(ContainerRecord(*r[:7], bool(r[7])), r[8], r[9], r[10])
            for r in rows]


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


def containers_remove(store, refs: list[str], force: bool) -> list[str]:
    """`rm`: refuse a running container unless forced (which kills it first)."""
    import signal

    store.clean_temp(remove=remove_tree)  # what killed commands left, subordinate ids too
    removed = []
    for ref in refs:
        record = container_lookup(store, ref)
        row = next(r for r in container_list(store) if r.record.id == record.id)
        if row.running:
            if not force:
                raise RootlessError(f"cannot remove running container {ref} "
                                    "(stop it first, or use rm -f)")
            os.kill(row.pid, signal.SIGKILL)
        container_remove(store, record.id)
        removed.append(ref)
    return removed


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
