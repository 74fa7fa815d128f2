"""User-namespace id maps: which mode this user gets, and writing the maps for a child.

Single-id mode (no /etc/subuid range, the common HPC case): the user's one uid/gid is
mapped to the container user's id, written directly to /proc/PID/{setgroups,uid_map,
gid_map} (an unprivileged process may map its own ids once setgroups is denied,
user_namespaces(7)). Range mode: the user's id becomes container root and ids 1..N come
from the subordinate range, written by the setuid helpers newuidmap/newgidmap, as
rootless Podman does.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from rootless.errors import RuntimeSetupError


class IdRange(NamedTuple):
    container_id: int
    host_id: int
    size: int

    def line(self) -> str:
        return f"{self.container_id} {self.host_id} {self.size}"


class IdMaps(NamedTuple):
    """The uid and gid maps of one user namespace, and how to write them."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]
    use_helpers: bool  # newuidmap/newgidmap (range mode) or direct writes (single-id)

    @property
    def mode(self) -> str:
        return "subids" if self.use_helpers else "single-id"


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
    if os.environ.get("ROOTLESS_IDMAP") != "single" and helpers_present():
        name = _user_name(uid)
        subuid = subordinate_range("/etc/subuid", name, uid)
        subgid = subordinate_range("/etc/subgid", name, uid)
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


def write_maps(pid: int, maps: IdMaps) -> None:
    """Write the id maps of the user namespace that process `pid` has just unshared."""
    if maps.use_helpers:
        _run_helper("newuidmap", pid, maps.uids)
        _run_helper("newgidmap", pid, maps.gids)
        return
    try:
        _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", "\n".join(r.line() for r in maps.uids))
        _write_proc(pid, "gid_map", "\n".join(r.line() for r in maps.gids))
    except OSError as e:
        raise RuntimeSetupError(f"map user ids: {e.strerror}: /proc/{pid}/{e.filename}") from e


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
        return tuple(IdRange(int(m["containerID"]), int(m["hostID"]), int(m["size"]))
                     for m in linux.get(key, []))

    uids, gids = ranges("uidMappings"), ranges("gidMappings")
    if not uids or not gids:
        return None
    own = (IdRange(uids[0].container_id, os.getuid(), 1),)
    own_gid = (IdRange(gids[0].container_id, os.getgid(), 1),)
    direct = uids == own and gids == own_gid
    return IdMaps(uids=uids, gids=gids, use_helpers=not direct)


def maps_to_spec(maps: IdMaps) -> dict:
    def entries(ranges: tuple[IdRange, ...]) -> list[dict]:
        return [{"containerID": r.container_id, "hostID": r.host_id, "size": r.size}
                for r in ranges]

    return {"uidMappings": entries(maps.uids), "gidMappings": entries(maps.gids)}
