"""The fork chain that starts a container, in crun/youki's roles:

  runtime (P)  -- stays on the host; sets itself CHILD_SUBREAPER, writes the id maps,
     |            then waits for the container and forwards signals to it
  intermediate (C) -- unshares the user namespace, waits for its maps, turns itself
     |                non-dumpable, unshares the other namespaces, forks, exits
  init (G)     -- pid 1 of the new pid namespace: runs the plan, then execveat(2)s the
                  exec helper from a sealed memfd P made (runtime/helper.py), which execs
                  the command, or stays pid 1 above it with --init; when C exits, G is
                  re-parented to P (the subreaper), so P waits on it directly and sees
                  its real exit status or signal.

Failures before exec travel back over a close-on-exec pipe as one JSON line, so P can
print `error: mount proc on /proc: ...` and exit 125, or 126/127 for exec failures (the
helper writes those). Without -t the container's stdin, stdout and stderr are pipes P
holds the other ends of (its stdin only with -i, else /dev/null), never P's own
descriptors: a container could otherwise change the user's terminal, or write through
/proc/self/fd/0 into a file given as input. With -t they are a pty of the container's.
"""

from __future__ import annotations

import fcntl
import os
import select  # G uses it after pivot_root, when only sys.modules can provide it
# the C module: `signal` wraps it in enums, and enum costs the start ~3 ms of imports
import _signal as signal
import struct

from rootless import jsonfast
from rootless.errors import (EXIT_CANNOT_INVOKE, EXIT_ENGINE, EXIT_NOT_FOUND,
                             CannotInvokeError, CommandNotFoundError, RootlessError,
                             RuntimeSetupError)
from rootless.kernel import constants as k
from rootless.kernel import fdpass
from rootless.kernel.idmap import IdMaps, write_maps, write_maps_within
from rootless.kernel.syscalls import RealSyscalls, Syscalls
from rootless.records import record
from rootless.runtime.caps import last_cap
from rootless.runtime.executor import FLAG_NEW_LISTENER, Executor
from rootless.runtime.helper import take_sealed_copy
from rootless.runtime.plan import Exec, JoinCgroup, JoinNamespaces, LoadSeccomp, Plan
from rootless.runtime.start_process import Streams, exec_command

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Callable


@record
class StdioOptions:
    stdin: bool = False  # -i: the container reads our stdin (through a pipe); else /dev/null
    terminal: bool = False  # -t: a pty whose master is sent back to P
    winsize: bytes | None = None  # struct winsize of our terminal, applied before exec
    # exec -d: no pipes to us; stdin, stdout and stderr are the container's /dev/null
    detached: bool = False
    # rootless-oci: the container's stdin, stdout and stderr are ours (what the caller,
    # conmon or slurmstepd, gave the runtime), as runc passes its own on
    inherit: bool = False
    # rootless-oci's create: a FIFO opened read-write, on which the exec helper parks
    # until `start` writes to it; the init then does not die with us (runc's exec.fifo)
    park_fd: int | None = None
    preserve_fds: int = 0  # runc's --preserve-fds: 3 .. 3+N-1 reach the command


@record
class Joins:
    """Namespaces the container enters rather than makes, as descriptors of ours (C
    inherits them): a user network's container nests its own user namespace inside the
    pause process's (net/pause.py), so that one process may hold capabilities over both
    its network namespace and the hub's; `--network container:NAME` enters NAME's user
    and network namespaces."""

    userns: int  # entered first: it grants the capabilities the rest needs
    nest: bool = True  # then a new user namespace inside it, with the container's maps
    netns: int | None = None  # entered while we hold userns's capabilities (before a
    # nested namespace would take them away); the plan then makes no network namespace
    # userns's (uid, gid) maps as the host sees them (kernel/idmap.read_maps), which the
    # nested namespace's maps are written relative to
    parent_maps: tuple = ((), ())


