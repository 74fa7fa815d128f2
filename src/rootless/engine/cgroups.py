"""Cgroup v2 for rootless containers: where this user may make cgroups, and the one
cgroup per container that enforces docker's resource flags, freezes it for `pause`
and counts it for `stats`.

Where (Documentation/admin-guide/cgroup-v2.rst, "Delegation" and "Migration"): a user
may make cgroups inside a directory of the hierarchy it owns, but moving a process from
one cgroup to another needs write access to cgroup.procs of the two cgroups' common
ancestor. So a container's cgroup is made beside the cgroup this process runs in, inside
their common parent, and only when that parent, its cgroup.procs and its
cgroup.subtree_control are writable by this user. That is what systemd gives everything
a user's manager starts (user@UID.service, Delegate=yes: a shell in app.slice/X.scope
makes its containers in app.slice), and what a site gives by creating a directory,
chowning it and those files to the user (as systemd does, systemd.io/CGROUP_DELEGATION)
and starting the user's session in a child of it. A process in the root cgroup, or in
a login session's scope owned by root, has no such parent: limits are then not
enforced and the caller prints one warning line (docker prints a WARNING and runs).

Layout:   PARENT/rootless-<id>             the limits (memory.max, cpu.max, pids.max...)
          PARENT/rootless-<id>/container   the container's processes (a leaf)
Every file of a cgroup the user makes is the user's, and the container's root is that
user: a container allowed to mount cgroup2 (--privileged holds CAP_SYS_ADMIN in its
user namespace) could rewrite the limits of the cgroup its processes live in. So the
limits sit one level up, and the container's cgroup namespace is rooted at the leaf:
the runtime moves the container's first process in before that process unshares
CLONE_NEWCGROUP (runtime/process.py's `on_created`), and cgroup v2 refuses a move, or
a view, outside the writer's namespace root (cgroup_namespaces(7)).

No trio and nothing heavy here: `run` and the monitor import this module.
"""

from __future__ import annotations

import errno
import os
import time

from rootless.errors import RootlessError
from rootless.kernel.cgroup2 import cgroup2_mount, host_dir, process_cgroup
from rootless.records import record

PREFIX = "rootless-"
LEAF = "container"


def _container_name(name: str) -> bool:
    """rootless-<12 to 64 lower-case hex digits>: a container's cgroup, never another."""
    digits = name[len(PREFIX):]
    return (name.startswith(PREFIX) and 12 <= len(digits) <= 64
            and all(c in "0123456789abcdef" for c in digits))


# what every container cgroup gets when the parent offers it: docker's stats reads
# cpu, memory, pids and io; cpuset only when --cpuset-cpus asks for it
STATS_CONTROLLERS = ("cpu", "io", "memory", "pids")
# Until its command runs, a container's processes are the runtime's: a Python
# intermediate and init, whose copy-on-write pages are charged to the container (about
# 3 MiB of the init's own after its set-up, smaps_rollup's Private_Dirty, plus the
# kernel's memory for its mounts and namespaces), and who are two processes for a
# moment. Smaller --memory and --pids-limit values hold from the command's exec on
# (cgroup_settle: the interpreter's pages went with the exec), these until then.
SETUP_MEMORY = 32 << 20
SETUP_PIDS = 2
READ_LIMIT = 1 << 16


@record
class CgroupSupport:
    usable: bool  # a container cgroup can be made and the container moved into it
    controllers: tuple[str, ...]  # the controllers container cgroups can have
    reason: str  # where container cgroups go, or why there is nowhere


@record
class Place:
    parent: str | None  # host path of the directory container cgroups are made in
    reason: str  # why there is none (parent None)


@record
class Limit:
    flag: str  # the docker flag, for the warning
    controller: str
    file: str  # the interface file in the container's cgroup
    value: str
    start: str | None = None  # a looser value until the command runs (SETUP_*)


# ---- where ----

def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read(READ_LIMIT).decode(errors="replace")


