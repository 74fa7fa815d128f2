"""User-namespace id maps: which mode this user gets, and writing the maps for a child.

Single-id mode (no /etc/subuid range, the common HPC case): the user's one uid/gid is
mapped to the container user's id, written directly to /proc/PID/{setgroups,uid_map,
gid_map} (an unprivileged process may map its own ids once setgroups is denied,
user_namespaces(7)). Range mode: the user's id becomes container root and ids 1..N come
from the subordinate range, written by the setuid helpers newuidmap/newgidmap, as
rootless Podman does.

Ids from images, flags and OCI specs are parsed strictly (DESIGN.md, principle 7): only
plain ASCII decimal digits make a number (Python's int() also takes '+1', ' 1', '1_0' and
other scripts' digits), and 4294967295 is never an id: it is (uid_t)-1, which
setresuid(2), setresgid(2) and chown(2) read as "leave unchanged" (and no id map may
hold), so a container asked to become it would stay what it was: root, with every
capability.
"""

from __future__ import annotations

import os

from rootless.errors import RuntimeSetupError
from rootless.records import record


MAX_ID = 0xFFFFFFFE  # the largest uid or gid: 0xFFFFFFFF is (uid_t)-1
ID_RANGE = f"ids go from 0 to {MAX_ID} (4294967295 is -1, \"unchanged\", to the kernel)"


def parse_id(text: str) -> int | None:
    """The number `text` spells in plain ASCII decimal digits, else None (a name, or
    something that is neither). The value may be out of range: see valid_id."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 10 else MAX_ID + 1


def valid_id(value: object) -> bool:
    """A uid or gid: an integer (not a bool, not a string) from 0 to MAX_ID."""
    return type(value) is int and 0 <= value <= MAX_ID


@record
class IdRange:
    container_id: int
    host_id: int
    size: int

    def line(self) -> str:
        return f"{self.container_id} {self.host_id} {self.size}"


@record
class IdMaps:
    """The uid and gid maps of one user namespace, and how to write them."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]
    use_helpers: bool  # newuidmap/newgidmap (range mode) or direct writes (single-id)
    # setgroups(2) denied in the namespace, also in range mode (--group-add keep-groups:
    # the user's own groups must not be dropped by the container)
    deny_setgroups: bool = False

    @property
    def mode(self) -> str:
        return "subids" if self.use_helpers else "single-id"

    def check_mapped(self, uid: int, gid: int, additional_gids: tuple[int, ...] = ()) -> None:
        """Refuse, naming the id, what the namespace cannot represent: setresuid(2) and
        setgroups(2) would fail late with a bare EINVAL."""
        for what, value, ranges, source in (
                ("uid", uid, self.uids, "/etc/subuid"), ("gid", gid, self.gids, "/etc/subgid"),
                *(("supplementary gid", g, self.gids, "/etc/subgid") for g in additional_gids)):
            if not any(r.container_id <= value < r.container_id + r.size for r in ranges):
                spans = ", ".join(f"{r.container_id}-{r.container_id + r.size - 1}"
                                  for r in ranges)
                why = (f"a range from {source}" if self.use_helpers
                       else f"single-id mode: this user has no range in {source}")
                raise RuntimeSetupError(f"{what} {value} is not mapped in the container, "
                                        f"whose ids are {spans} ({why})")


