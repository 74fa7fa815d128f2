"""Safe unpacking of a layer tar into a fresh directory, for kernel overlayfs (mounted
in a user namespace with `userxattr`) and the FUSE overlay.

Python's tarfile only *reads* headers here; every file is created through descriptors
(kernel/paths.py resolves paths inside the layer as if it were `/`), so no entry can
reach outside the layer, whatever its name, links or order. A layer that cannot be
unpacked faithfully is refused with an ImageError naming the entry.

What each kind of entry becomes:

- names: a leading `/` is dropped (as Docker does); `.` and empty parts are ignored;
  `a/../b` is `b`; a `..` that would climb above the layer root is REFUSED.
- parents: missing parent directories are made (0755). A parent that is a symlink is
  followed *inside the layer* (`a -> /etc`, then `a/b` lands in <layer>/etc/b), as it
  would be inside the container; it never reaches the host's /etc.
- duplicates: the later entry wins; a directory over a directory keeps the contents
  (tar semantics); anything else is removed first (file <-> directory both ways).
- symlinks: stored verbatim, even when they point outside (`/etc/shadow`, `../../x`):
  they are only ever resolved inside a container's root, and unpacking never follows
  them except as parents, inside the layer.
- hardlinks: the target must be an earlier non-directory entry of this layer, named
  without climbing above the root; otherwise REFUSED (missing, outside, a directory).
- whiteouts: `.wh.NAME` -> a character device 0:0 named NAME (what overlayfs reads;
  unprivileged mknod of 0:0 is allowed since Linux 5.8); `.wh..wh..opq` -> xattr
  user.overlay.opaque=y on the directory. Other `.wh..wh.*` (aufs bookkeeping) are
  skipped. If NAME already exists in this layer the whiteout is dropped (OCI: a
  whiteout only hides lower layers). Where the kernel or filesystem refuses (Linux <
  5.8, no user xattrs), the `.wh.` file itself is kept, the AUFS form that
  fuse-overlayfs and our copy strategy also read.
- ownership and modes, in one of two ways (`ids`):
  * with a subordinate range (`ids` given: the unpacker runs as root of the storage
    namespace, kernel/storage_ns.py), every entry gets the tar's owner, mapped into the
    range by the kernel (lchown; the mode after it, since chown(2) clears setuid and
    setgid), as podman's storage unpacks: the kernel overlay then shows them, setuid
    bits and file capabilities included. An owner the namespace cannot map refuses the
    layer with podman's message ("potentially insufficient UIDs or GIDs ..."), unless
    `ids.squash` (`--storage-opt ignore_chown_errors=true`): then the unmapped id
    becomes 0 (the user, container root, as containers-storage leaves such files), the
    entry loses its setuid/setgid bits (it must not become setuid root) and the tar's
    values are recorded in override_stat, as below.
  * in single-id mode (`ids` None) files belong to the user who unpacks. When the tar
    says otherwise (uid/gid not 0, which is what the user maps to in a container), or
    the mode on disk differs, the tar's values are recorded in
    `user.containers.override_stat` as "UID:GID:0MODE" (containers-storage's format,
    read by fuse-overlayfs) on regular files and directories; symlinks and fifos cannot
    carry user xattrs and keep none. setuid/setgid bits are STRIPPED on disk (the store
    holds files owned by a real user: a setuid copy would let anyone who can reach it
    become that user) and kept in override_stat, so a FUSE overlay can still show them.
    A directory keeps its setgid bit (it only makes new entries inherit the group);
    its setuid bit is stripped.
- device nodes cannot be made unprivileged, nor in a user namespace: an empty regular
  file takes their place, with override_stat "UID:GID:0MODE:char-MAJOR-MINOR" (or
  block-...), as containers-storage does with ignore_chown_errors.
- fifos are made with mkfifo. Other entry types (sockets cannot be in tar; GNU volume
  headers, ...) are REFUSED.
- extended attributes and ACLs in the tar (PAX SCHILY.xattr.*) are dropped: user.*
  ones could forge overlay metadata (user.overlay.redirect...), and most security.*
  ones cannot be set without privileges. File capabilities (security.capability on a
  regular file) are the exception: set by root of a user namespace whose root is this
  user, the kernel keeps them as namespaced (v3) capabilities that take effect in
  containers whose root is this user, as in rootless podman. With `ids` they are set
  as each file is written (after its chown, which would clear them); in single-id mode
  they are returned in `file_caps` and set after unpacking (image/file_caps.py).
- sparse files (GNU and PAX sparse members) are written as holes, their data segments
  at their offsets (image/layer_tar.py), never as zeros.

Directory modes and times are applied last, deepest first, so an entry may be
unpacked into a directory the tar makes read-only. The diff id (sha256 of the
uncompressed tar, trailing padding included) is computed while unpacking.

What a layer writes is bounded (store/space.py): its files' data bytes by
ROOTLESS_LAYER_LIMIT, else by the free space of the store's filesystem less a reserve,
and its entries by the free inodes; past either the layer is refused naming its limit.
Special headers (PAX, GNU long names, sparse maps) are bounded in size
(image/layer_tar.py), so no header makes the unpacker hold gigabytes either.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, NamedTuple

from rootless.errors import ImageError, StoreError
# the layer format's markers, the same that kernel/paths.py reads back
from rootless.kernel.paths import AUFS_OPAQUE as OPAQUE_MARKER
from rootless.kernel.paths import AUFS_WHITEOUT as WHITEOUT_PREFIX
from rootless.kernel.paths import OPAQUE_XATTR

# the ownership record: one codec for the unpacker, cp, diff and the FUSE overlay
from rootless.kernel.override import (OVERRIDE_XATTR, override_value,  # noqa: F401
                                      parse_override)
CAPABILITY_XATTR = "security.capability"
CAPABILITY_PAX = "SCHILY.xattr." + CAPABILITY_XATTR
_SETID = stat.S_ISUID | stat.S_ISGID
_MAX_CACHED_DIRS = 128
_TAR_READ = 1 << 16
_ENTRY_ERRNOS = {errno.ELOOP, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
                 errno.EINVAL, errno.EEXIST, errno.EFBIG}


class LayerResult(NamedTuple):
    diff_id: str  # sha256:<hex> of the uncompressed tar
    size: int  # bytes of regular-file content
    # xattrs the filesystem refused (no user xattrs): layer path -> {name: value}
    unapplied_xattrs: dict[str, dict[str, str]]
    # security.capability of regular files, as in the tar: layer path -> raw value
    file_caps: dict[str, bytes] = {}


def unpack_layer(stream: BinaryIO, dest: Path, what: str = "layer",
                 stop=None, ids=None) -> LayerResult:
    """Unpack the (compressed or plain) layer tar read from `stream` into `dest`, an
    existing empty directory. On error `dest` is left for the caller to remove. A set
    `stop` event (threading.Event) makes it raise WriteStopped soon after. With `ids`
    (kernel/storage_ns.StorageIds; the caller is root of that storage namespace) the
    files get the tar's owners, else override_stat records (see above)."""
    import tarfile

    from rootless.image.compression import Hashing, ReadAhead, decompressed
    from rootless.image.layer_tar import BoundedInfo
    from rootless.store.space import SpaceGuard, layer_limit

    guard = SpaceGuard(dest, what, layer_limit(), stop)
    raw = decompressed(stream, what)
    hashing = Hashing(raw)
    ahead = ReadAhead(hashing)  # inflated and hashed on another core
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    unpacker = _Unpacker(root_fd, what, guard, ids)
    ok = False
    try:
        # 64 KiB reads instead of tarfile's 10 KiB: fewer trips through the
        # read-ahead; larger makes tarfile's buffer slicing cost more than it saves
        with tarfile.open(fileobj=ahead, mode="r|", errorlevel=2, bufsize=_TAR_READ,
                          tarinfo=BoundedInfo) as tar:
            while (member := tar.next()) is not None:
                # a stream-mode TarFile keeps every header it read: a layer of
                # millions of entries would hold them all
                tar.members.clear()
                unpacker.entry_checked(tar, member)
        unpacker.finish()
        ahead.drain()  # the padding after the tar's end counts in the diff id
        ok = True
    except tarfile.TarError as e:
        raise ImageError(f"{what} is not a valid tar archive: {e}") from None
    except OSError as e:
        raise StoreError(f"cannot unpack {what}: {(e.strerror or str(e)).lower()}"
                         f"{f' ({e.filename})' if e.filename else ''}") from None
    finally:
        unpacker.close()
        os.close(root_fd)
        ahead.close()
        raw.close(check=ok)
    return LayerResult(hashing.digest, unpacker.size, unpacker.unapplied, unpacker.file_caps)


