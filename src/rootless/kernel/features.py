"""What this kernel lacks of the newer calls rootless uses, and what stands in for each:
`rootless system info` (DESIGN.md, principle 8).

Each probe makes the real call through the Syscalls seam's real class
(kernel/syscalls.py), with arguments that cannot change anything, so a kernel floor
(ROOTLESS_KERNEL_FLOOR) answers as the old kernel would: ENOSYS (or EPERM from a
seccomp profile older than the call) for a missing call, EINVAL for a flag it does not
know. overlayfs's `lowerdir+` can only be asked inside a user namespace: a child makes
one for the question. The runtime does not read these answers: it tries each call where
it needs it and takes the fallback on the same errors (runtime/mount_attrs.py,
overlay_options.py, start_process.py, kernel/paths.py, kernel/procs.py,
runtime/join.py, image/layers.py); this module says what those will find.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, NamedTuple

from rootless.kernel import constants as k
from rootless.kernel.syscalls import SINCE, RealSyscalls


class Missing(NamedTuple):
    feature: str  # a SINCE key
    label: str  # what the kernel lacks, as a user would name it
    instead: str  # what is used instead

    def line(self) -> str:
        major, minor = SINCE[self.feature]
        return f"{self.label} (Linux {major}.{minor}): {self.instead}"


# SINCE key -> (label, what is used instead), in the order `system info` lists them
FALLBACKS = {
    "openat2": ("openat2", "an O_NOFOLLOW walk of each path component inside the root"),
    "mount_setattr": ("mount_setattr", "bind remounts that keep each mount's locked flags"),
    "close_range": ("close_range", "each descriptor in /proc/self/fd closed or marked "
                                   "close-on-exec"),
    "close_range_cloexec": ("CLOSE_RANGE_CLOEXEC", "each descriptor in /proc/self/fd "
                                                   "marked close-on-exec"),
    "fsopen": ("the new mount API (fsopen, fsmount, move_mount)", "mount(2)"),
    "lowerdir_plus": ("overlayfs lowerdir+", "one lowerdir= option of short links to the "
                                             "layers (layers/l/, as podman's storage)"),
    "userns_overlay": ("overlayfs in a user namespace", "the rootfs strategy `rootfs` names"),
    "pidfd_open": ("pidfd_open", "kill(2) after checking the process's start time"),
    "setns_pidfd": ("setns on a pidfd", "setns on each /proc/PID/ns file, user first"),
    "whiteout_mknod": ("unprivileged whiteout mknod", "whiteouts kept as .wh. files in "
                                                      "layers"),
}
_ABSENT = (errno.ENOSYS, errno.EPERM)


def kernel_missing(scratch: str | None) -> list[Missing]:
    """What this kernel (or the floor) lacks; `scratch` is an empty directory we own,
    on the store's filesystem, for the mknod and lowerdir+ probes (None: those two
    claim nothing)."""
    sys = RealSyscalls()
    probes: dict[str, Callable[[], bool]] = {
        "openat2": lambda: _openat2(sys),
        # EPERM here is the may_mount() check, which comes first where the call exists
        "mount_setattr": lambda: _answers(lambda: sys.mount_setattr(-1, "", k.AT_EMPTY_PATH,
                                                                    0), (errno.ENOSYS,)),
        "close_range": lambda: _answers(lambda: sys.close_range(0xFFFFFFFF, 0xFFFFFFFF),
                                        _ABSENT),
        "close_range_cloexec": lambda: _answers(
            lambda: sys.close_range(0xFFFFFFFF, 0xFFFFFFFF, k.CLOSE_RANGE_CLOEXEC),
            (*_ABSENT, errno.EINVAL)),
        "fsopen": lambda: _fsopen(sys),
        "lowerdir_plus": lambda: scratch is None or _lowerdir_plus(scratch),
        "userns_overlay": _userns_overlay,
        "pidfd_open": lambda: _pidfd(sys, None),
        "setns_pidfd": lambda: _pidfd(sys, k.CLONE_NEWUTS),
        "whiteout_mknod": lambda: scratch is None or _whiteout(sys, scratch),
    }
    return [Missing(name, *FALLBACKS[name]) for name, has in probes.items() if not has()]


def _answers(call: Callable[[], object], absent: tuple[int, ...]) -> bool:
    """True unless `call` fails with one of the `absent` errnos."""
    try:
        call()
    except OSError as e:
        return e.errno not in absent
    return True


def _openat2(sys: RealSyscalls) -> bool:
    try:
        os.close(sys.openat2(k.AT_FDCWD, "/", os.O_PATH | os.O_CLOEXEC, 0, 0))
    except OSError as e:
        return e.errno not in (*_ABSENT, errno.EINVAL, errno.E2BIG)
    return True


def _fsopen(sys: RealSyscalls) -> bool:
    try:  # unprivileged: EPERM from the capability check, which comes after the lookup
        os.close(sys.fsopen("tmpfs", k.FSOPEN_CLOEXEC))
    except OSError as e:
        return e.errno != errno.ENOSYS
    return True


def _pidfd(sys: RealSyscalls, setns_flag: int | None) -> bool:
    try:
        fd = sys.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    try:
        if setns_flag is None:
            return True
        # our own uts namespace: EPERM for want of CAP_SYS_ADMIN where setns takes
        # pidfds; EINVAL where it does not
        return _answers(lambda: sys.setns(fd, setns_flag), (errno.EINVAL,))
    finally:
        os.close(fd)


def _whiteout(sys: RealSyscalls, scratch: str) -> bool:
    dirfd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sys.mknod("whiteout", 0o020000, 0, dirfd)  # S_IFCHR, 0:0
        os.unlink("whiteout", dir_fd=dirfd)
        return True
    except OSError as e:
        return e.errno != errno.EPERM
    finally:
        os.close(dirfd)


def _userns_overlay() -> bool:
    from rootless.kernel.floor import kernel_release

    return kernel_release()[0] >= SINCE["userns_overlay"]


def _lowerdir_plus(scratch: str) -> bool:
    """Ask overlayfs in a throwaway user and mount namespace (a child) to make a
    two-layer overlay with `lowerdir+`. Before 6.5 the key is taken as a legacy option
    and refused at the create step, from 6.5 refused at once; both EINVAL. Where the
    child cannot tell (no user namespaces, no overlayfs in them), the version does."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            code = _lowerdir_plus_child(scratch)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 2
    if code == 2:
        from rootless.kernel.floor import kernel_release

        return kernel_release()[0] >= SINCE["lowerdir_plus"]
    return code == 0


def _lowerdir_plus_child(scratch: str) -> int:
    sys = RealSyscalls()
    uid, gid = os.getuid(), os.getgid()
    try:
        layers = [os.path.join(scratch, name) for name in ("upper-layer", "lower-layer")]
        for layer in layers:
            os.mkdir(layer)
        sys.unshare(k.CLONE_NEWUSER | k.CLONE_NEWNS)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                           ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        fs = sys.fsopen("overlay", k.FSOPEN_CLOEXEC)
        for layer in layers:
            sys.fsconfig(fs, k.FSCONFIG_SET_STRING, "lowerdir+", layer)
        sys.fsconfig(fs, k.FSCONFIG_CMD_CREATE)  # read-only: two lower layers, no upper
    except OSError as e:
        return 1 if e.errno in (errno.EINVAL, errno.ENOSYS) else 2
    return 0