def subordinate_range(path: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first range for `user` (by name or number) in /etc/subuid-style `path`."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count > 0:
            return start, count
    return None


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def helpers_present() -> bool:
    return bool(which("newuidmap") and which("newgidmap"))


def which(name: str) -> str | None:
    """shutil.which without importing shutil (~1.5 ms on every `rootless run`)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def detect_maps(container_uid: int = 0, container_gid: int = 0) -> IdMaps:
    """Range mode when this user has subordinate ids and the helpers exist, else single-id.

    In single-id mode the one id we own is mapped to the id the container process runs
    as, so `-u 1000` works without any other id being mapped (as Apptainer does).
    """
    uid, gid = os.getuid(), os.getgid()
    if os.environ.get("ROOTLESS_IDMAP") != "single":
        subuid, subgid = _ranges(uid)
        if subuid and subgid:
            return IdMaps(
                uids=(IdRange(0, uid, 1), IdRange(1, subuid[0], min(subuid[1], 65536))),
                gids=(IdRange(0, gid, 1), IdRange(1, subgid[0], min(subgid[1], 65536))),
                use_helpers=True,
            )
    return IdMaps(
        uids=(IdRange(container_uid, uid, 1),),
        gids=(IdRange(container_gid, gid, 1),),
        use_helpers=False,
    )


_RANGES: dict[int, tuple] = {}  # uid -> its ranges: read once per process (`run`
# asks twice: for the layers' owners and for the container's maps)


def _ranges(uid: int) -> tuple:
    """(subuid range, subgid range) of `uid`, each None when missing; both None
    without the helpers."""
    if uid not in _RANGES:
        if helpers_present() and _root_mapped():
            name = _user_name(uid)
            _RANGES[uid] = (subordinate_range("/etc/subuid", name, uid),
                            subordinate_range("/etc/subgid", name, uid))
        else:
            _RANGES[uid] = (None, None)
    return _RANGES[uid]


def _root_mapped() -> bool:
    """newuidmap/newgidmap are setuid root, which holds only where root is mapped: in a
    user namespace that does not map it (a rootless container, `unshare --user
    --map-current-user`) the kernel ignores their setuid bit (execve(2)) and they fail,
    so this user is in single-id mode there."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = f.read().splitlines()
    except OSError:
        return True
    return any(len(fields) == 3 and fields[1] == "0" for fields in map(str.split, lines))


def write_maps(pid: int, maps: IdMaps) -> None:
    """Write the id maps of the user namespace that process `pid` has just unshared."""
    if maps.use_helpers:
        if maps.deny_setgroups:  # before the gid map, or the kernel refuses (EPERM);
            _write_setgroups_deny(pid)  # newgidmap leaves a "deny" alone (shadow 4.6)
        _run_helper("newuidmap", pid, maps.uids)
        _run_helper("newgidmap", pid, maps.gids)
        return
    try:
        _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", "\n".join(r.line() for r in maps.uids))
        _write_proc(pid, "gid_map", "\n".join(r.line() for r in maps.gids))
    except OSError as e:
        raise RuntimeSetupError(f"map user ids: {e.strerror}: /proc/{pid}/{e.filename}") from e


def write_maps_within(userns_fd: int, pid: int, maps: IdMaps,
                      parent: tuple[tuple[IdRange, ...], tuple[IdRange, ...]]) -> None:
    """Write the maps of a user namespace that process `pid` has unshared INSIDE the
    one `userns_fd` names (a nested namespace: user networks' pause, runtime/process.py).
    `maps` say which host ids the container gets, as for a namespace of our own; they are
    written relative to the parent namespace by a child that entered it, where it holds
    CAP_SETUID and CAP_SETGID (user_namespaces(7): the writer must be in the parent
    namespace, with the capabilities there; no newuidmap is needed, the parent has the
    range already). `parent`: the (uid, gid) maps of the joined namespace as the host
    sees them (read_maps of a process in it), since read from inside, a map names its
    own parent's ids, which for a nested namespace are not the host's."""
    read_r, write_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(read_r)
            _write_within(userns_fd, pid, maps, parent)
            code = 0
        except RuntimeSetupError as e:
            os.write(write_w, str(e).encode())
        except BaseException as e:
            os.write(write_w, f"map user ids: {e}".encode())
        finally:
            os._exit(code)
    os.close(write_w)
    try:
        message = b""
        while chunk := os.read(read_r, 4096):
            message += chunk
    finally:
        os.close(read_r)
        _, status = os.waitpid(child, 0)
    if status != 0:
        raise RuntimeSetupError(message.decode(errors="replace") or "map user ids: failed")


def _write_within(userns_fd: int, pid: int, maps: IdMaps,
                  parent: tuple[tuple[IdRange, ...], tuple[IdRange, ...]]) -> None:
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    try:
        RealSyscalls().setns(userns_fd, k.CLONE_NEWUSER)
    except OSError as e:
        raise RuntimeSetupError(f"map user ids: enter the parent user namespace: "
                                f"{os.strerror(e.errno).lower()}") from e
    uids = _relative(maps.uids, parent[0], "uid")
    gids = _relative(maps.gids, parent[1], "gid")
    try:
        if not maps.use_helpers or maps.deny_setgroups:  # as write_maps does
            _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", "\n".join(r.line() for r in uids))
        _write_proc(pid, "gid_map", "\n".join(r.line() for r in gids))
    except OSError as e:
        raise RuntimeSetupError(f"map user ids: {e.strerror}: /proc/{pid}/{e.filename}") from e


def read_maps(pid: int) -> tuple[tuple[IdRange, ...], tuple[IdRange, ...]]:
    """The (uid, gid) maps of process `pid`'s user namespace in our own namespace's ids
    (user_namespaces(7): a map read from another namespace names the reader's ids)."""
    def ranges(name: str) -> tuple[IdRange, ...]:
        with open(f"/proc/{pid}/{name}") as f:
            return tuple(IdRange(*map(int, line.split())) for line in f if line.strip())
    return ranges("uid_map"), ranges("gid_map")


def _relative(ranges: tuple[IdRange, ...], parent: tuple[IdRange, ...],
              what: str) -> tuple[IdRange, ...]:
    """`ranges` (container id -> host id) as container id -> id of the parent namespace
    whose map is `parent`; each range must lie within one of the parent's."""
    out = []
    for r in ranges:
        for p in parent:
            if p.host_id <= r.host_id and r.host_id + r.size <= p.host_id + p.size:
                out.append(IdRange(r.container_id, p.container_id + r.host_id - p.host_id,
                                   r.size))
                break
        else:
            raise RuntimeSetupError(f"map user ids: host {what}s {r.host_id}-"
                                    f"{r.host_id + r.size - 1} are not mapped in the "
                                    "namespace the container joins")
    return tuple(out)


def _write_setgroups_deny(pid: int) -> None:
    try:
        _write_proc(pid, "setgroups", "deny")
    except OSError as e:
        raise RuntimeSetupError(f"deny setgroups: {e.strerror}: /proc/{pid}/setgroups") from e


def _write_proc(pid: int, name: str, text: str) -> None:
    fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY)
    try:
        os.write(fd, text.encode() + b"\n")
    except OSError as e:
        e.filename = name
        raise
    finally:
        os.close(fd)