@record
class Started:
    pid: int  # the container's init, a child of this process
    console_fd: int | None = None
    streams: Streams | None = None  # without -t: our ends of its stdin/stdout/stderr
    # held open for the container's life: its init sees our death as a hang-up here, and
    # the kernel kills it (PR_SET_PDEATHSIG) once it has started
    parent_fd: int | None = None
    # the seccomp notification listener of its fakeroot filter (runtime/fakeroot.py):
    # ours to serve, or to hand to whoever serves it (exec: the container's monitor)
    listener: int | None = None


class _Pipes:
    """The channels between P and its children; the child ends close at exec."""

    def __init__(self, stdio: StdioOptions, listener: bool = False,
                 namespaces: bool = False) -> None:
        self.go_r, self.go_w = os.pipe()  # P -> C: maps written
        self.report_r, self.report_w = os.pipe()  # C -> P: "U", then G's pid
        self.error_r, self.error_w = os.pipe()  # C/G -> P: a JSON failure, or EOF at exec
        # P -> G: "C is gone, you are my child now" (see _parent_death_signal); P keeps
        # the write end for its whole life, so G also sees P's death as a hang-up
        self.parent_r, self.parent_w = os.pipe2(os.O_CLOEXEC)
        self.console = None
        self.listener = None  # G -> P: the fakeroot filter's listener (SCM_RIGHTS)
        if listener:
            self.listener = fdpass.socketpair()
        # C -> P: descriptors of the new user and network namespaces, for on_init
        self.ns = fdpass.socketpair() if namespaces else None
        self.ours: Streams | None = None  # P's ends of the container's stdio pipes
        self.theirs: Streams | None = None  # the container's, dup'ed onto 0, 1, 2
        if stdio.detached:
            pass
        elif stdio.terminal:
            self.console = fdpass.socketpair()
        elif stdio.inherit:
            self.theirs = Streams(*(_dup_or_null(fd) for fd in (0, 1, 2)))
        else:
            stdin = os.pipe() if stdio.stdin else (None, None)
            stdout, stderr = os.pipe(), os.pipe()
            self.ours = Streams(stdin[1], stdout[0], stderr[0])
            self.theirs = Streams(stdin[0], stdout[1], stderr[1])

    def close_parent_ends(self) -> None:
        for fd in (self.go_r, self.report_w, self.error_w, self.parent_r,
                   *_fds(self.theirs)):
            os.close(fd)
        if self.console:
            self.console[1].close()
        if self.listener:
            self.listener[1].close()
        if self.ns:
            self.ns[1].close()

    def close_child_ends(self) -> None:
        """In C and G: P's end of the listener socket is not theirs to hold."""
        if self.listener:
            self.listener[0].close()
        if self.ns:
            self.ns[0].close()

    def send_listener(self):
        """What G's executor calls with the listener fd: send it to P."""
        if self.listener is None:
            return None
        return lambda fd: fdpass.send_fds(self.listener[1], b"L", [fd])

    def close_streams(self) -> None:
        for fd in _fds(self.ours):
            os.close(fd)


def _dup_or_null(fd: int) -> int:
    """A close-on-exec copy of our `fd` above 2, or /dev/null where it is closed."""
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        return os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)


def _fds(streams: Streams | None) -> list[int]:
    return [fd for fd in streams or () if fd is not None]


def _wants_listener(plan: Plan) -> bool:
    return any(isinstance(s, LoadSeccomp) and s.flags & FLAG_NEW_LISTENER
               for s in plan.steps)


