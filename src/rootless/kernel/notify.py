"""Seccomp user notification (seccomp_unotify(2)): the listener side, over the C shim.

A filter loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER (Linux 5.0) gives a descriptor;
each syscall the filter answers with SECCOMP_RET_USER_NOTIF then waits in the kernel
until the holder of that descriptor receives it (NOTIF_RECV) and sends an answer
(NOTIF_SEND): a return value, an errno, or SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5:
"run it as if unfiltered"). The fakeroot (runtime/fakeroot.py) is built on it.

Two kernel rules shape every caller:
- a notification's pid names the process only while it waits: once it is killed the
  pid may be reused. Descriptors opened on /proc/PID (its root, cwd, fds, mem) are
  its own only if NOTIF_ID_VALID still holds after they were opened (the man page's
  TOCTOU rule); id_valid() is that check.
- CONTINUE lets the kernel re-read the syscall's arguments, which another thread may
  have changed meanwhile: it may only be used where the kernel's own checks decide,
  never to let through what the listener judged.
"""

from __future__ import annotations

import errno

from rootless.kernel.floor import below_floor
from rootless.records import record

FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
CONTINUE_SINCE = (5, 5)  # the fakeroot answers what it does not emulate with CONTINUE


@record
class Notification:
    id: int  # the cookie NOTIF_SEND and NOTIF_ID_VALID take
    pid: int  # the waiting thread, in our pid namespace
    nr: int  # the syscall number, of `arch`
    arch: int  # AUDIT_ARCH_*
    args: tuple[int, ...]  # six raw 64-bit register values


_shim = None
_out = None  # the one struct rl_notif recv() fills (the monitor is single-threaded)


def _lib():
    global _shim
    if _shim is None:
        from rootless._shim import ffi, lib

        _shim = ffi, lib
    return _shim


def unavailable() -> str | None:
    """Why this kernel cannot serve a fakeroot by notification, or None if it can:
    it needs the user_notif action (Linux 5.0) and CONTINUE (5.5); under
    ROOTLESS_KERNEL_FLOOR below 5.5 it is treated as missing, as on RHEL 8's 4.18."""
    if below_floor(CONTINUE_SINCE):
        return "kernel floor below 5.5 (ROOTLESS_KERNEL_FLOOR): no seccomp user notification"
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = f.read().split()
    except OSError:
        return "the kernel lists no seccomp actions (Linux < 4.14, or no seccomp)"
    if "user_notif" not in actions:
        return "the kernel lacks seccomp user notification (Linux 5.0)"
    import os

    try:
        release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        release = (0, 0)
    if release < CONTINUE_SINCE:
        return "the kernel lacks SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5)"
    return None


def recv(fd: int) -> Notification | None:
    """The next notification; None when the process that made it was killed before we
    got it (ENOENT), or a signal interrupted the wait and none is pending."""
    global _out
    ffi, lib = _lib()
    if _out is None:
        _out = ffi.new("struct rl_notif *")
    out = _out
    while lib.rl_seccomp_notif_recv(fd, out) < 0:
        err = ffi.errno
        if err == errno.EINTR:
            continue
        if err == errno.ENOENT:
            return None
        raise OSError(err, f"seccomp notification: {errno.errorcode.get(err, err)}")
    return Notification(int(out.id), int(out.pid), int(out.nr), int(out.arch),
                        tuple(int(a) for a in out.args))


def send(fd: int, notif_id: int, value: int = 0, error: int = 0, flags: int = 0) -> bool:
    """Answer: `value` returned, or `error` (a positive errno) failed, or with
    FLAG_CONTINUE run as if unfiltered. False if the process is gone meanwhile."""
    ffi, lib = _lib()
    while lib.rl_seccomp_notif_send(fd, notif_id, value, -error, flags) < 0:
        err = ffi.errno
        if err == errno.EINTR:
            continue
        if err == errno.ENOENT:  # killed while we worked: nobody to answer
            return False
        raise OSError(err, f"seccomp notification answer: {errno.errorcode.get(err, err)}")
    return True


def send_continue(fd: int, notif_id: int) -> bool:
    return send(fd, notif_id, flags=FLAG_CONTINUE)


def id_valid(fd: int, notif_id: int) -> bool:
    """Whether the process of `notif_id` still waits in its syscall, so that its pid
    (and what was opened through /proc/PID before this call) is still its own."""
    ffi, lib = _lib()
    while lib.rl_seccomp_notif_id_valid(fd, notif_id) < 0:
        if ffi.errno != errno.EINTR:
            return False
    return True


def is_listener(fd: int) -> bool:
    """Whether `fd` is a seccomp notification descriptor (anon_inode "seccomp notify"):
    what the monitor checks of a descriptor an exec hands it."""
    import os

    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:seccomp notify"
    except OSError:
        return False
