"""The tar streams of `cp` (engine/container_cp.py): a tree read by descriptors and
written as a tar, and a tar extracted below one directory. All tar work is ours; the
container's own tar, shell or libraries never run (docker's CVE-2019-14271).

Writing (TarWriter): the top entry is an O_PATH descriptor the in-root resolver gave;
everything below it is opened relative to its directory's descriptor with O_NOFOLLOW,
so a symlink is written as a symlink and never entered, whatever the container renames
meanwhile (docker's CVE-2018-15664). A regular file is read through its own descriptor
(kernel/paths.open_regular), and exactly the size its header declares is written (a
file that shrank is padded with zeros, one that grew is cut), so the stream stays valid
while a running container writes to it. FIFOs, devices and sockets are never opened:
the first two become tar entries, sockets are left out (a tar cannot hold one, and
docker's archive skips them too). Directories on the filesystems in `skip_devs` (the
container's /proc, /sys, devpts, mqueue, cgroup) are written empty. Owners and modes are
what the reader sees; in a container, an ownership record (user.containers.
override_stat, single-id mode's owners) stands for the owner the kernel shows, as in
`export`. Hardlinks within the tree become links to the first name of the inode.

Extracting (Extractor): every member is resolved with the in-root resolver
(kernel/paths.py) with the destination DIRECTORY as the root, so no name (`../x`, an
absolute one, or one through a symlink the archive made first) reaches outside it; a
leading `/` is dropped and a `..` that climbs above the directory is refused, as in a
layer (image/layers.py). Headers are read bounded (image/layer_tar.BoundedInfo), the
stream is never given to tarfile.extractall. Rules, as docker's untar for cp:
- a directory never replaces a non-directory, nor the other way round (moby's
  NoOverwriteDirNonDir): "cannot overwrite ...";
- a file, symlink, FIFO or hardlink is made under a temporary name and renamed over
  the old entry, which is replaced, never followed or written through;
- a hardlink must name an earlier non-directory of the same archive;
- device nodes are skipped: no user namespace may make one (moby skips them there too);
- directory modes, owners and times are applied last, deepest first, so a read-only
  directory can still be filled; the destination directory's own are left alone.
Owners: with `chown` (cp -a into a container) the archive's ids, and where the
namespace cannot hold one (single-id mode maps one id), an override_stat record; else
the files belong to whoever extracts (the container's root, or the user on the host).
On the host (`host`), setuid and setgid bits are dropped from what a container sent.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, NamedTuple

from rootless.errors import RootlessError

BLOCK = 512
_CHUNK = 1 << 20
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SETID = stat.S_ISUID | stat.S_ISGID


class CopyError(RootlessError):
    """A `cp` failure: one line; the CLI exits 1 for it, as docker's does for cp."""


# ---- writing ----

