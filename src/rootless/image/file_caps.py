"""File capabilities of a layer (security.capability), set the only way an ordinary
user can: from a user namespace whose root is that user.

An unprivileged process may not write security.capability. Root of a user namespace
may, on files it owns there; the kernel then stores a namespaced (v3) capability whose
`rootid` is the user's own uid, so it takes effect exactly in user namespaces whose root
is this user: our containers (both id modes map container root to the user, as rootless
podman does), never on the host. This is done in a short-lived process of its own:

    python -m rootless.image.file_caps LAYER_DIR   < {"path": "hex value", ...}

which enters a new user namespace mapping the user to 0, opens every path inside
LAYER_DIR without following links (kernel/paths.py), and sets the value. It prints
nothing and exits 0, or prints one error line and exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rootless.errors import StoreError

XATTR = "security.capability"


def apply_file_caps(layer_dir: Path, caps: dict[str, bytes], what: str) -> None:
    """Set `caps` (layer path -> raw xattr value) on the files of `layer_dir`."""
    request = json.dumps({path: value.hex() for path, value in caps.items()})
    done = subprocess.run([sys.executable, "-m", "rootless.image.file_caps", str(layer_dir)],
                          input=request.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        detail = done.stdout.decode(errors="replace").strip() or \
            done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise StoreError(f"cannot set the file capabilities of {what}: {detail}")


def _enter_own_user_namespace() -> None:
    """unshare(CLONE_NEWUSER) and map this process's uid and gid to 0 (`unshare -r`)."""
    from rootless.kernel.constants import CLONE_NEWUSER
    from rootless.kernel.syscalls import RealSyscalls

    uid, gid = os.getuid(), os.getgid()
    RealSyscalls().unshare(CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def main(argv: list[str]) -> int:
    from rootless.kernel.paths import open_in_root

    caps = {path: bytes.fromhex(value) for path, value in json.load(sys.stdin).items()}
    try:
        _enter_own_user_namespace()
        root = os.open(argv[0], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        for path, value in caps.items():
            fd = open_in_root(root, path, os.O_PATH | os.O_NOFOLLOW)
            try:
                os.setxattr(f"/proc/self/fd/{fd}", XATTR, value)
            finally:
                os.close(fd)
    except OSError as e:
        where = f" ({path})" if "path" in locals() else ""
        print(f"{(e.strerror or str(e)).lower()}{where}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
