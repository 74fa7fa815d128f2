"""The storage namespace: a user namespace with the containers' id map, where the store's
trees are written, read and removed with the owners a container sees.

With a subordinate range, layers hold their true owners mapped into the range, as
podman's storage keeps them: container root is the user, container id N (1..65536) is
the range's id START+N-1 on the host (kernel/idmap.detect_maps). The user cannot chown
to those ids, open their 0700 directories or unlink in them; root of a user namespace
with the same map can, since its capabilities hold over every inode whose owner and
group it maps (capable_wrt_inode_uidgid, user_namespaces(7)), and over nothing else. So
every command that writes, reads or removes such a tree does that part here:

- enter(maps): this process becomes root of a new user namespace with `maps`. It must
  be single-threaded (unshare(2) refuses CLONE_NEWUSER otherwise, EINVAL). A range's
  maps are written from outside, by the setuid newuidmap/newgidmap (inside, the process
  has no mapped id yet, and the kernel ignores a setuid bit whose owner is not mapped),
  so a child forked before the unshare writes them and exits; single-id maps the
  process writes itself (an unprivileged process may map its own ids).
- call_as_root(work, *args): a forked child enters and runs work(*args); its return
  value (pickled) or its error comes back over a pipe. Layers unpacked in this process,
  commit/export/diff reads, volume fills and passwd lookups use it; so does `cp`'s
  helper (engine/cp_session.py) through enter().
- remove_tree(path): kernel/remove.py's remover (by descriptor, never by path), and,
  where the user alone is refused (PermissionError), the same remover again from here.

Nothing here changes the host's mount namespace or follows a path of a tree: only the
process's credentials change, so every rule of the code it runs still holds.
"""

from __future__ import annotations

import os

from rootless.records import record

_inside = False  # this process is root of a storage namespace (enter() ran)


@record
class StorageIds:
    """How layers are stored with a subordinate range: the id maps of the namespace
    that writes them, and whether ids it cannot map are squashed
    (`--storage-opt ignore_chown_errors=true`) instead of refusing the layer."""

    maps: object  # kernel/idmap.IdMaps
    squash: bool = False

    def key(self) -> str:
        """What a layer records about how it was stored (store/metadata.py): a layer
        written with another range holds ids this one would read wrongly."""
        return "ids " + " / ".join(",".join(f"{r.container_id}:{r.host_id}:{r.size}"
                                            for r in ranges)
                                   for ranges in (self.maps.uids, self.maps.gids))

    def mapped(self, uid: int, gid: int) -> bool:
        return _in(self.maps.uids, uid) and _in(self.maps.gids, gid)

    def squashed(self, uid: int, gid: int) -> tuple[int, int]:
        """ignore_chown_errors: an id the namespace cannot map becomes 0 (the user,
        container root), as containers-storage leaves the files it cannot chown."""
        return (uid if _in(self.maps.uids, uid) else 0,
                gid if _in(self.maps.gids, gid) else 0)

    def to_json(self) -> str:
        import json

        return json.dumps({"uids": [list(r) for r in self.maps.uids],
                           "gids": [list(r) for r in self.maps.gids],
                           "squash": self.squash})

    @classmethod
    def from_json(cls, text: str) -> "StorageIds":
        import json

        from rootless.kernel.idmap import IdMaps, IdRange

        data = json.loads(text)
        return cls(IdMaps(tuple(IdRange(*r) for r in data["uids"]),
                          tuple(IdRange(*r) for r in data["gids"]), True),
                   bool(data["squash"]))


RECORDS = "records"  # the layer key of single-id mode: owners in override_stat records


def _in(ranges, value: int) -> bool:
    return any(r.container_id <= value < r.container_id + r.size for r in ranges)


def storage_ids(squash: bool = False) -> StorageIds | None:
    """The storage namespace of this user: None in single-id mode (layers then belong
    to the user, their owners recorded in override_stat)."""
    from rootless.kernel.idmap import detect_maps

    maps = detect_maps()
    return StorageIds(maps, squash) if maps.use_helpers else None


def storage_key() -> str:
    """The layer key of how this user stores layers now."""
    ids = storage_ids()
    return ids.key() if ids is not None else RECORDS


def inside() -> bool:
    return _inside


def enter(maps) -> None:
    """Make this single-threaded process root of a new user namespace with `maps`
    (kernel/idmap.IdMaps). StoreError if the kernel or the helpers refuse."""
    global _inside
    from rootless.errors import RootlessError, StoreError
    from rootless.kernel import constants as k
    from rootless.kernel.idmap import write_maps
    from rootless.kernel.syscalls import RealSyscalls

    if not maps.use_helpers:  # the user's own ids: written by the process itself
        try:
            RealSyscalls().unshare(k.CLONE_NEWUSER)
            write_maps(os.getpid(), maps)
        except (OSError, RootlessError) as e:
            raise StoreError(f"cannot enter a user namespace: {_reason(e)}") from None
    else:
        _unshare_mapped_by_child(maps)
    # root there, if root is mapped (it is in the storage map: the user itself)
    if _in(maps.gids, 0) and _in(maps.uids, 0):
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    _inside = True


