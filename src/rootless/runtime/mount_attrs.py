"""Making a mount read-only (or nosuid, nodev, noexec), with or without the mounts below.

mount_setattr(2) (Linux 5.12) sets attributes on a mount, or with AT_RECURSIVE on a
whole subtree, in one call. Where it is missing (RHEL 8's 4.18; ENOSYS, also under
ROOTLESS_KERNEL_FLOOR) each mount is remounted instead, as runc and crun did before it:
mount(2) with MS_REMOUNT | MS_BIND changes the per-mount flags of a bind mount. Such a
remount sets exactly the flags it names and clears the others, and in a user namespace
the flags a mount inherited from a more privileged one (ro, nosuid, nodev, noexec and
the atime ones) are locked: clearing one fails with EPERM (mount_namespaces(7),
"Restrictions on mount namespaces"). So each remount names the flags the mount already
has, read with statvfs(3), plus the ones asked for; it names no atime flag, and so
keeps the mount's own (mount(2), MS_REMOUNT). The subtree is walked by mount id
(kernel/mountinfo.py) and each mount below is opened from the top one's descriptor
with no symlink followed.

Everything used here is imported at module level: the executor calls it after
pivot_root too, when host modules can no longer be loaded.
"""

from __future__ import annotations

import errno
import os

from rootless.kernel import constants as k
from rootless.kernel import mountinfo  # noqa: F401 (Syscalls.submounts, after pivot_root)
from rootless.kernel import paths
from rootless.kernel.syscalls import Syscalls

AT_EMPTY_PATH = 0x1000
# MOUNT_ATTR_RDONLY/NOSUID/NODEV/NOEXEC have the values of MS_RDONLY/NOSUID/NODEV/NOEXEC
_REMOUNTABLE = (k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV
                | k.MOUNT_ATTR_NOEXEC)


def set_mount_attrs(sys: Syscalls, dirfd: int, path: str, attrs: int,
                    recursive: bool) -> None:
    """Set `attrs` (MOUNT_ATTR_*) on the mount at `path` relative to `dirfd` ("" for the
    mount `dirfd` is the root of), and on every mount below it if `recursive`."""
    flags = (0 if path else AT_EMPTY_PATH) | (k.AT_RECURSIVE if recursive else 0)
    try:
        sys.mount_setattr(dirfd, path, flags, attrs)
        return
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
    if not path:
        remount_tree(sys, dirfd, attrs, recursive)
        return
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC,
                 dir_fd=None if dirfd == k.AT_FDCWD else dirfd)
    try:
        remount_tree(sys, fd, attrs, recursive)
    finally:
        os.close(fd)


def remount_tree(sys: Syscalls, fd: int, attrs: int, recursive: bool) -> None:
    """The fallback: a bind remount of the mount `fd` is the root of, then of each mount
    below it (a mount hidden under another one at the same place cannot be reached,
    and is left as it is, as nothing can reach it through this tree either)."""
    if attrs & ~_REMOUNTABLE:
        raise OSError(errno.EINVAL, f"mount attributes {attrs:#x} need mount_setattr(2) "
                                    "(Linux 5.12)")
    remount(sys, fd, attrs)
    if not recursive:
        return
    for rel in sys.submounts(fd):
        try:
            sub = paths.open_in_root(fd, rel, os.O_PATH, no_symlinks=True,
                                     openat2=sys.openat2)
        except FileNotFoundError:
            continue  # covered by a mount stacked above it, or gone
        try:
            remount(sys, sub, attrs)
        finally:
            os.close(sub)


def remount(sys: Syscalls, fd: int, attrs: int) -> None:
    flags = k.MS_REMOUNT | k.MS_BIND | sys.mount_flags(fd) | (attrs & _REMOUNTABLE)
    sys.mount(None, f"/proc/self/fd/{fd}", None, flags)