def cgroup_place() -> Place:
    """The directory this process may make container cgroups in, or why there is none."""
    own = process_cgroup()
    if own is None:
        return Place(None, "this process is in no cgroup v2 hierarchy (cgroup v1 only: "
                           "rootless limits need cgroup v2)")
    if own == "/":  # common without systemd: checked before reading mountinfo
        return Place(None, "this process runs in the root cgroup, which is never "
                           "delegated to a user")
    mount = cgroup2_mount()
    if mount is None:
        return Place(None, "cgroup v2 is not mounted")
    parent = host_dir(mount, os.path.dirname(own))
    if parent is None:
        return Place(None, f"this process's cgroup {own} is outside the cgroup2 mount")
    uid = os.geteuid()
    for path in (parent, os.path.join(parent, "cgroup.procs"),
                 os.path.join(parent, "cgroup.subtree_control")):
        if not os.access(path, os.W_OK):
            try:
                owner = f"owner uid {os.stat(path).st_uid}"
            except OSError as e:
                owner = (e.strerror or str(e)).lower()
            return Place(None, f"{path}, above this process's cgroup {own}, is not "
                               f"writable by uid {uid} ({owner}): the cgroup is not "
                               "delegated (systemd: run from `systemd-run --user --scope`)")
    return Place(parent, "")


def cgroup_support() -> CgroupSupport:
    """For `system info`: can containers get cgroups, which controllers, and why."""
    place = cgroup_place()
    if place.parent is None:
        return CgroupSupport(False, (), place.reason)
    offered = _controllers(place.parent, "cgroup.controllers")
    if offered - _controllers(place.parent, "cgroup.subtree_control") and _has_processes(
            place.parent):
        usable = tuple(sorted(_controllers(place.parent, "cgroup.subtree_control")))
        return CgroupSupport(True, usable, f"containers get cgroups in {place.parent}, "
                             "which holds processes of its own, so it can hand down only "
                             "the controllers already enabled (no-internal-process rule)")
    return CgroupSupport(True, tuple(sorted(offered)),
                         f"containers get cgroups in {place.parent}")


def swap_accounting(parent: str) -> bool:
    """memory.swap.max exists where memory is (the kernel's swap accounting is on)."""
    return os.path.exists(os.path.join(parent, "memory.swap.max"))


def _controllers(directory: str, name: str) -> set[str]:
    try:
        return set(_read(os.path.join(directory, name)).split())
    except OSError:
        return set()


def _has_processes(directory: str) -> bool:
    try:
        return bool(_read(os.path.join(directory, "cgroup.procs")).strip())
    except OSError:
        return False


# ---- limits from the OCI spec's linux.resources ----

