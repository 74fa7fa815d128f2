"""create, start, run, kill and delete: runc's verbs over the runtime core (runtime/run.py
plan_spec, runtime/process.py start), which the engine uses too.

Between `create` and `start` the container's init is parked: its plan has run (mounts,
pivot, ids, capabilities, seccomp) and it has exec'd the sealed exec helper, which found
the command and now waits reading ROOT/ID/exec.fifo (csrc/exec_helper.c, --wait-fd), as
runc's init waits on its exec.fifo. `create` writes the pid file and exits; the init
lives on, re-parented to the caller's subreaper (conmon for podman, slurmstepd) or to
the host's init, as runc's is. `start` writes one byte to the fifo and removes it.
"""

from __future__ import annotations

import json
import os
import sys
import time

from rootless.errors import RootlessError, UsageError
from rootless.oci.hooks import hooks_check, hooks_run
from rootless.oci.state import FIFO, OCI_VERSION, Container


TIOCGPTN = 0x80045430  # asm-generic/ioctls.h: the pty's number; Python's termios lacks it


class NotRunningError(RootlessError):
    pass


def bundle_load(bundle: str) -> tuple[str, dict]:
    """(the bundle's absolute path, its config.json with root.path made absolute)."""
    bundle = os.path.abspath(bundle or ".")
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            spec = json.loads(f.read(16 << 20))
    except FileNotFoundError:
        raise UsageError(f"bundle {bundle}: no config.json") from None
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror.lower()}") from None
    except ValueError as e:
        raise UsageError(f"{path}: invalid json: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("process"), dict) \
            or not isinstance(spec.get("root"), dict) or not spec["root"].get("path"):
        raise UsageError(f"{path}: needs process and root.path")
    root = os.path.join(bundle, spec["root"]["path"])  # an absolute root.path stays
    if not os.path.isdir(root):
        raise UsageError(f"rootfs {root} of bundle {bundle}: not a directory")
    spec["root"]["path"] = os.path.realpath(root)
    spec.setdefault("linux", {})
    hooks_check(spec)
    return bundle, spec


def _state_for_hooks(container: Container, status: str) -> dict:
    state = container.public_state()
    state["status"] = status
    return state


def container_create(root: str, container_id: str, bundle: str, *,
                     console_socket: str | None = None, pid_file: str | None = None,
                     preserve_fds: int = 0, debug: bool = False,
                     keep_console: bool = False) -> Container:
    """Create the container with its init parked; return its state directory.
    `keep_console` (a foreground `run` without --console-socket): the pty master is
    left in Container.console_fd for the caller to pump."""
    bundle, spec = bundle_load(bundle)
    terminal = bool(spec["process"].get("terminal"))
    if terminal and not console_socket and not keep_console:
        raise UsageError("cannot allocate a terminal without --console-socket "
                         "(config.json has process.terminal true)")
    container = Container.make(root, container_id)
    try:
        container.lock()
        os.mkfifo(FIFO, 0o600, dir_fd=container.dir_fd)
        park = os.open(FIFO, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW,
                       dir_fd=container.dir_fd)
        try:
            console = _start_parked(container, bundle, spec, park, console_socket,
                                    preserve_fds, debug)
        finally:
            os.close(park)
        if console is not None:
            container.console_fd = console
        try:
            hooks_run(spec, ("createRuntime", "prestart"),
                      _state_for_hooks(container, "created"))
        except RootlessError:
            _kill_and_wait(container)
            raise
        if pid_file:
            write_pid_file(pid_file, container.state["pid"])
    except BaseException:
        _kill_and_wait(container)
        container.remove()
        container.close()
        raise
    return container


def _start_parked(container: Container, bundle: str, spec: dict, park: int,
                  console_socket: str | None, preserve_fds: int,
                  debug: bool) -> int | None:
    from rootless.kernel.procs import start_time
    from rootless.runtime.process import StdioOptions, start
    from rootless.runtime.run import plan_spec

    from rootless.oci.idmaps import namespace_root, one_id, write_identity_maps

    terminal = bool(spec["process"].get("terminal"))
    stdio = StdioOptions(terminal=terminal, inherit=not terminal, park_fd=park,
                         preserve_fds=preserve_fds)
    if namespace_root(spec):  # rootless podman's: the ids of its namespace, as they are
        from rootless.runtime.plan import build_plan

        single_id = one_id()
        plan = build_plan(spec, single_id=single_id)
        if debug:
            print(plan.describe(), file=sys.stderr)
        started = start(plan, None, stdio, on_created=write_identity_maps)
    else:
        plan, maps = plan_spec(spec, debug)
        single_id = not maps.use_helpers
        started = start(plan, maps, stdio)
    if started.parent_fd is not None:  # held by a monitor for PR_SET_PDEATHSIG: not here
        os.close(started.parent_fd)
    container.write_state({
        "ociVersion": spec.get("ociVersion", OCI_VERSION), "id": container.id,
        "pid": started.pid, "start_time": start_time(started.pid),
        "bundle": bundle, "rootfs": spec["root"]["path"],
        "created": _now(), "owner": _owner(),
        "annotations": spec.get("annotations") or {},
        "single_id": single_id})
    # after the state: a failure here still finds the init
    return hand_console(started.console_fd, console_socket)


def _now() -> str:
    """RFC 3339 with nanoseconds, as runc writes `created`."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def _owner() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def hand_console(console: int | None, console_socket: str | None) -> int | None:
    """The pty master to the engine's --console-socket (then closed here: None), or kept
    for a foreground run without one."""
    if console is not None and console_socket:
        try:
            send_console(console_socket, console)
        finally:
            os.close(console)
        return None
    return console


def send_console(path: str, master: int) -> None:
    """The pty master over the caller's unix socket (SCM_RIGHTS), with the slave's name
    as the message, as runc's utils.SendFd does."""
    import _socket
    import array
    import fcntl
    import struct

    try:
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        name = f"/dev/pts/{number}".encode()
    except OSError:
        name = b"/dev/ptmx"
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendmsg([name], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                               array.array("i", [master]))])
    except OSError as e:
        raise RootlessError(f"console socket {path}: {e.strerror.lower()}") from None
    finally:
        sock.close()


