"""`spec`, `features`, `ps` and `--version`: what rootless-oci says about itself and
about a container's processes."""

from __future__ import annotations

import json
import os

from rootless.errors import RootlessError, UsageError

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]
HOOKS = ["prestart", "createRuntime", "poststart", "poststop"]
MOUNT_OPTIONS = ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "strictatime",
                 "relatime", "noatime", "private", "rprivate", "slave", "rslave",
                 "shared", "rshared"]


# what `runc spec` writes (oci/ may not import engine/, whose own defaults these mirror)
SPEC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def version_text() -> str:
    return f"rootless-oci version {VERSION}\nspec: {SPEC_VERSION}\n"


def features() -> dict:
    """runtime-spec features.md."""
    from rootless.runtime.caps import CAPABILITIES, last_cap

    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": SPEC_VERSION,
        "hooks": HOOKS, "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": list(CAPABILITIES[:last_cap() + 1]),
            "cgroup": {"v1": False, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": [
                "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"]},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runc.version": "rootless-oci " + VERSION},
    }


def spec_write(bundle: str, rootless: bool) -> None:
    """runc spec: a starting config.json in the bundle directory (never overwritten)."""
    from rootless.runtime.caps import DOCKER_DEFAULT

    path = os.path.join(bundle or ".", "config.json")
    caps = list(DOCKER_DEFAULT)
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                            "/sbin:/bin", "TERM=xterm"],
                    "cwd": "/",
                    "capabilities": {"bounding": caps, "effective": caps,
                                     "permitted": caps, "ambient": []},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "rootless-oci",
        "mounts": SPEC_MOUNTS,
        "linux": {"namespaces": [{"type": t} for t in
                                 ("pid", "network", "ipc", "uts", "mount", "cgroup")],
                  "maskedPaths": MASKED_PATHS, "readonlyPaths": READONLY_PATHS},
    }
    if rootless:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise UsageError(f"file {path} exists: remove it first") from None
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror.lower()}") from None
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")


def container_ps(root: str, container_id: str, fmt: str, ps_args: list[str]) -> str:
    """runc ps: the container's processes, as JSON (their pids) or as ps(1) shows them."""
    from rootless.kernel.procs import descendants
    from rootless.oci.state import Container

    with Container.open(root, container_id) as container:
        if container.status() not in ("created", "running"):
            raise RootlessError(f"container {container_id} is not running")
        pids = descendants(container.state["pid"])
    if fmt == "json":
        return json.dumps(pids) + "\n"
    if fmt != "table":
        raise UsageError(f"invalid format option {fmt!r}: table or json")
    import subprocess

    done = subprocess.run(["ps", *(ps_args or ["-f"]), "-p", ",".join(map(str, pids))],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RootlessError(f"ps: {done.stderr.strip()}")
    return done.stdout
