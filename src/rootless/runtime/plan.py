"""The container set-up as data: spec -> a PLAN of small frozen operations.

As bubblewrap describes its sandbox as a list of SetupOp records, the runtime first turns
an OCI config.json into a list of operations, then a dumb executor (executor.py) runs
them in the container's first process. Plans print with `--debug` and compare in tests.
Paths in operations before `PivotRoot` are container paths, resolved inside the rootfs
at execution time (never joined as strings); after it they are ordinary paths.

Operations are NamedTuples (rootless/records.py) rather than dataclasses: this module is on every `rootless
run`, and creating two dozen dataclasses costs ~10 ms of start-up; NamedTuples ~1 ms.
Compare plans with `same_steps`, since tuples of different types can be equal.
"""

from __future__ import annotations

from rootless.kernel import constants as k
from rootless.records import record
from rootless.runtime import caps
from rootless.runtime.annotations import (INIT_ANNOTATION, KEEP_GROUPS_ANNOTATION,
                                          ROOTFS_OVERLAY_ANNOTATION)


@record
class MakeMountsPrivate:
    """Stop mount events from propagating between the host and the container."""


@record
class MountOverlay:
    target: str  # host path of the merged directory (spec root.path)
    lower: tuple[str, ...]  # topmost first, as overlayfs wants them
    upper: str
    work: str


@record
class MountFuse:
    """Our FUSE overlay on the rootfs directory: the init opens /dev/fuse in its user
    namespace, mounts, and hands the descriptor to the server over `channel`
    (runtime/fuse_mount.py; the server is fs/fuse_server.py)."""

    target: str  # host path of the merged directory (spec root.path)
    single_id: bool = True  # the server checks permissions; else the kernel does
    channel: int = -1  # the socket to the server, set by start_spec; -1: none yet


@record
class BindRootfs:
    path: str  # a plain directory made into a mount point so pivot_root accepts it


@record
class MountFilesystem:
    fstype: str
    dest: str
    source: str
    flags: int = 0
    data: str = ""
    no_symlinks: bool = True  # /proc, /sys, /dev must not be symlinks in the image
    # devpts refuses gid=5 when gid 5 is not mapped (single-id mode); retry without it
    fallback_data: str | None = None


@record
class BindMount:
    source: str  # host path
    dest: str
    recursive: bool = True
    readonly: bool = False
    flags: int = 0  # MOUNT_ATTR_* to set besides read-only


@record
class BindHostSys:
    """sysfs cannot be mounted without owning the network namespace: bind the host's."""

    dest: str = "/sys"


@record
class BindDevice:
    path: str  # the same path on the host and in the container, e.g. /dev/null


@record
class MakeSymlink:
    target: str
    dest: str


@record
class PivotRoot:
    rootfs: str


@record
class MaskPath:
    path: str


@record
class ReadonlyPath:
    path: str


@record
class ReadonlyRoot:
    pass


@record
class SetHostname:
    name: str


@record
class LoopbackUp:
    pass


@record
class SetRlimit:
    resource: str  # RLIMIT_NOFILE ...
    soft: int
    hard: int


@record
class Chdir:
    path: str
    # run makes a missing working directory, as docker does; exec only enters one (runc
    # chdirs to an exec's cwd and fails if it is missing)
    create: bool = True


@record
class DropBoundingCapabilities:
    bounding: int


@record
class SetCapabilities:
    """After SetUser: the sets the process keeps (a non-root exec clears them anyway)."""

    effective: int
    permitted: int
    inheritable: int
    ambient: int


@record
class SetUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    # false where setgroups(2) is denied: single-id mode, and keep-groups (the process
    # keeps the groups it was started with)
    set_groups: bool = True


@record
class NoNewPrivileges:
    pass


@record
class LoadSeccomp:
    """Install a compiled seccomp filter (runtime/seccomp.py): with no_new_privs, right
    before Exec; without it before SetUser, while the process still holds CAP_SYS_ADMIN
    in its user namespace, which seccomp(2) then requires (runc's two places)."""

    program: bytes  # struct sock_filter[]
    flags: int = 0  # SECCOMP_FILTER_FLAG_*
    digest: str = ""  # of the OCI section it was compiled from
    fakeroot: str = ""  # "notify" | "errno": its fakeroot rules (seccomp_fakeroot.py)

    def __repr__(self) -> str:
        fakeroot = f", fakeroot={self.fakeroot}" if self.fakeroot else ""
        return (f"LoadSeccomp({len(self.program) // 8} instructions, flags={self.flags}, "
                f"digest={self.digest[:12]}{fakeroot})")


