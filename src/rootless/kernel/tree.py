"""Walking a directory tree by descriptors, iteratively, at any depth.

Trees in the store are written by containers and by images, so they may be deeper than
Python's recursion limit (os.walk and shutil.rmtree recurse in 3.11: a 1500-deep chain
raises RecursionError) and deeper than PATH_MAX (a path string to the bottom is refused
with ENAMETOOLONG). And a container that is still running, or racing, may swap any
directory for a symlink while we walk. So every step is relative to a descriptor: a
child is opened with O_NOFOLLOW|O_DIRECTORY relative to its parent's descriptor, never
through a path string, and what is not a directory at that instant is never entered.

Holding one descriptor per level would hit RLIMIT_NOFILE (often 1024) on deep trees,
so at most MAX_OPEN are held; an ancestor whose descriptor was closed is reopened as
`..` of its child and must still be the same directory (device and inode recorded when
it was entered), as fts(3) does for rm -r: a directory moved away mid-walk (out of the
tree) stops the walk instead of leading it outside. The walk never crosses into
another filesystem (a mount point inside the tree, like `rm --one-file-system`).
"""

from __future__ import annotations

import errno
import os

MAX_OPEN = 64  # directory descriptors held at once, whatever the depth
MAX_SCANS = 100  # times one directory is gone through again before giving up
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

TYPE_CHECKING = False  # not typing's: importing typing costs ~3 ms (rootless/records.py)
if TYPE_CHECKING:  # subscripting Callable costs ~1 ms at import, on `run --rm`'s path
    from typing import Callable

    OpenDir = Callable[[int, str], "int | None"]
    Enter = Callable[[int, os.stat_result], list[str]]
    Leave = Callable[[int, str], bool]


class _Frame:
    __slots__ = ("fd", "name", "st", "dev", "ino", "todo", "scans")

    def __init__(self, fd: int, name: str, st: os.stat_result) -> None:
        self.fd: int | None = fd
        self.name = name
        self.st: os.stat_result | None = st  # for the first enter(); later ones fstat
        self.dev, self.ino = st.st_dev, st.st_ino
        self.todo: list[str] | None = None
        self.scans = 0


def open_subdir(dir_fd: int, name: str) -> int | None:
    """A descriptor of the directory `name` in `dir_fd`, or None if it is anything else
    or gone (a symlink is never followed)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None


def walk_tree(parent_fd: int, name: str, enter: Enter, open_dir: OpenDir = open_subdir,
              leave: Leave | None = None) -> None:
    """Depth first through the directory `name` of `parent_fd` and all below it.

    open_dir(dir_fd, name) -> a DIR_FLAGS descriptor of that subdirectory, or None to
        skip it; it must never follow a symlink.
    enter(fd, st) -> the names of the subdirectories of `fd` to go into (it lists them).
    leave(dir_fd, name) -> True to go through that directory again (its descriptor is
        still open); called with its parent once everything below it was walked.
    """
    fd = open_dir(parent_fd, name)
    if fd is None:
        return
    stack = [_Frame(fd, name, os.fstat(fd))]
    closed = 0  # stack[:closed] have had their descriptors closed
    try:
        while stack:
            top = stack[-1]
            if top.todo is None:
                top.todo = enter(top.fd, top.st or os.fstat(top.fd))
                top.st = None
            if top.todo:
                child = _descend(top, top.todo.pop(), open_dir)
                if child is not None:
                    stack.append(child)
                    if len(stack) - closed > MAX_OPEN:
                        os.close(stack[closed].fd)
                        stack[closed].fd = None
                        closed += 1
                continue
            if len(stack) > 1 and closed == len(stack) - 1:
                _reopen_parent(stack[-2], top)
                closed -= 1
            if leave is not None and leave(stack[-2].fd if len(stack) > 1 else parent_fd,
                                           top.name):
                top.scans += 1
                if top.scans > MAX_SCANS:
                    raise OSError(errno.ENOTEMPTY, "kept changing while being walked",
                                  top.name)
                top.todo = None
                continue
            os.close(top.fd)
            stack.pop()
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)


def _descend(top: _Frame, name: str, open_dir: OpenDir) -> _Frame | None:
    fd = open_dir(top.fd, name)
    if fd is None:
        return None
    st = os.fstat(fd)
    if st.st_dev != top.dev:
        os.close(fd)
        raise OSError(errno.EXDEV, "is on another filesystem (a mount point?): not "
                      "entered", name)
    return _Frame(fd, name, st)


def _reopen_parent(parent: _Frame, child: _Frame) -> None:
    """Reopen `parent` as `..` of `child`; it must be the directory it was."""
    fd = os.open("..", DIR_FLAGS, dir_fd=child.fd)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (parent.dev, parent.ino):
        os.close(fd)
        raise OSError(errno.ESTALE, "was moved while being walked", child.name)
    parent.fd = fd
