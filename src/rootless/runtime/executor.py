"""The dumb executor: runs a Plan's steps, in order, in the container's first process.

Imports stay at module level: steps after PivotRoot cannot load host modules any more.

Each step is one small function; a failure is re-raised as RuntimeSetupError naming the
step and the path, e.g. `mount proc on /proc: operation not permitted`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import struct

from rootless.errors import RootlessError, RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel.idmap import ID_RANGE, valid_id
from rootless.kernel.syscalls import Syscalls
from rootless.runtime import plan as p
from rootless.runtime.caps import last_cap
from rootless.runtime.mount_attrs import set_mount_attrs
from rootless.runtime.mountpoints import fd_path, is_directory, mountpoint, open_in_rootfs
from rootless.runtime.overlay_options import mount_overlay

FLAG_NEW_LISTENER = 1 << 3  # SECCOMP_FILTER_FLAG_NEW_LISTENER (runtime/seccomp.py)


class Executor:
    def __init__(self, sys: Syscalls, listener_to=None) -> None:
        self.sys = sys
        self.root_fd = -1  # the rootfs, until PivotRoot makes it "/"
        # where a filter's notification listener goes (runtime/process.py sends it to
        # the runtime over a socket); None: it is closed, and trapped calls get ENOSYS
        self.listener_to = listener_to

    def run(self, steps: tuple[object, ...]) -> None:
        for step in steps:
            handler = HANDLERS[type(step)]
            try:
                handler(self, step)
            except RootlessError:
                raise
            except OSError as e:
                raise RuntimeSetupError(f"{describe(step)}: {e.strerror.lower()}") from e

    # --- rootfs -------------------------------------------------------------------

    def do_MakeMountsPrivate(self, step: p.MakeMountsPrivate) -> None:
        self.sys.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)

    def do_MountOverlay(self, step: p.MountOverlay) -> None:
        # userxattr: in a user namespace overlayfs keeps whiteouts/opaque marks in
        # user.overlay.* xattrs (Linux 5.11); layers are unpacked that way.
        if not self._overlay_layer_by_layer(step):  # before 6.8: one options string
            mount_overlay(self.sys, step)
        self.root_fd = os.open(step.target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def do_MountFuse(self, step: p.MountFuse) -> None:
        # imported here, before pivot_root, only by containers of the FUSE overlay
        from rootless.runtime.fuse_mount import mount_fuse

        mount_fuse(self.sys, step.target, step.single_id, step.channel)
        self.root_fd = os.open(step.target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _overlay_layer_by_layer(self, step: p.MountOverlay) -> bool:
        """Mount the overlay with fsconfig, one `lowerdir+` per layer (Linux 6.8): no
        page-size limit on the number of layers, no ':' or ',' rules for paths. False
        (nothing mounted) where the kernel lacks it; the caller mounts the old way.

        Lacking it shows as EINVAL, but not always at the first `lowerdir+`: overlayfs
        took the new mount API's parameters in 6.5, and before it (RHEL 9's 5.14, Debian
        12's 6.1) the VFS passes every key on as a legacy option string, so each
        fsconfig succeeds until the string outgrows a page, and the create step refuses
        the unknown "lowerdir+" option. An EINVAL anywhere up to the create is taken for
        that; one with another cause comes back from the mount(2) that follows."""
        try:
            fs = self.sys.fsopen("overlay", k.FSOPEN_CLOEXEC)
        except OSError as e:
            if e.errno in (errno.ENOSYS, errno.EPERM):
                return False
            raise
        try:
            try:
                for layer in step.lower:  # topmost first, as in lowerdir=a:b:c
                    self.sys.fsconfig(fs, k.FSCONFIG_SET_STRING, "lowerdir+", layer)
                self.sys.fsconfig(fs, k.FSCONFIG_SET_STRING, "upperdir", step.upper)
                self.sys.fsconfig(fs, k.FSCONFIG_SET_STRING, "workdir", step.work)
                self.sys.fsconfig(fs, k.FSCONFIG_SET_FLAG, "userxattr")
                self.sys.fsconfig(fs, k.FSCONFIG_CMD_CREATE)
            except OSError as e:
                if e.errno == errno.EINVAL:  # before 6.8: no `lowerdir+`
                    return False
                raise
            mnt = self.sys.fsmount(fs, k.FSMOUNT_CLOEXEC)
        finally:
            os.close(fs)
        try:
            self.sys.move_mount(mnt, "", k.AT_FDCWD, step.target, k.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(mnt)
        return True

    def do_BindRootfs(self, step: p.BindRootfs) -> None:
        self.sys.mount(step.path, step.path, None, k.MS_BIND | k.MS_REC)
        self.root_fd = os.open(step.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    # --- mounts inside the rootfs ---------------------------------------------------

    def do_MountFilesystem(self, step: p.MountFilesystem) -> None:
        try:
            fd = mountpoint(self.sys, self.root_fd, step.dest, True, step.no_symlinks)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise RuntimeSetupError(f"refusing to mount {step.fstype} on {step.dest}: "
                                    "a symlink in the image's path") from e
        try:
            try:
                self.sys.mount(step.source, fd_path(fd), step.fstype, step.flags, step.data)
            except OSError:
                if step.fallback_data is None:
                    raise
                self.sys.mount(step.source, fd_path(fd), step.fstype, step.flags,
                               step.fallback_data)
        finally:
            os.close(fd)

    def do_BindMount(self, step: p.BindMount) -> None:
        fd = mountpoint(self.sys, self.root_fd, step.dest, is_directory(step.source))
        flags = k.MS_BIND | (k.MS_REC if step.recursive else 0)
        try:
            self.sys.mount(step.source, fd_path(fd), None, flags)
        finally:
            os.close(fd)
        attrs = (k.MOUNT_ATTR_RDONLY if step.readonly else 0) | step.flags
        if attrs:
            self._set_attrs(step.dest, attrs)

    def do_BindHostSys(self, step: p.BindHostSys) -> None:
        fd = mountpoint(self.sys, self.root_fd, step.dest, True, no_symlinks=True)
        try:
            self.sys.mount("/sys", fd_path(fd), None, k.MS_BIND | k.MS_REC)
        finally:
            os.close(fd)
        self._set_attrs(step.dest, k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID
                        | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC)

    def _set_attrs(self, dest: str, attrs: int) -> None:
        """Set attributes on the mount now at `dest` (re-resolved: the fd before the
        mount names the covered directory, not the new mount)."""
        fd = open_in_rootfs(self.sys, self.root_fd, dest)
        try:
            set_mount_attrs(self.sys, fd, "", attrs, recursive=True)
        finally:
            os.close(fd)

    def do_BindDevice(self, step: p.BindDevice) -> None:
        if not os.path.exists(step.path):
            return  # the host lacks it (e.g. no /dev/tty in a daemon): so does the container
        fd = mountpoint(self.sys, self.root_fd, step.path, False, no_symlinks=True)
        try:
            self.sys.mount(step.path, fd_path(fd), None, k.MS_BIND)
        finally:
            os.close(fd)

    def do_MakeSymlink(self, step: p.MakeSymlink) -> None:
        parent, name = os.path.split(step.dest)
        dirfd = open_in_rootfs(self.sys, self.root_fd, parent, os.O_PATH | os.O_DIRECTORY,
                               no_symlinks=True)
        try:
            os.symlink(step.target, name, dir_fd=dirfd)
        except FileExistsError:
            pass
        finally:
            os.close(dirfd)

    # --- the switch -------------------------------------------------------------------

    def do_PivotRoot(self, step: p.PivotRoot) -> None:
        # pivot_root(".", "."): stacks the old root on top of the new one, then detaching
        # "." removes it without needing a directory for it (pivot_root(2), NOTES).
        os.fchdir(self.root_fd)
        self.sys.pivot_root(".", ".")
        self.sys.umount2(".", k.MNT_DETACH)
        os.chdir("/")
        os.close(self.root_fd)
        self.root_fd = -1

    def do_MaskPath(self, step: p.MaskPath) -> None:
        try:
            directory = is_directory(step.path)
        except FileNotFoundError:
            return
        if directory:
            self.sys.mount("tmpfs", step.path, "tmpfs", k.MS_RDONLY, "size=0")
        else:
            self.sys.mount("/dev/null", step.path, None, k.MS_BIND)

    def do_ReadonlyPath(self, step: p.ReadonlyPath) -> None:
        if not os.path.lexists(step.path):
            return
        self.sys.mount(step.path, step.path, None, k.MS_BIND | k.MS_REC)
        set_mount_attrs(self.sys, k.AT_FDCWD, step.path, k.MOUNT_ATTR_RDONLY, recursive=True)

    def do_ReadonlyRoot(self, step: p.ReadonlyRoot) -> None:
        set_mount_attrs(self.sys, k.AT_FDCWD, "/", k.MOUNT_ATTR_RDONLY, recursive=False)

    def do_SetHostname(self, step: p.SetHostname) -> None:
        self.sys.sethostname(step.name)

    def do_LoopbackUp(self, step: p.LoopbackUp) -> None:
        af_inet, sock_dgram = 2, 2
        siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
        fd = self.sys.socket(af_inet, sock_dgram)
        try:
            ifreq = struct.pack("16sh14x", b"lo", 0)
            flags = struct.unpack("16sh14x", fcntl.ioctl(fd, siocgifflags, ifreq))[1]
            fcntl.ioctl(fd, siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))
        finally:
            os.close(fd)

    # --- the process ------------------------------------------------------------------

    def do_SetRlimit(self, step: p.SetRlimit) -> None:
        res = getattr(resource, step.resource, None)
        if res is None:
            raise RuntimeSetupError(f"unknown rlimit: {step.resource}")
        def value(v: int) -> int:  # the OCI spec writes "unlimited" as 2**64-1
            return resource.RLIM_INFINITY if v >= 2**63 - 1 else v

        try:
            resource.setrlimit(res, (value(step.soft), value(step.hard)))
        except ValueError as e:  # Python's word for EPERM/EINVAL here
            hard = resource.getrlimit(res)[1]
            raise RuntimeSetupError(
                f"set {step.resource} to {step.soft}:{step.hard}: {e} (this user's hard "
                f"limit is {'unlimited' if hard == resource.RLIM_INFINITY else hard})"
            ) from e

    def do_Chdir(self, step: p.Chdir) -> None:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if step.create:
                fd = mountpoint(self.sys, root, step.path, True)
            else:
                fd = open_in_rootfs(self.sys, root, step.path, os.O_PATH | os.O_DIRECTORY)
            try:
                os.fchdir(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EXDEV):
                raise RuntimeSetupError(f"working directory {step.path} is outside the "
                                        "container (a /proc magic link)") from e
            raise RuntimeSetupError(f"working directory {step.path}: "
                                    f"{os.strerror(e.errno).lower()}") from e
        finally:
            os.close(root)
        # runc CVE-2024-21626: a cwd reached through a leaked fd lies outside the root;
        # getcwd(3) then fails with ENOENT or returns "(unreachable)/...".
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = ""
        if not cwd.startswith("/"):
            raise RuntimeSetupError(f"working directory {step.path} is outside the container")

    def do_DropBoundingCapabilities(self, step: p.DropBoundingCapabilities) -> None:
        for cap in range(last_cap() + 1):
            if not step.bounding & (1 << cap):
                self.sys.prctl(k.PR_CAPBSET_DROP, cap)
        # keep the permitted set across SetUser's setresuid, so SetCapabilities can
        # choose it (capabilities(7), "Effect of user ID changes on capabilities").
        self.sys.prctl(k.PR_SET_KEEPCAPS, 1)

    def do_SetUser(self, step: p.SetUser) -> None:
        # checked again here, whoever built the step: Python's os.setres[ug]id take -1
        # (and 4294967295) as "leave unchanged", which would leave the process root
        for value in (step.uid, step.gid, *step.additional_gids):
            if not valid_id(value):
                raise RuntimeSetupError(f"set user: invalid id {value!r}: {ID_RANGE}")
        try:
            if step.set_groups:
                os.setgroups(list(step.additional_gids))
            os.setresgid(step.gid, step.gid, step.gid)
            os.setresuid(step.uid, step.uid, step.uid)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            raise RuntimeSetupError(  # setresuid(2): EINVAL, an id the namespace lacks
                f"set user {step.uid}:{step.gid} (groups {list(step.additional_gids)}): an id "
                "is not mapped in the container's user namespace") from e

    def do_SetCapabilities(self, step: p.SetCapabilities) -> None:
        self.sys.capset(step.effective, step.permitted, step.inheritable)
        self.sys.prctl(k.PR_SET_KEEPCAPS, 0)
        self.sys.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_CLEAR_ALL)
        for cap in range(last_cap() + 1):
            if step.ambient & (1 << cap):
                self.sys.prctl(k.PR_CAP_AMBIENT, k.PR_CAP_AMBIENT_RAISE, cap)

    def do_NoNewPrivileges(self, step: p.NoNewPrivileges) -> None:
        self.sys.prctl(k.PR_SET_NO_NEW_PRIVS, 1)

    def do_LoadSeccomp(self, step: p.LoadSeccomp) -> None:
        # seccomp(2): without no_new_privs the caller needs CAP_SYS_ADMIN in its user
        # namespace; the plan puts this step where one of the two holds. The filter is
        # inherited across fork and execve by everything the container runs.
        listener = self.sys.seccomp_set_filter(step.flags, step.program)
        if step.flags & FLAG_NEW_LISTENER and listener > 0:
            # the fakeroot's: to the monitor before any trapped call can wait for it
            try:
                if self.listener_to is not None:
                    self.listener_to(listener)
            finally:
                os.close(listener)

    def do_Exec(self, step: p.Exec) -> None:
        raise AssertionError("Exec is run by runtime.process, not the executor")

    # --- joining a running container (exec; runtime/join.py) ---------------------------
    # Imported here, not above: `run` never joins, and these steps run on the host, in
    # exec's intermediate process, before its mount namespace changes.

    def do_JoinCgroup(self, step: p.JoinCgroup) -> None:
        from rootless.runtime.join import join_cgroup

        join_cgroup(step.pid, step.start_time)

    def do_JoinNamespaces(self, step: p.JoinNamespaces) -> None:
        from rootless.runtime.join import join_namespaces

        join_namespaces(self.sys, step.pid, step.start_time, step.namespaces)



# Each step type and the method that runs it: a step without one fails at import, not
# in the middle of a container's set-up (crun's handler tables).
HANDLERS = {
    p.MakeMountsPrivate: Executor.do_MakeMountsPrivate,
    p.MountOverlay: Executor.do_MountOverlay,
    p.MountFuse: Executor.do_MountFuse,
    p.BindRootfs: Executor.do_BindRootfs,
    p.MountFilesystem: Executor.do_MountFilesystem,
    p.BindMount: Executor.do_BindMount,
    p.BindHostSys: Executor.do_BindHostSys,
    p.BindDevice: Executor.do_BindDevice,
    p.MakeSymlink: Executor.do_MakeSymlink,
    p.PivotRoot: Executor.do_PivotRoot,
    p.MaskPath: Executor.do_MaskPath,
    p.ReadonlyPath: Executor.do_ReadonlyPath,
    p.ReadonlyRoot: Executor.do_ReadonlyRoot,
    p.SetHostname: Executor.do_SetHostname,
    p.LoopbackUp: Executor.do_LoopbackUp,
    p.SetRlimit: Executor.do_SetRlimit,
    p.Chdir: Executor.do_Chdir,
    p.DropBoundingCapabilities: Executor.do_DropBoundingCapabilities,
    p.SetUser: Executor.do_SetUser,
    p.SetCapabilities: Executor.do_SetCapabilities,
    p.NoNewPrivileges: Executor.do_NoNewPrivileges,
    p.LoadSeccomp: Executor.do_LoadSeccomp,
    p.Exec: Executor.do_Exec,
    p.JoinCgroup: Executor.do_JoinCgroup,
    p.JoinNamespaces: Executor.do_JoinNamespaces,
}

def describe(step: object) -> str:
    """The step's name and object for error messages."""
    name = type(step).__name__
    if isinstance(step, p.MountFilesystem):
        return f"mount {step.fstype} on {step.dest}"
    if isinstance(step, p.BindMount):
        return f"bind mount {step.source} on {step.dest}"
    if isinstance(step, (p.MountOverlay, p.MountFuse, p.BindRootfs)):
        return "mount rootfs"
    if isinstance(step, p.BindDevice):
        return f"bind device {step.path}"
    if isinstance(step, p.LoadSeccomp):
        return "load seccomp filter"
    if isinstance(step, (p.JoinNamespaces, p.JoinCgroup)):
        what = "namespaces" if isinstance(step, p.JoinNamespaces) else "cgroup"
        return f"join the {what} of the container's init (pid {step.pid})"
    for attr in ("path", "dest", "name"):
        if hasattr(step, attr):
            return f"{name} {getattr(step, attr)}"
    return name