@record
class JoinCgroup:
    """Move this process into the cgroup of a running container's init (best effort:
    a cgroup v2 one the user may write; else the process stays where it is)."""

    pid: int
    start_time: int


@record
class JoinNamespaces:
    """Enter the namespaces of a running container's init, named by pid and start time
    (kernel/procs.py), so a reused pid never leads into someone else's. Run before the
    fork that makes the exec'd process: setns(2) with CLONE_NEWPID moves only the
    caller's children into the pid namespace."""

    pid: int
    start_time: int
    namespaces: int  # CLONE_NEW* flags, CLONE_NEWUSER among them


@record
class Exec:
    args: tuple[str, ...]
    env: tuple[str, ...]
    init: bool = False  # run a reaping, signal-forwarding init as pid 1 (--init)
    terminal: bool = False


@record
class Plan:
    namespaces: int  # CLONE_NEW* flags besides CLONE_NEWUSER
    steps: tuple = ()

    def describe(self) -> str:
        return "\n".join(repr(step) for step in self.steps)

    def typed_steps(self) -> list[tuple[str, tuple]]:
        return [(type(step).__name__, tuple(step)) for step in self.steps]


NAMESPACE_FLAGS = {
    "pid": k.CLONE_NEWPID,
    "network": k.CLONE_NEWNET,
    "mount": k.CLONE_NEWNS,
    "ipc": k.CLONE_NEWIPC,
    "uts": k.CLONE_NEWUTS,
    "cgroup": k.CLONE_NEWCGROUP,
}

def namespace_flags(spec: dict) -> int:
    flags = 0
    for ns in spec.get("linux", {}).get("namespaces", []):
        if ns.get("path"):
            continue  # joining an existing namespace is not planned here
        flags |= NAMESPACE_FLAGS.get(ns["type"], 0)
    return flags


def build_plan(spec: dict, single_id: bool, fakeroot: str = "") -> Plan:
    """The whole set-up of one container, in the order it must run. `fakeroot`: the
    filter's fakeroot rules, "notify" or "errno" (runtime/seccomp_fakeroot.py), or none."""
    flags = namespace_flags(spec)
    steps: list[object] = [MakeMountsPrivate()]
    if flags & k.CLONE_NEWNET:  # needs no filesystem; before the pivot, where it may
        steps.append(LoopbackUp())  # still load the socket module
    steps += rootfs_steps(spec)
    steps += mount_steps(spec, owns_netns=bool(flags & k.CLONE_NEWNET), single_id=single_id)
    steps += device_steps(spec)
    steps.append(PivotRoot(spec["root"]["path"]))
    linux = spec.get("linux", {})
    steps += [MaskPath(p) for p in linux.get("maskedPaths", [])]
    steps += [ReadonlyPath(p) for p in linux.get("readonlyPaths", [])]
    if spec["root"].get("readonly"):
        steps.append(ReadonlyRoot())
    if flags & k.CLONE_NEWUTS and spec.get("hostname"):
        steps.append(SetHostname(spec["hostname"]))
    init = spec.get("annotations", {}).get(INIT_ANNOTATION) == "true"
    steps += process_steps(spec["process"], single_id, init, keeps_groups(spec))
    if linux.get("seccomp") or fakeroot:
        place_seccomp(steps, seccomp_step(linux.get("seccomp"), fakeroot,
                                          stat_answers(spec)))
    return Plan(namespaces=flags, steps=tuple(steps))


def build_exec_plan(spec: dict, process: dict, single_id: bool, init_pid: int,
                    init_start: int, fakeroot: str = "", joined: int = 0) -> Plan:
    """A process joining the running container `spec` describes (exec): the namespaces
    of its init entered instead of made, and no mounts, masks or pivot, since the joined
    mount namespace already has them and its root is the container's (setns(2): joining
    a mount namespace moves the caller's root and cwd there); then `process` (an OCI
    process, as runc's `exec --process`) gets the same steps and seccomp filter as
    run's own. `joined`: CLONE_NEW* flags of namespaces the init entered at its start
    that the spec does not list (the engine's container:NAME network)."""
    flags = k.CLONE_NEWUSER | joined
    for ns in spec.get("linux", {}).get("namespaces", []):
        flags |= NAMESPACE_FLAGS.get(ns.get("type"), 0)  # a path's too: init joined it
    steps: list[object] = [JoinCgroup(init_pid, init_start),
                           JoinNamespaces(init_pid, init_start, flags)]
    for step in process_steps(process, single_id, False, keeps_groups(spec)):
        steps.append(step._replace(create=False) if isinstance(step, Chdir) else step)
    seccomp = spec.get("linux", {}).get("seccomp")
    if seccomp or fakeroot:
        place_seccomp(steps, seccomp_step(seccomp, fakeroot, stat_answers(spec)))
    return Plan(namespaces=0, steps=tuple(steps))


