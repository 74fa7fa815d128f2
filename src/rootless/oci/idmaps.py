"""Id maps when rootless-oci runs as root of a user namespace: rootless podman calls its
runtime inside the namespace it made for the user (0 = the user, 1.. = the subordinate
range, or only 0 without one), and conmon passes no linux.uidMappings.

The container then gets every id that namespace has, each mapped to itself, written
directly: as root there we hold CAP_SETUID and CAP_SETGID over it (user_namespaces(7),
"Defining user and group ID mappings"), so neither newuidmap nor a setgroups "deny" is
needed, and the image's owners (podman's storage chowned them into the range) show as
they are. crun does the same by not making a user namespace at all in this case.
"""

from __future__ import annotations

import os

from rootless.errors import RuntimeSetupError


def namespace_root(spec: dict) -> bool:
    """Whether this is that case: we are uid 0, and the spec names no maps."""
    linux = spec.get("linux") or {}
    return os.geteuid() == 0 and not linux.get("uidMappings") and \
        not linux.get("gidMappings")


def one_id() -> bool:
    """Whether our namespace has one uid, or denies setgroups(2) (podman's without a
    subordinate range): the plan is then a single-id one, no supplementary groups."""
    try:
        with open("/proc/self/setgroups") as f:
            if f.read().strip() == "deny":
                return True
        with open("/proc/self/uid_map") as f:
            return sum(int(line.split()[2]) for line in f if line.strip()) == 1
    except (OSError, ValueError, IndexError):
        return True


def _identity(name: str) -> str:
    """Our own namespace's ranges (/proc/self/uid_map: inside outside count), each
    mapped onto itself."""
    with open(f"/proc/self/{name}") as f:
        lines = [line.split() for line in f.read().splitlines() if line.strip()]
    return "\n".join(f"{inside} {inside} {count}" for inside, _, count in lines)


def write_identity_maps(pid: int) -> None:
    """runtime.process.start's on_created: the maps of the intermediate's namespace."""
    for name in ("uid_map", "gid_map"):
        try:
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, _identity(name).encode() + b"\n")
            finally:
                os.close(fd)
        except OSError as e:
            raise RuntimeSetupError(f"map ids: /proc/{pid}/{name}: "
                                    f"{e.strerror.lower()}") from e
