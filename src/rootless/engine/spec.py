"""Image config + run options -> an OCI runtime-spec config.json, with Docker's defaults."""

from __future__ import annotations


from rootless import jsonfast
from rootless.records import record
from rootless.runtime.annotations import (INIT_ANNOTATION, KEEP_GROUPS_ANNOTATION,
                                          PRIVILEGED_ANNOTATION, ROOTFS_OVERLAY_ANNOTATION,
                                          SECCOMP_ANNOTATION, SECURITY_OPT_ANNOTATION)
from rootless.runtime.caps import DOCKER_DEFAULT

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby's oci/defaults.go
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
                "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_mounts(own_netns: bool) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


@record
class ProcessConfig:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    terminal: bool = False
    no_new_privileges: bool = False
    capabilities: tuple[str, ...] = DOCKER_DEFAULT
    rlimits: tuple[dict, ...] = ()  # OCI process.rlimits entries


@record
class RootfsConfig:
    path: str  # the merged directory the container sees as /
    lower: tuple[str, ...] = ()  # lowest first; empty: plain directory
    upper: str = ""
    work: str = ""
    readonly: bool = False
    # "overlay" (the kernel's) or "fuse" (ours, fs/fuse_server.py; with `single_id`
    # its server checks permissions from the ownership records)
    driver: str = "overlay"
    single_id: bool = False


@record
class SecurityConfig:
    seccomp: dict | None = None  # OCI linux.seccomp (engine/seccomp.py); None: no filter
    profile: str = "unconfined"  # builtin | unconfined | the profile's path, for inspect
    privileged: bool = False  # docker's --privileged: no masked or read-only /proc paths
    options: tuple[str, ...] = ()  # --security-opt, normalised, for inspect


@record
class SpecOptions:
    process: ProcessConfig
    rootfs: RootfsConfig
    hostname: str
    network: str = "host"  # host | none | slirp | user | container (network_spec)
    binds: tuple[tuple[str, str, bool], ...] = ()  # host, ctr, ro
    mounts: tuple[dict, ...] = ()  # OCI mounts of -v, --mount, --tmpfs (engine/mounts.py)
    init: bool = False
    id_maps: dict | None = None  # uidMappings/gidMappings
    keep_groups: bool = False  # --group-add keep-groups: no setgroups(2), denied in it
    security: SecurityConfig = SecurityConfig()
    resources: dict | None = None  # OCI linux.resources (engine/resources.py)


def build_spec(opts: SpecOptions) -> dict:
    # container:NAME enters NAME's network namespace at each start (runtime Joins)
    own_netns = opts.network not in ("host", "container")
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if own_netns:
        namespaces.append({"type": "network"})
    annotations = {}
    if opts.rootfs.lower:
        layout = {"lower": list(reversed(opts.rootfs.lower)),  # overlayfs: top first
                  "upper": opts.rootfs.upper, "work": opts.rootfs.work}
        if opts.rootfs.driver == "fuse":
            layout.update(driver="fuse", single_id=opts.rootfs.single_id)
        annotations[ROOTFS_OVERLAY_ANNOTATION] = jsonfast.dumps(layout)
    if opts.init:
        annotations[INIT_ANNOTATION] = "true"
    if opts.keep_groups:
        annotations[KEEP_GROUPS_ANNOTATION] = "1"
    annotations.update(security_annotations(opts.security))
    linux = {}
    if opts.resources:
        linux["resources"] = opts.resources
    if opts.security.seccomp is not None:
        linux["seccomp"] = opts.security.seccomp
    return {
        "ociVersion": "1.0.2",
        "process": process_spec(opts.process),
        "root": {"path": opts.rootfs.path, "readonly": opts.rootfs.readonly},
        "hostname": opts.hostname,
        "mounts": default_mounts(own_netns) + bind_mounts(opts.binds) + list(opts.mounts),
        "annotations": annotations,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": [] if opts.security.privileged else MASKED_PATHS,
            "readonlyPaths": [] if opts.security.privileged else READONLY_PATHS,
            **(opts.id_maps or {}),
            **linux,
        },
    }


def security_annotations(security: SecurityConfig) -> dict[str, str]:
    """What a later `inspect` shows as HostConfig.Privileged and SecurityOpt."""
    found = {PRIVILEGED_ANNOTATION: "true" if security.privileged else "false",
             SECCOMP_ANNOTATION: security.profile,
             SECURITY_OPT_ANNOTATION: jsonfast.dumps(list(security.options))}
    if "fakeroot-stat" in security.options:  # read by runtime/plan.stat_answers
        from rootless.runtime.annotations import FAKEROOT_STAT_ANNOTATION

        found[FAKEROOT_STAT_ANNOTATION] = "true"
    return found


def process_spec(p: ProcessConfig) -> dict:
    caps = list(p.capabilities)
    return {
        "terminal": p.terminal,
        "user": {"uid": p.uid, "gid": p.gid, "additionalGids": list(p.additional_gids)},
        "args": list(p.args),
        "env": list(p.env),
        "cwd": p.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                         "inheritable": [], "ambient": []},
        "noNewPrivileges": p.no_new_privileges,
        "rlimits": list(p.rlimits),
    }


def bind_mounts(binds: list[tuple[str, str, bool]]) -> list[dict]:
    return [{"destination": ctr, "type": "bind", "source": host,
             "options": ["rbind", "ro" if ro else "rw"]} for host, ctr, ro in binds]
