"""Temporary entries in <root>/tmp/, and who owns them.

Every command that writes into tmp/ (blobs being verified, layers being unpacked,
archives being spooled, layers and containers being removed, the overlay probe) first
claims an owner token: it creates <root>/owners/TOKEN and holds an flock(2) on it for as
long as it lives, and names its entries tmp/KIND-TOKEN-RANDOM. An entry is stale when
nobody holds its owner's lock: the kernel drops the lock of a command killed by
SIGKILL or a crash, so the next command's clean_temp() removes what it left, and a
command still running, whatever pid namespace or host (an NFS home) it runs in, keeps
its entries. Pids alone cannot tell that: another namespace's pids are not ours to see,
and a dead command's pid is soon another process's.

A cleaner only removes a dead owner's entries while holding that owner's lock, and
unlinks the lock file last. A new owner checks, once it holds its lock, that its file
is still linked: if a cleaner took it for a dead one in the instant between create and
lock, it starts again with a new token. Entries named with a bare pid (before owner
tokens) are judged by that pid, as they were.
"""

from __future__ import annotations

import os
from _thread import allocate_lock

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` does without pathlib and collections
    from collections.abc import Callable
    from pathlib import Path

_claiming = allocate_lock()  # not threading: `run` imports this module, not threading
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TempOwner:
    """This command's claim on tmp/ entries, made at the first path() and given up by
    release(): at the end of a `with` block, else at exit. A forked child never gives
    up its parent's claim (it makes its own if it needs one)."""

    def __init__(self, root: str | Path) -> None:
        root = os.fspath(root)
        self.tmp_dir = os.path.join(root, "tmp")
        self.owners_dir = os.path.join(root, "owners")
        self.token: str | None = None
        self._fd: int | None = None
        self._pid = 0
        self._scoped = False

    def path(self, kind: str) -> Path:
        """A fresh name in tmp/, owned by this command."""
        from pathlib import Path

        return Path(self.name(kind))

    def name(self, kind: str) -> str:
        """path(kind) as a str."""
        return os.path.join(self.tmp_dir, f"{kind}-{self.claim()}-{os.urandom(6).hex()}")

    def claim(self) -> str:
        with _claiming:  # pull writes blobs from several threads at once
            if self.token is None or self._pid != os.getpid():
                self.token, self._fd = _take_token(self.owners_dir)
                if self._pid == 0 and not self._scoped:
                    import atexit

                    atexit.register(self.release)
                self._pid = os.getpid()
            return self.token

    def release(self) -> None:
        """Give the claim up: entries still in tmp/ become stale (reclaimed by the next
        clean_temp)."""
        if self._fd is None or self._pid != os.getpid():
            return
        try:
            os.unlink(os.path.join(self.owners_dir, self.token))
        except OSError:
            pass
        os.close(self._fd)
        self.token, self._fd = None, None

    def __enter__(self) -> "TempOwner":
        self._scoped = True
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take_token(owners_dir: str) -> tuple[str, int]:
    import fcntl

    while True:
        token = f"{os.getpid()}x{os.urandom(4).hex()}"
        try:
            fd = os.open(os.path.join(owners_dir, token), _CREATE, 0o600)
        except FileNotFoundError:  # a store made before owner tokens
            try:
                os.mkdir(owners_dir, mode=0o700)
            except FileExistsError:
                pass
            fd = os.open(os.path.join(owners_dir, token), _CREATE, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner holds it, briefly
        if os.fstat(fd).st_nlink:
            return token, fd
        os.close(fd)  # a cleaner took it for a dead owner's and unlinked it: anew


def temp_clean(root: Path, own: str | None = None,
               remove: Callable[[Path], None] | None = None) -> None:
    """Remove the tmp/ entries whose owner is gone (and those of the token `own`), then
    the owner files of the gone. Nothing here is ever an error: an entry that `remove`
    cannot remove is left for later. The default remover reaches files of subordinate
    ids (a killed unpack's, a container's) from the storage namespace."""
    from pathlib import Path

    if remove is None:
        from rootless.kernel.storage_ns import remove_tree as remove
    tmp_dir, owners_dir = Path(root, "tmp"), Path(root, "owners")
    entries: dict[str, list[str]] = {}  # token -> its entries in tmp/
    for name in _names(tmp_dir):
        token = _token_of(name)
        if token is not None:
            entries.setdefault(token, []).append(name)
    for token in _names(owners_dir):
        if _is_token(token):
            entries.setdefault(token, [])
    for token, names in entries.items():
        fd = None if token == own else _lock_if_dead(owners_dir, token)
        if token != own and fd is None:
            continue  # its owner lives
        try:
            for name in names:
                _remove_quietly(remove, tmp_dir / name)
            if fd is not None and fd >= 0:  # its owner file last, its lock still held
                _remove_quietly(remove, owners_dir / token)
        finally:
            if fd is not None and fd >= 0:
                os.close(fd)


def _names(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _token_of(name: str) -> str | None:
    """The owner token in an entry's name (PIDxHEX8, or a bare PID before owner
    files); None for any other name."""
    parts = name.split("-")
    token = parts[-2] if len(parts) >= 3 else ""
    return token if token.isdigit() or _is_token(token) else None


def _is_token(token: str) -> bool:
    pid, x, suffix = token.partition("x")
    return pid.isdigit() and bool(x) and len(suffix) == 8 and set(suffix) <= _HEX


_HEX = set("0123456789abcdef")


def _lock_if_dead(owners_dir: Path, token: str) -> int | None:
    """None if the owner `token` is alive; else a descriptor holding its lock (-1: it
    has no lock file, so it ended; legacy tokens are pids, judged by the pid)."""
    import fcntl

    if token.isdigit():
        from rootless.kernel.procs import pid_alive

        return None if pid_alive(int(token)) else -1
    try:
        fd = os.open(owners_dir / token, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1  # it is made before any entry, and unlinked only once it is over
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_quietly(remove: Callable[[Path], None], path: Path) -> None:
    from rootless.errors import RootlessError

    try:
        remove(path)
    except (OSError, RootlessError):
        pass
