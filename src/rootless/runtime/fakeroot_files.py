"""The fakeroot's file calls: chown, chmod and mknod of devices, answered by recording.

Each call names its file as the kernel would resolve it in the calling thread: an
absolute path in its root, a relative one from its working directory or from the *at
call's directory descriptor, or the descriptor itself (fchown, AT_EMPTY_PATH). We open
/proc/TID/root, /proc/TID/cwd or /proc/TID/fd/N and /proc/TID/mem first, then check
that the notification is still valid (kernel/notify.py: the thread still waits, so
those were its own), then read the path from its memory and resolve it inside its root
through the one in-root resolver (kernel/paths.py: openat2 RESOLVE_IN_ROOT, else the
O_NOFOLLOW walk), never through a path string of ours. A relative path is joined to
the directory's name inside the container (the readlink of its descriptor, which the
kernel gives relative to the container's root) and resolved from the root, so `..`
stops at the root as it does for the thread. Nothing outside the container can be
named, and only files on the container's root mount (its overlay or rootfs) are
recorded: on another mount (a volume, /dev, /proc) chown answers 0 and records
nothing, chmod runs as unfiltered, mknod of a device is refused as the kernel refuses
it.

What is recorded, where the container's layer keeps it (engine/commit.py writes it
into the tar's headers):
- chown: `user.containers.override_stat` ("UID:GID:0MODE[:KIND]", kernel/override.py)
  on a regular file or directory, set through the container's mount, so overlayfs
  copies the file up into upper/ first; for a symlink, fifo or socket, which cannot
  carry user xattrs, a sidecar record (runtime/fakeroot_owners.py). -1 leaves an id;
  the setuid bit, and the setgid bit of a group-executable file, are cleared as
  chown(2) clears them. The owner's rules are the kernel's, with faked ids: a thread
  whose fs uid is 0 and that holds CAP_CHOWN may give any owner; the owner may change
  the group to one of its groups; anything else is EPERM.
- chmod of a file that has a record: the record's mode follows (the kernel's own
  chmod happens too, so both agree); chmod of a file without one runs unfiltered.
- mknod/mknodat of a character or block device: an empty regular file, mode 0 on disk,
  with the record "UID:GID:0MODE:char-MAJOR-MINOR" (block-...), as image/layers.py
  records devices from tars; fifos, sockets, regular files and overlay whiteouts
  (a 0:0 character device) are made by the kernel itself (CONTINUE).
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.kernel import notify
from rootless.kernel.override import (OVERRIDE_XATTR, device_kind, override_value,
                                      parse_override)
from rootless.records import record
from rootless.runtime.fakeroot_creds import UNCHANGED, Creds, in_group
from rootless.runtime.fakeroot_owners import owners_record, owners_value

AT_FDCWD = 0xFFFFFF9C  # -100 as the 32-bit int the kernel reads
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
PATH_MAX = 4096
CAP_CHOWN, CAP_FOWNER, CAP_FSETID, CAP_MKNOD = 0, 3, 4, 27
CONTINUE = -1  # an answer: run the call as if unfiltered
_O_PATH = os.O_PATH | os.O_CLOEXEC
_SETID = stat.S_ISUID | stat.S_ISGID


class Caller:
    """The thread a notification came from: its faked (or real) ids and capabilities."""

    def __init__(self, tid: int, creds: Creds, status: dict[str, str]) -> None:
        self.tid = tid
        self.creds = creds
        self.status = status

    def capable(self, cap: int) -> bool:
        """The capability is in the thread's effective set and its fs uid is 0: the
        kernel clears the fs capabilities when the fs uid leaves 0 (capabilities(7))."""
        try:
            effective = int(self.status.get("CapEff", "0"), 16)
        except ValueError:
            effective = 0
        return self.creds.uids[3] == 0 and bool(effective >> cap & 1)

    def umask(self) -> int:
        try:
            return int(self.status.get("Umask", "0022"), 8)
        except ValueError:
            return 0o022


@record
class FileCall:
    dirfd: int  # AT_FDCWD, or the thread's descriptor
    path: int | None  # address of the path in its memory; None: the descriptor itself
    follow: bool
    empty_path: bool  # AT_EMPTY_PATH


@record
class Target:
    fd: int  # O_PATH descriptor of the file (ours)
    st: os.stat_result
    path: str  # inside the container, relative ("etc/shadow"); "" for the root
    on_rootfs: bool


class Files:
    """File calls of one container; `owners` is the sidecar, saved by `save_owners`."""

    def __init__(self, owners: dict[str, dict], save_owners, uid_map, gid_map) -> None:
        self.owners = owners
        self.save_owners = save_owners
        self.uid_map, self.gid_map = uid_map, gid_map

    # ---- chown ----

    def chown(self, listener: int, notif, caller: Caller, call: FileCall, uid: int,
              gid: int) -> int:
        """0, an errno, or None (the caller is gone: no answer is needed)."""
        target = self._open(listener, notif, call)
        if not isinstance(target, Target):
            return target
        try:
            return self._chown(caller, target, uid, gid)
        finally:
            os.close(target.fd)

    def _chown(self, caller: Caller, target: Target, uid: int, gid: int) -> int:
        owner_uid, owner_gid, mode, kind = self._meta(target)
        creds = caller.creds
        privileged = caller.capable(CAP_CHOWN)
        if uid != UNCHANGED and not privileged and not (
                creds.uids[3] == owner_uid and uid == owner_uid):
            return errno.EPERM
        if gid != UNCHANGED and not privileged and not (
                creds.uids[3] == owner_uid and (gid == owner_gid or in_group(creds, gid))):
            return errno.EPERM
        if not target.on_rootfs:
            return 0  # a volume, /dev, /proc: nothing of the image's to record
        new_uid = owner_uid if uid == UNCHANGED else uid
        new_gid = owner_gid if gid == UNCHANGED else gid
        new_mode = mode
        if not stat.S_ISDIR(target.st.st_mode):  # chown(2) on a non-directory
            new_mode &= ~stat.S_ISUID
            if new_mode & stat.S_IXGRP:
                new_mode &= ~stat.S_ISGID
        disk = stat.S_IMODE(target.st.st_mode)
        if disk & _SETID & ~new_mode and stat.S_ISREG(target.st.st_mode) and not kind:
            disk &= ~(_SETID & ~new_mode)  # the kernel would clear them on disk too
            _chmod(target.fd, disk)
        real = (self.uid_map.to_container(target.st.st_uid),
                self.gid_map.to_container(target.st.st_gid), disk)
        if self._record(target) is None and (new_uid, new_gid, new_mode) == real:
            return 0  # what the kernel shows already (root's, as unpacked): no record
        return self._write(target, override_value(new_uid, new_gid, new_mode, kind))

    # ---- chmod ----

    def chmod(self, listener: int, notif, caller: Caller, call: FileCall, mode: int) -> int:
        target = self._open(listener, notif, call)
        if target is None:
            return None
        if not isinstance(target, Target):
            return CONTINUE  # the kernel finds the same error itself
        try:
            if not target.on_rootfs or not _has_mode(target) or self._record(target) is None:
                return CONTINUE  # the kernel's own chmod is all there is to it
            owner_uid, owner_gid, _, kind = self._meta(target)
            if not caller.capable(CAP_FOWNER) and caller.creds.uids[3] != owner_uid:
                return errno.EPERM
            new = mode & 0o7777
            if not in_group(caller.creds, owner_gid) and not caller.capable(CAP_FSETID):
                new &= ~stat.S_ISGID  # chmod(2): no error, the bit is dropped
            if not kind:  # a device stand-in keeps mode 0 on disk: no data goes in
                error = _chmod(target.fd, new)
                if error:
                    return error
            return self._write(target, override_value(owner_uid, owner_gid, new, kind))
        finally:
            os.close(target.fd)

    # ---- mknod ----

    def mknod(self, listener: int, notif, caller: Caller, call: FileCall, mode: int,
              dev: int) -> int:
        kind = stat.S_IFMT(mode)
        if kind not in (stat.S_IFCHR, stat.S_IFBLK) or (kind == stat.S_IFCHR and dev == 0):
            return CONTINUE  # what the kernel makes itself (or refuses itself)
        found = self._open(listener, notif, call, parent=True)
        if not isinstance(found, tuple):
            return found
        dirfd, name, on_rootfs = found
        try:
            return self._mknod(caller, dirfd, name, on_rootfs, mode, dev)
        finally:
            os.close(dirfd)

    def _mknod(self, caller: Caller, dirfd: int, name: str, on_rootfs: bool, mode: int,
               dev: int) -> int:
        try:
            os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            return errno.EEXIST
        except FileNotFoundError:
            pass
        except OSError as e:
            return e.errno or errno.EIO
        if not on_rootfs or not caller.capable(CAP_MKNOD):
            return errno.EPERM
        dev32 = dev & 0xFFFFFFFF  # the kernel's dev_t encoding (new_decode_dev)
        record = override_value(caller.creds.uids[3], caller.creds.gids[3],
                                mode & 0o7777 & ~caller.umask(),
                                device_kind(stat.S_IFMT(mode), (os.major(dev32),
                                                                os.minor(dev32))))
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        except OSError as e:
            return e.errno or errno.EIO
        try:
            os.setxattr(fd, OVERRIDE_XATTR, record.encode())
            os.fchmod(fd, 0)
        except OSError as e:
            os.unlink(name, dir_fd=dirfd)
            return errno.EPERM if e.errno in (errno.ENOTSUP, errno.EPERM) else e.errno
        finally:
            try:
                os.close(fd)
            except OSError:  # a FUSE flush error: the file and its record are made
                pass
        return 0

    # ---- finding the file ----

    def _open(self, listener: int, notif, call: FileCall, parent: bool = False):
        """Target (or, with `parent`, (dirfd, name, on_rootfs)), an errno, or None when
        the thread is gone."""
        tid = notif.pid
        held: list[int] = []
        try:
            try:
                root = _hold(held, f"/proc/{tid}/root", os.O_DIRECTORY)
                mem = _hold(held, f"/proc/{tid}/mem", 0, os.O_RDONLY) if call.path else None
                if call.dirfd == AT_FDCWD:
                    base = _hold(held, f"/proc/{tid}/cwd", os.O_DIRECTORY)
                else:  # the kernel looks at the descriptor only for a relative path
                    base = _hold_fd(held, f"/proc/{tid}/fd/{call.dirfd}")
            except FileNotFoundError:
                return None  # the thread is gone
            except OSError as e:
                return e.errno or errno.EIO
            if not notify.id_valid(listener, notif.id):
                return None  # killed, its pid perhaps reused: nothing opened is its own
            if call.path is None:
                path = ""
            else:
                path = _read_path(mem, call.path)
                if isinstance(path, int):
                    return path
                if not path and not call.empty_path:
                    return errno.ENOENT
            if not path.startswith("/") and base is None:
                return errno.EBADF
            if call.path is None or not path:
                return self._target(root, base) if not parent else errno.ENOENT
            return self._resolve(root, base, path, call.follow, parent)
        finally:
            for fd in held:
                os.close(fd)

    def _resolve(self, root: int, base: int, path: str, follow: bool, parent: bool):
        from rootless.kernel.paths import open_in_root, parent_fd_in_root

        if not path.startswith("/"):
            if not stat.S_ISDIR(os.fstat(base).st_mode):
                return errno.ENOTDIR
            where = _inside(root, base)
            if where is None:
                return errno.ENOENT  # a directory outside the thread's root
            path = f"{where}/{path}"
        try:
            if parent:
                dirfd, name = parent_fd_in_root(root, path)
                return dirfd, name, _same_mount(root, dirfd)
            fd = open_in_root(root, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        except OSError as e:
            return e.errno or errno.EIO
        try:
            return self._target(root, fd)
        finally:
            os.close(fd)

    def _target(self, root: int, fd: int) -> Target:
        own = os.dup(fd)
        where = _inside(root, own)
        return Target(own, os.fstat(own), (where or "").lstrip("/"), _same_mount(root, own))

    # ---- the record ----

    def _record(self, target: Target) -> str | None:
        if not target.on_rootfs:
            return None  # never the host's files (a volume's): only what the kernel says
        kind = stat.S_IFMT(target.st.st_mode)
        if kind in (stat.S_IFREG, stat.S_IFDIR):
            path = f"/proc/self/fd/{target.fd}"
            try:
                value = _lending(path, stat.S_IRUSR,
                                 lambda: os.getxattr(path, OVERRIDE_XATTR))
            except OSError:
                return None
            return value[:256].decode("ascii", "replace")
        return owners_value(self.owners, target.path, kind, _link_target(target))

    def _meta(self, target: Target) -> tuple[int, int, int, str]:
        """(uid, gid, mode, device kind) the container is meant to see."""
        record = parse_override(self._record(target))
        if record is not None:
            uid, gid, mode, kind, dev = record
            return uid, gid, mode, device_kind(kind, dev)
        st = target.st
        return (self.uid_map.to_container(st.st_uid), self.gid_map.to_container(st.st_gid),
                stat.S_IMODE(st.st_mode), "")

    def _write(self, target: Target, value: str) -> int:
        kind = stat.S_IFMT(target.st.st_mode)
        if kind not in (stat.S_IFREG, stat.S_IFDIR):
            self.owners[target.path] = owners_record(kind, _link_target(target), value)
            self.save_owners()
            return 0
        return _set_override(target, value)


# ---- helpers ----

def write_memory(listener: int, notif, writes: list[tuple[int, bytes]]) -> int | None:
    """Write each (address, bytes) into the calling thread's memory: 0, EFAULT, or None
    when it is gone. /proc/TID/mem is opened before the notification is checked, so a
    killed thread's reused pid is never written to."""
    try:
        mem = os.open(f"/proc/{notif.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not notify.id_valid(listener, notif.id):
            return None
        for address, data in writes:
            try:
                if os.pwrite(mem, data, address) != len(data):
                    return errno.EFAULT
            except (OSError, OverflowError):
                return errno.EFAULT
    finally:
        os.close(mem)
    return 0


def _hold(held: list[int], path: str, extra: int, flags: int = _O_PATH) -> int:
    fd = os.open(path, flags | extra | os.O_CLOEXEC)
    held.append(fd)
    return fd


def _hold_fd(held: list[int], path: str) -> int | None:
    """The file a thread's descriptor holds (the magic link followed, never a path);
    None if it has no such descriptor (EBADF, when it matters)."""
    try:
        return _hold(held, path, 0)
    except FileNotFoundError:
        if not os.path.isdir(os.path.dirname(path)):
            raise  # the thread itself is gone
        return None


def _read_path(mem: int, address: int) -> str | int:
    """The NUL-terminated path at `address` in the thread's memory, or an errno:
    EFAULT where it is unreadable, ENAMETOOLONG past PATH_MAX (getname(9))."""
    try:
        data = os.pread(mem, PATH_MAX, address)
    except (OSError, OverflowError):
        return errno.EFAULT
    end = data.find(b"\0")
    if end < 0:
        return errno.ENAMETOOLONG if len(data) == PATH_MAX else errno.EFAULT
    return os.fsdecode(data[:end])


def _inside(root: int, fd: int) -> str | None:
    """The path of `fd` inside the thread's root, "/"-rooted; None if outside it. The
    kernel writes both links relative to the container's mount namespace root."""
    try:
        top = os.readlink(f"/proc/self/fd/{root}")
        here = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not here.startswith("/"):
        return None
    if top == "/":
        return here
    if here == top:
        return "/"
    return here[len(top):] if here.startswith(top + "/") else None


def _same_mount(root: int, fd: int) -> bool:
    from rootless.kernel.mountinfo import mount_id

    try:
        return mount_id(root) == mount_id(fd)
    except (OSError, ValueError):
        return False


def _has_mode(target: Target) -> bool:
    """Not a symlink, whose own mode never changes (chmod(2) follows it)."""
    return not stat.S_ISLNK(target.st.st_mode)


def _link_target(target: Target) -> str | None:
    if not stat.S_ISLNK(target.st.st_mode):
        return None
    try:
        return os.readlink("", dir_fd=target.fd)
    except OSError:
        return None


def _chmod(fd: int, mode: int) -> int:
    try:
        os.chmod(f"/proc/self/fd/{fd}", mode)
    except OSError as e:
        return e.errno or errno.EIO
    return 0


def _set_override(target: Target, value: str) -> int:
    """setxattr through the container's mount: overlayfs copies the file up first."""
    path = f"/proc/self/fd/{target.fd}"
    try:
        _lending(path, stat.S_IWUSR, lambda: os.setxattr(path, OVERRIDE_XATTR,
                                                         value.encode()))
    except OSError as e:
        return e.errno or errno.EIO
    return 0


def _lending(path: str, bit: int, call):
    """call(), and where the kernel refuses it (EACCES) again with the owner's `bit`
    lent for the moment: user xattrs need read permission to be read and write
    permission to be set, the owner's too (xattr(7)), and we own every file of a
    single-id container, but not every mode lets us (a 0000 file, a 0555 directory).
    (A file of the image's is copied up by the chmod: unchanged, diff leaves it out.)"""
    try:
        return call()
    except PermissionError:
        pass
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | bit)
    try:
        return call()
    finally:
        os.chmod(path, mode)
