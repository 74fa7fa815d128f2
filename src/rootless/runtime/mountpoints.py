"""Resolving and creating mount points inside a rootfs that is not yet our root.

Every path comes from the image or the user, so it is resolved with openat2(2)'s
RESOLVE_IN_ROOT against a descriptor of the rootfs: a symlink `/etc -> /` in the image
resolves to the rootfs itself, never to the host. The resulting O_PATH descriptor is then
the mount target (`/proc/self/fd/N`), so nothing can be swapped between check and use
(the approach of runc's CVE-2021-30465 fix).
"""

from __future__ import annotations

import os
import stat

from rootless.kernel import constants as k
from rootless.kernel.syscalls import Syscalls

_IN_ROOT = k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS


def open_in_rootfs(sys: Syscalls, root_fd: int, path: str, flags: int = os.O_PATH,
                   no_symlinks: bool = False) -> int:
    resolve = _IN_ROOT | (k.RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    return sys.openat2(root_fd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, 0, resolve)


def mountpoint(sys: Syscalls, root_fd: int, dest: str, is_dir: bool,
               no_symlinks: bool = False) -> int:
    """An O_PATH fd of `dest` inside the rootfs, created (with parents) when missing."""
    try:
        return open_in_rootfs(sys, root_fd, dest, no_symlinks=no_symlinks)
    except FileNotFoundError:
        pass
    parts = [p for p in dest.split("/") if p and p != "."]
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        try:
            fd = open_in_rootfs(sys, root_fd, prefix, no_symlinks=no_symlinks)
        except FileNotFoundError:
            _create(sys, root_fd, parts, depth, is_dir or depth < len(parts), no_symlinks)
            continue
        os.close(fd)
    return open_in_rootfs(sys, root_fd, dest, no_symlinks=no_symlinks)


def _create(sys: Syscalls, root_fd: int, parts: list[str], depth: int, is_dir: bool,
            no_symlinks: bool) -> None:
    name = parts[depth - 1]
    if name == "..":
        raise FileNotFoundError(2, "'..' in a mount destination", "/".join(parts))
    parent = open_in_rootfs(sys, root_fd, "/".join(parts[: depth - 1]),
                            os.O_PATH | os.O_DIRECTORY, no_symlinks)
    try:
        if is_dir:
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=parent))
    except FileExistsError:
        pass
    finally:
        os.close(parent)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def is_directory(path: str) -> bool:
    return stat.S_ISDIR(os.stat(path).st_mode)
