"""A lock file opened and flock(2)ed in one call: the store's per-container locks, a
container's interfaces lock and the pause process's lock file are all taken this way."""

from __future__ import annotations

import fcntl
import os


def open_locked(path: str, shared: bool = False, dir_fd: int | None = None) -> int:
    """The descriptor of `path` (made 0600 if missing, never through a symlink), holding
    an exclusive (or `shared`) flock, waited for; closed again if the wait fails."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd
