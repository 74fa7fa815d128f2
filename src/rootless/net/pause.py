"""The pause process of a user's user networks (DESIGN.md, Networking; Podman's model).

A veth pair can only join network namespaces over which one process holds
CAP_NET_ADMIN. So a user whose containers use user networks has one pause process: it
holds a user namespace P (the user's usual id mapping: one id, or the subordinate range)
and a network namespace H owned by P, the hub, where the networks' bridges live. Each
container on a user network makes its own user namespace INSIDE P (runtime/process.py's
Joins, nested), and its network namespace under that: a process that has entered P then
holds every capability over H and over the container's namespaces (user_namespaces(7)),
and joins them with veth pairs (net/bridge.py). Containers do not share P itself: a
container's root has no capability over the hub or over another container.

Lifetime: every monitor of a container on a user network holds a shared flock(2) on the
store's lock file for the container's run (`hold`); the pause process (the exec helper's
`--hold-lock`, csrc/exec_helper.c, ~100 KB resident) blocks on an exclusive lock on its own
open file description of it, so it exits, and its namespaces go, once the last such
container has stopped. A starter takes its shared lock before it looks for the pause, so
it never finds one that is about to exit. Starts are serialised by a second lock file,
and the running one is named by pid and start time in a JSON file (temp + rename).

A pause killed while its containers run (the OOM killer, a stray `kill`): its
namespaces live on, held open by those containers' monitors, and `ensure` starts the
next pause inside them (_orphaned_hub), so a new container still meets its peers.

Everything lives under $XDG_RUNTIME_DIR/rootless/pause/ (0700), one set of files per id
mapping (single-id, subids: ROOTLESS_IDMAP=single may ask for the first where the user
has a range), shared by all the user's stores: bridges are named by network ids, which
are random, so the networks of two stores never meet in one hub.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os

from rootless.errors import RootlessError
from rootless.kernel.idmap import IdMaps
from rootless.records import record


class PauseError(RootlessError):
    """The pause process could not be started or found."""


@record
class Pause:
    pid: int
    start_time: int


def _paths(maps: IdMaps) -> tuple[str, str]:
    """(the directory, the key of the mapping in it)."""
    from rootless.runtime.seccomp import runtime_dir

    base = os.path.join(runtime_dir(), "pause")
    os.makedirs(base, mode=0o700, exist_ok=True)
    return base, maps.mode


def hold(maps: IdMaps) -> int:
    """A descriptor holding a shared lock on the pause lock file: while it is open, the
    pause process (once `ensure`d) lives. Waits while a pause whose last container has
    gone is exiting."""
    from rootless.kernel.flock import open_locked

    base, key = _paths(maps)
    return open_locked(os.path.join(base, key + ".lock"), shared=True)


def ensure(maps: IdMaps, survivors=None) -> Pause:
    """The running pause process with `maps` (the user's usual ones: detect_maps(0, 0)),
    started now if there is none. The caller holds `hold`'s lock. `survivors`: a
    function giving the pids of monitors that may still hold a killed pause's
    namespaces (the store's running user network containers'): a new pause then
    enters those rather than making an empty hub (see _orphaned_hub)."""
    from rootless.kernel.flock import open_locked
    from rootless.kernel.procs import alive_as

    base, key = _paths(maps)
    start_lock = open_locked(os.path.join(base, key + ".start"))
    try:
        found = _read_record(os.path.join(base, key + ".json"))
        if found is not None and alive_as(found.pid, found.start_time):
            return found
        lock_path = os.path.join(base, key + ".lock")
        hub = _orphaned_hub(survivors() if survivors else (), lock_path)
        try:
            pause = _start(lock_path, maps, hub)
        finally:
            for fd in hub or ():
                os.close(fd)
        _write_record(os.path.join(base, key + ".json"), pause)
        return pause
    finally:
        os.close(start_lock)


# ioctl_ns(2), Linux 4.9: _IO(0xb7, 1) and _IO(0xb7, 2)
NS_GET_USERNS, NS_GET_PARENT = 0xB701, 0xB702


def _orphaned_hub(monitors, lock_path: str) -> tuple[int, int] | None:
    """(user namespace, hub) of a pause process killed while its containers run, or None.

    The namespaces outlive the process: each such container's monitor holds both open
    for its run (engine/network_run.UserNetworkRun), with the bridges and the peers'
    veth pairs in the hub. Without this, the next container would get a new, empty hub
    and never reach them (podman's pause process has that hole). A candidate counts
    only if it is a monitor of OUR mapping's pause (it holds `lock_path` open), holds a
    user namespace whose parent is ours (ioctl_ns(2) NS_GET_PARENT), and a network
    namespace that user namespace owns (NS_GET_USERNS): that pair is the hub."""
    ours = os.stat("/proc/self/ns/user")
    for pid in monitors:
        links = _fd_links(pid)
        if os.path.realpath(lock_path) not in links.values():
            continue
        users = [fd for fd, link in links.items() if link.startswith("user:[")]
        nets = [fd for fd, link in links.items() if link.startswith("net:[")]
        for user in users:
            userns = _open_fd_of(pid, user)
            if userns is None:
                continue
            if _same(_related(userns, NS_GET_PARENT), ours):
                for net in nets:
                    netns = _open_fd_of(pid, net)
                    if netns is not None and _same(_related(netns, NS_GET_USERNS),
                                                   os.fstat(userns)):
                        return userns, netns
                    if netns is not None:
                        os.close(netns)
            os.close(userns)
    return None


def _fd_links(pid: int) -> dict[str, str]:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    links = {}
    for name in names:
        try:
            links[name] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
    return links


def _open_fd_of(pid: int, fd: str) -> int | None:
    try:
        return os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _related(fd: int, request: int):
    """fstat of the namespace ioctl_ns(2) `request` names (the kernel's new descriptor
    is close-on-exec), or None."""
    try:
        related = fcntl.ioctl(fd, request)
    except OSError:
        return None
    try:
        return os.fstat(related)
    finally:
        os.close(related)


def _same(a, b) -> bool:
    return a is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def find(maps: IdMaps) -> Pause | None:
    """The running pause process with `maps`, or None: never starts one. The caller
    holds `hold`'s lock, so one found stays."""
    from rootless.kernel.procs import alive_as

    base, key = _paths(maps)
    found = _read_record(os.path.join(base, key + ".json"))
    return found if found is not None and alive_as(found.pid, found.start_time) else None


def namespaces(pause: Pause) -> tuple[int, int, tuple]:
    """Close-on-exec descriptors of the pause's user namespace and hub network
    namespace, and the maps of that user namespace as we see them; PauseError if it has
    gone."""
    from rootless.kernel.procs import open_user_namespaces

    try:
        (user, net), maps = open_user_namespaces(pause.pid, pause.start_time, ("net",))
    except ProcessLookupError:
        raise PauseError(f"the pause process of user networks (pid {pause.pid}) has "
                         "exited") from None
    except OSError as e:
        raise PauseError(f"open the namespaces of the pause process (pid {pause.pid}): "
                         f"{os.strerror(e.errno).lower()}") from None
    return user, net, maps


def _read_record(path: str) -> Pause | None:
    from rootless.kernel.paths import read_regular_at

    try:
        data = json.loads(read_regular_at(None, path, 4096))
        pid, started = data["pid"], data["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if type(pid) is not int or type(started) is not int or pid <= 1:
        return None
    return Pause(pid, started)


def _write_record(path: str, pause: Pause) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": pause.pid, "start_time": pause.start_time}, f)
    os.replace(tmp, path)


def _start(lock_path: str, maps: IdMaps, hub: tuple[int, int] | None = None) -> Pause:
    """Fork the pause: its own session (no terminal's signal reaches it), a new user
    namespace whose maps we write, then a new network namespace (the hub), or the
    user namespace and hub `hub` (a killed pause's) entered, then exec of the exec
    helper holding the lock. Returns once it has exec'd."""
    from rootless.kernel.idmap import write_maps
    from rootless.kernel.procs import start_time

    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)  # "U", then EOF at exec, or an error
    pid = os.fork()
    if pid == 0:
        _child(lock_path, go_r, report_w, (go_w, report_r), hub)
    os.close(go_r)
    os.close(report_w)
    try:
        first = os.read(report_r, 1)
        if first != b"U":
            raise PauseError((first.decode(errors="replace") + _failure(report_r, ""))
                             or "the pause process failed to start")
        if hub is None:
            write_maps(pid, maps)
        os.write(go_w, b"M")
        os.close(go_w)
        go_w = -1
        message = _failure(report_r, default="")
        if message:
            raise PauseError(message)
        started = start_time(pid)
        if started is None:
            raise PauseError("the pause process of user networks exited at its start")
    except BaseException:
        _kill(pid)
        raise
    finally:
        os.close(report_r)
        if go_w >= 0:
            os.close(go_w)
    return Pause(pid, started)


def _failure(report_r: int, default: str = "the pause process failed to start") -> str:
    chunks = []
    while chunk := os.read(report_r, 4096):
        chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace").strip()
    return text or default


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _child(lock_path: str, go_r: int, report_w: int, theirs: tuple[int, int],
           hub: tuple[int, int] | None) -> None:
    """Never returns."""
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls
    from rootless.runtime.helper import HELPER_PATH

    report = report_w
    try:
        for fd in theirs:
            os.close(fd)
        os.setsid()
        sys = RealSyscalls()
        if hub is None:
            sys.unshare(k.CLONE_NEWUSER)
        else:  # its owner: every capability in it (user_namespaces(7)), so in the hub
            sys.setns(hub[0], k.CLONE_NEWUSER)
        os.write(report, b"U")
        if os.read(go_r, 1) != b"M":
            os._exit(1)
        if hub is None:
            sys.unshare(k.CLONE_NEWNET)
        else:
            sys.setns(hub[1], k.CLONE_NEWNET)
        # lifted above the targets first, so no dup2 below overwrites a source
        lock = fcntl.fcntl(os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC),
                           fcntl.F_DUPFD_CLOEXEC, 10)
        report = fcntl.fcntl(report_w, fcntl.F_DUPFD_CLOEXEC, 10)
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.dup2(lock, 3)  # inheritable: the helper's flock acts on its own description
        os.dup2(report, 4, inheritable=False)  # EOF at exec tells the parent we did
        report = 4
        os.closerange(5, 1 << 16)
        os.execv(HELPER_PATH, ["rootless-pause", "--hold-lock", "3"])
    except OSError as e:
        try:
            os.write(report, f"start the pause process of user networks: "
                             f"{os.strerror(e.errno or errno.EIO).lower()}".encode())
        except OSError:
            pass
    finally:
        os._exit(1)
