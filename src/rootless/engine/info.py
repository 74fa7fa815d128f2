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
        "fuse": fuse_status(),
        "cgroup_version": cgroup_version(),
        "network_helpers": helpers,
        "seccomp": seccomp_status(),
        "store": str(store.root),
    }


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