def start(plan: Plan, maps: IdMaps, stdio: StdioOptions,
          sys: Syscalls | None = None,
          on_created: Callable[[int], None] | None = None,
          meanwhile: Callable[[], None] | None = None,
          on_init: Callable[[int, list[int]], None] | None = None,
          joins: Joins | None = None) -> Started:
    """Fork the container and return once its command has been exec'd (or raise).

    `on_created(pid)` is called with the intermediate's pid once its user namespace has
    its id maps, before it creates the other namespaces and forks the init: the one
    moment to move the container into a cgroup (engine/cgroups.py), so that everything
    it forks is born inside and its cgroup namespace is rooted there. If it raises, the
    container is killed and the error raised. `meanwhile()` is the caller's own work,
    done while G runs the plan (a few ms we would otherwise wait through); it must not
    raise. `on_init(pid, [userns_fd, netns_fd])` is called with G's pid once G exists,
    and before G may exec the command: G waits for our word after its plan, so the
    network helper (net/helper.py) configures G's network namespace while G runs its
    plan, and the command never runs without its network. The descriptors come from C
    (and are closed after the call): until its exec G is not dumpable, and its
    /proc/PID/ns files are then root's (proc(5), PR_SET_DUMPABLE). If it raises, G is
    killed and the error raised. `joins`: namespaces entered rather than made (Joins);
    `maps` are then written relative to the joined user namespace, or not at all when
    it is entered without nesting."""
    sys = sys or RealSyscalls()
    helper = take_sealed_copy(sys)
    try:
        pipes = _Pipes(stdio, _wants_listener(plan), on_init is not None)
        sys.prctl(k.PR_SET_CHILD_SUBREAPER, 1)
        pid = os.fork()
        if pid == 0:
            _child_main(lambda: _intermediate(plan, stdio, pipes, helper, sys, joins),
                        pipes.error_w)
    finally:
        os.close(helper)  # C and G have their copies; G execs it, we are done with it
    pipes.close_parent_ends()
    try:
        started = _parent_handshake(pid, maps, pipes, on_created, meanwhile, on_init,
                                    joins)
    except BaseException:
        pipes.close_streams()
        os.close(pipes.parent_w)
        raise
    finally:
        for fd in (pipes.go_w, pipes.report_r, pipes.error_r):
            os.close(fd)
        if pipes.console:
            pipes.console[0].close()
        if pipes.listener:
            pipes.listener[0].close()
        if pipes.ns:
            pipes.ns[0].close()
    return started._replace(streams=pipes.ours)


def _parent_handshake(pid: int, maps: IdMaps | None, pipes: _Pipes,
                      on_created: Callable[[int], None] | None = None,
                      meanwhile: Callable[[], None] | None = None,
                      on_init: Callable[[int, list[int]], None] | None = None,
                      joins: Joins | None = None) -> Started:
    if os.read(pipes.report_r, 1) != b"U":
        os.waitpid(pid, 0)
        _raise_child_error(pipes.error_r)
    try:
        if joins is not None and maps is not None:
            if joins.nest:
                write_maps_within(joins.userns, pid, maps, joins.parent_maps)
        elif maps is not None:  # None: exec, into a user namespace that has them
            write_maps(pid, maps)
        if on_created is not None:
            on_created(pid)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    os.write(pipes.go_w, b"M")
    raw = os.read(pipes.report_r, 4)
    os.waitpid(pid, 0)  # the intermediate exits at once; G is now our child
    if on_init is not None and len(raw) == 4:
        _call_on_init(on_init, struct.unpack("i", raw)[0], pipes.ns[0])
    if pipes.parent_w is not None:  # None: exec's G does not wait for it (start_joined)
        try:
            os.write(pipes.parent_w, b"P")
        except BrokenPipeError:  # G failed before it read this: its report follows
            pass
    if meanwhile is not None:  # while G runs its plan, which needs nothing more of us
        meanwhile()
    if len(raw) != 4:
        _raise_child_error(pipes.error_r)
    init_pid = struct.unpack("i", raw)[0]
    listener = _receive_fd(pipes.listener[0]) if pipes.listener else None
    console_fd = None
    if pipes.console:
        console_fd = _receive_console(pipes.console[0])
    error = _read_all_serving(pipes.error_r, listener)
    if error:
        if listener is not None:
            os.close(listener)
        _, status = os.waitpid(init_pid, 0)
        _raise_from_report(error)
    return Started(init_pid, console_fd, parent_fd=pipes.parent_w, listener=listener)