def cpu_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144, 1024 the default) -> cgroup v2 cpu.weight
    (1..10000, 100 the default), as runc 1.3 and crun 1.23 convert (opencontainers/
    cgroups, runc#4785): a quadratic in log2(shares) through both ends and 1024 -> 100;
    the linear 1 + (shares - 2) * 9999 / 262142 they used before gave 1024 -> 39."""
    import math

    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    power = math.log2(shares)
    return math.ceil(10 ** ((power * power + 125 * power) / 612 - 7 / 34))


def cgroup_limits(resources: object) -> list[Limit]:
    """linux.resources (cgroup v1 units, read as untrusted JSON) -> cgroup v2 files."""
    if not resources:  # none asked for (every container starts through here)
        return []
    from rootless.engine.resources import CPU_PERIOD, resources_from_oci

    r = resources_from_oci(resources)
    limits = []
    if r.memory > 0:
        start = str(SETUP_MEMORY) if r.memory < SETUP_MEMORY else None
        limits.append(Limit("--memory", "memory", "memory.max", str(r.memory), start))
        if r.memory_swap:  # a total in the spec and docker; swap alone in cgroup v2
            swap = "max" if r.memory_swap < 0 else str(max(r.memory_swap - r.memory, 0))
            limits.append(Limit("--memory-swap", "memory", "memory.swap.max", swap))
    if r.nano_cpus:
        quota = r.nano_cpus * CPU_PERIOD // 10**9
        limits.append(Limit("--cpus", "cpu", "cpu.max", f"{quota} {CPU_PERIOD}"))
    if r.cpu_shares:
        limits.append(Limit("--cpu-shares", "cpu", "cpu.weight",
                            str(cpu_weight(r.cpu_shares))))
    if r.cpuset_cpus:
        limits.append(Limit("--cpuset-cpus", "cpuset", "cpuset.cpus", r.cpuset_cpus))
    if r.pids_limit > 0:
        start = str(SETUP_PIDS) if r.pids_limit < SETUP_PIDS else None
        limits.append(Limit("--pids-limit", "pids", "pids.max", str(r.pids_limit), start))
    return limits


def not_enforced(limits: list[Limit], reason: str) -> str | None:
    """docker's WARNING line for limits that do not hold; None when there are none."""
    flags = list(dict.fromkeys(limit.flag for limit in limits))
    if not flags:
        return None
    return f"WARNING: resource limits are not enforced ({', '.join(flags)}): {reason}"


# ---- one container's cgroup ----

def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mkdir(path: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:  # `restart` of the same container
        pass


def container_cgroup_name(container_id: str) -> str:
    name = PREFIX + container_id
    if not _container_name(name):
        raise ValueError(f"not a container id: {container_id!r}")
    return name


def cgroup_enter(container_id: str, pid: int, resources: object, place: Place | None = None
                 ) -> tuple[str | None, str | None]:
    """Make the container's cgroup, write its limits and move `pid` into its leaf.
    (path of the container's cgroup or None, a WARNING line or None). Never raises for
    the cgroup's sake: a container whose limits cannot hold still runs, as in docker.

    `pid` must join before it creates its cgroup namespace and before it forks the
    container's init (the runtime's intermediate, runtime/process.py `on_created`):
    what it forks is then born inside, and the namespace is rooted at the leaf.
    `place`: where (tests give one); else cgroup_place()."""
    name = container_cgroup_name(container_id)
    limits = cgroup_limits(resources)
    place = place or cgroup_place()
    if place.parent is None:
        return None, not_enforced(limits, f"no delegated cgroup v2 subtree ({place.reason})")
    offered = _controllers(place.parent, "cgroup.controllers")
    missing = _enable(place.parent, {limit.controller for limit in limits}, offered)
    path = os.path.join(place.parent, name)
    try:
        _mkdir(path)
        _mkdir(os.path.join(path, LEAF))
        failed = _write_limits(path, [lim for lim in limits if lim.controller not in missing],
                               start=True)
        _write(os.path.join(path, LEAF, "cgroup.procs"), str(pid))
    except OSError as e:
        _remove_empty(path)
        return None, not_enforced(limits, f"cannot use the cgroup {path}: "
                                          f"{(e.strerror or str(e)).lower()}")
    reasons = _explain(place.parent, missing, offered) + list(dict.fromkeys(failed.values()))
    unenforced = [lim for lim in limits if lim.controller in missing or lim.file in failed]
    return path, not_enforced(unenforced, "; ".join(reasons))


ABSENT, BUSY = "absent", "busy"  # why a controller cannot be had, besides an error


def _explain(parent: str, problems: dict[str, str], offered: set[str]) -> list[str]:
    """One reason per kind of problem, naming every controller it concerns."""
    def named(controllers: list[str]) -> str:
        if len(controllers) == 1:
            return f"the {controllers[0]} controller"
        return f"the {', '.join(controllers[:-1])} and {controllers[-1]} controllers"

    absent = sorted(c for c, why in problems.items() if why == ABSENT)
    busy = sorted(c for c, why in problems.items() if why == BUSY)
    reasons = []
    if absent:
        reasons.append(f"{named(absent)} {'is' if len(absent) == 1 else 'are'} not "
                       f"available in {parent} (its cgroup.controllers lists "
                       f"{' '.join(sorted(offered)) or 'none'})")
    if busy:
        reasons.append(f"{parent} holds processes of its own, so it cannot hand "
                       f"{named(busy)} down (cgroup v2's no-internal-process rule)")
    return reasons + [why for why in problems.values() if why not in (ABSENT, BUSY)]


def _enable(parent: str, wanted: set[str], offered: set[str]) -> dict[str, str]:
    """Enable `wanted` and the stats controllers for the parent's children; {controller:
    why not} for those of `wanted` that could not be (the others are only nice to have)."""
    enabled = _controllers(parent, "cgroup.subtree_control")
    missing = {}
    for controller in sorted((wanted | set(STATS_CONTROLLERS)) - enabled):
        why = ABSENT
        if controller in offered:
            try:  # one controller per write: the kernel refuses a line as a whole
                _write(os.path.join(parent, "cgroup.subtree_control"), "+" + controller)
                continue
            except OSError as e:
                why = BUSY if e.errno == errno.EBUSY else (
                    f"cannot enable the {controller} controller in {parent}: "
                    f"{(e.strerror or str(e)).lower()}")
        if controller in wanted:
            missing[controller] = why
    return missing


def cgroup_check(resources: object, place: Place | None = None) -> str | None:
    """The WARNING line `create` and `run` print for the limits of `resources` that will
    not hold here, foreseen without making anything; None if all will (or none is set)."""
    limits = cgroup_limits(resources)
    if not limits:
        return None
    place = place or cgroup_place()
    if place.parent is None:
        return not_enforced(limits, f"no delegated cgroup v2 subtree ({place.reason})")
    parent = place.parent
    offered = _controllers(parent, "cgroup.controllers")
    enabled = _controllers(parent, "cgroup.subtree_control")
    busy = bool(offered - enabled) and _has_processes(parent)
    problems = {lim.controller: ABSENT if lim.controller not in offered else BUSY
                for lim in limits if lim.controller not in offered or
                (lim.controller not in enabled and busy)}
    reasons = _explain(parent, problems, offered)
    unenforced = [lim for lim in limits if lim.controller in problems]
    swap = [lim for lim in limits
            if lim.file == "memory.swap.max" and lim.controller not in problems]
    if swap and not swap_accounting(parent):
        reasons.append(f"{parent} has no memory.swap.max (this kernel keeps no swap "
                       "accounting)")
        unenforced += swap
    return not_enforced(unenforced, "; ".join(reasons))


class ContainerCgroup:
    """One container's cgroup across its runs, for the process that starts it (the
    monitor): `enter` is runtime.process.start's `on_created`, `settle` follows the
    start, `remove` the init's exit. Nothing here raises for the cgroup's sake."""

    def __init__(self, container_id: str, spec: dict) -> None:
        linux = spec.get("linux") if isinstance(spec, dict) else None
        self.id = container_id
        self.resources = linux.get("resources") if isinstance(linux, dict) else None
        self.path: str | None = None
        self.warning: str | None = None

    def enter(self, pid: int) -> None:
        self.path, self.warning = cgroup_enter(self.id, pid, self.resources)

    def settle(self) -> None:
        if self.path is not None:
            cgroup_settle(self.path, self.resources)

    def remove(self) -> None:
        if self.path is not None:
            cgroup_remove(self.path)
            self.path = None


def cgroup_cleanup(container_id: str) -> None:
    """What a killed monitor left: the container's cgroup where this process would
    make it (`rm` calls this; another session's cgroup is not found, and stays empty)."""
    place = cgroup_place()
    if place.parent is not None and _container_name(PREFIX + container_id):
        path = os.path.join(place.parent, PREFIX + container_id)
        if os.path.isdir(path):
            cgroup_remove(path, timeout=1.0)


def _write_limits(path: str, limits: list[Limit], start: bool) -> dict[str, str]:
    """Write each limit (its start value if `start` and it has one); {file: why} for
    those the kernel refused. A missing memory.swap.max is swap accounting switched off
    (CONFIG_MEMCG_SWAP, or swapaccount=0 before Linux 6.1)."""
    failed = {}
    for limit in limits:
        value = limit.start if start and limit.start is not None else limit.value
        try:
            _write(os.path.join(path, limit.file), value)
        except FileNotFoundError:
            failed[limit.file] = f"{path} has no {limit.file}" + (
                " (this kernel keeps no swap accounting)" if limit.file ==
                "memory.swap.max" else "")
        except OSError as e:
            failed[limit.file] = (f"cannot write {value!r} to {limit.file} in {path}: "
                                  f"{(e.strerror or str(e)).lower()}")
    return failed


def cgroup_settle(path: str, resources: object) -> None:
    """Once the command runs, the limits that were looser during start-up (SETUP_*)
    take their own values. Best effort, like cgroup_enter."""
    limits = [limit for limit in cgroup_limits(resources) if limit.start is not None]
    _write_limits(path, limits, start=False)


def cgroup_join(path: str, pid: int) -> None:
    """Move `pid` (an `exec`'d process, before it joins the container's cgroup
    namespace) into the container's leaf; OSError if the kernel refuses."""
    _write(os.path.join(path, LEAF, "cgroup.procs"), str(pid))


def cgroup_of(container_id: str, pid: int) -> str | None:
    """The container's cgroup, from its init's /proc/PID/cgroup; None if it has none.
    The first rootless-<id> component counts: the container may make cgroups of its own
    only below its leaf."""
    path, mount = process_cgroup(pid), cgroup2_mount()
    if path is None or mount is None:
        return None
    name = container_cgroup_name(container_id)
    parts = path.split("/")
    if name not in parts:
        return None
    return host_dir(mount, "/".join(parts[: parts.index(name) + 1]))


def _container_path(path: str) -> None:
    """Only a container's cgroup may be killed, frozen or removed through here."""
    if not _container_name(os.path.basename(path)) or ".." in path.split("/"):
        raise ValueError(f"not a container cgroup: {path!r}")


def _events(path: str) -> dict[str, str]:
    try:
        return dict(line.split(" ", 1) for line in _read(
            os.path.join(path, "cgroup.events")).splitlines() if " " in line)
    except OSError:
        return {}


def _wait_event(path: str, key: str, value: str, timeout: float) -> bool:
    """Until cgroup.events says `key value`. The kernel wakes poll(2) on the file with
    POLLPRI when it changes (cgroup-v2.rst, "cgroup.events"); each wait is capped at
    0.1 s all the same, so a missed wake-up costs no more than that."""
    import select

    deadline = time.monotonic() + timeout
    try:
        fd = os.open(os.path.join(path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        while True:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 4096).decode(errors="replace")
            if f"{key} {value}" in text.splitlines():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 0.1) * 1000)
    finally:
        os.close(fd)


def cgroup_freeze(path: str, frozen: bool, timeout: float = 10.0) -> bool:
    """Freeze (or thaw) every process of the container's cgroup and wait until the
    kernel says it is so. False if there is no cgroup v2 freezer here (Linux < 5.2, or
    the cgroup is gone): the caller then stops the processes with signals."""
    _container_path(path)
    try:
        _write(os.path.join(path, "cgroup.freeze"), "1" if frozen else "0")
    except FileNotFoundError:
        return False
    except OSError as e:
        raise RootlessError(f"cannot {'freeze' if frozen else 'thaw'} the cgroup {path}: "
                            f"{(e.strerror or str(e)).lower()}") from e
    if not _wait_event(path, "frozen", "1" if frozen else "0", timeout):
        raise RootlessError(f"the cgroup {path} did not {'freeze' if frozen else 'thaw'} "
                            f"within {timeout:g} s")
    return True


def cgroup_remove(path: str, timeout: float = 5.0) -> bool:
    """Remove the container's cgroup once its processes are gone: wait for them, kill
    what is left after half of `timeout` (cgroup.kill, Linux 5.14: no process of a
    container outlives it), then rmdir every level bottom-up (the container may have
    made cgroups below its leaf). True if it is gone."""
    _container_path(path)
    if not os.path.isdir(path):
        return True
    if _events(path).get("populated") == "1" and not _wait_event(
            path, "populated", "0", timeout / 2):
        try:
            _write(os.path.join(path, "cgroup.kill"), "1")
        except OSError:
            pass
        _wait_event(path, "populated", "0", timeout / 2)
    return _remove_empty(path)


def _remove_empty(path: str) -> bool:
    """rmdir the cgroup and every cgroup below it, deepest first, without recursion (a
    container can nest cgroups as deep as cgroup.max.depth allows)."""
    order, todo = [], [path]
    try:
        while todo:
            current = todo.pop()
            order.append(current)
            with os.scandir(current) as entries:
                todo.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        for directory in reversed(order):
            os.rmdir(directory)
    except FileNotFoundError:
        return not os.path.isdir(path)
    except OSError:
        return False
    return True
