"""The per-container monitor (conmon's role): the parent of the container's init.

`launch` forks it from the command that starts a container (run, start, restart), twice
and with setsid, so that neither the user's terminal nor the death of that command
touches it; it keeps nothing of that command's but the descriptors it is given (the
others are replaced by /dev/null, so no flock, store lock or terminal is held by it).
It then starts the container, records it running, tells the command (over a pipe)
that it runs or why it could not start, and stays until the container is gone:

    start -> record running -> pump streams (monitor_io) -> record exit
          -> restart policy (back-off) | --rm | done

No container process outlives its monitor: the init dies with it (PR_SET_PDEATHSIG, set
by runtime/process.py) and the kernel empties its pid namespace. `stop`, `kill` and
`rm -f` act on the init directly (engine/lifecycle.py); the monitor only sees it exit.
Everything it needs is imported before the container starts or lazily by a feature
(healthchecks), never trio: see monitor_io's note.
"""

from __future__ import annotations

import gc
import os
# the C module: `signal` wraps it in enums, and enum costs the start ~3 ms of imports
import _signal as signal
import time

from rootless import jsonfast
from rootless.engine.container_settings import LOG_FILE
from rootless.engine.monitor_fork import (ATTACH_SOCKET, MONITOR_LOCK, Launched,
                                          PendingMonitor)
from rootless.errors import EXIT_ENGINE, RootlessError

BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0  # moby's restartmanager


def launch(store, container_id: str, attach: dict | None = None,
           winsize: bytes | None = None) -> Launched:
    """Start the container's monitor and return once the container runs; raise its
    start error (exit code 125, 126 or 127) otherwise. `attach` ({"stdin", "stdout",
    "stderr"}) makes a client that is attached before the container starts, so it misses
    none of its output."""
    store.disconnect()  # no SQLite state may cross the fork (Store.disconnect)
    return PendingMonitor(store.root, attach, winsize).start(container_id)


# ---- the monitor process ----

def monitor_main(root, go_r: int, report_w: int, client, attach, winsize) -> None:
    """The monitor, forked by monitor_fork.PendingMonitor; never returns. `client` is
    the attached command's end of a socket pair (a bare _socket.socket), or None."""
    code, container_id, root = 0, None, os.fspath(root)
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        keep = {report_w, go_r} | ({client.fileno()} if client is not None else set())
        _quiet_descriptors(keep)
        container_id = _wait_for_container(go_r)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM,
                    signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        monitor = Monitor(root, container_id, report_w)
        if client is not None:
            monitor.first_client = (client, attach)
        monitor.winsize = winsize
        monitor.run()
    except BaseException as e:  # never back into the caller's code
        try:
            message = str(e) if isinstance(e, RootlessError) else f"monitor: {e}"
            os.write(report_w, jsonfast.dumps({"message": message,
                                           "code": EXIT_ENGINE}).encode())
        except OSError:
            pass
        if container_id is not None:
            _note_failure(root, container_id)
        code = EXIT_ENGINE
    finally:
        os._exit(code)


def _wait_for_container(go_r: int) -> str:
    """What the start needs, made while the command creates the container: the
    modules Monitor.run and _start import before the container runs (the pump's and
    the fakeroot's come after it), the exec helper's sealed copy. Then the container's
    id; a closed pipe ends us quietly (SystemExit is not an exception the caller
    reports)."""
    import rootless.engine.cgroups  # noqa: F401
    import rootless.engine.container_settings  # noqa: F401
    import rootless.kernel.procs  # noqa: F401
    import rootless.runtime.annotations  # noqa: F401
    import rootless.kernel.notify  # noqa: F401
    import rootless.runtime.run  # noqa: F401
    import rootless.runtime.seccomp_fakeroot  # noqa: F401
    from rootless.kernel.syscalls import RealSyscalls
    from rootless.runtime.helper import prepare
    from rootless.runtime.seccomp import section_digest

    section_digest({})  # its hash's module, loaded on first use
    prepare(RealSyscalls())
    data = os.read(go_r, 128)
    os.close(go_r)
    text = data.decode(errors="replace")
    if len(text) != 64 or not all(c in "0123456789abcdef" for c in text):
        os._exit(0)
    return text


