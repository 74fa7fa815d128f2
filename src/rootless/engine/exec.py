"""`rootless exec`: a command started inside a running container.

Whatever `run` applied to the container's command applies to the exec'd process, since
both come from the container's one OCI spec through the one runtime: config.json's
process (user, capabilities, no_new_privileges, rlimits, environment) and its seccomp
section become an exec plan (runtime/plan.build_exec_plan) that joins the namespaces of
the container's init, user namespace first, instead of making new ones, and is started by
run's own fork chain (runtime/process.start_joined), ending in the exec helper from a
sealed memfd. Only what docker's exec changes differs:

- the command, and its environment: config.json's, then --env-file's, then -e's;
- -w, entered (never created) inside the container's root;
- -u, resolved in the container's own /etc/passwd and /etc/group, which are read
  through /proc/PID/root by the one in-root resolver (a symlink the container made
  never leads to a host file); HOME follows the user, as runc sets it;
- --privileged: every capability, as docker's exec gives; the seccomp filter stays.

The ids are those the container's user namespace maps (kernel/idmap.maps_from_spec):
in single-id mode one uid and one gid exist in it, and any other is refused by name.

The init is named by its pid and start time throughout (kernel/procs.py): its
/proc/PID/root is opened and then checked, and the runtime checks again when it joins.
"""

from __future__ import annotations

import os
from collections import namedtuple

from rootless.engine.container_settings import spec_load
from rootless.engine.containers import ContainerRow, container_path, container_row
from rootless.errors import NotFoundError, RootlessError, UsageError
from rootless.runtime.process import Started, StdioOptions


def exec_start(store, container_id: str, argv: list[str] | tuple[str, ...],
               env: tuple[str, ...] = (), user: str | None = None,
               workdir: str | None = None, privileged: bool = False,
               stdio: StdioOptions = StdioOptions(), env_files: tuple[str, ...] = (),
               debug: bool = False) -> Started:
    """Start `argv` in the running container `container_id` (a full id) as a child of
    the caller, which then pumps its streams (Started.streams or console_fd), reaps it
    (runtime/process.wait_exit_code) and may kill it. `env` items are K=V, or K to copy
    the caller's K. Raises NotFoundError, RootlessError when the container is not running,
    CannotInvokeError/CommandNotFoundError (126/127) when the command cannot run."""
    from rootless.kernel.idmap import maps_from_spec
    from rootless.runtime.plan import build_exec_plan
    from rootless.runtime.process import start_joined

    if not argv:
        raise UsageError("exec needs a command to run in the container")
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(f"the working directory '{workdir}' is invalid, it needs to be an "
                         "absolute path")
    if stdio.detached and stdio.terminal:
        raise UsageError("exec -d with -t: nothing would hold the detached process's "
                         "terminal (drop -t)")
    row = container_row(store, container_id)
    if row is None:
        raise NotFoundError(f"no such container: {container_id}")
    pid, start = init_process(row)
    spec = spec_load(os.path.join(container_path(store, container_id), "config.json"))
    if not isinstance(spec.get("process"), dict) or not isinstance(spec.get("linux"), dict):
        raise RootlessError(f"container {container_id}: its config.json is missing or "
                            "damaged")
    maps = maps_from_spec(spec["linux"])
    if maps is None:
        raise RootlessError(f"container {container_id}: its config.json has no id maps")
    process = exec_process(spec, pid, start, maps, ExecRequest(
        tuple(argv), env, env_files, user, workdir, privileged, stdio.terminal))
    fakeroot, monitor = exec_fakeroot(store, container_id, not maps.use_helpers,
                                      not spec["linux"].get("seccomp"))
    try:
        plan = build_exec_plan(spec, process, not maps.use_helpers, pid, start, fakeroot,
                               _joined_network(spec))
        if debug:
            import sys

            print(plan.describe(), file=sys.stderr)
        started = start_joined(plan, stdio)
        if started.listener is not None:
            started = _hand_listener(monitor, started)
    finally:
        if monitor is not None:
            monitor.close()
    return started