def _unshare_mapped_by_child(maps) -> None:
    from rootless.errors import RootlessError, StoreError
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    target = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: maps its parent's namespace from outside, then exits
        os.close(go_w)
        os.close(err_r)
        code = 1
        try:
            if os.read(go_r, 1) == b"U":
                from rootless.kernel.idmap import write_maps

                write_maps(target, maps)
                code = 0
        except BaseException as e:
            message = str(e) if isinstance(e, RootlessError) else _reason(e)
            try:
                os.write(err_w, message.encode()[:500])
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(err_w)
    try:
        try:
            RealSyscalls().unshare(k.CLONE_NEWUSER)
            os.write(go_w, b"U")
        finally:
            os.close(go_w)  # on failure the child reads EOF and exits unmapped
            _, status = os.waitpid(pid, 0)
            detail = os.read(err_r, 500).decode(errors="replace")
            os.close(err_r)
    except OSError as e:
        raise StoreError(f"cannot enter the storage user namespace: {_reason(e)}") from None
    if status != 0:
        raise StoreError("cannot enter the storage user namespace: "
                         f"{detail or f'the mapping process failed (status {status})'}")


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError):
        return (e.strerror or str(e)).lower()
    return f"{type(e).__name__}: {e}"


def call_as_root(work, *args, maps=None, userns_fd: int | None = None):
    """work(*args) in a forked child that is root of a storage namespace (this user's
    containers' maps, or `maps`), or with `userns_fd` a member of that existing user
    namespace (a running container's: a FUSE rootfs mounted there answers only its
    members); its return value. Its RootlessError is raised here again, any other
    failure as a one-line StoreError. Already inside one, work runs here. The child
    shares this process's descriptors (it may write to stdout or to an open file) and
    dies with it."""
    if _inside and userns_fd is None:
        return work(*args)
    import pickle
    import signal
    import sys

    from rootless.errors import RootlessError, StoreError

    if maps is None:
        from rootless.kernel.idmap import detect_maps

        maps = detect_maps()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(reply_r)
        _child(work, args, maps, parent, reply_w, userns_fd)
    os.close(reply_w)
    status = None
    try:
        with os.fdopen(reply_r, "rb") as reply:
            data = reply.read()
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:  # interrupted (Ctrl-C): the child goes too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
    try:
        kind, value = pickle.loads(data) if data else ("error", None)
    except Exception:
        kind, value = "error", None
    if kind == "ok" and status == 0:
        return value
    if isinstance(value, RootlessError):
        raise value
    raise StoreError(value if isinstance(value, str) and value
                     else f"the user-namespace helper process failed (status {status})")


def _child(work, args, maps, parent: int, reply_w: int, userns_fd: int | None) -> None:
    """The child of call_as_root: never returns."""
    import pickle
    import signal

    from rootless.errors import RootlessError

    code = 1
    try:
        from rootless.kernel import constants as k
        from rootless.kernel.syscalls import RealSyscalls

        RealSyscalls().prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the caller died before the line above
            os._exit(1)
        if userns_fd is None:
            enter(maps)
        else:
            RealSyscalls().setns(userns_fd, k.CLONE_NEWUSER)
        result = ("ok", work(*args))
        code = 0
    except RootlessError as e:
        result = ("error", e)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        result = ("error", f"{(e.strerror or str(e)).lower()}{where}")
    except BaseException as e:  # never a traceback, never back into the caller's code
        result = ("error", f"internal error: {type(e).__name__}: {e}")
    # no flush of sys.stdout here: forked from a thread (a trio worker's cleanup), the
    # child may hold a copy of a lock another thread had; what work writes, it writes
    # to a descriptor itself (export, diff), and nothing else prints
    try:
        try:
            data = pickle.dumps(result)
        except Exception:  # an error whose arguments do not pickle: its message
            data = pickle.dumps(("error", str(result[1])))
            code = 1
        view = memoryview(data)
        while view:
            view = view[os.write(reply_w, view):]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


# ---- removal ----

def remove_tree(path: str | os.PathLike) -> None:
    """Remove a tree of the store (kernel/remove.rmtree_owned), from a storage
    namespace where files of subordinate ids refuse the user; a missing path is not an
    error."""
    from rootless.kernel.remove import rmtree_owned

    try:
        rmtree_owned(path)
        return
    except PermissionError:
        if _inside:
            raise
    from rootless.errors import StoreError

    try:
        call_as_root(rmtree_owned, path)
    except StoreError as e:
        raise StoreError(f"cannot remove {path}: {_lost_range_hint(e)}") from None
    if os.path.lexists(path):
        raise StoreError(f"cannot remove {path}: permission denied")


def _lost_range_hint(e: Exception) -> str:
    """A tree of subordinate ids that single-id mode cannot remove: why."""
    message = str(e)
    if storage_ids() is None and ("permission denied" in message
                                  or "operation not permitted" in message):
        return (f"{message}: its files belong to subordinate ids this user does not "
                "have now (check /etc/subuid and /etc/subgid, and newuidmap)")
    return message