def write_pid_file(path: str, pid: int) -> None:
    """Written to a temp file beside it and renamed: the reader never sees it empty."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def container_start(root: str, container_id: str) -> None:
    with Container.open(root, container_id) as container:
        container_release(container)


def container_release(container: Container) -> None:
    """Let the parked init exec its command (`start`)."""
    container_id = container.id
    container.lock()
    status = container.status()
    if status != "created":
        raise NotRunningError(f"cannot start container {container_id}: it is {status} "
                              "(only a created container can be started)")
    try:
        fd = os.open(FIFO, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW,
                     dir_fd=container.dir_fd)
    except OSError as e:  # ENXIO: nobody reads it, the parked init is gone
        raise NotRunningError(f"cannot start container {container_id}: its init is "
                              f"gone ({e.strerror.lower()})") from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.unlink(FIFO, dir_fd=container.dir_fd)
    _poststart(container)


def _poststart(container: Container) -> None:
    spec = _bundle_spec(container)
    if spec.get("hooks", {}).get("poststart"):
        try:
            hooks_run(spec, ("poststart",), _state_for_hooks(container, "running"))
        except RootlessError as e:
            warn(f"warning: {e}")


def _bundle_spec(container: Container) -> dict:
    try:
        with open(os.path.join(container.state.get("bundle", ""), "config.json"), "rb") as f:
            spec = json.loads(f.read(16 << 20))
        return spec if isinstance(spec, dict) else {}
    except (OSError, ValueError):
        return {}


def warn(message: str) -> None:
    from rootless.oci.log import log

    log("warning", message)


def container_kill(root: str, container_id: str, signum: int, all_processes: bool) -> None:
    from rootless.kernel.procs import ProcessHandle, descendants

    with Container.open(root, container_id) as container:
        if container.status() not in ("created", "running"):
            raise NotRunningError(f"container {container_id} is not running")
        pid, started = container.state["pid"], container.state.get("start_time")
        container_guard(container)
        try:
            handle = ProcessHandle(pid, started)
        except ProcessLookupError:
            raise NotRunningError(f"container {container_id} is not running") from None
        with handle:
            if all_processes:  # its pid namespace: everything under the init
                for child in descendants(pid)[1:]:
                    try:
                        os.kill(child, signum)
                    except ProcessLookupError:
                        pass
            if not handle.signal(signum):
                raise NotRunningError(f"container {container_id} is not running")


def container_guard(container: Container) -> None:
    """Root acting on another user's state directory (Slurm's cleanup may): the pid in
    its state.json is that user's word, so the process must live in a user namespace
    that user made (ioctl_ns(2), NS_GET_OWNER_UID), or root would signal whatever pid
    the file names."""
    import fcntl
    import struct

    owner = os.fstat(container.dir_fd).st_uid
    if owner == os.getuid():
        return
    pid = container.state.get("pid")
    try:
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            uid = struct.unpack("I", fcntl.ioctl(fd, 0xB704, b"\0" * 4))[0]
        finally:
            os.close(fd)
    except OSError:
        uid = None
    if uid != owner:
        raise RootlessError(f"container {container.id}: pid {pid} is not a container of "
                            f"uid {owner}, who owns its state; refusing to act on it")


def container_delete(root: str, container_id: str, force: bool) -> None:
    with Container.open(root, container_id) as container:
        container.lock()
        status = container.status()
        if status == "running" and not force:
            raise RootlessError(f"cannot delete container {container_id} that is not "
                                "stopped: running (use delete --force)")
        if status in ("created", "running"):
            container_guard(container)
            _kill_and_wait(container)
        spec = _bundle_spec(container)
        if container.state and spec.get("hooks", {}).get("poststop"):
            try:
                hooks_run(spec, ("poststop",), _state_for_hooks(container, "stopped"))
            except RootlessError as e:
                warn(f"warning: {e}")
        container.remove()


def _kill_and_wait(container: Container) -> None:
    """SIGKILL the init (the kernel then kills its whole pid namespace) and wait until
    it has exited; a zombie counts (its reaper is the caller's subreaper)."""
    from rootless.kernel.procs import ProcessHandle

    pid = container.state.get("pid")
    if not pid:
        return
    try:
        handle = ProcessHandle(pid, container.state.get("start_time"))
    except ProcessLookupError:
        return
    with handle:
        handle.signal(9)
        handle.wait_gone(10.0)
