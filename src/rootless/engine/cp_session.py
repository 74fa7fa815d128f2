"""The helper process of `cp`: a forked child that works as root of the container's
user namespace, with a descriptor of the container's root as the container sees it.

Why a child: files of a container with subordinate ids belong on the host to ids the
user does not own, so only a process holding the container root's capabilities over
them (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER in that user namespace) may read or write
them; and only a single-threaded process may enter a user namespace (setns(2)). The
child never leaves the host's mount namespace: the container's files are reached only
through the root descriptor and the in-root resolver, the host's only through the pipes
and descriptors the parent hands it.

- A running container: its root is /proc/PID/root of its init, which names the mounts
  of the container's mount namespace (overlay, volumes, tmpfs) from the host. The init
  is named by pid and start time (kernel/procs.ProcessHandle); /proc/PID is opened as a
  directory and the start time read again through it after root and ns/user were
  opened from it, so a pid reused in between is caught. The child then joins the
  init's user namespace (setns(2); the user owns it, so the kernel grants it every
  capability there).
- A stopped or created container: there is no mount. The child makes a user namespace
  with the container's id maps (kernel/storage_ns.enter, the one way into such a
  namespace) and a mount namespace of its own, and mounts the
  container's root and its bind mounts (volumes) there with the runtime's own steps
  (runtime/plan.rootfs_steps, the BindMount steps of mount_steps, run by the
  runtime's executor, which resolves every mount point in the root; a root of our FUSE
  overlay gets a server of its own, started before the child, which trusts the child
  as its only client: fs/fuse_server.py). This is simpler
  and safer than writing into upper/ by hand: overlayfs itself applies its rules
  (copy-up with metadata, whiteouts, opaque directories), exactly as for a running
  container, and both cases then share every line of the copy. A read-only root is
  made read-only here too (mount_setattr(2)); the namespaces, and the mounts, go away
  with the child.

The child is not dumpable (prctl(2) PR_SET_DUMPABLE, as runc's CVE-2019-5736 answer):
no process of the container may ptrace it or open its descriptors through /proc, and it
dies with the command (PR_SET_PDEATHSIG). It reports on a pipe, one JSON object a line.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Callable, NamedTuple

from rootless.engine.cp_archive import CopyError


class Target(NamedTuple):
    ref: str  # the container as the user named it, for messages
    pid: int | None  # its init, when running
    start: int | None  # the init's start time
    spec: dict  # its OCI config.json


Report = Callable[[dict], None]
Work = Callable[[int, Report], None]  # (the container's root descriptor, report)


class Helper:
    """The parent's side of a running helper."""

    def __init__(self, pid: int, report_r: int) -> None:
        self.pid = pid
        self.reports = os.fdopen(report_r, "rb")
        self.status: int | None = None

    def next_report(self) -> dict:
        """The helper's next report; its error as a CopyError."""
        line = self.reports.readline(1 << 16)
        try:
            report = json.loads(line) if line else {}
        except ValueError:
            report = {}
        if not isinstance(report, dict) or not report:
            self.wait()
            raise CopyError(f"the copy helper process failed (status {self.status})")
        if "error" in report:
            self.wait()
            raise CopyError(str(report["error"]))
        return report

    def wait(self) -> None:
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
            self.reports.close()

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()


