"""The state of a rootless-oci container: one directory per id under `--root`, as runc
keeps it.

    ROOT/ID/state.json   what `state` prints, plus the init's start time and the id mode
                         (written to a temp file and renamed: a reader never sees half)
    ROOT/ID/exec.fifo    present while the container is created and not started: its
                         init's exec helper parks reading it (runtime/process.py park_fd);
                         `start` writes one byte and removes it
    ROOT/ID/lock         flock(2)ed by every command that changes the container

The status is never stored: it is read from the process (named by pid and start time,
kernel/procs.py, so a reused pid reads as stopped) and from the fifo, so a killed
command or a reboot cannot leave a stale "running". Only the light modules are imported
here: `state` runs on every podman and Slurm poll.
"""

from __future__ import annotations

import json
import os
import re

from rootless.errors import NotFoundError, RootlessError, UsageError

OCI_VERSION = "1.0.2"
# runc's rule (libcontainer/factory_linux.go): letters, digits, _ + - and dots; Slurm
# names containers %n.%u.%j.%s.%t
_ID = re.compile(r"[\w+.-]+", re.ASCII)
STATE_FILE, FIFO, LOCK = "state.json", "exec.fifo", "lock"


class ContainerExistsError(RootlessError):
    pass


def default_root() -> str:
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isabs(runtime_dir):
        return os.path.join(runtime_dir, "rootless-oci")
    return f"/tmp/rootless-oci-{os.getuid()}"


def check_root(root: str, create: bool = False) -> None:
    """`--root` must be the caller's own directory, writable by nobody else: its default
    and Slurm's (/tmp/rootless-oci-...) are names another local user could make first, and
    whoever can write there can forge a state.json. Root (Slurm's clean-up) may act on a
    user's; lifecycle.py then checks the process it names."""
    if create:
        os.makedirs(root, 0o700, exist_ok=True)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return  # nothing there: no container either (open says "does not exist")
    import stat

    if not stat.S_ISDIR(st.st_mode):
        raise RootlessError(f"--root {root}: not a directory (a symlink is refused)")
    euid = os.geteuid()
    if euid != 0 and (st.st_uid != euid or st.st_mode & 0o022):
        raise RootlessError(f"--root {root}: owned by uid {st.st_uid} with mode "
                            f"{stat.S_IMODE(st.st_mode):o}: refused (it must be yours, "
                            "writable by you alone)")


def check_id(container_id: str) -> str:
    if not _ID.fullmatch(container_id) or container_id in (".", ".."):
        raise UsageError(f"invalid container id {container_id!r}: letters, digits, "
                         "'_', '+', '-' and '.' only")
    return container_id


class Container:
    """One container's state directory, opened by descriptor: every later access is
    relative to it, so a renamed or replaced path cannot redirect a command."""

    def __init__(self, root: str, container_id: str, dir_fd: int) -> None:
        self.root, self.id, self.dir_fd = root, container_id, dir_fd
        self.state: dict = {}
        self.console_fd: int | None = None  # a foreground run's pty master
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, root: str, container_id: str) -> "Container":
        check_id(container_id)
        check_root(root)
        try:
            fd = os.open(os.path.join(root, container_id),
                         os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"container {container_id} does not exist") from None
        except OSError as e:
            raise RootlessError(f"container {container_id}: {e.strerror.lower()}") from e
        self = cls(root, container_id, fd)
        try:
            self.state = self.read_state()
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def make(cls, root: str, container_id: str) -> "Container":
        check_id(container_id)
        check_root(root, create=True)
        try:
            os.mkdir(os.path.join(root, container_id), 0o700)
        except FileExistsError:
            raise ContainerExistsError(f"container with id {container_id} exists "
                                       "already") from None
        fd = os.open(os.path.join(root, container_id),
                     os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return cls(root, container_id, fd)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self) -> None:
        """Exclusive until this process exits or closes the directory: the lock file's
        descriptor is kept (flock(2) locks belong to the open file)."""
        import fcntl

        if self._lock_fd is not None:
            return
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=self.dir_fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def read_state(self) -> dict:
        try:
            fd = os.open(STATE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=self.dir_fd)
        except FileNotFoundError:  # a create still under way, or one that was killed
            return {}
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        try:
            state = json.loads(data)
        except ValueError:
            raise RootlessError(f"container {self.id}: its state.json is damaged") from None
        return state if isinstance(state, dict) else {}

    def write_state(self, state: dict) -> None:
        tmp = f".{STATE_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd)
        try:
            os.write(fd, json.dumps(state).encode())
        finally:
            os.close(fd)
        os.rename(tmp, STATE_FILE, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.state = state

    def parked(self) -> bool:
        try:
            os.stat(FIFO, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def status(self) -> str:
        """runc's words: creating, created, running, stopped."""
        from rootless.kernel.procs import alive_as

        pid = self.state.get("pid")
        if not pid:
            return "creating" if self.parked() else "stopped"
        if not alive_as(pid, self.state.get("start_time")):
            return "stopped"  # exited (a zombie its reaper has not waited for), or gone
        return "created" if self.parked() else "running"

    def public_state(self) -> dict:
        """`state`'s JSON (runtime-spec's state, runc's field order and extras)."""
        status = self.status()
        s = self.state
        return {"ociVersion": s.get("ociVersion", OCI_VERSION), "id": self.id,
                "pid": s.get("pid", 0) if status != "stopped" else 0,
                "status": status, "bundle": s.get("bundle", ""),
                "rootfs": s.get("rootfs", ""), "created": s.get("created", ""),
                "owner": s.get("owner", ""), "annotations": s.get("annotations") or {}}

    def remove(self) -> None:
        """The state directory, by descriptor (kernel/remove.py); the directory itself
        last, so a crash halfway leaves an id that `delete` still finds."""
        from rootless.kernel.remove import remove_at

        parent = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            remove_at(parent, self.id)
        finally:
            os.close(parent)