def stat_answers(spec: dict) -> bool:
    """--security-opt fakeroot-stat: the fakeroot answers the stat family too."""
    from rootless.runtime.annotations import FAKEROOT_STAT_ANNOTATION

    return (spec.get("annotations") or {}).get(FAKEROOT_STAT_ANNOTATION) == "true"


def seccomp_step(section: dict | None, fakeroot: str = "",
                 stat: bool = False) -> LoadSeccomp | None:
    from rootless.errors import RuntimeSetupError
    from rootless.runtime.seccomp import check_section, program_for, uses_notify

    if section:
        check_section(section)
        if uses_notify(section):  # only the fakeroot's own rules have someone to answer
            raise RuntimeSetupError("seccomp: SCMP_ACT_NOTIFY rules are not supported "
                                    "in a profile")
    if not fakeroot:
        return LoadSeccomp(*program_for(section))
    from rootless.runtime.seccomp_fakeroot import with_fakeroot

    try:
        return LoadSeccomp(*program_for(with_fakeroot(section, fakeroot, stat)),
                           fakeroot=fakeroot)
    except RuntimeSetupError:
        if fakeroot == "notify":  # a libseccomp older than 2.5 has no SCMP_ACT_NOTIFY
            return seccomp_step(section, "errno")
        if section:
            raise
        # unconfined, and no libseccomp to build the fakeroot's filter: no filter at
        # all, as before the fakeroot (a chown to another id fails as the kernel says)
        return None


def place_seccomp(steps: list[object], step: LoadSeccomp | None) -> None:
    """As late as the filter can go: fewer of the runtime's own calls must pass it.
    With no_new_privs, last before Exec; else while the process still holds
    CAP_SYS_ADMIN in its namespace: before SetUser (runc), or with fakeroot rules after
    it, before SetCapabilities, since SetUser's own set*id calls would be trapped (and
    no monitor answers yet). That is only planned in single-id mode, where SetUser sets
    the one mapped id the process already has, so it keeps its capabilities."""
    if step is None:
        return
    kinds = [type(s) for s in steps]
    if NoNewPrivileges in kinds:
        before = Exec
    else:
        before = SetCapabilities if step.fakeroot else SetUser
    steps.insert(kinds.index(before), step)


def rootfs_steps(spec: dict) -> list[object]:
    from rootless import jsonfast

    root = spec["root"]["path"]
    overlay = spec.get("annotations", {}).get(ROOTFS_OVERLAY_ANNOTATION)
    if not overlay:
        return [BindRootfs(root)]
    layers = jsonfast.loads(overlay)
    if layers.get("driver") == "fuse":
        return [MountFuse(root, bool(layers.get("single_id", True)))]
    return [MountOverlay(root, tuple(layers["lower"]), layers["upper"], layers["work"])]


def with_fuse_channel(steps: tuple, channel: int) -> tuple:
    """The steps with the FUSE server's socket filled in (a descriptor of this process,
    inherited by the init)."""
    return tuple(step._replace(channel=channel) if isinstance(step, MountFuse) else step
                 for step in steps)


_MS_OPTIONS = {
    "ro": k.MS_RDONLY, "nosuid": k.MS_NOSUID, "nodev": k.MS_NODEV, "noexec": k.MS_NOEXEC,
    "strictatime": k.MS_STRICTATIME, "relatime": k.MS_RELATIME, "noatime": k.MS_NOATIME,
}
_ATTR_OPTIONS = {
    "nosuid": k.MOUNT_ATTR_NOSUID, "nodev": k.MOUNT_ATTR_NODEV, "noexec": k.MOUNT_ATTR_NOEXEC,
}
_IGNORED_OPTIONS = {"rw", "bind", "rbind", "private", "rprivate", "slave", "rslave",
                    "shared", "rshared", "z", "Z"}