class TarWriter:
    """Write trees as one tar stream to the descriptor `out`."""

    def __init__(self, out: int, records: bool, skip_devs: frozenset[int] = frozenset()):
        self.out = out
        self.records = records  # read ownership records (a container's tree)
        self.skip_devs = skip_devs
        self.links: dict[tuple[int, int], str] = {}
        self.size = 0  # bytes of regular files written
        _more_descriptors()

    def tree(self, fd: int, name: str) -> None:
        """The entry behind `fd` (an O_PATH descriptor, its symlink not followed) as
        `name` ("." for a directory's contents alone), and all below it."""
        st = os.fstat(fd)
        self._entry(fd, st, name)
        if not stat.S_ISDIR(st.st_mode) or st.st_dev in self.skip_devs:
            return
        # a stack of (directory, its name in the tar, the names still to write): one
        # descriptor per level, never a path string below the top
        top = os.open(".", _DIR, dir_fd=fd)
        stack = [(top, name, _listing(top))]
        try:
            while stack:
                dir_fd, path, names = stack[-1]
                if not names:
                    os.close(dir_fd)
                    stack.pop()
                    continue
                below = self._child(dir_fd, names.pop(), path)
                if below is not None:
                    stack.append(below)
        finally:
            for dir_fd, _, _ in stack:
                os.close(dir_fd)

    def finish(self) -> None:
        _write_all(self.out, bytes(2 * BLOCK))

    def _child(self, dir_fd: int, name: str, parent: str):
        try:
            fd = os.open(name, _PATH, dir_fd=dir_fd)
        except FileNotFoundError:
            return None  # removed since it was listed (a running container)
        try:
            st = os.fstat(fd)
            path = f"{parent}/{name}"
            self._entry(fd, st, path)
            if stat.S_ISDIR(st.st_mode) and st.st_dev not in self.skip_devs:
                sub = os.open(".", _DIR, dir_fd=fd)
                return sub, path, _listing(sub)
            return None
        finally:
            os.close(fd)

    def _entry(self, fd: int, st: os.stat_result, path: str) -> None:
        import tarfile

        kind, mode, uid, gid, rdev = self._meta(fd, st)
        info = tarfile.TarInfo(path)
        info.mode, info.uid, info.gid, info.uname, info.gname = mode, uid, gid, "", ""
        info.mtime = int(st.st_mtime)
        if kind == stat.S_IFDIR:
            info.type, info.name = tarfile.DIRTYPE, path.rstrip("/") + "/"
        elif kind == stat.S_IFLNK:
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink("", dir_fd=fd)
        elif kind in _SPECIAL_TYPES:
            info.type = _SPECIAL_TYPES[kind]
            info.devmajor, info.devminor = rdev
        elif kind == stat.S_IFREG:
            self._regular(fd, st, info)
            return
        else:
            return  # a socket
        self._header(info)

    def _meta(self, fd: int, st: os.stat_result) -> tuple[int, int, int, int, tuple]:
        if self.records and (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            from rootless.engine.container_tree import entry_meta

            meta = entry_meta(st, _override(fd))
            return meta.kind, meta.mode, meta.uid, meta.gid, meta.rdev
        kind = stat.S_IFMT(st.st_mode)
        rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        return kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, rdev

    def _regular(self, fd: int, st: os.stat_result, info) -> None:
        import tarfile

        from rootless.kernel.paths import open_regular

        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
            self._header(info)
            return
        rfd = open_regular(fd)
        try:
            size = os.fstat(rfd).st_size
            info.size = size
            self._header(info)
            if st.st_nlink > 1:
                self.links.setdefault(key, info.name)
            left = size
            while left:
                chunk = os.read(rfd, min(left, _CHUNK)) or bytes(min(left, _CHUNK))
                _write_all(self.out, chunk)
                left -= len(chunk)
        finally:
            os.close(rfd)
        _write_all(self.out, bytes(-size % BLOCK))
        self.size += size

    def _header(self, info) -> None:
        import tarfile

        _write_all(self.out, info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))


