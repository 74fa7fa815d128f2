"""Removing trees that overlayfs, containers and images leave behind: the one remover
every caller uses (containers, layers, tmp/, the overlay probe, rootfs copies, and the
storage namespace's, kernel/storage_ns.py).

By descriptor, never by path (kernel/tree.py walks): the top is opened with
O_NOFOLLOW|O_DIRECTORY relative to its parent's descriptor, then every entry is
unlinked with unlinkat and every directory opened with openat relative to the
directory holding it. A container still running (or any racing process) that swaps a
directory for a symlink between our listing and our descent only gets its symlink
unlinked: removal can never be redirected outside the tree. Iterative, so depth is no
limit (os.walk and shutil.rmtree recurse in Python 3.11).

overlayfs creates `work/work` with mode 000; a container may chmod its own files and
directories to 000 too. We own them, so making a directory u+rwx again before emptying
it is always allowed: with fchmod on its descriptor, or, where mode 000 refuses even
an O_RDONLY open, with chmod through the O_PATH descriptor's /proc/self/fd link (the
pinned inode, as glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does), never a path that could
be swapped. Files of subordinate ids raise PermissionError; the caller falls back to a
user namespace. Written on os calls rather than shutil: `rootless run --rm` removes a
tree on every run, and importing shutil (with bz2 and lzma) costs more than the removal.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.kernel.tree import DIR_FLAGS, walk_tree

_NOT_DIR = (errno.ENOTDIR, errno.ELOOP)  # O_NOFOLLOW|O_DIRECTORY met a non-directory


def rmtree_owned(path: str | os.PathLike) -> None:
    """Remove `path` and everything below it; a missing path is not an error. Only
    the last component is never followed: the path up to it is the caller's (the
    store's root may well sit behind a symlinked home)."""
    parent, name = os.path.split(os.fspath(path).rstrip("/"))
    if name in ("", ".", ".."):
        raise ValueError(f"refusing to remove {path!r}")
    try:
        parent_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_at(parent_fd, name)
    finally:
        os.close(parent_fd)


def remove_at(dir_fd: int, name: str) -> None:
    """Remove the entry `name` of the directory `dir_fd`, whatever it is."""
    walk_tree(dir_fd, name, _empty, _open_dir, _rmdir)


def _open_dir(dir_fd: int, name: str) -> int | None:
    """The directory `name` to empty; anything else is unlinked here (a symlink is
    never followed), and None returned."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except PermissionError:
        return _open_locked(dir_fd, name)
    except OSError as e:
        if e.errno not in _NOT_DIR:
            raise
    _unlink(dir_fd, name)
    return None


def _open_locked(dir_fd: int, name: str) -> int | None:
    """A directory that refuses O_RDONLY (mode 000, 0300): u+rwx through its O_PATH
    descriptor, then opened through it (the same inode, whatever its name is now)."""
    try:
        fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno not in _NOT_DIR:
            raise
        _unlink(dir_fd, name)
        return None
    try:
        link = f"/proc/self/fd/{fd}"
        os.chmod(link, stat.S_IMODE(os.fstat(fd).st_mode) | stat.S_IRWXU)
        return os.open(link, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(fd)


def _empty(fd: int, st: os.stat_result) -> list[str]:
    """Unlink every non-directory in `fd`; the names of its subdirectories."""
    if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
    with os.scandir(fd) as entries:
        listed = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    subdirs = []
    for name, is_dir in listed:
        if is_dir or not _unlink(fd, name):
            subdirs.append(name)
    return subdirs


def _unlink(dir_fd: int, name: str) -> bool:
    """unlinkat; False if `name` is (now) a directory."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        return False
    return True


def _rmdir(dir_fd: int, name: str) -> bool:
    """rmdir the emptied `name`; True if it must be gone through again (a racing
    process added entries)."""
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return True
        if e.errno != errno.ENOTDIR:
            raise
        _unlink(dir_fd, name)  # swapped for a non-directory meanwhile: unlinked, not followed
    return False