def _joined_network(spec: dict) -> int:
    """CLONE_NEWNET for a container:NAME container, whose init entered NAME's network
    namespace at its start (engine/network_run.py; its spec lists none of its own): an
    exec'd process must enter it too, never stay in the host's."""
    # net/modes.NETWORK_ANNOTATION: host and none import nothing more
    if "run.rootless.network" not in (spec.get("annotations") or {}):
        return 0
    from rootless.kernel import constants as k
    from rootless.net.modes import mode_from_spec

    mode = mode_from_spec(spec)
    return k.CLONE_NEWNET if mode is not None and mode.mode == "container" else 0


def exec_fakeroot(store, container_id: str, single_id: bool, unconfined: bool):
    """(fakeroot mode, the monitor's socket or None) for a process exec'd into the
    container: in single-id mode its filter sends the fakeroot's calls to the
    container's monitor (runtime/fakeroot.py), as the init's does, if the monitor says
    it serves them; else they are faked (errno mode), never left without an answer."""
    from rootless.runtime.seccomp_fakeroot import fakeroot_mode

    mode, _ = fakeroot_mode(single_id, served=True, unconfined=unconfined)
    if mode != "notify":
        return mode, None
    from rootless.engine import attach_frames as af
    from rootless.engine.lifecycle import connect_monitor

    sock = connect_monitor(store, container_id, {"fakeroot": True})
    if sock is None:
        return "errno", None
    reader, frames = af.FrameReader(), []
    try:
        sock.settimeout(FAKEROOT_HELLO_TIMEOUT)
        while not frames:
            data = sock.recv(64)
            if not data:
                break
            frames = reader.feed(data)
    except (OSError, ValueError):
        frames = []
    if frames != [(af.FAKEROOT, b"ready")]:
        sock.close()
        return "errno", None
    return "notify", sock


FAKEROOT_HELLO_TIMEOUT = 10.0  # the monitor answers from its poll loop at once


def _hand_listener(monitor, started: Started) -> Started:
    """Send the exec'd process's fakeroot listener to the container's monitor, which
    answers its trapped calls from now on; if it cannot take it, the process (which
    would wait for ever at its first chown or getuid) is killed."""
    import signal
    import socket

    from rootless.engine import attach_frames as af

    listener = started.listener
    try:
        socket.send_fds(monitor, [af.frame(af.FAKEROOT)], [listener])
    except OSError as e:
        os.kill(started.pid, signal.SIGKILL)
        os.waitpid(started.pid, 0)
        raise RootlessError("exec: the container's monitor did not take the fakeroot's "
                            f"listener: {(e.strerror or str(e)).lower()}") from None
    finally:
        os.close(listener)
    return started._replace(listener=None)


# What the caller asked for, as docker's ExecConfig holds it (a plain namedtuple: see
# cli/exec.py's Flag on typing.NamedTuple's cost)
ExecRequest = namedtuple("ExecRequest", "argv env env_files user workdir privileged terminal",
                         defaults=((), (), None, None, False, False))


def init_process(row: ContainerRow) -> tuple[int, int]:
    """(pid, start time) of a running container's init, or docker's refusal."""
    state = row.state
    if state == "paused":
        raise RootlessError(f"container {row.record.id} is paused, unpause the container "
                            "before exec")
    if state == "restarting":
        raise RootlessError(f"container {row.record.id} is restarting, wait until the "
                            "container is running")
    if state != "running" or row.pid is None:
        raise RootlessError(f"container {row.record.id} is not running")
    if row.init_start is None:  # a pid alone may name any process by now
        raise RootlessError(f"container {row.record.id} has no recorded init (started "
                            "by an older rootless): restart it to exec into it")
    return row.pid, row.init_start


# ---- the exec'd process, as an OCI process ----------------------------------------------


