"""What this machine offers rootless containers, and what was chosen: `system info`."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from rootless import __version__


def cgroup_version() -> str:
    try:
        with open("/proc/self/mounts") as f:
            kinds = {line.split()[2] for line in f if line.split()[1].startswith("/sys/fs/cgroup")}
    except OSError:
        return "unknown"
    if kinds >= {"cgroup", "cgroup2"}:
        return "hybrid (v1 + v2)"
    if "cgroup2" in kinds:
        return "v2"
    return "v1" if "cgroup" in kinds else "none"


def userns_status() -> str:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        return "unknown"
    if limit == 0:
        return "disabled (user.max_user_namespaces = 0)"
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return "disabled (kernel.unprivileged_userns_clone = 0)"
    except OSError:
        pass
    return f"enabled (max {limit})"


def fuse_status() -> str:
    if not os.path.exists("/dev/fuse"):
        return "unavailable (no /dev/fuse)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "unavailable (/dev/fuse is not readable and writable by this user)"
    return "available (/dev/fuse)"


def fuse_overlay_status(store) -> str:
    """Whether our FUSE overlay can serve here, and which containers get it
    (fs/strategy.py)."""
    from rootless.fs.strategy import fuse_usable, requested

    ok, reason = fuse_usable(Path(store.root))
    forced = requested()
    if not ok:
        return f"unavailable ({reason})"
    if forced is not None:
        return f"available; every container: {forced.name} ({forced.reason})"
    return ("available; used in single-id mode for containers whose user is not root or "
            "whose image records setuid/setgid programs or devices, and wherever kernel "
            "overlayfs is unavailable")


def system_info(store) -> dict:
    from rootless.fs.rootfs import choose_strategy
    from rootless.kernel.idmap import detect_maps

    maps = detect_maps()
    strategy = choose_strategy(Path(store.root))
    helpers = {name: shutil.which(name) or "not found"
               for name in ("newuidmap", "newgidmap", "pasta", "slirp4netns")}
    return {
        "version": __version__,
        "kernel": platform.release(),
        "os_arch": f"linux/{platform.machine()}",
        "user_namespaces": userns_status(),
        "id_map_mode": maps.mode,
        "uid_map": [r.line() for r in maps.uids],
        "gid_map": [r.line() for r in maps.gids],
        "rootfs": strategy.name,
        "rootfs_reason": strategy.reason,
        "fuse_overlay": fuse_overlay_status(store),
        "kernel_floor": kernel_floor_status(),
        "kernel_fallbacks": kernel_fallbacks(store, strategy.name),
        "fuse": fuse_status(),
        "cgroup_version": cgroup_version(),
        "cgroups": cgroup_status(),
        "network_helpers": helpers,
        "network_default": network_status(),
        "seccomp": seccomp_status(),
        "fakeroot": fakeroot_status(maps),
        "layer_owners": owners_status(store),
        "store": str(store.root),
    }


def network_status() -> str:
    """Which network `run` gives a container without --network, and why."""
    from rootless.errors import UsageError
    from rootless.net.modes import helper_choice

    try:
        helper, why = helper_choice()
    except UsageError as e:  # a bad ROOTLESS_NETWORK_HELPER
        return f"host ({e})"
    return f"slirp through {helper} ({why})" if helper else f"host ({why})"


def owners_status(store) -> str:
    from rootless.engine.layer_owners import layers_owners_status

    return layers_owners_status(store)


def kernel_floor_status() -> str:
    from rootless.kernel.floor import kernel_floor

    floor = kernel_floor()
    return "none" if floor is None else f"{floor[0]}.{floor[1]} (ROOTLESS_KERNEL_FLOOR)"


def kernel_fallbacks(store, rootfs: str) -> list[str]:
    """One line per newer kernel call this kernel (or the floor) lacks, naming what is
    used instead (kernel/features.py)."""
    from rootless.kernel.features import kernel_missing
    from rootless.kernel.remove import rmtree_owned

    scratch = store.temp_path("probe")
    try:
        scratch.mkdir(mode=0o700, parents=True)
    except OSError:  # a store we may not write: the probes that need a directory pass
        return [m.line() for m in kernel_missing(None)]
    try:
        missing = kernel_missing(str(scratch))
    finally:
        rmtree_owned(scratch)
    return [(m._replace(instead=f"rootfs {rootfs}") if m.feature == "userns_overlay"
             else m).line() for m in missing]


def cgroup_status() -> dict:
    """Whether containers get a cgroup of their own, which controllers it may have (so
    which resource flags hold), and where or why not (engine/cgroups.py)."""
    from rootless.engine.cgroups import cgroup_place, cgroup_support, swap_accounting

    support = cgroup_support()
    place = cgroup_place() if support.usable else None
    swap = bool(place and place.parent and "memory" in support.controllers
                and swap_accounting(place.parent))
    return {"usable": "yes" if support.usable else "no",
            "controllers": " ".join(support.controllers) or "none",
            "swap_limit": "yes" if swap else "no",
            "reason": support.reason}


# docker info's support flags (moby api/types/system.Info) and the controller each needs
CGROUP_FEATURES = (("MemoryLimit", "memory", "WARNING: No memory limit support"),
                   ("SwapLimit", "memory", "WARNING: No swap limit support"),
                   ("CpuCfsPeriod", "cpu", "WARNING: No cpu cfs period support"),
                   ("CpuCfsQuota", "cpu", "WARNING: No cpu cfs quota support"),
                   ("CPUShares", "cpu", "WARNING: No cpu shares support"),
                   ("CPUSet", "cpuset", "WARNING: No cpuset support"),
                   ("PidsLimit", "pids", "WARNING: No pids limit support"))


def cgroup_fields(cgroups: dict) -> dict:
    """docker info's CgroupDriver, support flags and Warnings, from cgroup_status():
    moby's daemon/info_unix.go, where a rootless daemon without cgroups says so in one
    warning and one with them warns for each missing controller."""
    usable = cgroups["usable"] == "yes"
    controllers = set(cgroups["controllers"].split())
    fields: dict = {"CgroupDriver": "cgroupfs" if usable else "none"}
    warnings = []
    for name, controller, warning in CGROUP_FEATURES:
        fields[name] = usable and controller in controllers and (
            name != "SwapLimit" or cgroups["swap_limit"] == "yes")
        if usable and not fields[name]:
            warnings.append(warning)
    if not usable:
        warnings.append(f"WARNING: Running in rootless-mode without cgroups: "
                        f"{cgroups['reason']}")
    fields["Warnings"] = warnings
    return fields


def seccomp_status() -> dict:
    """Whether containers get a filter, which by default, and who builds it."""
    from rootless.engine.seccomp import DEFAULT_ORIGIN
    from rootless.errors import RootlessError
    from rootless.runtime import libseccomp
    from rootless.runtime.seccomp import kernel_actions

    actions = kernel_actions()
    try:
        version, api = libseccomp.version(), libseccomp.api_level()
        library = f"{version} (API level {api})"
    except RootlessError:
        api = 0
        library = (f"not found ({libseccomp.SONAME}): containers start only with "
                   "--security-opt seccomp=unconfined")
    if actions is None:
        notify = "unavailable (this kernel has no seccomp filters)"
    elif "user_notif" not in actions:
        notify = "unavailable (the kernel lacks user_notif: Linux 5.0)"
    elif api < 6:
        notify = "unavailable (libseccomp API level 6, libseccomp 2.5, is needed)"
    else:
        notify = "available"
    return {
        "enabled": "no (the kernel has no seccomp filters)" if actions is None else "yes",
        "profile": f"builtin ({DEFAULT_ORIGIN})",
        "libseccomp": library,
        "kernel_actions": " ".join(actions) if actions else "unknown",
        "user_notification": notify,
    }


FAKEROOT_MODES = {"notify": "seccomp user notification (owners and devices recorded)",
                  "errno": "errno-0 faking (calls succeed, nothing recorded)", "": "off"}


def fakeroot_status(maps) -> dict:
    """How a container's chown, set*id and mknod are emulated (runtime/seccomp_fakeroot.py):
    by the monitor answering seccomp notifications, by faked success, or not at all."""
    from rootless.runtime.seccomp_fakeroot import fakeroot_mode

    mode, reason = fakeroot_mode(not maps.use_helpers, served=True)
    return {"mode": FAKEROOT_MODES[mode], "reason": reason}


# The docker Engine API version reported for `version`/`info` templates: podman's
# docker-compatible API answers 1.41 too. rootless has no API socket; scripts only read it.
API_VERSION = "1.41"
STORAGE_DRIVERS = {"overlay": "overlay", "fuse": "fuse-overlayfs", "copy": "vfs"}


def docker_info(store, info: dict) -> dict:
    """`docker info`'s fields (moby api/types/system.Info) where they apply here, from
    state.db and /proc; `info` is system_info()'s answer."""
    from rootless.engine.containers import container_list
    from rootless.store import metadata as md

    rows = container_list(store)
    running = sum(1 for row in rows if row.running)
    return {
        "ID": "", "Containers": len(rows), "ContainersRunning": running,
        "ContainersPaused": 0,  # nothing pauses a container yet
        "ContainersStopped": len(rows) - running,
        "Images": len(md.images_listed(store)),
        "Driver": STORAGE_DRIVERS.get(info["rootfs"], info["rootfs"]),
        "DriverStatus": [["Strategy reason", info["rootfs_reason"]]],
        "LoggingDriver": "json-file",
        "CgroupDriver": "none",
        "CgroupVersion": {"v2": "2", "v1": "1", "hybrid (v1 + v2)": "1"}.get(
            info["cgroup_version"], ""),
        "KernelVersion": info["kernel"], "OperatingSystem": operating_system(),
        "OSVersion": os_release().get("VERSION_ID", ""), "OSType": "linux",
        "Architecture": platform.machine(), "NCPU": len(os.sched_getaffinity(0)),
        "MemTotal": mem_total(), "DockerRootDir": info["store"],
        "Name": platform.node(), "ServerVersion": __version__, "Debug": False,
        "DefaultRuntime": "rootless", "Runtimes": {"rootless": {"path": "rootless-oci"}},
        "SecurityOptions": security_options(info), "Warnings": [],
        **cgroup_fields(info["cgroups"]),
    }