def _more_descriptors() -> None:
    """The walk holds one descriptor per level of depth: the soft RLIMIT_NOFILE (often
    1024) is raised to the hard one, so a deep tree does not run out of them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


def _special_types() -> dict[int, bytes]:
    import tarfile

    return {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
            stat.S_IFIFO: tarfile.FIFOTYPE}


_SPECIAL_TYPES = _special_types()


def _listing(dir_fd: int) -> list[str]:
    return sorted(os.listdir(dir_fd), reverse=True)  # popped from the end: in order


def _override(fd: int) -> str | None:
    from rootless.image.layers import OVERRIDE_XATTR

    try:  # fgetxattr(2) refuses O_PATH descriptors (EBADF); their /proc link does not
        value = os.getxattr(f"/proc/self/fd/{fd}", OVERRIDE_XATTR)
    except OSError:
        return None
    return value[:256].decode("ascii", "replace")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- extracting ----

class _Dir(NamedTuple):
    path: str
    mode: int
    uid: int
    gid: int
    mtime: float


class _NoLimit:
    """The space guard image/layer_tar.write_sparse charges: a copy is not bounded."""

    def charge(self, size: int) -> None:
        pass


class Extractor:
    """Extract a tar below the directory `root_fd` (an O_PATH descriptor), which is
    the root of every name in it. `shown` names that directory in messages."""

    def __init__(self, root_fd: int, shown: str, *, chown: bool = False,
                 host: bool = False, rebase: tuple[str, str] | None = None,
                 own_root: bool = False) -> None:
        self.root, self.shown, self.chown, self.host = root_fd, shown, chown, host
        # the archive's `.` entry gives the destination its mode and owner (ADD of a tar,
        # as moby's Untar; `cp` leaves the destination as it is)
        self.own_root = own_root
        self.rebase = None if rebase is None or rebase[0] == rebase[1] else rebase
        self.files: set[str] = set()  # non-directories made: hardlink targets
        self.dirs: list[_Dir] = []
        self.size = 0

    def run(self, stream: BinaryIO) -> None:
        import tarfile

        from rootless.image.layer_tar import BoundedInfo

        try:
            with tarfile.open(fileobj=stream, mode="r|*", tarinfo=BoundedInfo,
                              errorlevel=2) as tar:
                while (member := tar.next()) is not None:
                    tar.members.clear()  # a stream-mode TarFile keeps every header
                    self._member(tar, member)
        except tarfile.TarError as e:
            raise CopyError(f"invalid tar archive: {e}") from None
        except EOFError:
            raise CopyError("invalid tar archive: unexpected end of data") from None
        self._finish()

    def _member(self, tar, member) -> None:
        path = self._path(member.name)
        try:
            if member.isdir():
                self._dir(member, path)
            elif member.isreg():
                self._regular(tar, member, path)
            elif member.issym() or member.isfifo():
                self._special(member, path)
            elif member.islnk():
                self._hardlink(member, path)
            elif not (member.ischr() or member.isblk()):
                raise CopyError(f"{self._show(path)}: unsupported tar entry type "
                                f"{member.type!r}")
        except CopyError:
            raise
        except OSError as e:
            raise CopyError(f"cannot write {self._show(path)}: "
                            f"{os.strerror(e.errno).lower() if e.errno else e}") from None

    def _path(self, name: str) -> str:
        """The member's place below the root, after the rebase: "" is the root."""
        parts: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise CopyError(f"invalid tar archive: {name!r} climbs above "
                                    f"{self.shown} with '..': refused")
                parts.pop()
            else:
                parts.append(part)
        if self.rebase is not None:
            old, new = self.rebase
            if old == ".":
                parts.insert(0, new)
            elif parts[:1] == [old]:
                parts[0] = new
        return "/".join(parts)

    def _show(self, path: str) -> str:
        return f"{self.shown.rstrip('/')}/{path}" if path else self.shown

    def _parent(self, path: str) -> tuple[int, str]:
        from rootless.kernel.paths import parent_fd_in_root

        return parent_fd_in_root(self.root, path, create=True)

    def _clear(self, dir_fd: int, name: str, path: str, is_dir: bool) -> bool:
        """True if `name` is a directory already; refuses a directory for a
        non-directory and the other way round."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode) and not is_dir:
            raise CopyError(f"cannot overwrite directory {self._show(path)} with a "
                            "non-directory")
        if is_dir and not stat.S_ISDIR(st.st_mode):
            raise CopyError(f"cannot overwrite non-directory {self._show(path)} with a "
                            "directory")
        return stat.S_ISDIR(st.st_mode)

    def _dir(self, member, path: str) -> None:
        if not path:  # the destination itself: its mode and owner are not the archive's
            if self.own_root:
                self.dirs.append(_Dir(".", member.mode, member.uid, member.gid, member.mtime))
            return
        dir_fd, name = self._parent(path)
        try:
            if not self._clear(dir_fd, name, path, True):
                os.mkdir(name, 0o700, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        self.dirs.append(_Dir(path, member.mode, member.uid, member.gid, member.mtime))

    def _regular(self, tar, member, path: str) -> None:
        if not path:
            raise CopyError(f"cannot overwrite directory {self.shown} with a non-directory")
        dir_fd, name = self._parent(path)
        try:
            self._clear(dir_fd, name, path, False)
            tmp = _temp_name()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            try:
                try:
                    self._data(tar, member, fd)
                    self._set_meta(fd, member.mode, member.uid, member.gid, member.mtime)
                finally:
                    os.close(fd)
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                _unlink_quietly(dir_fd, tmp)
                raise
        finally:
            os.close(dir_fd)
        self.files.add(path)
        self.size += member.size

    def _data(self, tar, member, fd: int) -> None:
        if member.sparse is not None:
            from rootless.image.layer_tar import write_sparse

            try:
                write_sparse(tar, member, fd, _NoLimit(), "the archive")
            except RootlessError as e:
                raise CopyError(str(e)) from None
            return
        source = tar.extractfile(member)
        while chunk := source.read(_CHUNK):
            _write_all(fd, chunk)

    def _special(self, member, path: str) -> None:
        """A symlink (its target kept as text, never followed here) or a FIFO."""
        if not path:
            raise CopyError(f"cannot overwrite directory {self.shown} with a non-directory")
        dir_fd, name = self._parent(path)
        try:
            self._clear(dir_fd, name, path, False)
            tmp = _temp_name()
            if member.issym():
                os.symlink(member.linkname, tmp, dir_fd=dir_fd)
            else:
                os.mkfifo(tmp, 0o600, dir_fd=dir_fd)
            try:
                self._special_meta(dir_fd, tmp, member)
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                _unlink_quietly(dir_fd, tmp)
                raise
        finally:
            os.close(dir_fd)
        self.files.add(path)

    def _special_meta(self, dir_fd: int, tmp: str, member) -> None:
        if self.chown:
            try:
                os.chown(tmp, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EPERM):
                    raise  # an id the namespace cannot hold: no record fits a link
        if member.isfifo():
            # chmod(2) by name would follow a symlink swapped in for the FIFO (the
            # container can list this directory): set it through our own descriptor
            fd = os.open(tmp, _PATH, dir_fd=dir_fd)
            try:
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    raise OSError(errno.ESTALE, "replaced while being made")
                os.chmod(f"/proc/self/fd/{fd}", self._mode(member.mode, False))
            finally:
                os.close(fd)
        _set_times(tmp, dir_fd, member.mtime)

    def _hardlink(self, member, path: str) -> None:
        target = self._path(member.linkname)
        if target == path:
            return
        if target not in self.files:
            raise CopyError(f"invalid tar archive: hardlink {member.name!r} -> "
                            f"{member.linkname!r}: the target is not an earlier file of "
                            "the archive")
        if not path:
            raise CopyError(f"cannot overwrite directory {self.shown} with a non-directory")
        target_fd, target_name = self._parent(target)
        try:
            dir_fd, name = self._parent(path)
            try:
                self._clear(dir_fd, name, path, False)
                tmp = _temp_name()
                os.link(target_name, tmp, src_dir_fd=target_fd, dst_dir_fd=dir_fd,
                        follow_symlinks=False)
                try:
                    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except BaseException:
                    _unlink_quietly(dir_fd, tmp)
                    raise
            finally:
                os.close(dir_fd)
        finally:
            os.close(target_fd)
        self.files.add(path)

    def _mode(self, mode: int, is_dir: bool) -> int:
        mode &= 0o7777
        if self.host:  # a container's setuid file must not become one of the user's
            mode &= ~(stat.S_ISUID if is_dir else _SETID)
        return mode

    def _set_meta(self, fd: int, mode: int, uid: int, gid: int, mtime,
                  is_dir: bool = False) -> None:
        mode = self._mode(mode, is_dir)
        if self.chown:  # before the mode: chown(2) clears setuid and setgid bits
            _chown_or_record(fd, uid, gid, mode)
        os.fchmod(fd, mode)
        _set_times(fd, None, mtime)

    def _finish(self) -> None:
        from rootless.kernel.paths import open_in_root

        for entry in sorted(self.dirs, key=lambda d: d.path.count("/"), reverse=True):
            try:
                fd = open_in_root(self.root, entry.path, _DIR)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue  # replaced by a later member
                raise CopyError(f"cannot write {self._show(entry.path)}: "
                                f"{os.strerror(e.errno).lower()}") from None
            try:
                self._set_meta(fd, entry.mode, entry.uid, entry.gid, entry.mtime, True)
            finally:
                os.close(fd)


def _chown_or_record(fd: int, uid: int, gid: int, mode: int) -> None:
    """The archive's owner; where the user namespace has no such id (single-id mode
    maps one), the owner is recorded as single-id mode records it (override_stat)."""
    from rootless.image.layers import OVERRIDE_XATTR, override_value
    from rootless.kernel.idmap import valid_id

    if not (valid_id(uid) and valid_id(gid)):  # never -1: "leave unchanged" to chown(2)
        raise CopyError(f"invalid owner {uid}:{gid} in the archive")
    try:
        os.fchown(fd, uid, gid)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EPERM):
            raise
    else:
        try:  # an existing directory's old record would name another owner
            os.removexattr(fd, OVERRIDE_XATTR)
        except OSError:
            pass
        return
    try:
        os.setxattr(fd, OVERRIDE_XATTR, override_value(uid, gid, mode).encode())
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise


def _set_times(target, dir_fd: int | None, mtime) -> None:
    try:
        ns = int(float(mtime) * 1_000_000_000)
        if dir_fd is None:
            os.utime(target, ns=(ns, ns))
        else:
            os.utime(target, ns=(ns, ns), dir_fd=dir_fd, follow_symlinks=False)
    except (OverflowError, ValueError, OSError):
        pass  # a time the filesystem cannot hold is not worth failing the copy


def _temp_name() -> str:
    return f".rootless-cp-{os.urandom(8).hex()}"


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