def _call_on_init(on_init: Callable[[int, list[int]], None], init_pid: int,
                  sock) -> None:
    _, fds = fdpass.recv_fds(sock, 1, 2)
    try:
        on_init(init_pid, fds)
    except BaseException:
        os.kill(init_pid, signal.SIGKILL)
        os.waitpid(init_pid, 0)
        raise
    finally:
        for fd in fds:
            os.close(fd)


def _receive_console(sock) -> int | None:
    _, fds = fdpass.recv_fds(sock, 1, 1)
    return fds[0] if fds else None


_receive_fd = _receive_console  # G's fakeroot listener comes the same way; None: G failed


def _read_all_serving(error_r: int, listener: int | None) -> bytes:
    """_read_all of the error pipe, answering meanwhile whatever the fakeroot filter
    traps with CONTINUE (the plan loads it where no runtime step of ours is trapped:
    this only keeps a mistake there from hanging the start)."""
    if listener is None:
        return _read_all(error_r)
    from rootless.kernel import notify

    poller = select.poll()
    poller.register(error_r, select.POLLIN)
    poller.register(listener, select.POLLIN)
    chunks = []
    while True:
        for fd, mask in poller.poll():
            if fd == error_r:
                chunk = os.read(error_r, 65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
            elif mask & select.POLLIN:
                n = notify.recv(listener)
                if n is not None:
                    notify.send_continue(listener, n.id)
            else:  # POLLHUP: no process uses the filter any more
                poller.unregister(listener)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _raise_child_error(error_fd: int) -> None:
    _raise_from_report(_read_all(error_fd) or b'{"message": "container set-up failed"}')


_ERRORS_BY_CODE = {EXIT_CANNOT_INVOKE: CannotInvokeError, EXIT_NOT_FOUND: CommandNotFoundError}


def _raise_from_report(report: bytes) -> None:
    try:
        data = jsonfast.loads(report.decode(errors="replace").splitlines()[0])
    except (ValueError, IndexError):
        data = {"message": report.decode(errors="replace").strip()}
    code = int(data.get("code", EXIT_ENGINE))
    err = _ERRORS_BY_CODE.get(code, RuntimeSetupError)(
        data.get("message", "container set-up failed"))
    err.exit_code = code
    raise err


# --- the child side: never returns ------------------------------------------------------


def _child_main(body, error_w: int) -> None:
    code = EXIT_ENGINE
    try:
        body()
    except RootlessError as e:
        _report(error_w, str(e), e.exit_code)
        code = e.exit_code
    except OSError as e:
        _report(error_w, f"{e.strerror or e}".lower(), EXIT_ENGINE)
    except BaseException as e:  # never let a child fall back into the caller's code
        _report(error_w, f"internal error: {type(e).__name__}: {e}", EXIT_ENGINE)
    finally:
        os._exit(code)


def _report(error_w: int, message: str, code: int) -> None:
    try:
        os.write(error_w, jsonfast.dumps({"message": message, "code": code}).encode() + b"\n")
    except OSError:
        pass


def _intermediate(plan: Plan, stdio: StdioOptions, pipes: _Pipes, helper: int,
                  sys: Syscalls, joins: Joins | None) -> None:
    for fd in (pipes.go_w, pipes.report_r, pipes.error_r, pipes.parent_w):
        os.close(fd)
    pipes.close_child_ends()
    if joins is not None:
        _enter_joined(joins, sys)
    if joins is None or joins.nest:
        try:
            sys.unshare(k.CLONE_NEWUSER)
        except OSError as e:
            raise RuntimeSetupError(
                f"create user namespace: {e.strerror.lower()} (are unprivileged user "
                "namespaces enabled? see `sysctl user.max_user_namespaces`)") from e
    os.write(pipes.report_w, b"U")
    if os.read(pipes.go_r, 1) != b"M":
        os._exit(EXIT_ENGINE)  # P failed to map ids and has reported it
    # Until G execs the helper, this interpreter is in the container's namespaces: no
    # process there may open it through /proc/PID/exe or ptrace it meanwhile (prctl(2),
    # PR_SET_DUMPABLE; runc CVE-2019-5736). The helper ends the exposure for good.
    sys.prctl(k.PR_SET_DUMPABLE, 0)
    try:
        sys.unshare(plan.namespaces)
    except OSError as e:
        raise RuntimeSetupError(f"create namespaces: {e.strerror.lower()}") from e
    if pipes.ns:  # for P's on_init: our own /proc/self is open to us, dumpable or not
        fds = [os.open(f"/proc/self/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
               for ns in ("user", "net")]
        fdpass.send_fds(pipes.ns[1], b"N", fds)
        pipes.ns[1].close()
        for fd in fds:
            os.close(fd)
    pid = os.fork()
    if pid == 0:
        _child_main(lambda: _init_main(plan, stdio, pipes, helper, sys), pipes.error_w)
    os.write(pipes.report_w, struct.pack("i", pid))
    os._exit(0)


def _enter_joined(joins: Joins, sys: Syscalls) -> None:
    """C enters the namespaces it joins: the user namespace first, whose capabilities
    setns(2) of the network namespace then needs. Where C joins it for good, it is made
    non-dumpable first: processes of that user namespace could otherwise ptrace it (runc
    CVE-2016-9962). Where it nests a namespace of its own, that waits until its maps
    are written, as in the plain start: a non-dumpable process's /proc/PID/uid_map
    belongs to root (proc(5)), and no process of the joined namespace can name C meanwhile
    (the only ones there are the pause process and, for container:NAME, processes of
    NAME's pid namespace, which does not hold C)."""
    if not joins.nest:
        sys.prctl(k.PR_SET_DUMPABLE, 0)
    for fd, nstype, what in ((joins.userns, k.CLONE_NEWUSER, "user"),
                             (joins.netns, k.CLONE_NEWNET, "network")):
        if fd is None:
            continue
        try:
            sys.setns(fd, nstype)
        except OSError as e:
            raise RuntimeSetupError(f"join the {what} namespace: "
                                    f"{os.strerror(e.errno).lower()}") from e


def _init_main(plan: Plan, stdio: StdioOptions, pipes: _Pipes, helper: int,
               sys: Syscalls) -> None:
    os.close(pipes.report_w)
    os.close(pipes.go_r)
    *setup, last = plan.steps
    assert isinstance(last, Exec)
    Executor(sys, pipes.send_listener()).run(tuple(setup))
    if stdio.park_fd is None:
        _parent_death_signal(pipes.parent_r, sys)
    else:  # parked for rootless-oci: outlives its `create` and lives on its own,
        # but still waits for P's word, as every init does before its command
        if os.read(pipes.parent_r, 1) != b"P":
            os._exit(EXIT_ENGINE)
        os.close(pipes.parent_r)
    console = pipes.console[1] if pipes.console else None
    exec_command(last, stdio, pipes.theirs, console, pipes.error_w, helper, sys)


def _parent_death_signal(parent_r: int, sys: Syscalls) -> None:
    """Die with P (the monitor): no container may outlive the process that records it.

    G was forked by C and re-parented to P when C exited; PR_SET_PDEATHSIG set before
    that would have fired at C's exit, so G waits for P's word that C is gone. The setting
    is cleared by any change of credentials (prctl(2)), so it comes after the plan's
    SetUser; and if P died before it was set, its end of the pipe has hung up. A profile
    that forbids prctl leaves the container to the next command, which finds its init
    by pid and start time."""
    if os.read(parent_r, 1) != b"P":
        os._exit(EXIT_ENGINE)  # P is gone before the container started
    try:
        sys.prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    poller = select.poll()
    poller.register(parent_r, select.POLLIN)
    if poller.poll(0):  # POLLHUP: P died between its word and our prctl
        os._exit(EXIT_ENGINE)
    os.close(parent_r)


def wait_exit_code(pid: int) -> int:
    """Docker's exit code for a finished container: its own, or 128+N for signal N."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)




# --- exec: a process that joins a running container ---------------------------------------


def start_joined(plan: Plan, stdio: StdioOptions, sys: Syscalls | None = None) -> Started:
    """Start a process in a running container (exec); return once its command has been
    exec'd (or raise). The chain of `start`, but C enters the cgroup and namespaces of
    the container's init (the plan's Join* steps) instead of making new ones, so there
    are no id maps to write; G, born in the container's pid namespace, runs the rest of
    the plan and execs the helper. G is our child (we are a subreaper); unlike a
    container's init it does not die with us (docker's `exec -d` outlives the CLI)."""
    sys = sys or RealSyscalls()
    count = _join_steps(plan)
    last_cap()  # read here, on the host: G's /proc is the container's (runtime/caps.py)
    helper = take_sealed_copy(sys)
    try:
        pipes = _Pipes(stdio, _wants_listener(plan))
        sys.prctl(k.PR_SET_CHILD_SUBREAPER, 1)
        pid = os.fork()
        if pid == 0:
            _child_main(lambda: _joiner(plan, count, stdio, pipes, helper, sys),
                        pipes.error_w)
    finally:
        os.close(helper)
    pipes.close_parent_ends()
    os.close(pipes.parent_w)  # an exec'd process does not die with us
    pipes.parent_w = None
    try:
        started = _parent_handshake(pid, None, pipes)
    except BaseException:
        pipes.close_streams()
        raise
    finally:
        for fd in (pipes.go_w, pipes.report_r, pipes.error_r):
            os.close(fd)
        if pipes.console:
            pipes.console[0].close()
        if pipes.listener:
            pipes.listener[0].close()
    return started._replace(streams=pipes.ours, parent_fd=None)


def _joiner(plan: Plan, count: int, stdio: StdioOptions, pipes: _Pipes, helper: int,
            sys: Syscalls) -> None:
    """C of an exec: run the plan's `count` Join* steps, tell P, fork G into the
    container's pid namespace, exit."""
    for fd in (pipes.go_w, pipes.report_r, pipes.error_r):
        os.close(fd)
    pipes.close_child_ends()
    # Before the first setns: from then on the container's processes share a user
    # namespace with this interpreter, and must not ptrace it or open its /proc/PID/exe
    # or descriptors (runc CVE-2016-9962); G inherits the setting until its execve.
    sys.prctl(k.PR_SET_DUMPABLE, 0)
    Executor(sys).run(plan.steps[:count])
    os.write(pipes.report_w, b"U")
    if os.read(pipes.go_r, 1) != b"M":
        os._exit(EXIT_ENGINE)
    pid = os.fork()
    if pid == 0:
        _child_main(lambda: _joined_main(plan.steps[count:], stdio, pipes, helper, sys),
                    pipes.error_w)
    os.write(pipes.report_w, struct.pack("i", pid))
    os._exit(0)


def _join_steps(plan: Plan) -> int:
    """How many of the plan's first steps C runs: the Join* ones (an exec plan)."""
    count = 0
    while count < len(plan.steps) and isinstance(plan.steps[count],
                                                 (JoinCgroup, JoinNamespaces)):
        count += 1
    if not any(isinstance(s, JoinNamespaces) for s in plan.steps[:count]):
        raise RuntimeSetupError("an exec plan starts with JoinNamespaces")
    return count


def _joined_main(steps: tuple, stdio: StdioOptions, pipes: _Pipes, helper: int,
                 sys: Syscalls) -> None:
    """G of an exec: in the container's namespaces, with its root as "/" (the host's
    Python files unreachable: everything used here is imported already)."""
    os.close(pipes.report_w)
    os.close(pipes.go_r)
    *setup, last = steps
    assert isinstance(last, Exec)
    Executor(sys, pipes.send_listener()).run(tuple(setup))
    console = pipes.console[1] if pipes.console else None
    exec_command(last, stdio, pipes.theirs, console, pipes.error_w, helper, sys)
