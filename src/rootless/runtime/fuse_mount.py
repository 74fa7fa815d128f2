"""The init's half of mounting the FUSE overlay (the plan's MountFuse step).

The kernel takes a FUSE mount in a user namespace (Linux 4.18) only with a /dev/fuse
descriptor opened in that namespace (fuse_get_tree compares the file's user namespace
with the mount's), so the container's init, root of its new user and mount namespaces,
opens /dev/fuse and mounts `fuse` on the rootfs directory with it:

  fd=N            the connection; the server reads and answers its requests
  rootmode=40000  the root is a directory
  user_id, group_id  the mounter's ids (uid 0 may be unmapped: `-u 1000` in single-id
                  mode maps only 1000). Only processes whose ids are these may use the
                  mount (fuse_allow_current_process): in single-id mode that is every
                  process of the container (one id is all it has) and, outside it, the
                  user's own: the monitor, whose fakeroot records a chown through the
                  mount. With a subordinate range the container has other ids:
  allow_other     (subordinate range) every process of the container's user namespace
                  may use the mount, and no process outside it
  default_permissions  (subordinate range) every id is mapped, the kernel checks modes
                  and owners itself; in single-id mode the server does
                  (fs/fuse_access.py)

No nosuid: the container's setuid files act as in any container, within its user
namespace (an owner the namespace does not map makes no setuid transition, and a FUSE
mount made in a user namespace never honours device nodes: SB_I_NODEV).

The descriptor, with one of the init's user namespace, goes to the server over the
plan's channel; the init then closes its copies and waits for the server's "R". If the
server dies, its end closes: the wait ends at once with an error, and the connection,
with no descriptor left, is aborted (requests fail with ENOTCONN), so the init never
hangs on its own root; a server that lives but does not answer is given WAIT_SECONDS.

The init keeps the channel (close-on-exec) for the rest of its set-up: while it is
open, the server takes the init's requests (pid 1 of the container) for the runtime's,
which holds every capability in the container's user namespace even where its uid is
1000 (the mount points it makes in root's directories). The execve(2) of the helper
closes it, before any of the image's code runs; the server sees the end at its next
request (fs/fuse_ops.py).
"""

from __future__ import annotations

import os
import select

from rootless.errors import RuntimeSetupError
from rootless.kernel.syscalls import Syscalls

WAIT_SECONDS = 60  # the server imports pyfuse3 (~15 ms), on a loaded machine more


def mount_fuse(sys: Syscalls, target: str, single_id: bool, channel: int) -> None:
    if channel < 0:
        raise RuntimeSetupError("mount rootfs: the FUSE overlay has no server (a container "
                                "of the fuse overlay is started by its monitor)")
    import socket  # before pivot_root: host modules are still reachable

    dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    try:
        userns = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = (f"fd={dev},rootmode=40000,user_id={os.geteuid()},"
                    f"group_id={os.getegid()}")
            if not single_id:
                data += ",allow_other,default_permissions"
            sys.mount("rootless-overlay", target, "fuse", 0, data)
            sock = socket.socket(fileno=os.dup(channel))
            try:
                socket.send_fds(sock, [b"F"], [dev, userns])
            except OSError as e:
                raise RuntimeSetupError("mount rootfs: the FUSE overlay's server is gone "
                                        f"({e.strerror.lower()})") from e
        finally:
            os.close(userns)
    finally:
        os.close(dev)
    try:
        _wait_ready(sock)
    finally:
        sock.close()  # the dup; `channel` stays open until the exec
    # The root inode the kernel made at mount belongs to uid 0 (fuse_get_root_inode),
    # which `-u 1000` in single-id mode does not map: nothing could be created in "/"
    # (inode_permission refuses writes to an unmapped owner's inode) until the
    # server's attributes replace it. stat(2) asks for them now.
    os.stat(target)


def _wait_ready(sock) -> None:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    if not poller.poll(WAIT_SECONDS * 1000):
        raise RuntimeSetupError("mount rootfs: the FUSE overlay's server did not answer "
                                f"in {WAIT_SECONDS} s")
    answer = sock.recv(4096)
    if answer == b"R":
        return
    if answer.startswith(b"E"):
        raise RuntimeSetupError("mount rootfs: the FUSE overlay's server failed: "
                                + answer[1:].decode(errors="replace"))
    raise RuntimeSetupError("mount rootfs: the FUSE overlay's server exited before serving")
