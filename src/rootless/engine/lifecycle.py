"""start, stop, kill, restart, rm, pause, unpause, wait: acting on a container's
processes, never on a command's pid.

The init is named by (pid, start time) and reached through a pidfd
(kernel/procs.ProcessHandle); killing it empties its pid namespace (the kernel kills
every other process there before the init's exit completes), so "its init is gone"
means "none of its processes is left". Each verb holds the container's op lock
(containers.container_op_lock) and re-reads the row under it. The monitor records
exits; a command that finds the monitor dead (killed with SIGKILL) records them itself.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

from rootless.engine.containers import (ContainerRow, container_dir, container_lookup,
                                        container_op_lock, container_path, container_row)
from rootless.errors import NotFoundError, RootlessError

RECORD_WAIT = 5.0  # seconds a verb waits for the monitor to record an exit
MONITOR_EXIT_WAIT = 2.0  # seconds `start` waits for the monitor of an exited run to go


class NotRunningError(RootlessError):
    pass


def _row(store, container_id: str, ref: str) -> ContainerRow:
    row = container_row(store, container_id)
    if row is None:
        raise NotFoundError(f"no such container: {ref}")
    return row


def _init_handle(row: ContainerRow):
    """A ProcessHandle on the container's init; None if it is gone."""
    from rootless.kernel.procs import ProcessHandle

    if row.pid is None:
        return None
    try:
        return ProcessHandle(row.pid, row.init_start)
    except ProcessLookupError:
        return None