def exec_process(spec: dict, pid: int, start: int, maps, req: ExecRequest) -> dict:
    """config.json's process with the exec's changes (docker's ExecConfig applied)."""
    argv, env, env_files, user, workdir, privileged, terminal = req
    process = dict(spec["process"])
    home = None
    if user:
        resolved = exec_user(spec, pid, start, maps, user)
        process["user"] = {"uid": resolved.uid, "gid": resolved.gid,
                           "additionalGids": list(resolved.additional_gids)}
        home = resolved.home
    process.update(args=list(argv), cwd=workdir or process.get("cwd") or "/",
                   terminal=terminal,
                   env=exec_env(process.get("env") or [], env_files, env, home, terminal))
    if privileged:
        from rootless.runtime.caps import CAPABILITIES, last_cap

        every = list(CAPABILITIES[:last_cap() + 1])
        process["capabilities"] = {"bounding": every, "effective": every,  # moby's
                                   "permitted": every, "inheritable": every, "ambient": []}
    return process


def exec_env(container_env: list, env_files: tuple[str, ...], env: tuple[str, ...],
             home: str | None, terminal: bool) -> list[str]:
    """The container's environment, then --env-file's, then -e's (docker's order);
    HOME follows an exec -u user unless the exec sets it; TERM with -t, as run's."""
    values: dict[str, str] = {}
    for item in container_env:
        if isinstance(item, str):
            key, _, value = item.partition("=")
            values[key] = value
    given: dict[str, str] = {}
    if env_files or env:
        from rootless.engine.run import _set_env, read_env_file

        for path in env_files:
            for item in read_env_file(path):
                _set_env(given, item)
        for item in env:
            _set_env(given, item)
    if home is not None:
        values["HOME"] = home
    values.update(given)
    if terminal:
        values.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in values.items()]


def exec_user(spec: dict, pid: int, start: int, maps, user: str):
    """-u USER[:GROUP] in the container's own passwd and group files, checked against
    the ids its user namespace maps."""
    from rootless.engine.users import UserLookupError, parse_user, resolve_user
    from rootless.runtime.plan import keeps_groups

    parse_user(user)  # a malformed value is refused before any file is read
    root = _open_root(pid, start)
    try:
        try:
            resolved = resolve_user([], user, root_fd=root)
        except UserLookupError as e:
            if not isinstance(e.__cause__, PermissionError):
                raise
            resolved = _resolve_user_as_member(pid, start, user, root)
    finally:
        os.close(root)
    if not maps.use_helpers or keeps_groups(spec):  # setgroups(2) is denied there
        resolved = resolved._replace(additional_gids=())
    maps.check_mapped(resolved.uid, resolved.gid, resolved.additional_gids)
    return resolved


def _resolve_user_as_member(pid: int, start: int, user: str, root: int):
    """The lookup again, from a child that joined the container's user namespace: a FUSE
    rootfs of a subordinate range is mounted allow_other there, and the kernel lets only
    that namespace's members in (fuse_allow_current_process), not the user outside."""
    from rootless.engine.users import resolve_user
    from rootless.kernel import storage_ns
    from rootless.kernel.procs import alive_as
    from rootless.runtime.join import init_gone

    try:
        ns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        raise init_gone(pid) from None
    try:
        if not alive_as(pid, start):  # opened after it exited: someone else's
            raise init_gone(pid)
        return storage_ns.call_as_root(resolve_user, [], user, (), root, userns_fd=ns)
    finally:
        os.close(ns)


def _open_root(pid: int, start: int) -> int:
    """A descriptor of the init's root directory: the container's "/"."""
    from rootless.kernel.procs import alive_as
    from rootless.runtime.join import init_gone

    try:
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        raise init_gone(pid) from None
    if not alive_as(pid, start):  # opened after it exited: it may be someone else's
        os.close(fd)
        raise init_gone(pid)
    return fd


def exec_terminal_keep(master: int) -> None:
    """The user detached from `exec -it` (ctrl-p ctrl-q): the command keeps running, as
    with docker, so its pty's master must stay open, since closing it would hang up the
    command's terminal (SIGHUP). A process of ours in a session of its own takes it over
    and reads (and drops: nobody is attached) its output until the command is done."""
    import signal

    if os.fork():
        os.close(master)
        return
    try:
        os.setsid()
        for sig in signal.valid_signals():  # not the caller's signal forwarding
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.dup2(master, 3)
        os.closerange(4, 65536)
        while os.read(3, 65536):  # EIO once every slave end is closed
            pass
    except OSError:
        pass
    os._exit(0)
