"""inotify(7), the little the FUSE overlay needs of it: a non-blocking descriptor that
becomes readable when a name is made, renamed or removed in one directory.

Python has no binding; libc's two calls are the C shim's (csrc/shim.c). Events are queued by the kernel within the call that
changes the directory (fsnotify runs inside rename(2)), so a watcher that polls its
descriptor after a change was made has the event readable.
"""

from __future__ import annotations

import os

IN_CLOSE_WRITE = 0x8
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# names made, removed, renamed over, and files closed after writing (a writer in place
# is seen too); not every write (IN_MODIFY): a log written through a kept descriptor
# would wake the watcher at each line
NAMES_CHANGE = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE


def watch_names(directory: str) -> int:
    """A descriptor readable once a name in `directory` came, went or was renamed
    over, or a file there was closed after writing; OSError where inotify is
    unavailable (ENOSYS, EMFILE, ENOSPC: the user's watch limit)."""
    from rootless.kernel.syscalls import _check, _lib

    lib = _lib()[1]
    fd = _check(lib.rl_inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
    try:
        _check(lib.rl_inotify_add_watch(fd, os.fsencode(directory), NAMES_CHANGE),
               "inotify_add_watch", directory)
    except OSError:
        os.close(fd)
        raise
    return fd


def drain(fd: int) -> None:
    """Read every queued event (their contents do not matter here)."""
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass
