"""Run a little Python as "root" in a user namespace with this user's full id map.

Files that a container created as a subordinate id (range mode) belong on the host to
ids we do not own; only inside a namespace with the same map can we remove them, as
`podman unshare rm -rf` does. The removal there is the same descriptor-based remover
as everywhere (kernel/remove.py): a container still running can swap a symlink into
the tree, and "root" in the namespace may write wherever the user's ids may.
"""

from __future__ import annotations

import os
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
        os.close(go_w)
        os.close(ready_r)
        _child(path, go_r, ready_w)
    os.close(go_r)
    os.close(ready_w)
    try:
        reason = os.read(ready_r, 1)
        if reason == b"U":
            write_maps(pid, maps)
            os.write(go_w, b"M")
            reason = b""
        reason += os.read(ready_r, 512)
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(pid, 0)
    if os.path.lexists(path):
        why = reason.decode(errors="replace") or "permission denied"
        raise StoreError(f"cannot remove {path}: {why}")


def _child(path: Path, go_r: int, ready_w: int) -> None:
    """In the forked child: become root of a new user namespace once the parent has
    written its id maps, remove the tree, and say why not if it could not."""
    try:
        from rootless.kernel.remove import rmtree_owned

        RealSyscalls().unshare(k.CLONE_NEWUSER)
        os.write(ready_w, b"U")
        if os.read(go_r, 1) == b"M":
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            rmtree_owned(path)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        os.write(ready_w, f"{(e.strerror or str(e)).lower()}{where}".encode()[:500])
    finally:
        os._exit(0)
