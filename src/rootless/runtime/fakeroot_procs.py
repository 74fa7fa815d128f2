"""Which faked credentials a thread has: the fakeroot's process table.

Entries are keyed by thread id (credentials are per thread in Linux; glibc's setuid()
makes every thread of a process call the syscall) and carry the thread's start time
(field 22 of /proc/TID/stat), checked on every lookup: a thread id the kernel has given
to a new process never finds the old one's entry (kernel/procs.py's rule for pids).

Checking the start time costs a read of /proc/TID/stat (~12 us, more than the rest of
an answer), so each entry also keeps the inode number of the /proc/TID directory, which
a stat(2) gives in ~2 us: procfs makes a new inode (get_next_ino) for the directory of a
new task, so a reused thread id shows another number. The same number means the same
thread; another number sends the lookup to the start time (the dentry of a live thread
may also have been evicted and made again).

A thread we have not seen takes its creator's credentials, as fork(2) and clone(2)
copy them: a new thread its thread-group leader's, a new process its parent's (the
PPid of /proc/TID/status), walking up through processes that never asked anything,
within the container's pid namespace; an ancestor whose start time is later than the
thread's is a reused pid and ends the walk. The entry is taken at the thread's first
trapped call, not at its fork: a parent that changed its ids in between passes on the
new ones. execve(2) keeps them (the thread id stays). A thread none of whose ancestors
changed anything has no entry (None): it is what the kernel says, and get*id calls
pass through to the kernel.

The table is published for the FUSE overlay, which enforces permissions with the
faked credentials of the caller (`fakeroot-creds.json` in the container's directory,
rewritten before the answer to a call that changed it): `creds_of(directory, pid, proc)`
answers for a thread id as a given procfs shows it, our own (/proc, host ids) or the
container's (/proc/INIT/root/proc: the ids FUSE requests carry when the mount was made
in the container's pid namespace). Each entry keeps both ids (NSpid of its status).
"""

from __future__ import annotations

import json
import os

from rootless.kernel.procs import stat_fields
from rootless.runtime.fakeroot_creds import Creds

CREDS_FILE = "fakeroot-creds.json"
OVERFLOW_ID = 65534  # /proc/sys/kernel/overflowuid: what an unmapped id reads as
_MAX_WALK = 64
_PRUNE_EVERY = 1024


def _stat(tid: int, proc: str = "/proc") -> tuple[int, int] | None:
    """(start time, ppid) of a thread; None if it is gone."""
    fields = stat_fields(f"{proc}/{tid}/stat")
    try:
        return int(fields[19]), int(fields[1])
    except (IndexError, TypeError, ValueError):
        return None


