"""`run` (create, start, wait, delete in one process) and `exec` (a process joining a
running container: runtime/plan.build_exec_plan and runtime/process.start_joined, the
engine's own exec path)."""

from __future__ import annotations

import json
import os

from rootless.errors import RootlessError, UsageError
from rootless.oci.lifecycle import (NotRunningError, container_create, container_delete,
                                    container_release, hand_console, write_pid_file)
from rootless.oci.state import Container


def container_run(root: str, container_id: str, bundle: str, *, detach: bool = False,
                  console_socket: str | None = None, pid_file: str | None = None,
                  keep: bool = False, preserve_fds: int = 0, debug: bool = False) -> int:
    """runc run: the container's exit status (128+N for signal N); 0 with -d."""
    from rootless.runtime.attach import SignalForwarder

    # before the fork, so a signal that comes while it starts is held, not fatal
    forwarder = None if detach else SignalForwarder()
    container = container_create(root, container_id, bundle, console_socket=console_socket,
                                 pid_file=pid_file, preserve_fds=preserve_fds, debug=debug,
                                 keep_console=not detach)
    try:
        container_release(container)
        if detach:
            return 0
        pid = container.state["pid"]
        forwarder.target(pid)
        code = _wait(pid, container.console_fd)
    finally:
        container.close()
    if not keep:
        container_delete(root, container_id, force=True)
    return code


def _wait(pid: int, console_fd: int | None) -> int:
    """The init is our child: `create` made us its subreaper and its parent exited."""
    from rootless.runtime.process import wait_exit_code

    if console_fd is not None:
        from rootless.runtime.attach import pump_terminal

        pump_terminal(console_fd, True)
    return wait_exit_code(pid)


def container_exec(root: str, container_id: str, *, process_file: str | None,
                   args: list[str], detach: bool = False, tty: bool = False,
                   pid_file: str | None = None, console_socket: str | None = None,
                   cwd: str | None = None, env: list[str] = (), user: str | None = None,
                   preserve_fds: int = 0, debug: bool = False) -> int:
    from rootless.runtime.plan import build_exec_plan
    from rootless.runtime.process import StdioOptions, start_joined
    from rootless.runtime.seccomp_fakeroot import fakeroot_mode

    with Container.open(root, container_id) as container:
        status = container.status()
        if status not in ("created", "running"):
            raise NotRunningError(f"cannot exec in a {status} container {container_id}")
        pid, started_at = container.state["pid"], container.state.get("start_time")
        spec = _spec_of(container)
    process = _process(spec, process_file, args, tty, cwd, env, user)
    tty = bool(process.get("terminal"))
    if tty and not console_socket and detach:
        raise UsageError("cannot allocate a terminal for a detached exec without "
                         "--console-socket")
    single_id = bool(container.state.get("single_id"))
    fakeroot, _ = fakeroot_mode(single_id, served=False,
                                unconfined=not spec.get("linux", {}).get("seccomp"))
    plan = build_exec_plan(spec, process, single_id, pid, started_at, fakeroot)
    if debug:
        import sys

        print(plan.describe(), file=sys.stderr)
    forwarder = None
    if not detach:
        from rootless.runtime.attach import SignalForwarder

        forwarder = SignalForwarder()
    started = start_joined(plan, StdioOptions(terminal=tty, inherit=not tty,
                                              preserve_fds=preserve_fds))
    if pid_file:
        write_pid_file(pid_file, started.pid)
    console = hand_console(started.console_fd, console_socket)
    if detach:
        if console is not None:
            os.close(console)
        return 0
    forwarder.target(started.pid)
    return _wait(started.pid, console)


def _spec_of(container: Container) -> dict:
    from rootless.oci.lifecycle import bundle_load

    try:
        return bundle_load(container.state.get("bundle", ""))[1]
    except UsageError as e:
        raise RootlessError(f"container {container.id}: {e}") from None


def _process(spec: dict, process_file: str | None, args: list[str], tty: bool,
             cwd: str | None, env: list[str], user: str | None) -> dict:
    """runc exec's process: the file's (--process), else the container's with the
    command line's changes."""
    if process_file:
        try:
            with open(process_file, "rb") as f:
                process = json.loads(f.read(16 << 20))
        except (OSError, ValueError) as e:
            raise UsageError(f"--process {process_file}: {e}") from None
        if not isinstance(process, dict) or not process.get("args"):
            raise UsageError(f"--process {process_file}: needs args")
        process.setdefault("cwd", "/")
        process.setdefault("user", {"uid": 0, "gid": 0})
        return process
    if not args:
        raise UsageError("exec needs a command (or --process FILE)")
    process = dict(spec["process"])
    process.update(args=list(args), terminal=tty)
    if cwd:
        if not cwd.startswith("/"):
            raise UsageError(f"--cwd {cwd}: not an absolute path")
        process["cwd"] = cwd
    if env:
        merged = {e.partition("=")[0]: e for e in process.get("env") or []}
        merged.update({e.partition("=")[0]: e for e in env})
        process["env"] = list(merged.values())
    if user:
        process["user"] = _user(user)
    return process


def _user(text: str) -> dict:
    """runc's -u uid[:gid], numbers only (a name would need the container's files)."""
    from rootless.kernel.idmap import parse_id

    uid_text, _, gid_text = text.partition(":")
    uid, gid = parse_id(uid_text), parse_id(gid_text or "0")
    if uid is None or gid is None:
        raise UsageError(f"--user {text}: needs uid[:gid] as numbers")
    return {"uid": uid, "gid": gid}