def _run_helper(helper: str, pid: int, ranges: tuple[IdRange, ...]) -> None:
    args = [helper, str(pid)]
    for r in ranges:
        args += [str(r.container_id), str(r.host_id), str(r.size)]
    import subprocess  # only range mode needs it; it costs 5 ms of start-up

    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        raise RuntimeSetupError(f"map user ids: {helper}: {detail}")


def maps_from_spec(linux: dict) -> IdMaps | None:
    """The maps an OCI spec asks for (linux.uidMappings/gidMappings), or None."""
    def ranges(key: str) -> tuple[IdRange, ...]:
        entries = linux.get(key) or []
        if not isinstance(entries, list):
            raise RuntimeSetupError(f"linux.{key}: not a list")
        return tuple(_spec_range(key, m) for m in entries)

    uids, gids = ranges("uidMappings"), ranges("gidMappings")
    if not uids or not gids:
        return None
    own = (IdRange(uids[0].container_id, os.getuid(), 1),)
    own_gid = (IdRange(gids[0].container_id, os.getgid(), 1),)
    direct = uids == own and gids == own_gid
    return IdMaps(uids=uids, gids=gids, use_helpers=not direct)


def _spec_range(key: str, entry: object) -> IdRange:
    """One OCI id mapping, strictly: integers (never bools or strings), ids in range, a
    size of at least one that does not run past the last id (user_namespaces(7))."""
    fields = ("containerID", "hostID", "size")
    values = [entry.get(f) if isinstance(entry, dict) else None for f in fields]
    container_id, host_id, size = values
    if not (all(type(v) is int for v in values) and valid_id(container_id)
            and valid_id(host_id) and size >= 1 and container_id + size - 1 <= MAX_ID
            and host_id + size - 1 <= MAX_ID):
        raise RuntimeSetupError(f"linux.{key}: invalid mapping {entry!r}: {ID_RANGE}")
    return IdRange(container_id, host_id, size)


def maps_to_spec(maps: IdMaps) -> dict:
    def entries(ranges: tuple[IdRange, ...]) -> list[dict]:
        return [{"containerID": r.container_id, "hostID": r.host_id, "size": r.size}
                for r in ranges]

    return {"uidMappings": entries(maps.uids), "gidMappings": entries(maps.gids)}
