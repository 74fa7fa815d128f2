"""Resolving and creating mount points inside a rootfs that is not yet our root.

Every path comes from the image or the user, so it is resolved by the one in-root
resolver (kernel/paths.py) against a descriptor of the rootfs: a symlink `/etc -> /` in
the image resolves to the rootfs itself, never to the host. openat2(2) is called through
the `Syscalls` seam, so the recording double sees each resolution, and a seam (or a
kernel) without openat2 gets the O_NOFOLLOW walk instead. The resulting O_PATH
descriptor is then the mount target (`/proc/self/fd/N`), so nothing can be swapped
between check and use (the approach of runc's CVE-2021-30465 fix).
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.kernel import paths
from rootless.kernel.syscalls import Syscalls


def open_in_rootfs(sys: Syscalls, root_fd: int, path: str, flags: int = os.O_PATH,
                   no_symlinks: bool = False) -> int:
    return paths.open_in_root(root_fd, path.lstrip("/") or ".", flags,
                              no_symlinks=no_symlinks, openat2=sys.openat2)


def mountpoint(sys: Syscalls, root_fd: int, dest: str, is_dir: bool,
               no_symlinks: bool = False) -> int:
    """An O_PATH fd of `dest` inside the rootfs, created (with parents) when missing."""
    try:
        return open_in_rootfs(sys, root_fd, dest, no_symlinks=no_symlinks)
    except FileNotFoundError:
        pass
    if ".." in paths.components(dest):
        raise FileNotFoundError(errno.ENOENT, "'..' in a mount destination", dest)
    parent, name = paths.parent_fd_in_root(root_fd, dest, create=True,
                                           no_symlinks=no_symlinks, openat2=sys.openat2)
    try:
        if is_dir:
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=parent))
    except FileExistsError:
        pass
    finally:
        os.close(parent)
    return open_in_rootfs(sys, root_fd, dest, no_symlinks=no_symlinks)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def is_directory(path: str) -> bool:
    return stat.S_ISDIR(os.stat(path).st_mode)
