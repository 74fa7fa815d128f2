"""Run a little Python as "root" in a user namespace with this user's full id map.

Files that a container created as a subordinate id (range mode) belong on the host to
ids we do not own; only inside a namespace with the same map can we remove them, as
`podman unshare rm -rf` does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rootless.errors import StoreError
from rootless.kernel import constants as k
from rootless.kernel.idmap import detect_maps, write_maps
from rootless.kernel.syscalls import RealSyscalls


def rmtree_in_userns(path: Path) -> None:
    maps = detect_maps()
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(ready_r)
            RealSyscalls().unshare(k.CLONE_NEWUSER)
            os.write(ready_w, b"U")
            if os.read(go_r, 1) == b"M":
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
                shutil.rmtree(path, ignore_errors=True)
                code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(ready_w)
    try:
        if os.read(ready_r, 1) == b"U":
            write_maps(pid, maps)
            os.write(go_w, b"M")
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(pid, 0)
    if path.exists():
        raise StoreError(f"cannot remove {path}: permission denied")
