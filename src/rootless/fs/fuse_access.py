"""Who is asking, and may they: the FUSE overlay's permission checks in single-id mode.

With one mapped id the kernel cannot check permissions itself (`default_permissions`):
every file the container sees as someone else's is, to the kernel, an unmapped id, and
root of the container holds no capability over those, so root could not write a file
of `_apt`. The server checks instead, from the owners and modes the container sees (the
ownership records) and the caller's credentials, as generic_permission(9) would:
container root (uid 0, CAP_DAC_OVERRIDE and CAP_FOWNER in docker's default set) may
read, write and search anything, execute what has an execute bit, and change any
owner; other users get the owner, group or other bits, the sticky-directory rule of
may_delete, and chmod/chown/utimes only on their own files. With a subordinate range
every id is mapped and the kernel checks (`default_permissions`); none of this runs.

The caller's credentials: FUSE gives the request's fsuid, fsgid and pid (in the pid
namespace of the mount's creator, the container's). `request_creds` is the one seam
where a fakeroot (a process whose setuid/setgroups calls the container's monitor
emulates) answers instead (`set_creds_source`; the server plugs in FakerootCreds, the
monitor's published table); where it has no answer the request's own ids hold, with no
supplementary groups (single-id mode has none: setgroups(2) is denied).

Not modelled: capabilities other than root's (a non-root user with --cap-add
DAC_OVERRIDE is checked as any user), ACLs, and clearing setuid bits on write
(FUSE_HANDLE_KILLPRIV; chown and truncate clear them).
"""

from __future__ import annotations

import errno
import stat
from typing import Callable, NamedTuple

R, W, X = 4, 2, 1


class Creds(NamedTuple):
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups


# (pid, uid, gid) -> the process's emulated credentials, or None for its own
CredsSource = Callable[[int, int, int], "Creds | None"]
_source: CredsSource | None = None


def set_creds_source(source: CredsSource | None) -> None:
    """Plug a fakeroot's table of emulated credentials into the server."""
    global _source
    _source = source


class FakerootCreds:
    """The fakeroot's table (runtime/fakeroot_procs.py: the monitor publishes the faked
    credentials in `fakeroot-creds.json` in the container's directory) as a CredsSource.
    FUSE reports pids of the container's pid namespace, in which the init mounted the
    overlay, so threads are looked up through the container's own /proc, reached from
    the host as /proc/INIT/root/proc. The file is read again only when it changes, and
    not at all while there is none (no thread ever asked for other ids).

    Whether it changed: the monitor publishes it by rename (fakeroot_procs.save) before
    it answers the call that changed a thread's ids, so an inotify watch on the
    container's directory has the event queued before that thread's next request
    reaches us; the server's wait polls the watch with the FUSE device (`watch`,
    `changed`) and the table is looked at again only after an event, instead of a
    stat(2) at every request. Without inotify, the stat at every request stands."""

    def __init__(self, container_dir: str, init_pid: int) -> None:
        from rootless.runtime.fakeroot_procs import CREDS_FILE

        self.dir = container_dir
        self.path = f"{container_dir}/{CREDS_FILE}"
        self.proc = f"/proc/{init_pid}/root/proc"
        self.table = None
        self.version: tuple[int, int, int] | None = None
        self.watch = -1  # the inotify descriptor, once the server's wait polls it
        self.stale = True

    def watch_changes(self) -> int:
        """An inotify descriptor for the server's wait to poll (call `changed` when it
        is readable), or -1: every request then stats the table."""
        from rootless.kernel import inotify

        try:
            self.watch = inotify.watch_names(self.dir)
        except OSError:
            self.watch = -1
        return self.watch

    def changed(self) -> None:
        from rootless.kernel import inotify

        inotify.drain(self.watch)
        self.stale = True

    def __call__(self, pid: int, uid: int, gid: int) -> Creds | None:
        import os

        if self.watch >= 0 and not self.stale:
            return self._lookup(pid)
        self.stale = False  # before the stat: an event meanwhile marks it again
        try:
            st = os.stat(self.path)
        except OSError:
            self.table, self.version = None, None
            return None
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        if version != self.version:
            from rootless.runtime.fakeroot_procs import ProcTable

            self.table, self.version = ProcTable.load(self.dir, self.proc), version
        return self._lookup(pid)

    def _lookup(self, pid: int) -> Creds | None:
        if self.table is None or not self.table.entries:
            return None
        found = self.table.lookup(pid)  # remembers inherited ones until the next load
        if found is None or found[1] is None:
            return None
        faked = found[1]  # ids as [real, effective, saved, fs]: the fs ones decide
        return Creds(faked.uids[3], faked.gids[3], frozenset(faked.groups))


def request_creds(pid: int, uid: int, gid: int) -> Creds:
    """The credentials a request is checked with: the fakeroot's for `pid` when it
    emulates that process's ids, else the ids FUSE reported."""
    if _source is not None and pid > 0:
        faked = _source(pid, uid, gid)
        if faked is not None:
            return faked
    return Creds(uid, gid)


def allowed(owner: tuple[int, int, int], kind: int, creds: Creds, want: int) -> bool:
    """generic_permission: may `creds` read/write/execute (`want`, R|W|X) a file of
    (uid, gid, permission bits) and type `kind`?"""
    uid, gid, mode = owner
    if creds.uid == 0:
        # CAP_DAC_OVERRIDE: all but executing a non-directory without any x bit
        return not (want & X) or kind == stat.S_IFDIR or bool(mode & 0o111)
    if creds.uid == uid:
        bits = mode >> 6
    elif creds.in_group(gid):
        bits = mode >> 3
    else:
        bits = mode
    return bits & want == want


def check(owner: tuple[int, int, int], kind: int, creds: Creds, want: int) -> None:
    if not allowed(owner, kind, creds, want):
        raise OSError(errno.EACCES, "permission denied")


def check_delete(parent: tuple[int, int, int], victim: tuple[int, int, int],
                 creds: Creds) -> None:
    """may_delete: write and search on the directory; in a sticky one, only the owner
    of the entry or of the directory (or root)."""
    check(parent, stat.S_IFDIR, creds, W | X)
    if parent[2] & stat.S_ISVTX and creds.uid not in (0, parent[0], victim[0]):
        raise OSError(errno.EPERM, "sticky directory")


def check_owner(owner: tuple[int, int, int], creds: Creds) -> None:
    """inode_owner_or_capable: chmod, utimes to a given time, xattrs of a sticky dir."""
    if creds.uid not in (0, owner[0]):
        raise OSError(errno.EPERM, "not the owner")


def check_chown(owner: tuple[int, int, int], uid: int | None, gid: int | None,
                creds: Creds) -> None:
    """chown_ok/chgrp_ok: root changes anything; an owner may only give the file to a
    group of their own, and keep its owner."""
    if creds.uid == 0:
        return
    if uid is not None and uid != owner[0]:
        raise OSError(errno.EPERM, "only root may give a file away")
    if gid is not None and gid != owner[1] and not (
            creds.uid == owner[0] and creds.in_group(gid)):
        raise OSError(errno.EPERM, "not a group of the caller")


def open_wants(flags: int) -> int:
    import os

    access = flags & os.O_ACCMODE
    want = R if access in (os.O_RDONLY, os.O_RDWR) else 0
    if access in (os.O_WRONLY, os.O_RDWR) or flags & os.O_TRUNC:
        want |= W
    return want
