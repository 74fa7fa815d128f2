"""How a container's root filesystem is made: kernel overlayfs, our FUSE overlay, or a
private copy.

Kernel overlayfs may be mounted inside a user namespace since Linux 5.11 (with the
`userxattr` option); it is the default. Our FUSE overlay (fs/fuse_*.py) serves the same
directories where the kernel's cannot (RHEL 8 class kernels, filesystems that refuse
it) and, in single-id mode, where the files' recorded owners matter. Where neither
mounts, the container gets a copy of the layers, with whiteouts applied. The choice is
automatic (fs/strategy.py) and `rootless system info` says which was made and why;
ROOTLESS_ROOTFS=overlay|fuse|copy forces one (tests use it to cover every path).
"""

from __future__ import annotations

import errno
import os
import stat

# the choice lives in fs/strategy.py (re-exported: engine/run.py, engine/info.py)
from rootless.fs.strategy import Strategy, choose_strategy  # noqa: F401
from rootless.kernel.paths import AUFS_OPAQUE, AUFS_WHITEOUT, OPAQUE_XATTR
from rootless.records import record


@record
class RootfsDirs:
    merged: str
    upper: str
    work: str


def container_dirs(container_dir: str | os.PathLike) -> RootfsDirs:
    return RootfsDirs(*(os.path.join(container_dir, name)
                        for name in ("rootfs", "upper", "work")))


def prepare(container_dir: str | os.PathLike, layer_dirs: list[str],
            strategy: Strategy) -> RootfsDirs:
    dirs = container_dirs(container_dir)
    for d in (dirs.merged, dirs.upper, dirs.work):
        try:
            os.mkdir(d, mode=0o755)
        except FileExistsError:
            pass
    if strategy.name == "copy":
        for layer in layer_dirs:
            copy_layer(layer, dirs.merged)
    return dirs