def clean_name(name: str, what: str, entry: str | None = None) -> list[str]:
    """Components of a tar entry name inside the layer; refuses climbing above it."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ImageError(f"{what}: entry {entry or name!r} climbs above the layer "
                                 "root with '..': refused")
            parts.pop()
        else:
            parts.append(part)
    return parts


class _Unpacker:
    def __init__(self, root_fd: int, what: str, guard, ids=None) -> None:
        self.root_fd, self.what, self.guard, self.ids = root_fd, what, guard, ids
        self.dirs: dict[str, tuple] = {}  # path -> the directory entry's header values
        self.cache: dict[str, int] = {}  # parent path -> directory descriptor
        self.size = 0
        self.unapplied: dict[str, dict[str, str]] = {}
        self.file_caps: dict[str, bytes] = {}

    def close(self) -> None:
        self._forget_dirs()

    # ---- parents ----

    def _parent(self, parts: list[str]) -> int:
        """A descriptor of the directory holding parts[-1], made if missing."""
        from rootless.kernel.paths import mkdirs_in_root

        key = "/".join(parts[:-1])
        fd = self.cache.get(key)
        if fd is None:
            try:
                fd = mkdirs_in_root(self.root_fd, key, 0o755) if key else os.dup(self.root_fd)
            except (NotADirectoryError, FileExistsError):
                raise ImageError(f"{self.what}: entry {'/'.join(parts)!r} is under "
                                 f"{key!r}, which is not a directory") from None
            self.cache[key] = fd
        return fd

    def _forget_dirs(self, keep: int = -1) -> None:
        """Close cached descriptors (all but `keep`, the directory being worked in:
        removing one of its entries cannot move it, but may move any other)."""
        kept = {k: fd for k, fd in self.cache.items() if fd == keep}
        for fd in self.cache.values():
            if fd != keep:
                os.close(fd)
        self.cache = kept

    def _clear(self, dirfd: int, name: str, keep_dir: bool = False) -> bool:
        """Make room for a new entry `name`; True if an existing directory was kept."""
        from rootless.kernel.remove import remove_at

        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self._forget_dirs(keep=dirfd)  # others may point into what goes
            remove_at(dirfd, name)  # shutil.rmtree recurses: RecursionError when deep
        else:
            self._forget_dirs(keep=dirfd)
            os.unlink(name, dir_fd=dirfd)
        return False

    # ---- entries ----

    def entry_checked(self, tar, member) -> None:
        """entry(), with the errors an entry itself causes (a symlink loop, a name too
        long, an empty symlink target) blamed on the layer, not on the store."""
        try:
            self.entry(tar, member)
        except OSError as e:
            if e.errno not in _ENTRY_ERRNOS:
                raise
            raise ImageError(f"{self.what}: entry {member.name!r} cannot be unpacked: "
                             f"{os.strerror(e.errno).lower()}: refused") from None

    def entry(self, tar, member) -> None:
        self.guard.entry()
        parts = clean_name(member.name, self.what)
        if not parts:
            return  # the layer root itself: its metadata is not the image's to set
        if len(self.cache) >= _MAX_CACHED_DIRS:
            self._forget_dirs()  # only here: below, callers hold descriptors from it
        dirfd = self._parent(parts)
        name = parts[-1]
        path = "/".join(parts)
        self.file_caps.pop(path, None)  # a later entry replaces the file
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(dirfd, name, path)
        elif member.isreg():
            self._regular(tar, member, dirfd, name, path)
        elif member.isdir():
            if not self._clear(dirfd, name, keep_dir=True):
                os.mkdir(name, 0o700, dir_fd=dirfd)
            self.dirs[path] = (member.mode, member.uid, member.gid, member.mtime)
        elif member.issym():
            self._clear(dirfd, name)
            os.symlink(member.linkname, name, dir_fd=dirfd)
            if self.ids is not None:
                uid, gid, _, _ = self._owner(path, member.uid, member.gid, 0o777)
                if uid or gid:  # lchown(2): a symlink is never followed
                    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
            _set_times(name, dirfd, member.mtime)
        elif member.islnk():
            self._hardlink(member, dirfd, name, parts)
        elif member.ischr() or member.isblk():
            self._device(member, dirfd, name, path)
        elif member.isfifo():
            self._clear(dirfd, name)
            os.mkfifo(name, member.mode & 0o777 & ~_SETID, dir_fd=dirfd)
            if self.ids is not None:
                self._fifo_owner(dirfd, name, path, member)
            _set_times(name, dirfd, member.mtime)
        else:
            raise ImageError(f"{self.what}: entry {member.name!r} has unsupported tar type "
                             f"{member.type!r}: refused")

    def _regular(self, tar, member, dirfd: int, name: str, path: str) -> None:
        self._clear(dirfd, name)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        try:
            if member.sparse is not None:
                from rootless.image.layer_tar import write_sparse

                write_sparse(tar, member, fd, self.guard, self.what)
            else:
                source = tar.extractfile(member)
                with open(fd, "wb", closefd=False, buffering=0) as out:
                    while chunk := source.read(1 << 20):
                        self.guard.charge(len(chunk))
                        out.write(chunk)
            self.size += member.size
            self._set_meta(fd, path, member.mode, member.uid, member.gid, member.mtime)
            cap = member.pax_headers.get(CAPABILITY_PAX)
            if cap:
                value = cap if isinstance(cap, bytes) else cap.encode("utf-8",
                                                                      "surrogateescape")
                if self.ids is None:
                    self.file_caps[path] = value
                else:  # root here is the user: the kernel stores a v3 value for it
                    os.setxattr(fd, CAPABILITY_XATTR, value)
        finally:
            os.close(fd)

    def _device(self, member, dirfd: int, name: str, path: str) -> None:
        kind = "char" if member.ischr() else "block"
        self._clear(dirfd, name)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        try:
            self._set_meta(fd, path, member.mode, member.uid, member.gid, member.mtime,
                           f"{kind}-{member.devmajor}-{member.devminor}")
        finally:
            os.close(fd)

    def _hardlink(self, member, dirfd: int, name: str, parts: list[str]) -> None:
        target = clean_name(member.linkname, self.what, f"{member.name} -> "
                            f"{member.linkname}")
        if target == parts:
            return
        refused = f"{self.what}: hardlink {member.name!r} -> {member.linkname!r}"
        if not target:
            raise ImageError(f"{refused} names the layer root: refused")
        try:
            tdir = self._parent(target)
            st = os.stat(target[-1], dir_fd=tdir, follow_symlinks=False)
        except (FileNotFoundError, ImageError):
            raise ImageError(f"{refused}: the target is not in this layer: refused") from None
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{refused}: the target is a directory: refused")
        self._clear(dirfd, name)
        tdir = self._parent(target)  # _clear may have dropped cached descriptors
        try:
            os.link(target[-1], name, src_dir_fd=tdir, dst_dir_fd=dirfd,
                    follow_symlinks=False)
        except FileNotFoundError:
            raise ImageError(f"{refused}: the target is not in this layer: refused") from None

    def _whiteout(self, dirfd: int, name: str, path: str) -> None:
        if name == OPAQUE_MARKER:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dirfd)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
                return
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
            finally:
                os.close(fd)
            self._aufs_marker(dirfd, name)
            return
        if name.startswith(WHITEOUT_PREFIX * 2):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise ImageError(f"{self.what}: whiteout {path!r} names no entry: refused")
        try:
            os.stat(hidden, dir_fd=dirfd, follow_symlinks=False)
            return  # this layer has its own `hidden`: the whiteout only hid lower ones
        except FileNotFoundError:
            pass
        from rootless.kernel.syscalls import RealSyscalls  # EPERM under a floor < 5.8

        try:
            RealSyscalls().mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dirfd)
        except PermissionError:
            self._aufs_marker(dirfd, name)

    def _aufs_marker(self, dirfd: int, name: str) -> None:
        self._clear(dirfd, name)
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dirfd))

    # ---- metadata ----

    def _set_meta(self, fd: int, path: str, mode: int, uid: int, gid: int, mtime,
                  kind: str = "", is_dir: bool = False) -> None:
        if self.ids is not None:
            self._set_owner(fd, path, mode, uid, gid, kind)
        else:
            # setgid on a directory only makes new entries inherit its group: kept
            disk = mode & 0o7777 & ~(stat.S_ISUID if is_dir else _SETID)
            if uid != 0 or gid != 0 or disk != mode & 0o7777 or kind:
                # before the mode: a user xattr needs write permission, even the
                # owner's (a 0000 file of group shadow, say)
                self._setxattr(fd, path, OVERRIDE_XATTR,
                               override_value(uid, gid, mode, kind))
            os.fchmod(fd, disk)
        _set_times(fd, None, mtime)

    def _set_owner(self, fd: int, path: str, mode: int, uid: int, gid: int,
                   kind: str) -> None:
        """The tar's owner and mode, for real (storage namespace). A device keeps its
        record (no device node can be made here); so does a squashed owner."""
        disk_uid, disk_gid, disk_mode, squashed = self._owner(path, uid, gid, mode)
        if disk_uid or disk_gid:  # made by root here: 0:0 already
            os.fchown(fd, disk_uid, disk_gid)
        os.fchmod(fd, disk_mode)  # after the chown, which clears setuid/setgid
        if kind or squashed:
            self._setxattr(fd, path, OVERRIDE_XATTR, override_value(uid, gid, mode, kind))

    def _owner(self, path: str, uid: int, gid: int, mode: int) -> tuple[int, int, int, bool]:
        """(uid, gid, mode) to give an entry in the storage namespace, and whether its
        owner was squashed; refuses an owner the namespace cannot map."""
        mode &= 0o7777
        if self.ids.mapped(uid, gid):
            return uid, gid, mode, False
        if not self.ids.squash:
            raise ImageError(f"{self.what}: potentially insufficient UIDs or GIDs available "
                             f"in user namespace (requested {uid}:{gid} for /{path}): check "
                             "/etc/subuid and /etc/subgid (or --storage-opt "
                             "ignore_chown_errors=true)")
        return (*self.ids.squashed(uid, gid), mode & ~_SETID, True)

    def _fifo_owner(self, dirfd: int, name: str, path: str, member) -> None:
        """A fifo's owner and mode, through an O_PATH descriptor of what mkfifo made
        (chmod(2) has no "do not follow"; the descriptor's /proc link is the inode)."""
        uid, gid, mode, _ = self._owner(path, member.uid, member.gid, member.mode)
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise ImageError(f"{self.what}: entry {path!r} changed while unpacked")
            link = f"/proc/self/fd/{fd}"
            if uid or gid:
                os.chown(link, uid, gid)
            os.chmod(link, mode)
        finally:
            os.close(fd)

    def _setxattr(self, fd: int, path: str, name: str, value: str) -> None:
        try:
            os.setxattr(fd, name, value.encode())
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            self.unapplied.setdefault(path, {})[name] = value

    def finish(self) -> None:
        """Directory modes, ownership records and times, deepest first."""
        from rootless.kernel.paths import open_in_root

        self._forget_dirs()
        for path in sorted(self.dirs, key=lambda p: p.count("/"), reverse=True):
            mode, uid, gid, mtime = self.dirs[path]
            try:
                fd = open_in_root(self.root_fd, path,
                                  os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                # replaced by a later entry, or reached (through a symlink) only via a
                # directory already made unsearchable: left as unpacked
                continue
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                continue
            try:
                self._set_meta(fd, path, mode, uid, gid, mtime, is_dir=True)
            finally:
                os.close(fd)
        os.fchmod(self.root_fd, 0o755)


def _set_times(target, dirfd: int | None, mtime) -> None:
    try:
        ns = int(float(mtime) * 1_000_000_000)
        if dirfd is None:
            os.utime(target, ns=(ns, ns))
        else:
            os.utime(target, ns=(ns, ns), dir_fd=dirfd, follow_symlinks=False)
    except (OverflowError, ValueError, OSError):
        pass  # a time the filesystem cannot hold is not worth failing the layer