def helper_start(target: Target, work: Work, child_closes: tuple[int, ...] = ()) -> Helper:
    """Fork the helper and have it run `work` in the container; the child closes
    `child_closes` (the parent's ends of shared pipes) first."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    opened = _open_init(target) if target.pid is not None else None
    server = _fuse_server(target) if opened is None else None
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    try:
        pid = os.fork()
    except BaseException:
        for fd in (report_r, report_w, *(opened or ())):
            os.close(fd)
        if server is not None:
            server.close()
        raise
    if pid == 0:
        os.close(report_r)
        _child_main(target, work, opened, parent, report_w, child_closes,
                    server.channel if server is not None else None)
    os.close(report_w)
    for fd in opened or ():
        os.close(fd)
    if server is not None:
        server.close()  # the helper has its end; the server ends with its mount
    return Helper(pid, report_r)


def _fuse_server(target: Target):
    """A stopped container of our FUSE overlay is mounted by a server of its own, which
    trusts its one client, the helper (fs/fuse_server.py); None for the others."""
    from rootless.runtime.annotations import ROOTFS_OVERLAY_ANNOTATION

    if '"fuse"' not in ((target.spec.get("annotations") or {}).get(
            ROOTFS_OVERLAY_ANNOTATION) or ""):
        return None
    from rootless.fs.fuse_server import PendingServer, config_from_spec

    try:
        return PendingServer(config_from_spec(target.spec)._replace(trusted=True))
    except (OSError, ValueError, KeyError) as e:
        raise CopyError(f"cannot start the FUSE overlay's server for container "
                        f"{target.ref}: {e}") from None


# ---- a running container's init ----

def _open_init(target: Target) -> tuple[int, int]:
    """(O_PATH descriptor of the init's root, descriptor of its user namespace)."""
    from rootless.kernel.procs import ProcessHandle

    pid = target.pid
    try:
        with ProcessHandle(pid, target.start):
            proc = os.open(f"/proc/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (ProcessLookupError, FileNotFoundError):
        raise _gone(target) from None
    try:
        root = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
        userns = os.open("ns/user", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
        # the /proc/PID opened is whatever process holds that pid now: its start time,
        # read through the same directory after the opens, says it is the init still
        if target.start is not None and _start_time_at(proc) != target.start:
            os.close(root)
            os.close(userns)
            raise _gone(target)
    except FileNotFoundError:
        raise _gone(target) from None
    except PermissionError as e:
        raise CopyError(f"cannot enter container {target.ref}: "
                        f"{(e.strerror or str(e)).lower()}") from None
    finally:
        os.close(proc)
    return root, userns


class ContainerGone(CopyError):
    """The init stopped between the lookup and the open: copy as for a stopped one."""


def _gone(target: Target) -> ContainerGone:
    return ContainerGone(f"container {target.ref} stopped during the copy")


def _start_time_at(proc_fd: int) -> int | None:
    from rootless.kernel.procs import stat_fields

    fields = stat_fields("stat", dir_fd=proc_fd)
    return int(fields[19]) if fields and len(fields) > 19 else None


# ---- the child: never returns ----

def _child_main(target: Target, work: Work, opened: tuple[int, int] | None, parent: int,
                report_w: int, child_closes: tuple[int, ...],
                fuse_channel: int | None = None) -> None:
    def report(message: dict) -> None:
        data = json.dumps(message).encode() + b"\n"
        while data:
            data = data[os.write(report_w, data):]

    code = 1
    try:
        for fd in child_closes:
            os.close(fd)
        root_fd = _enter(target, opened, parent, fuse_channel)
        work(root_fd, report)
        code = 0
    except CopyError as e:
        _report_quietly(report, str(e))
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        _report_quietly(report, f"{(e.strerror or str(e)).lower()}{where}")
    except BaseException as e:  # never a traceback, never back into the caller's code
        from rootless.errors import RootlessError

        message = str(e) if isinstance(e, RootlessError) else \
            f"internal error: {type(e).__name__}: {e}"
        _report_quietly(report, message)
    finally:
        os._exit(code)


def _report_quietly(report: Report, message: str) -> None:
    try:
        report({"error": message})
    except OSError:
        pass


def _enter(target: Target, opened: tuple[int, int] | None, parent: int,
           fuse_channel: int | None = None) -> int:
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    sys = RealSyscalls()
    sys.prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the command died before the line above
        os._exit(1)
    if opened is not None:
        sys.prctl(k.PR_SET_DUMPABLE, 0)
        root_fd, userns_fd = opened
        sys.setns(userns_fd, k.CLONE_NEWUSER)
        os.close(userns_fd)
        return root_fd
    from rootless.kernel.idmap import detect_maps, maps_from_spec
    from rootless.kernel.storage_ns import enter

    enter(maps_from_spec(target.spec.get("linux") or {}) or detect_maps())
    # only now: a process that is not dumpable has /proc/PID files owned by root, and
    # newuidmap could not have written its uid_map (proc(5))
    sys.prctl(k.PR_SET_DUMPABLE, 0)
    sys.unshare(k.CLONE_NEWNS)
    return _mount_root(target, sys, fuse_channel)


def _mount_root(target: Target, sys, fuse_channel: int | None = None) -> int:
    """Mount a stopped container's root and its bind mounts in this (private) mount
    namespace; an O_PATH descriptor of the root."""
    from rootless.kernel import constants as k
    from rootless.runtime import plan as p
    from rootless.runtime.executor import Executor

    spec = target.spec
    if not isinstance(spec.get("root"), dict) or not spec["root"].get("path"):
        raise CopyError(f"container {target.ref} has no root filesystem in its config")
    binds = [s for s in p.mount_steps(spec, owns_netns=False) if isinstance(s, p.BindMount)]
    executor = Executor(sys)
    rootfs = tuple(p.rootfs_steps(spec))
    if fuse_channel is not None:
        rootfs = p.with_fuse_channel(rootfs, fuse_channel)
    executor.run((p.MakeMountsPrivate(), *rootfs, *binds))
    if spec["root"].get("readonly"):  # bind remounts where mount_setattr is missing
        from rootless.runtime.mount_attrs import set_mount_attrs

        set_mount_attrs(sys, executor.root_fd, "", k.MOUNT_ATTR_RDONLY, recursive=False)
    return executor.root_fd