def _note_failure(root: str, container_id: str) -> None:
    """What killed the monitor, in monitor.log beside the container's log: its stderr
    is /dev/null, and a bug here must still be findable."""
    import traceback

    try:
        with open(os.path.join(root, "containers", container_id, "monitor.log"), "a") as f:
            traceback.print_exc(file=f)
    except OSError:
        pass


def _quiet_descriptors(keep: set[int]) -> None:
    """/dev/null over every descriptor but `keep`: the command's terminal, its store
    lock and its temp owner's flock must not live on in the monitor. dup2 rather than
    close, so that objects of the command's that still name those numbers (its sqlite
    connection) can never close one of ours that reused the number."""
    null = os.open("/dev/null", os.O_RDWR)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep and fd != null:
            try:
                os.dup2(null, fd, inheritable=fd <= 2)
            except OSError:
                pass
    os.close(null)


class Monitor:
    """The container's life, in the order that keeps its start-up short: the container
    is started first, and the store opened, the attach socket bound and the log opened
    while it runs (its output waits in its pipes meanwhile)."""

    def __init__(self, root: str, container_id: str, report_w: int | None) -> None:
        from rootless.engine.container_settings import settings_read

        self.root = root
        self._store = None
        self.id = container_id
        self.cdir = os.path.join(root, "containers", container_id)
        self.report_w = report_w
        self.settings = settings_read(self.cdir)
        self.first_client = None
        self.winsize = None
        self.init_pid: int | None = None
        self.exit_code: int | None = None
        self.health = None
        self.restart_lock = None  # the op lock, from a restart's claim to its record
        self.fakeroot = None  # runtime/fakeroot.Fakeroot, once a run has a listener
        self.listener = self.log = None  # made while the first run starts (_meanwhile)
        self.network = None  # net/helper.Helper of a slirp container's run
        self.user_networks = None  # engine/network_run.UserNetworkRun of a run
        self.net_mode = None  # net/modes.NetworkMode of a run (None: host, none)

    @property
    def store(self):
        if self._store is None:
            from rootless.store import Store

            self._store = Store.open(self.root)
        return self._store

    # -- the life of the container --

    def run(self) -> None:

        try:
            dirfd = os.open(self.cdir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW |
                            os.O_CLOEXEC)
        except OSError:  # removed before its monitor got to it
            raise RootlessError(f"no such container: {self.id}") from None
        self.dirfd = dirfd
        self._lock()
        from rootless.engine.container_settings import spec_load

        spec = spec_load(os.path.join(self.cdir, "config.json"))
        if not spec:
            raise RootlessError(f"container {self.id[:12]} has no readable config.json")
        self.wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        listener = log = None
        backoff = BACKOFF_FIRST
        while True:
            started_at = time.time()
            pump = self._start(spec)
            if pump is None:
                break
            if listener is None:  # the first run's, made while it started
                listener = self.listener if self.listener is not None else self._listen()
                log = self.log if self.log is not None else self._log()
            pump.log = log  # every run's output, as docker logs a restarted container's
            self._started(pump)
            self._release_restart()
            pump.run(listener, self.wake_r, self._reap, lambda: self.exit_code is not None,
                     self._timer)
            self._network_stop()
            if self.fakeroot is not None:
                self.fakeroot.close_listeners()
            self.cgroup.remove()  # its processes died with the init (pid namespace)
            if log is not None:
                log.flush()
            code = self.exit_code
            self._record_exit(code)
            if not self._restart_wanted(code):
                self._finish(pump, code)
                break
            pump.finish({"code": code})
            backoff = BACKOFF_FIRST if time.time() - started_at >= BACKOFF_RESET else backoff
            if not self._back_off(backoff, listener):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)
        self._unlink(ATTACH_SOCKET)

    def _lock(self) -> None:
        import fcntl

        fd = os.open(MONITOR_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=self.dirfd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RootlessError(f"container {self.id[:12]} already has a monitor") from None
        self.lock_fd = fd

    def _meanwhile(self) -> None:
        """While the container's init sets itself up (runtime/process.start): what the
        first run needs once it runs, made off the start's path (~2 ms): the attach
        socket (and the socket module), the log, the store's connection that records
        it running. A failure here is met again, and reported, once it runs."""
        try:
            if self.listener is None:
                self.listener = self._listen()
            if self.log is None:
                self.log = self._log()
            _ = self.store
        except (OSError, RootlessError):
            pass

    def _listen(self):
        """The attach socket, bound through /proc/self/fd (conmon's trick): a store
        path may be longer than a socket address can hold (108 bytes)."""
        import socket  # not before the container starts: ~1.5 ms of the monitor's path

        self._unlink(ATTACH_SOCKET)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind(f"/proc/self/fd/{self.dirfd}/{ATTACH_SOCKET}")
        listener.listen(16)
        listener.setblocking(False)
        return listener

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dirfd)
        except OSError:
            pass

    def _log(self):
        from rootless.engine.logfile import LogWriter

        return LogWriter(LOG_FILE, dir_fd=self.dirfd)

    def _start(self, spec: dict):
        """Start one run of the container and its Pump; None if it could not start
        (the error is recorded, and reported to the command that launched us)."""
        from rootless.engine.cgroups import ContainerCgroup
        from rootless.kernel.procs import start_time
        from rootless.runtime.process import StdioOptions
        from rootless.runtime.run import start_spec

        s = self.settings
        stdio = StdioOptions(stdin=s.open_stdin, terminal=s.tty, winsize=self.winsize)
        self.exit_code = None
        # joined by the intermediate, before the init exists (engine/cgroups.py)
        self.cgroup = ContainerCgroup(self.id, spec)
        server = joins = None
        try:
            joins = self._network_joins(spec)
            server = self._fuse_server(spec)  # forked first: its imports overlap ours
            started = start_spec(spec, stdio, on_created=self._created(server),
                                 served=True,
                                 fuse_channel=server.channel if server else None,
                                 meanwhile=self._meanwhile,
                                 on_init=self._network_start(spec), joins=joins)
            self.cgroup.settle()
        except RootlessError as e:
            self._network_stop()
            self._release_restart()
            self.cgroup.remove()
            # recorded before the command hears of it; removed (--rm) after, since the
            # command may hold the op lock until it hears (a `run`: it then removes
            # the container itself, whichever of us is first)
            self._record_exit(e.exit_code)
            self._report({"message": str(e), "code": e.exit_code})
            self._finish(None, e.exit_code)
            return None
        finally:
            if server is not None:  # the init has its end (or failed): a server
                server.close()  # whose container never mounted sees EOF and exits
            if joins is not None and joins.netns is not None:  # container:NAME's
                os.close(joins.userns)
                os.close(joins.netns)
        self.init_pid = started.pid
        self.parent_fd = started.parent_fd
        self.begun = start_time(started.pid)
        self._announce()  # before the pump and the fakeroot's modules: off run -d's path
        from rootless.engine.monitor_io import Client, Pump

        pump = Pump(started, s.tty, None, s.stdin_once, self._signal_init)
        if started.listener is not None:
            self._fakeroot_serve(pump, started, spec)
        if self.first_client is not None:
            import socket

            sock, wants = self.first_client
            sock = socket.socket(fileno=sock.detach())  # monitor_fork made a bare one
            pump.add_client(Client(sock, wants, launcher=True))
            self.first_client = None
        return pump

    def _created(self, server):
        """What runs once the container's user namespace has its maps: the cgroup is
        joined, and our end of the FUSE server's socket closed (the init's copy is then
        the last; its exec ends the server's set-up phase: runtime/fuse_mount.py)."""
        if server is None:
            return self.cgroup.enter

        def created(pid: int) -> None:
            server.close()
            self.cgroup.enter(pid)
        return created

    def _network_joins(self, spec: dict):
        """The namespaces a run enters rather than makes (runtime/process.Joins): a
        user network container nests its user namespace in the pause process's;
        container:NAME enters NAME's. None for the other modes. Reads the run's
        network mode, which _network_start then uses (None for host and none)."""
        self.net_mode = None
        # net/modes.NETWORK_ANNOTATION, spelt here: host and none import nothing more
        if "run.rootless.network" not in (spec.get("annotations") or {}):
            return None
        from rootless.net.modes import mode_from_spec

        self.net_mode = mode = mode_from_spec(spec)
        if mode is None or mode.mode not in ("user", "container"):
            return None
        from rootless.engine import network_run

        if mode.mode == "container":
            return network_run.container_joins(self.store, mode)
        self.user_networks = network_run.UserNetworkRun(self.store, self.id, self.dirfd)
        return self.user_networks.joins()

    def _network_start(self, spec: dict):
        """The on_init of a slirp or user network container's run: its interfaces on
        its user networks (engine/network_run.py), then the slirp helper
        (net/helper.py), which configures the init's network namespace before the
        command runs; None for host, none and container:NAME. After _network_joins."""
        if "run.rootless.network" not in (spec.get("annotations") or {}):
            return None
        mode = self.net_mode
        if mode is not None and mode.mode == "container":
            return None
        from rootless.net.helper import helper_for_spec

        def on_init(pid: int, ns_fds: list[int]) -> None:
            outbound = True
            if self.user_networks is not None:
                outbound = self.user_networks.attach(ns_fds[1])
            if mode is None or (mode.helper and outbound):  # None: unreadable, which
                self.network = helper_for_spec(spec, ns_fds, self.dirfd)  # it says
        return on_init

    def _network_stop(self) -> None:
        if self.network is not None:
            self.network.stop()
            self.network = None
        if self.user_networks is not None:
            self.user_networks.release()
            self.user_networks = None

    def _fuse_server(self, spec: dict):
        """A container of our FUSE overlay gets its server (fs/fuse_server.py) for each
        run, a child of ours outside the container's namespaces; None for the others."""
        from rootless.runtime.annotations import ROOTFS_OVERLAY_ANNOTATION

        if '"fuse"' not in (spec.get("annotations", {}).get(ROOTFS_OVERLAY_ANNOTATION)
                            or ""):
            return None
        from rootless.fs.fuse_server import PendingServer, config_from_spec

        try:
            return PendingServer(config_from_spec(spec))
        except (OSError, ValueError, KeyError) as e:
            raise RootlessError(f"cannot start the FUSE overlay's server: {e}") from e

    def _fakeroot_serve(self, pump, started, spec: dict) -> None:
        """Answer the fakeroot's notifications (runtime/fakeroot.py) in the pump's loop:
        the init's listener now, an exec's when it hands one over (attach_frames)."""
        import select

        from rootless.runtime.fakeroot import Fakeroot

        if self.fakeroot is None:
            self.fakeroot = Fakeroot.for_spec(spec, self.cdir,
                                              os.path.join(self.cdir, "monitor.log"))
        fakeroot = self.fakeroot
        fakeroot.new_run(started.pid)

        def add(fd: int) -> None:
            fakeroot.add_listener(fd)
            pump.watch(fd, lambda mask: fakeroot.serve(fd, not mask & select.POLLIN))

        add(started.listener)
        pump.on_listener = add

    def _announce(self) -> None:
        """Record the run, tell the command that launched us (the container runs: a
        fakeroot notification waits for the pump, a client in the listen queue)."""
        if self.listener is None:  # _meanwhile failed to: the launcher attaches next
            try:
                self.listener = self._listen()
            except OSError:
                pass  # run() tries again, and reports it
        if not self._record_running(self.init_pid, self.begun):  # removed meanwhile
            os.kill(self.init_pid, signal.SIGKILL)
        self._report({"pid": self.init_pid, "start": self.begun})

    def _started(self, pump) -> None:
        """After the run's record and report: the hosts files of its user networks,
        the healthchecks."""
        if self.user_networks is not None:  # after the report: off run -d's path
            self.user_networks.announce()
        if not gc.isenabled():  # off since `run` forked us (cli/run.py), for the start
            gc.freeze()  # what it made stays: a first collection would walk it, ~2-3 ms
            gc.enable()
        self._health_start()

    def _report(self, data: dict) -> None:
        if self.report_w is None:
            return
        try:
            os.write(self.report_w, jsonfast.dumps(data).encode())
        except OSError:  # EPIPE: the command that launched us was killed; we go on
            pass
        finally:
            os.close(self.report_w)
            self.report_w = None

    def _signal_init(self, signum: int) -> None:
        if self.init_pid is not None and self.exit_code is None:
            try:
                os.kill(self.init_pid, signum)  # our child: its pid is not reused until
            except ProcessLookupError:  # we reap it
                pass

    def _reap(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self.exit_code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) \
                    else os.WEXITSTATUS(status)
                self.init_pid = None
                if self.parent_fd is not None:
                    os.close(self.parent_fd)
                    self.parent_fd = None
            elif self.network is not None and self.network.owns(pid):
                self.network.reaped(pid)  # it died: the container lost its network
            elif self.health is not None:
                self.health.reaped(pid, status)

    # -- healthchecks --

    def _health_start(self) -> None:
        if self.settings.healthcheck is None:
            return
        from rootless.engine.health import HealthMonitor

        self.health = HealthMonitor(self.store, self.id, self.settings.healthcheck)

    def _timer(self) -> float | None:
        if self.health is None or self.exit_code is not None:
            return None
        return self.health.tick(self.init_pid)

    # -- the record --

    def _record_running(self, pid: int, begun: int | None) -> bool:
        with self.store.db:
            cursor = self.store.db.execute(
                "UPDATE containers SET state='running', pid=?, init_start=?, monitor_pid=?,"
                " started=?, exit_code=NULL WHERE id=? AND state!='removing'",
                (pid, begun, os.getpid(), time.time(), self.id))
        return cursor.rowcount == 1

    def _record_exit(self, code: int | None) -> None:
        with self.store.db:
            self.store.db.execute(
                "UPDATE containers SET state='exited', exit_code=?, finished=? "
                "WHERE id=? AND state IN ('running', 'paused', 'created', 'restarting')",
                (code, time.time(), self.id))

    def _restart_wanted(self, code: int | None) -> bool:
        from rootless.engine.containers import container_row

        policy = self.settings.restart
        if policy == "no":
            return False
        row = container_row(self.store, self.id)
        if row is None or row.record.state != "exited" or row.stopped_by_user or \
                row.monitor_pid != os.getpid():
            return False
        if policy == "on-failure":
            return code != 0 and (self.settings.max_retries == 0 or
                                  row.restart_count < self.settings.max_retries)
        return True

    def _back_off(self, delay: float, listener) -> bool:
        """Wait `delay` as `restarting`, then claim the restart; False if the container
        was stopped or removed meanwhile."""
        with self.store.db:
            self.store.db.execute(
                "UPDATE containers SET state='restarting' WHERE id=? AND state='exited'",
                (self.id,))
        time.sleep(delay)
        from rootless.engine.containers import container_op_lock, container_row

        from contextlib import ExitStack

        # held until the new run is recorded (_release_restart): `rm`, `start` and a
        # `cp` into the stopped container wait for it, and then see it running
        held = ExitStack()
        held.enter_context(container_op_lock(self.store, self.id))
        row = container_row(self.store, self.id)
        if row is None or row.record.state != "restarting" or row.stopped_by_user:
            if row is not None and row.record.state == "restarting":
                self._record_exit(self.exit_code)
            held.close()
            return False
        with self.store.db:
            self.store.db.execute(
                "UPDATE containers SET restart_count=restart_count+1 WHERE id=?", (self.id,))
        self.restart_lock = held
        return True

    def _release_restart(self) -> None:
        if self.restart_lock is not None:
            self.restart_lock.close()
            self.restart_lock = None

    def _finish(self, pump, code: int | None) -> None:
        """The container is done for good: --rm removes it (before the attached
        command hears the exit code, as docker's CLI waits for the removal)."""
        from rootless.engine.containers import container_record_auto_remove

        if container_record_auto_remove(self.store, self.id):
            from rootless.engine.lifecycle import remove_after_exit

            self._unlink(ATTACH_SOCKET)
            remove_after_exit(self.store, self.id)
            self.store.release_temp()  # before the command hears: nothing of ours stays
        if pump is not None:
            pump.finish({"code": code})
