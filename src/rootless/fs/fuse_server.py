"""The FUSE overlay's server: a process of its own per container run (pyfuse3 serves one
FUSE session per process), forked by the container's monitor before the container.

How it is mounted (crun/podman mount fuse-overlayfs inside the user namespace too): a
FUSE filesystem may be mounted in a user namespace since Linux 4.18, but only with a
/dev/fuse descriptor opened in that namespace (fuse_get_tree: the file's user namespace
must be the mount's). So the container's init, root of its new user and mount
namespaces, opens /dev/fuse, mounts `fuse` on the rootfs directory with that
descriptor (runtime/fuse_mount.py, the plan's MountFuse step), and hands it, with a
descriptor of its user namespace, over a socket pair to this server, which serves it
as "/dev/fd/N" (libfuse >= 3.3 takes that for an already mounted session).

    monitor --fork--> server: imports pyfuse3 (~15 ms; no trio: fs/fuse_loop.py)
       |                 |  <- [/dev/fuse, ns/user] over the socket pair
       +--> container init: mount(fd=N), send, wait for "R" (or "E..."/EOF: an error)
                         |  setns(user), opens the layers, "R", serves until unmounted

The server stays outside the container's pid namespace (no process of the container
can see or signal it) and joins its user namespace only, as root there: it reads and
writes the container's files with the capabilities the kernel overlay's mounter would
have (files of mode 000, directories of 0555, chown with a subordinate range). It is
not dumpable before it joins (prctl(2) PR_SET_DUMPABLE: its memory and descriptors
stay out of reach of the container's root, whose capabilities in that namespace would
otherwise let it ptrace us: ptrace(2), "Ptrace access mode checking"). It keeps no
descriptor of the monitor's but its socket. It ends when the filesystem goes: the
container's mount namespace is freed with its last process, the kernel aborts the
connection, and pyfuse3's loop returns. If the container never gets to mount, the
monitor closes its end of the socket and the server exits without a word.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import NamedTuple

MAX_FDS_KEPT = 3  # the socket pair's end, dup'ed to 3


class ServerConfig(NamedTuple):
    upper: str
    work: str
    lower: tuple[str, ...]  # topmost first
    single_id: bool  # permissions checked here, owners from the records
    log: str = ""  # ROOTLESS_FUSE_LOG: where errors go (else nowhere)
    trusted: bool = False  # no container process: only our own helper (cp) asks


def config_from_spec(spec: dict) -> ServerConfig:
    """The server's directories from the container's rootfs annotation (engine/spec.py
    writes it; the plan's MountFuse step reads the same)."""
    import json

    from rootless.runtime.annotations import ROOTFS_OVERLAY_ANNOTATION

    layout = json.loads(spec.get("annotations", {}).get(ROOTFS_OVERLAY_ANNOTATION) or "{}")
    if not isinstance(layout, dict) or layout.get("driver") != "fuse":
        raise ValueError("the container's rootfs is not a FUSE overlay")
    lower = layout.get("lower")
    if not isinstance(lower, list) or not all(isinstance(p, str) for p in lower):
        raise ValueError("the container's rootfs annotation names no layers")
    return ServerConfig(str(layout["upper"]), str(layout["work"]), tuple(lower),
                        bool(layout.get("single_id", True)),
                        os.environ.get("ROOTLESS_FUSE_LOG", ""))


class PendingServer:
    """A server forked and importing; `channel` is the end the container's init gets."""

    def __init__(self, config: ServerConfig) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM
                                         | socket.SOCK_CLOEXEC)
        # the init's message then carries its pid, as our pid namespace numbers it
        # (SCM_CREDENTIALS): set before the fork, so no message can come before it
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.pid = os.fork()
        if self.pid == 0:
            ours.close()
            _server_main(theirs, config)
        theirs.close()
        self.sock = ours

    @property
    def channel(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        """The container has it (or failed): our end goes, so a server whose container
        never mounted sees EOF and exits. Idempotent."""
        self.sock.close()


def _server_main(sock: socket.socket, config: ServerConfig) -> None:
    """The forked server; never returns."""
    code = 0
    try:
        fd = _own_descriptors(sock, config)
        code = serve(fd, config)
    except BaseException as e:  # never back into the monitor's code
        code = 1
        _log(config, f"fuse overlay server: {type(e).__name__}: {e}")
    finally:
        os._exit(code)


def _own_descriptors(sock: socket.socket, config: ServerConfig) -> int:
    """Keep the socket (as fd 3), nothing else of the forking process's: a monitor's
    lock on the container and its pipes to it, a command's terminal (stdio become
    /dev/null; stderr the log where one is asked for)."""
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    RealSyscalls().prctl(k.PR_SET_DUMPABLE, 0)
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    fd = os.dup2(sock.detach(), MAX_FDS_KEPT, inheritable=False)
    os.closerange(MAX_FDS_KEPT + 1, 1 << 20)
    null = os.open("/dev/null", os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    os.close(null)
    if config.log:
        try:
            log = os.open(config.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                          0o600)
            os.dup2(log, 2)
            os.close(log)
        except OSError:
            pass
    return fd


def serve(channel: int, config: ServerConfig) -> int:
    """Receive the mounted session, set up, say "R", serve until unmounted."""
    from rootless.fs import fuse_loop

    pyfuse3 = fuse_loop.import_pyfuse3()  # while the container is being set up
    import rootless.fs.fuse_ops  # noqa: F401

    sock = socket.socket(fileno=channel)
    try:
        message, fds, init_pid = _receive(sock)
    except OSError:
        return 0
    if message != b"F" or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return 0  # no container to serve: it failed before mounting
    fuse_fd, userns_fd = fds
    also = None
    try:
        ops = _setup(userns_fd, config)
        if config.single_id and not config.trusted and init_pid > 0:
            from rootless.fs.fuse_access import FakerootCreds, set_creds_source

            creds = FakerootCreds(os.path.dirname(config.upper), init_pid)
            set_creds_source(creds)
            if creds.watch_changes() >= 0:
                also = (creds.watch, creds.changed)
        pyfuse3.init(ops, f"/dev/fd/{fuse_fd}", set())
    except BaseException as e:
        _send(sock, b"E" + f"{e}".encode(errors="replace")[:1000])
        raise
    _send(sock, b"R")
    ops.setup = sock  # open until the init execs (runtime/fuse_mount.py)
    fuse_loop.install_wait(pyfuse3, fuse_fd, also)
    try:
        # one task: every handler runs to its end without awaiting anything, so a
        # second reader would never get a request earlier (fs/fuse_loop.py)
        fuse_loop.run(pyfuse3)
    finally:
        pyfuse3.close(unmount=False)
    return 0


def _receive(sock: socket.socket) -> tuple[bytes, list[int], int]:
    """(message, descriptors, the sender's pid in our pid namespace or 0)."""
    import array
    import struct

    fds = array.array("i")
    message, ancillary, _, _ = sock.recvmsg(
        16, socket.CMSG_SPACE(2 * fds.itemsize) + socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]  # struct ucred
    return message, list(fds), pid


def _setup(userns_fd: int, config: ServerConfig):
    """Join the container's user namespace (single-threaded: setns(2) requires it),
    then open the layers."""
    from rootless.fs.fuse_layers import Layers
    from rootless.fs.fuse_nodes import Nodes
    from rootless.fs.fuse_ops import OverlayOps
    from rootless.fs.fuse_tree import Tree
    from rootless.fs.fuse_upper import Upper
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    try:
        RealSyscalls().setns(userns_fd, k.CLONE_NEWUSER)
    finally:
        os.close(userns_fd)
    os.umask(0)  # entries are made with the modes the container asked for
    layers = Layers(config.upper, config.work, list(config.lower))
    nodes = Nodes(layers, config.single_id)
    tree = Tree(nodes, Upper(layers, nodes), checks=config.single_id and not config.trusted)
    return OverlayOps(nodes, tree)


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _log(config: ServerConfig, message: str) -> None:
    import sys
    import traceback

    if config.log:
        traceback.print_exc()
        print(message, file=sys.stderr, flush=True)