def security_options(info: dict) -> list[str]:
    """As docker lists them: name=seccomp,profile=builtin; name=rootless (always)."""
    options = []
    if info["seccomp"]["enabled"] == "yes":
        options.append("name=seccomp,profile=builtin")
    options.append("name=rootless")
    return options


def os_release() -> dict[str, str]:
    """os-release(5): /etc/os-release, else /usr/lib/os-release."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                lines = f.read(65536).splitlines()
        except OSError:
            continue
        pairs = (line.split("=", 1) for line in lines if "=" in line)
        return {k.strip(): v.strip().strip("\"'") for k, v in pairs}
    return {}


def operating_system() -> str:
    return os_release().get("PRETTY_NAME", "") or "Linux"


def mem_total() -> int:
    """Bytes, from /proc/meminfo's MemTotal (kB), as docker's sysinfo reads it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def version_info() -> dict:
    """`docker version`'s structure: {Client: {...}, Server: {...}}; both are this
    process (there is no daemon), so they agree."""
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(),
                                                         platform.machine())
    common = {"Version": __version__, "ApiVersion": API_VERSION,
              "GoVersion": f"python{platform.python_version()}", "GitCommit": "",
              "Os": "linux", "Arch": machine}
    return {
        "Client": {"Platform": {"Name": "rootless"}, **common,
                   "DefaultAPIVersion": API_VERSION, "BuildTime": "", "Context": "default"},
        "Server": {"Platform": {"Name": "rootless"},
                   "Components": [{"Name": "Engine", "Version": __version__,
                                   "Details": {"ApiVersion": API_VERSION,
                                               "MinAPIVersion": API_VERSION}}],
                   **common, "MinAPIVersion": API_VERSION,
                   "KernelVersion": platform.release(), "BuildTime": ""},
    }