def monitor_alive(store, container_id: str) -> bool:
    """Whether a monitor holds the container's monitor lock."""
    import fcntl

    from rootless.engine.monitor_fork import MONITOR_LOCK

    try:
        fd = os.open(os.path.join(container_path(store, container_id), MONITOR_LOCK),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# ---- start ----

def container_start(store, ref: str, attach: dict | None = None,
                    winsize: bytes | None = None):
    """Start a created or exited container (a monitor of its own); None if it was
    already running, else monitor.Launched."""
    from rootless.engine.monitor import launch

    record = container_lookup(store, ref)
    with container_op_lock(store, record.id):
        row = _row(store, record.id, ref)
        if row.state in ("running", "paused"):
            return None
        if row.state == "removing":
            raise RootlessError(f"container {ref} is marked for removal and cannot be "
                                "started")
        if monitor_alive(store, record.id) and not _monitor_finishing(store, record.id):
            raise RootlessError(f"container {ref} is restarting: wait for it, or stop it")
        from rootless.engine.layer_owners import image_layers_ready

        # made before its layers were stored as this user's id mode stores them now
        image_layers_ready(store, record.image_id, ref)
        with store.db:
            store.db.execute("UPDATE containers SET stopped_by_user=0 WHERE id=?",
                             (record.id,))
        # still under the lock: the monitor reports before it would take it (--rm)
        return launch(store, record.id, attach, winsize)


def _monitor_finishing(store, container_id: str) -> bool:
    """Whether the live monitor of a container whose exit it recorded goes away now (it
    was finishing: `restart` and `stop; start` ask right after the exit is recorded).
    False if it stays, or restarts the container (its back-off records 'restarting')."""
    deadline = time.monotonic() + MONITOR_EXIT_WAIT
    while time.monotonic() < deadline:
        row = container_row(store, container_id)
        if row is None or row.record.state != "exited":
            return False
        if not monitor_alive(store, container_id):
            return True
        time.sleep(0.01)
    return False


# ---- stop, kill ----

def container_stop(store, ref: str, timeout: int | None = None,
                   stop_signal: str | None = None) -> None:
    """docker stop: the stop signal, then SIGKILL after `timeout` seconds (the
    container's --stop-timeout, else 10; -1 waits for ever)."""
    from rootless.engine.container_settings import settings_read
    from rootless.engine.signals import parse_signal

    record = container_lookup(store, ref)
    settings = settings_read(container_dir(store, record.id))
    signum = parse_signal(stop_signal or settings.stop_signal)
    timeout = settings.timeout if timeout is None else timeout
    with container_op_lock(store, record.id):
        row = _row(store, record.id, ref)
        if not row.running:
            return
        _mark_stopped(store, record.id)
        handle = _init_handle(row)
        if handle is None:  # restarting, or gone with its monitor
            _wait_recorded(store, record.id, None)
            return
        with handle:
            handle.signal(signum)
            if row.state == "paused":  # a frozen process cannot act on the signal
                if not _freeze(row, False):
                    _continue_all(row)
            if not handle.wait_gone(None if timeout < 0 else timeout):
                handle.signal(signal.SIGKILL)
                signum = signal.SIGKILL
                handle.wait_gone(None)
        _wait_recorded(store, record.id, 128 + signum)


def container_kill(store, ref: str, signum: int) -> None:
    record = container_lookup(store, ref)
    with container_op_lock(store, record.id):
        row = _row(store, record.id, ref)
        handle = _init_handle(row) if row.state in ("running", "paused") else None
        if handle is None:
            raise NotRunningError(f"cannot kill container: {ref}: container "
                                  f"{record.id} is not running")
        _mark_stopped(store, record.id)  # as moby: a killed container is not restarted
        with handle:
            handle.signal(signum)
            if signum == signal.SIGKILL:
                handle.wait_gone(RECORD_WAIT)
                _wait_recorded(store, record.id, 128 + signum)


def _mark_stopped(store, container_id: str) -> None:
    with store.db:
        store.db.execute("UPDATE containers SET stopped_by_user=1 WHERE id=?",
                         (container_id,))


def _wait_recorded(store, container_id: str, code: int | None) -> None:
    """Until the monitor has recorded the exit; if it is dead, record it ourselves (the
    exit code is then the signal's, or docker's 255 for "unknown")."""
    deadline = time.monotonic() + RECORD_WAIT
    while time.monotonic() < deadline:
        row = container_row(store, container_id)
        if row is None or row.record.state not in ("running", "paused", "restarting"):
            return
        if not monitor_alive(store, container_id):
            break
        time.sleep(0.01)
    with store.db:
        store.db.execute(
            "UPDATE containers SET state='exited', exit_code=?, finished=? WHERE id=? "
            "AND state IN ('running', 'paused', 'restarting')",
            (255 if code is None else code, time.time(), container_id))


def container_restart(store, ref: str, timeout: int | None = None) -> None:
    container_stop(store, ref, timeout)
    container_start(store, ref)


# ---- pause ----

def container_pause(store, ref: str) -> None:
    record = container_lookup(store, ref)
    with container_op_lock(store, record.id):
        row = _row(store, record.id, ref)
        if row.state == "paused":
            raise RootlessError(f"container {record.id} is already paused")
        if row.state != "running":
            raise NotRunningError(f"container {record.id} is not running")
        if not _freeze(row, True):
            _stop_all(row)
        with store.db:
            store.db.execute("UPDATE containers SET state='paused' WHERE id=? AND "
                             "state='running'", (record.id,))


def container_unpause(store, ref: str) -> None:
    record = container_lookup(store, ref)
    with container_op_lock(store, record.id):
        row = _row(store, record.id, ref)
        if row.state != "paused":
            raise RootlessError(f"container {record.id} is not paused")
        if not _freeze(row, False):
            _continue_all(row)
        with store.db:
            store.db.execute("UPDATE containers SET state='running' WHERE id=? AND "
                             "state='paused'", (record.id,))


@contextmanager
def paused_for(store, ref: str, pause: bool = True):
    """Pause a running container for the duration (commit --pause); a container that
    is not running, or already paused, is left as it is."""
    record = container_lookup(store, ref)
    row = _row(store, record.id, ref)
    if not pause or row.state != "running":
        yield
        return
    container_pause(store, record.id)
    try:
        yield
    finally:
        try:
            container_unpause(store, record.id)
        except RootlessError:  # stopped or removed meanwhile: nothing to resume
            pass


def _freeze(row: ContainerRow, frozen: bool) -> bool:
    """The cgroup v2 freezer, where the container has a cgroup of its own
    (engine/cgroups.py); False where it has none: signals then do it."""
    from rootless.engine.cgroups import cgroup_freeze, cgroup_of

    path = cgroup_of(row.record.id, row.pid) if row.pid and row.init_alive else None
    return path is not None and cgroup_freeze(path, frozen)


def _container_processes(row: ContainerRow):
    """ProcessHandles on the init and every process below it (in its pid namespace)."""
    from rootless.kernel.procs import ProcessHandle, descendants, start_time

    handles = []
    for pid in descendants(row.pid) if row.init_alive else ():
        try:
            handles.append(ProcessHandle(pid, start_time(pid)))
        except ProcessLookupError:
            pass
    return handles


def _stop_all(row: ContainerRow) -> None:
    """SIGSTOP every process of the container until a scan finds none running (a
    process may fork between one scan and its signal): no cgroup freezer needed."""
    from rootless.kernel.procs import proc_state

    for _ in range(100):
        handles = _container_processes(row)
        busy = [h for h in handles if proc_state(h.pid) not in ("T", "t", "Z", None)]
        for h in busy:
            h.signal(signal.SIGSTOP)
        for h in handles:
            h.close()
        if not busy:
            return
        time.sleep(0.005)
    raise RootlessError("cannot pause the container: its processes keep changing")


def _continue_all(row: ContainerRow) -> None:
    for h in _container_processes(row):
        h.signal(signal.SIGCONT)
        h.close()


# ---- rm ----

def containers_remove(store, refs: list[str], force: bool,
                      volumes: bool = False) -> list[str]:
    """docker rm: a running container only with -f, which kills it first; its
    directory goes only once its init (and so every process of it) is gone."""
    from rootless.engine.containers import container_remove, remove_tree

    store.clean_temp(remove=remove_tree)  # what killed commands left, subordinate ids too
    removed = []
    for ref in refs:
        record = container_lookup(store, ref)
        monitor = None
        with container_op_lock(store, record.id):
            row = _row(store, record.id, ref)
            if row.running or monitor_alive(store, record.id):
                if not force:
                    raise RootlessError(
                        f'cannot remove container "/{record.name}": container is '
                        f"{row.state}: stop the container before removing or force remove")
                monitor = _open_monitor_lock(store, record.id)
                _kill_for_removal(store, row)
            container_remove(store, record.id, volumes)
        if monitor is not None:  # outside the op lock, which its --rm path may take
            _wait_unlocked(monitor, RECORD_WAIT)
        removed.append(ref)
    return removed


def _open_monitor_lock(store, container_id: str) -> int | None:
    from rootless.engine.monitor_fork import MONITOR_LOCK

    try:
        return os.open(os.path.join(container_path(store, container_id), MONITOR_LOCK),
                       os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None


def _wait_unlocked(fd: int, timeout: float) -> None:
    """Until the monitor holding `fd`'s lock has exited (or `timeout`)."""
    import fcntl

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(0.005)
    finally:
        os.close(fd)


def _kill_for_removal(store, row: ContainerRow) -> None:
    with store.db:
        store.db.execute("UPDATE containers SET state='removing', stopped_by_user=1 "
                         "WHERE id=?", (row.record.id,))
    handle = _init_handle(row)
    if handle is not None:
        with handle:
            handle.signal(signal.SIGKILL)
            if not handle.wait_gone(30.0):
                raise RootlessError(f"container {row.record.id[:12]}'s init did not die "
                                    "(uninterruptible sleep?): not removed")


def remove_after_exit(store, container_id: str) -> None:
    """The monitor's --rm: unless someone else is removing it already."""
    from rootless.engine.containers import container_remove

    try:
        with container_op_lock(store, container_id):
            row = container_row(store, container_id)
            if row is None or row.record.state == "removing":
                return
            container_remove(store, container_id, volumes=True)
    except NotFoundError:
        return


# ---- wait ----

def container_wait(store, ref: str) -> int:
    """docker wait: block until the container exits, then its exit code (also for a
    --rm container, which the monitor reports before it is gone)."""
    record = container_lookup(store, ref)
    while True:
        row = container_row(store, record.id)
        if row is None:
            raise NotFoundError(f"no such container: {ref}")
        if row.state == "created":
            time.sleep(0.1)
            continue
        if not row.running and not monitor_alive(store, record.id):
            return row.exit_code if row.exit_code is not None else 255
        code = _wait_through_monitor(store, record.id)
        if code is not None:
            return code
        handle = _init_handle(row)
        if handle is not None:
            with handle:
                handle.wait_gone(None)
        _wait_recorded(store, record.id, None)


def _wait_through_monitor(store, container_id: str) -> int | None:
    from rootless import jsonfast
    from rootless.engine import attach_frames as af

    sock = connect_monitor(store, container_id, {"stdout": False, "stderr": False})
    if sock is None:
        return None
    reader = af.FrameReader()
    with sock:
        try:
            while data := sock.recv(65536):
                for kind, payload in reader.feed(data):
                    if kind == af.EXIT:
                        code = jsonfast.loads(payload).get("code")
                        return code if type(code) is int else 255
        except ConnectionResetError:  # a monitor that exits without accepting us:
            pass  # its record says how the container ended
    return None


def connect_monitor(store, container_id: str, wants: dict):
    """A socket attached to the container's monitor (after the hello), or None if no
    monitor listens. Connected through /proc/self/fd, as the monitor bound it."""
    import socket

    from rootless import jsonfast
    from rootless.engine.monitor_fork import ATTACH_SOCKET

    try:
        dirfd = os.open(container_path(store, container_id),
                        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/{ATTACH_SOCKET}")
        sock.sendall(jsonfast.dumps(wants).encode() + b"\n")
    except OSError:
        sock.close()
        return None
    finally:
        os.close(dirfd)
    return sock