def copy_layer(layer: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Apply one extracted layer onto `dest`, as overlayfs would show it: whiteouts
    (char 0:0, or the AUFS `.wh.NAME` files kept where mknod was refused) delete, opaque
    directories (xattr, or `.wh..wh..opq`) hide what lower layers had there.

    Iterative, with paths relative to descriptors of the two roots: a layer may be
    deeper than Python's recursion limit (os.walk recurses in 3.11), and its paths
    longer than PATH_MAX once the store's own prefix is put in front."""
    src = os.open(layer, _DIR)
    try:
        dst = os.open(dest, _DIR)
        try:
            copy_layer_at(src, dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def copy_layer_at(src: int, dst: int) -> None:
    """copy_layer between two directory descriptors (O_PATH ones will do): a directory
    the in-root resolver found inside a layer is copied without a path ever naming it."""
    src = os.open(".", _DIR, dir_fd=src)
    try:
        dst = os.open(".", _DIR, dir_fd=dst)
        try:
            locked = _open_locked_dirs(src)
            try:
                _copy_tree(src, dst, dict(locked))
            finally:
                for rel, mode in reversed(locked):
                    os.chmod(_at(rel), mode, dir_fd=src)
        finally:
            os.close(dst)
    finally:
        os.close(src)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _at(rel: str) -> str:
    return rel or "."


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _entries(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as entries:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]


def _open_locked_dirs(src: int) -> list[tuple[str, int]]:
    """Our own directories of mode 000 or 0444 cannot be walked: open them up for the
    copy, returning what to restore."""
    changed, stack = [], [""]
    while stack:
        rel = stack.pop()
        mode = stat.S_IMODE(os.stat(_at(rel), dir_fd=src, follow_symlinks=False).st_mode)
        if mode & 0o500 != 0o500:
            os.chmod(_at(rel), mode | 0o500, dir_fd=src)
            changed.append((rel, mode))
        fd = os.open(_at(rel), _DIR, dir_fd=src)
        try:
            stack += [_join(rel, name) for name, is_dir in _entries(fd) if is_dir]
        finally:
            os.close(fd)
    return changed


def _copy_tree(src: int, dst: int, locked: dict[str, int]) -> None:
    done = []
    stack = [""]
    while stack:
        rel = stack.pop()
        sfd = os.open(_at(rel), _DIR, dir_fd=src)
        try:
            entries = _entries(sfd)
            _make_dir(dst, rel, bool(rel) and _is_opaque(sfd, entries))
            dfd = os.open(_at(rel), _DIR, dir_fd=dst)
            try:
                for name, is_dir in entries:
                    if is_dir:
                        stack.append(_join(rel, name))
                    elif name.startswith(AUFS_WHITEOUT):
                        if name != AUFS_OPAQUE:
                            _remove(dfd, name[len(AUFS_WHITEOUT):])
                    else:
                        _copy_entry(sfd, dfd, name)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        done.append(rel)
    # directory modes and times last, deepest first, so read-only ones could be filled
    for rel in sorted(done, key=lambda r: r.count("/") + 1 if r else 0, reverse=True):
        _copy_dir_meta(src, dst, rel, locked.get(rel))


def _make_dir(dst: int, rel: str, opaque: bool) -> None:
    """Make `rel` in the copy a real directory we may fill: a non-directory (a symlink
    of a lower layer) there goes, and so does a directory this layer makes opaque."""
    parent, _, name = rel.rpartition("/")
    pfd = os.open(_at(parent), _DIR, dir_fd=dst)
    try:
        name = name or "."
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and rel and (opaque or not stat.S_ISDIR(st.st_mode)):
            _remove(pfd, name)
            st = None
        if st is None:
            os.mkdir(name, 0o700, dir_fd=pfd)
        else:  # root in the container could write into it; so may the copy
            os.chmod(name, stat.S_IMODE(st.st_mode) | stat.S_IRWXU, dir_fd=pfd)
    finally:
        os.close(pfd)


def _copy_entry(sfd: int, dfd: int, name: str) -> None:
    st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
    _remove(dfd, name)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
        _copy_owner(name, st, dfd)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(name, stat.S_IMODE(st.st_mode), dir_fd=dfd)
        _copy_owner(name, st, dfd)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(sfd, dfd, name, st)


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    """Files of mode 000 are ours: readable for the copy, their mode restored after."""
    mode = stat.S_IMODE(st.st_mode)
    unreadable = not mode & stat.S_IRUSR
    if unreadable:
        os.chmod(name, mode | stat.S_IRUSR, dir_fd=sfd)  # a regular file of ours
    try:
        fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    finally:
        if unreadable:
            os.chmod(name, mode, dir_fd=sfd)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            _copy_data(fin, fout, st)
            _copy_meta(fin, fout, mode, st)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_data(fin: int, fout: int, st: os.stat_result) -> None:
    """The file's data; holes stay holes. A layer may hold a sparse file that declares
    16 GiB in a few blocks (image/layer_tar.py writes them so): copied densely, every
    container of the image would write all of it (lseek(2): SEEK_DATA/SEEK_HOLE)."""
    segments = [(0, st.st_size)]
    if st.st_blocks * 512 < st.st_size:
        segments = _data_segments(fin, st.st_size)
    for start, end in segments:
        os.lseek(fout, start, os.SEEK_SET)
        offset = start
        while offset < end and (sent := os.sendfile(fout, fin, offset, end - offset)):
            offset += sent
    os.ftruncate(fout, st.st_size)


def _data_segments(fd: int, size: int) -> list[tuple[int, int]]:
    segments, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        segments.append((start, end))
        offset = end
    return segments


def _copy_dir_meta(src: int, dst: int, rel: str, mode: int | None) -> None:
    """A directory's xattrs, mode (its own, not the one opened up for the copy) and
    times."""
    sfd = os.open(_at(rel), _DIR, dir_fd=src)
    try:
        dfd = os.open(_at(rel), _DIR, dir_fd=dst)
        try:
            st = os.fstat(sfd)
            _copy_meta(sfd, dfd, stat.S_IMODE(st.st_mode) if mode is None else mode, st)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_meta(fin: int, fout: int, mode: int, st: os.stat_result) -> None:
    """xattrs (the ownership records among them), mode and times, as shutil.copystat
    does, but on descriptors."""
    try:
        names = os.listxattr(fin)
    except OSError:
        names = []
    for xattr in names:
        try:
            os.setxattr(fout, xattr, os.getxattr(fin, xattr))
        except OSError:
            pass  # security.* and trusted.* are not ours to set; shutil skips them too
    _copy_owner(fout, st)
    os.fchmod(fout, mode)  # after the chown, which clears setuid/setgid
    os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_owner(target: int | str, st: os.stat_result, dir_fd: int | None = None) -> None:
    """The owner, where the copy runs as root of the storage namespace (layers of a
    subordinate range, kernel/storage_ns.py: the copy must show them as overlayfs
    would); elsewhere every file is the user's own, and stays so."""
    if os.geteuid() != 0 or (st.st_uid == 0 and st.st_gid == 0):
        return
    try:
        if isinstance(target, int):
            os.fchown(target, st.st_uid, st.st_gid)
        else:
            os.chown(target, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EPERM):  # an id the namespace lacks
            raise


def _remove(dir_fd: int, name: str) -> None:
    from rootless.kernel.remove import remove_at

    remove_at(dir_fd, name)


def _is_opaque(fd: int, entries: list[tuple[str, bool]]) -> bool:
    if any(name == AUFS_OPAQUE for name, _ in entries):
        return True
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False