def mount_steps(spec: dict, owns_netns: bool, single_id: bool = False) -> list[object]:
    steps: list[object] = []
    for m in spec.get("mounts", []):
        options = m.get("options", [])
        kind = m.get("type", "bind" if "bind" in options or "rbind" in options else "")
        if kind == "bind" or "bind" in options or "rbind" in options:
            attrs = 0
            for opt in options:
                attrs |= _ATTR_OPTIONS.get(opt, 0)
            steps.append(BindMount(m["source"], m["destination"],
                                   recursive="bind" not in options, readonly="ro" in options,
                                   flags=attrs))
        elif kind == "sysfs" and not owns_netns:
            steps.append(BindHostSys(m["destination"]))
        elif kind in ("cgroup", "cgroup2"):
            # podman's config asks for a cgroup mount, which a user namespace may not
            # make (cgroups(7): only cgroup2, and only from a cgroup namespace it owns;
            # a hybrid host's v1 hierarchies never): the host's tree, read-only, as
            # crun falls back to when rootless
            steps.append(BindMount("/sys/fs/cgroup", m["destination"], recursive=True,
                                   readonly=True, flags=k.MOUNT_ATTR_NOSUID
                                   | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC))
        else:
            step = filesystem_step(kind, m)
            if single_id and step.fallback_data is not None:  # no gid 5 to give ptys
                step = step._replace(data=step.fallback_data, fallback_data=None)
            steps.append(step)
    return steps


def filesystem_step(kind: str, m: dict) -> MountFilesystem:
    flags, data = 0, []
    for opt in m.get("options", []):
        if opt in _MS_OPTIONS:
            flags |= _MS_OPTIONS[opt]
        elif opt not in _IGNORED_OPTIONS:
            data.append(opt)
    fallback = None
    if kind == "devpts" and any(d.startswith("gid=") for d in data):
        fallback = ",".join(d for d in data if not d.startswith("gid="))
    return MountFilesystem(kind, m["destination"], m.get("source", kind), flags,
                           ",".join(data), fallback_data=fallback)


DEFAULT_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                   "/dev/tty")
DEFAULT_DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                        ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                        ("pts/ptmx", "/dev/ptmx"), ("/proc/kcore", "/dev/core"))


def device_steps(spec: dict) -> list[object]:
    """Device nodes cannot be made in a user namespace: bind the host's, as Podman does."""
    paths = list(DEFAULT_DEVICES)
    for dev in spec.get("linux", {}).get("devices", []):
        if dev["path"] not in paths:
            paths.append(dev["path"])
    steps: list[object] = [BindDevice(p) for p in paths]
    steps += [MakeSymlink(target, dest) for target, dest in DEFAULT_DEV_SYMLINKS]
    return steps


def keeps_groups(spec: dict) -> bool:
    return spec.get("annotations", {}).get(KEEP_GROUPS_ANNOTATION) == "1"


def user_ids(process: dict) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, additionalGids) of an OCI process, each an integer from 0 to
    4294967294; anything else is refused: -1 (4294967295) is "leave unchanged" to
    setresuid(2), and Python's os functions would take it as that."""
    from rootless.errors import RuntimeSetupError
    from rootless.kernel.idmap import ID_RANGE, valid_id

    user = process.get("user") or {}
    if not isinstance(user, dict) or not isinstance(user.get("additionalGids") or [], list):
        raise RuntimeSetupError(f"process.user: invalid {user!r}")
    gids = user.get("additionalGids") or []
    ids = (("uid", user.get("uid", 0)), ("gid", user.get("gid", 0)),
           *(("additionalGids entry", g) for g in gids))
    for what, value in ids:
        if not valid_id(value):
            raise RuntimeSetupError(f"process.user: invalid {what} {value!r}: {ID_RANGE}")
    return user.get("uid", 0), user.get("gid", 0), tuple(gids)


def process_steps(process: dict, single_id: bool, init: bool,
                  keep_groups: bool = False) -> list[object]:
    steps: list[object] = []
    for rl in process.get("rlimits", []):
        steps.append(SetRlimit(rl["type"], int(rl["soft"]), int(rl["hard"])))
    steps.append(Chdir(process.get("cwd", "/")))
    c = process.get("capabilities", {})
    steps.append(DropBoundingCapabilities(caps.mask(c.get("bounding"))))
    uid, gid, additional_gids = user_ids(process)
    steps.append(SetUser(uid, gid, additional_gids,
                         set_groups=not single_id and not keep_groups))
    steps.append(SetCapabilities(
        effective=caps.mask(c.get("effective")), permitted=caps.mask(c.get("permitted")),
        inheritable=caps.mask(c.get("inheritable")), ambient=caps.mask(c.get("ambient"))))
    if process.get("noNewPrivileges"):
        steps.append(NoNewPrivileges())
    steps.append(Exec(tuple(process["args"]), tuple(process.get("env", [])),
                      init=init, terminal=bool(process.get("terminal"))))
    return steps