def proc_status(tid: int, proc: str = "/proc") -> dict[str, str]:
    """/proc/TID/status as {field: value}; {} if the thread is gone."""
    try:
        with open(f"{proc}/{tid}/status", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _pidns(pid: int, proc: str) -> int | None:
    try:
        return os.stat(f"{proc}/{pid}/ns/pid").st_ino
    except OSError:
        return None


def ns_tid(status: dict[str, str]) -> int:
    """The thread's id in its innermost pid namespace (the container's)."""
    ids = status.get("NSpid", "").split()
    return int(ids[-1]) if ids else 0


class IdMap:
    """Host ids (as /proc shows them to us) -> the container's, by its id map."""

    def __init__(self, ranges) -> None:
        self.ranges = [(r[0], r[1], r[2]) for r in ranges]  # (container, host, size)

    def to_container(self, host_id: int) -> int:
        for container, host, size in self.ranges:
            if host <= host_id < host + size:
                return container + host_id - host
        return OVERFLOW_ID


class ProcTable:
    def __init__(self, uid_map: IdMap, gid_map: IdMap, pidns: int | None,
                 proc: str = "/proc") -> None:
        self.uid_map, self.gid_map = uid_map, gid_map
        self.pidns = pidns  # the container's pid namespace (inode of /proc/PID/ns/pid)
        self.proc = proc  # whose thread ids the keys are: /proc's, or a container's
        # tid -> (start time, faked creds or None, its id in the container)
        self.entries: dict[int, tuple[int, Creds | None, int]] = {}
        self.inodes: dict[int, int] = {}  # tid -> inode of its /proc directory, checked
        self._added = 0

    # ---- lookups ----

    def lookup(self, tid: int, remember: bool = True) -> tuple[int, Creds | None] | None:
        """(start time, faked creds or None) of a live thread; None if it is gone."""
        entry = self.entries.get(tid)
        try:
            inode = os.stat(f"{self.proc}/{tid}").st_ino
        except OSError:
            return None
        if entry is not None and self.inodes.get(tid) == inode:
            return entry[0], entry[1]
        info = _stat(tid, self.proc)
        if info is None:
            return None
        start, ppid = info
        if entry is not None and entry[0] == start:
            self.inodes[tid] = inode
            return start, entry[1]
        self.inodes[tid] = inode
        status = proc_status(tid, self.proc)
        creds = self._inherited(tid, start, ppid, status)
        if remember:
            self._remember(tid, start, creds, ns_tid(status))
        return start, creds

    def _inherited(self, tid: int, start: int, ppid: int,
                   status: dict[str, str]) -> Creds | None:
        tgid = int(status.get("Tgid", tid) or tid)
        candidate = tgid if tgid != tid else ppid
        for _ in range(_MAX_WALK):
            if candidate <= 0:
                return None
            info = _stat(candidate, self.proc)
            if info is None or info[0] > start:  # gone, or a pid reused since
                return None
            if self.pidns is not None and _pidns(candidate, self.proc) != self.pidns:
                return None  # above the container: the monitor, exec's runtime
            entry = self.entries.get(candidate)
            if entry is not None and entry[0] == info[0]:
                return entry[1].copy() if entry[1] is not None else None
            candidate = info[1]
        return None

    def _remember(self, tid: int, start: int, creds: Creds | None, nstid: int) -> None:
        self.entries[tid] = (start, creds, nstid)
        self._added += 1
        if self._added >= _PRUNE_EVERY:
            self.prune()

    def prune(self) -> None:
        """Forget threads that are gone (the table would otherwise grow for ever)."""
        self._added = 0
        for tid, (start, _, _) in list(self.entries.items()):
            info = _stat(tid, self.proc)
            if info is None or info[0] != start:
                del self.entries[tid]
                self.inodes.pop(tid, None)

    # ---- changes ----

    def real_creds(self, status: dict[str, str]) -> Creds:
        """What the kernel says the thread's ids are, in the container's terms."""
        def ids(key: str, idmap: IdMap) -> list[int]:
            values = [int(v) for v in status.get(key, "").split()[:4]]
            return [idmap.to_container(v) for v in (values + [0, 0, 0, 0])[:4]]

        groups = tuple(self.gid_map.to_container(int(g))
                       for g in status.get("Groups", "").split())
        return Creds(ids("Uid", self.uid_map), ids("Gid", self.gid_map), groups)

    def store(self, tid: int, start: int, creds: Creds, status: dict[str, str]) -> None:
        self.entries[tid] = (start, creds, ns_tid(status))

    # ---- the published copy ----

    def save(self, directory: str) -> None:
        """Write the table for the FUSE overlay (temp + rename): live entries only."""
        data = {"pidns": self.pidns,
                "threads": {str(tid): [start, creds.as_list(), nstid]
                            for tid, (start, creds, nstid) in self.entries.items()
                            if creds is not None}}
        path = os.path.join(directory, CREDS_FILE)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(data, separators=(",", ":")).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    @classmethod
    def load(cls, directory: str, proc: str = "/proc") -> "ProcTable":
        """The published table, keyed by thread ids as `proc` shows them: our own
        (/proc) or the container's (its /proc, where ids are its pid namespace's)."""
        from rootless.kernel.paths import read_regular_path

        table = cls(IdMap(()), IdMap(()), None, proc)
        try:
            data = json.loads(read_regular_path(os.path.join(directory, CREDS_FILE),
                                                64 << 20))
            table.pidns = data.get("pidns")
            for tid, (start, creds, nstid) in data["threads"].items():
                key = int(tid) if proc == "/proc" else int(nstid)
                table.entries[key] = (int(start), Creds.from_list(creds), int(nstid))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return table


def creds_of(directory: str, pid: int, proc: str = "/proc") -> Creds | None:
    """The faked credentials of thread `pid` in the container whose directory is
    `directory`, inherited as the fakeroot inherits them; None where it has none (its
    real ids hold: the container user's). `pid` is as `proc` shows it: /proc for our
    pid namespace, /proc/INIT/root/proc for the container's (what FUSE reports when the
    container mounted the overlay). For the FUSE overlay's permission checks
    (fs/fuse_access.set_creds_source); it reads the published table on each call."""
    found = ProcTable.load(directory, proc).lookup(pid, remember=False)
    return found[1] if found is not None else None
