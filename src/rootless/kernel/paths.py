"""Safe path resolution inside a root directory: every path is resolved as if the root
were `/`, the way a process chrooted there would see it, and nothing is ever reached
outside it. This is the ONE resolver (DESIGN.md, principle 7): layer unpacking, the
runtime's mount points and working directory, and the engine's reads of image files
all come here.

Why not `os.path.join(root, path)`: an absolute right-hand side silently drops the left
(`join("/store/layer", "/etc/passwd")` is `/etc/passwd`), `..` climbs out, and a symlink
anywhere along the path (`layer/a -> /etc`) is followed by the host's kernel relative to
the host's `/`. Charliecloud and umoci both learned this the hard way. So paths inside a
root are only ever resolved relative to a descriptor of the root:

- Linux >= 5.6 has openat2(2) with RESOLVE_IN_ROOT: the kernel resolves every component
  (symlinks included) with the dirfd as `/`, and `..` at the root stays there. We add
  RESOLVE_NO_MAGICLINKS so /proc/self/fd/N style links cannot jump anywhere. Callers
  that go through the runtime's `Syscalls` seam pass its `openat2` (so the recording
  double sees the calls); a seam set to an older kernel floor answers ENOSYS, and the
  walk takes over, as it does on such a kernel.
- Elsewhere (older kernels, seccomp profiles that refuse openat2 with ENOSYS or EPERM,
  ROOTLESS_NO_OPENAT2=1) a component walk does the same in user space: each component is
  opened with O_PATH | O_NOFOLLOW relative to the previous one; a symlink is read through
  its own descriptor and its target walked again from the root (absolute) or from the
  current directory (relative), at most MAX_SYMLINKS times; `..` pops the stack of
  directories walked, never past the root. The walk never hands a path string
  containing a symlink to the kernel; it refuses procfs's magic links (/proc/PID/fd/N,
  cwd, root, exe: ELOOP, as RESOLVE_NO_MAGICLINKS) and reads any other link only as
  text resolved in the root.
- The same walk resolves a path in the merged view of overlay layers that are not
  mounted (open_in_layers: the engine reads the image's /etc/passwd before the
  container exists). Each component is looked up in the layers topmost first, as
  overlayfs does (Documentation/filesystems/overlayfs.rst): a whiteout (a 0:0
  character device, or the AUFS `.wh.NAME` file image/layers.py keeps where mknod was
  refused) hides the name in every lower layer; a directory merges with the
  directories of the same name below it, down to the first opaque one
  (user.overlay.opaque=y, or an AUFS `.wh..wh..opq` file) or the first layer where the
  name is not a directory; symlinks are followed in the merged view.

Returned descriptors are O_CLOEXEC and owned by the caller. Functions raise OSError with
the kernel's errno (ENOENT, ENOTDIR, ELOOP, ...); callers turn them into messages.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.kernel.constants import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS

MAX_SYMLINKS = 40  # Linux's own limit (MAXSYMLINKS) on one resolution
OPAQUE_XATTR = "user.overlay.opaque"  # overlayfs with `userxattr` (Linux 5.11)
AUFS_WHITEOUT = ".wh."
AUFS_OPAQUE = ".wh..wh..opq"

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Callable, Sequence

    # openat2(dirfd, path, flags, mode, resolve) -> fd, as Syscalls.openat2 has it
    Openat2 = Callable[[int, str, int, int, int], int]

_O_PATH = os.O_PATH | os.O_CLOEXEC
_IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_openat2_ok: bool | None = None  # None: not probed yet


def use_openat2(enabled: bool | None) -> None:
    """Force the walk (False), force openat2 (True) or probe again (None); for tests.
    ROOTLESS_NO_OPENAT2=1 in the environment forces the walk too."""
    global _openat2_ok
    _openat2_ok = enabled


def has_openat2() -> bool:
    global _openat2_ok
    if _openat2_ok is None:
        _openat2_ok = os.environ.get("ROOTLESS_NO_OPENAT2") != "1" and _probe_openat2()
    return _openat2_ok


def _probe_openat2() -> bool:
    try:
        fd = _openat2(-100, "/", _O_PATH, 0)  # AT_FDCWD
    except OSError as e:
        # ENOSYS: kernel < 5.6; EPERM: a seccomp profile that predates openat2
        return e.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG)
    os.close(fd)
    return True


def _shim_openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    """The real openat2 (through the Syscalls seam's real class, where a kernel floor
    below 5.6 answers ENOSYS, as such a kernel does)."""
    from rootless.kernel.syscalls import RealSyscalls

    return RealSyscalls().openat2(dirfd, path, flags, mode, resolve)


def _openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int = _IN_ROOT,
             call: Openat2 | None = None) -> int:
    call = call or _shim_openat2
    for _ in range(16):
        try:
            return call(dirfd, path, flags | os.O_CLOEXEC, mode, resolve)
        except OSError as e:
            if e.errno != errno.EAGAIN:  # EAGAIN: a concurrent rename raced a `..`
                raise
            last = e
    raise last


def _kernel_open(root_fd: int, path: str, flags: int, mode: int, no_symlinks: bool,
                 call: Openat2 | None) -> int | None:
    """openat2 inside the root; None where the walk must stand in for it."""
    if not has_openat2():
        return None
    resolve = _IN_ROOT | (RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    try:
        return _openat2(root_fd, path or ".", flags, mode, resolve, call)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            return None  # a Syscalls seam set to a kernel floor below 5.6 (DESIGN.md, 8)
        raise


def components(path: str) -> list[str]:
    """`/a//b/./c/` -> ['a', 'b', 'c']; `..` is kept (resolution decides what it means)."""
    return [part for part in path.split("/") if part not in ("", ".")]


# ---- the public helpers ----

def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0, *,
                 no_symlinks: bool = False, openat2: Openat2 | None = None) -> int:
    """open(2) of `path` inside the root. A final symlink is followed (inside the root)
    unless `flags` has O_NOFOLLOW; O_CREAT never creates through a symlink in the walk
    (the final open has O_NOFOLLOW there). `no_symlinks` refuses every symlink on the way
    with ELOOP, as RESOLVE_NO_SYMLINKS does."""
    fd = _kernel_open(root_fd, path, flags, mode, no_symlinks, openat2)
    if fd is not None:
        return fd
    dirfd, name = _walk((root_fd,), path, follow_last=not flags & os.O_NOFOLLOW,
                        no_symlinks=no_symlinks)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def parent_fd_in_root(root_fd: int, path: str, create: bool = False, mode: int = 0o755, *,
                      no_symlinks: bool = False,
                      openat2: Openat2 | None = None) -> tuple[int, str]:
    """(O_PATH descriptor of the directory that holds `path`, its last component),
    resolving every component but the last inside the root; the last is never followed,
    so callers use it with *at calls and AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. With
    `create`, missing parent directories are made (mode `mode`), also where a dangling
    symlink points (inside the root), as `mkdir -p` in a chroot would."""
    parts = components(path)
    if not parts or parts[-1] == "..":
        raise IsADirectoryError(errno.EISDIR, "path names no entry of its own", path)
    parent = "/".join(parts[:-1])
    try:
        fd = _kernel_open(root_fd, parent, _O_PATH | os.O_DIRECTORY, 0, no_symlinks, openat2)
    except FileNotFoundError:
        if not create:
            raise
        fd = None
    if fd is not None:
        return fd, parts[-1]
    dirfd, name = _walk((root_fd,), parent, follow_last=True, create=create, mode=mode,
                        no_symlinks=no_symlinks)
    try:
        if create and name != ".":
            _mkdir_missing(dirfd, name, mode)
        fd = os.open(name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)
    return fd, parts[-1]


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755, *, no_symlinks: bool = False,
                   openat2: Openat2 | None = None) -> int:
    """`mkdir -p` inside the root; returns an O_RDONLY|O_DIRECTORY descriptor of the
    (possibly existing) directory, usable for fchmod, fsetxattr and as a dirfd."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        fd = _kernel_open(root_fd, path, flags, 0, no_symlinks, openat2)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        return fd
    dirfd, name = _walk((root_fd,), path, follow_last=True, create=True, mode=mode,
                        no_symlinks=no_symlinks)
    try:
        if name != ".":
            _mkdir_missing(dirfd, name, mode)
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def open_in_layers(layer_fds: Sequence[int], path: str) -> int:
    """An O_PATH descriptor of `path` as an overlay mount of the layers (descriptors of
    their directories, topmost first, as lowerdir= lists them) would show it, every
    symlink resolved in that merged view as inside a root. ENOENT where a whiteout or an
    opaque directory hides the path. The final entry is never opened for reading here:
    see read_regular."""
    if not layer_fds:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    dirfd, name = _walk(tuple(layer_fds), path, follow_last=True, layered=True)
    try:
        return os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def dirs_in_layers(layer_fds: Sequence[int], path: str) -> list[int]:
    """O_PATH descriptors of the layers' directories that show as the directory `path`
    in their merged view (resolved as open_in_layers resolves it), topmost first, down
    to an opaque one: what a copy of that directory applies, lowest first, with each
    one's whiteouts (a new volume is filled so). ENOTDIR where `path` is no directory."""
    if not layer_fds:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    merged: list[int] = []
    dirfd, _ = _walk(tuple(layer_fds), path, follow_last=True, layered=True,
                     merged_out=merged)
    os.close(dirfd)
    if not merged:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    return merged


def read_regular_path(path: str, limit: int) -> bytes:
    """read_regular of a file the user named on the host (a profile, a label or env
    file): a FIFO, device or socket there is refused without being opened for reading,
    and at most `limit` bytes are read. OSError as read_regular raises it."""
    fd = os.open(path, _O_PATH)
    try:
        return read_regular(fd, limit)
    finally:
        os.close(fd)


def read_regular_at(dir_fd: int | None, name: str, limit: int) -> bytes:
    """read_regular of `name` (under `dir_fd`, or a host path), never through a
    symlink: the last component is opened O_PATH|O_NOFOLLOW, so a link is refused as
    not a regular file. For the runtime's own files (container and pause records)."""
    fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        return read_regular(fd, limit)
    finally:
        os.close(fd)


def read_regular(fd: int, limit: int) -> bytes:
    """The bytes of the regular file behind `fd` (an O_PATH descriptor will do), at most
    `limit` of them. Anything else is refused with EINVAL before it is opened for
    reading: open(2) of a FIFO blocks until a writer comes, of a device runs its driver
    (a tty's may become the caller's controlling terminal). A larger file: EFBIG."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    if st.st_size > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    rfd = open_regular(fd)
    try:
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(rfd, min(limit + 1 - size, 1 << 20))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(rfd)
    if size > limit:  # it grew since the fstat
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    return b"".join(chunks)


def open_regular(fd: int) -> int:
    """A read-only descriptor of the regular file behind `fd` (an O_PATH descriptor
    will do); anything else is refused with EINVAL before it is opened for reading, as
    read_regular refuses it. The caller closes it."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    # openat(2) cannot open a descriptor itself; its /proc/self/fd link reopens the
    # inode the descriptor holds, never a path that could be swapped meanwhile
    rfd = os.open(f"/proc/self/fd/{fd}",
                  os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    again = os.fstat(rfd)
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
        os.close(rfd)
        raise OSError(errno.EINVAL, "not a regular file")
    return rfd


def _mkdir_missing(dirfd: int, name: str, mode: int) -> None:
    """mkdirat, then the exact `mode` (mkdir's is masked by the umask) set through a
    descriptor opened with O_NOFOLLOW, never through a path that could be swapped."""
    try:
        os.mkdir(name, mode, dir_fd=dirfd)
    except FileExistsError:
        return
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


# ---- the walk ----

def _walk(roots: tuple[int, ...], path: str, follow_last: bool, create: bool = False,
          mode: int = 0o755, no_symlinks: bool = False, layered: bool = False,
          merged_out: list[int] | None = None) -> tuple[int, str]:
    """Resolve `path` inside the root in user space: returns (an O_PATH descriptor of the
    directory holding the final entry, the final entry's name), where the name is never
    a symlink that should have been followed, and is "." when the path resolves to a
    directory already walked (the root, or a path ending in `..`). Missing directories
    on the way are created when `create` is set.

    `roots` is one root; or, with `layered`, the layers of an overlay, topmost first.
    Each directory walked is then the list of the layers' directories that merge into
    it, and the descriptor returned is that of the layer holding the final entry."""
    todo = list(reversed(components(path)))
    # the directories below the root, in order; only the deepest _WINDOW levels hold
    # descriptors (a 1500-deep tree would otherwise exhaust RLIMIT_NOFILE), the others
    # are None and are reopened from the root by their names when `..` climbs back
    stack: list[list[int] | None] = []
    names: list[str] = []
    links = 0
    try:
        while todo:
            name = todo.pop()
            here = stack[-1] if stack else roots
            if name == "..":
                if stack:
                    _close_all(stack.pop())
                    names.pop()
                    if stack and stack[-1] is None:
                        stack[-1] = _reopen(roots, names, path, layered)
                continue
            if not todo and not follow_last:
                return _dup_dir(here[0]), name
            found = _lookup(here, name) if layered else _entry(here[0], name)
            if found is None:
                if create and not layered:
                    _mkdir_missing(here[0], name, mode)
                    todo.append(name)
                    continue
                if todo or layered:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                return _dup_dir(here[0]), name  # the final entry may be created by the caller
            level, fd, st = found
            if stat.S_ISLNK(st.st_mode):
                links += 1
                target = _link_target(fd, st, path, no_symlinks or links > MAX_SYMLINKS)
                if target.startswith("/"):
                    while stack:
                        _close_all(stack.pop())
                    names.clear()
                todo.extend(reversed(components(target)))
                continue
            if not todo:
                if merged_out is not None and stat.S_ISDIR(st.st_mode):
                    merged_out.extend(_merged_dir(fd, here[level + 1:], name))
                else:
                    os.close(fd)
                return _dup_dir(here[level]), name
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(_merged_dir(fd, here[level + 1:], name) if layered else [fd])
            names.append(name)
            if len(stack) > _WINDOW:
                _close_all(stack[-_WINDOW - 1])
                stack[-_WINDOW - 1] = None
        last = stack[-1] if stack else roots
        if merged_out is not None:
            merged_out.extend(_dup_dir(fd) for fd in last)
        return _dup_dir(last[0]), "."
    finally:
        for fds in stack:
            _close_all(fds)


_WINDOW = 16  # directory levels the walk keeps open


def _reopen(roots: tuple[int, ...], names: list[str], path: str,
            layered: bool) -> list[int]:
    """The directory at `names` below the root, walked again from the root. Every name
    was a directory when first walked; one that is now anything else (a symlink swapped
    in by a running container) fails the walk rather than being followed."""
    here: Sequence[int] = roots
    try:
        for name in names:
            found = _lookup(here, name) if layered else _entry(here[0], name)
            if found is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            level, fd, st = found
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ESTALE, "a directory changed during the walk", path)
            below = _merged_dir(fd, here[level + 1:], name) if layered else [fd]
            if here is not roots:
                _close_all(list(here))
            here = below
    except BaseException:
        if here is not roots:
            _close_all(list(here))
        raise
    return list(here)


def _link_target(fd: int, st: os.stat_result, path: str, refuse: bool) -> str:
    """The text of the symlink held by `fd` (which this closes), never re-read by name;
    ELOOP when `refuse`, or for a magic link, as RESOLVE_NO_MAGICLINKS does: symlink(2)
    makes every link 0777, and procfs's magic links of other modes (/proc/PID/fd/N:
    0300, 0500, 0700) are the kind runc's CVE-2024-21626 went through; the 0777 ones
    (/proc/PID/cwd, root, exe, ns/*) are told by their filesystem and their text."""
    try:
        if refuse or stat.S_IMODE(st.st_mode) != 0o777:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        text = os.readlink("", dir_fd=fd)
        if _magic_text(text) and _on_procfs(fd):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        return text
    finally:
        os.close(fd)


PROC_SUPER_MAGIC = 0x9FA0  # statfs(2)


def _magic_text(text: str) -> bool:
    """What procfs's magic links read as: an absolute path, "(unreachable)/...", or
    "pipe:[N]", "net:[N]", "anon_inode:..."; its plain links (/proc/self, thread-self,
    mounts, net) read as relative paths."""
    return text.startswith(("/", "(")) or ":" in text


def _on_procfs(fd: int) -> bool:
    from rootless._shim import lib

    return lib.rl_fstatfs_type(fd) == PROC_SUPER_MAGIC


def _entry(dirfd: int, name: str) -> tuple[int, int, os.stat_result] | None:
    try:
        fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
    except FileNotFoundError:
        return None
    return 0, fd, os.fstat(fd)


def _lookup(dirs: Sequence[int], name: str) -> tuple[int, int, os.stat_result] | None:
    """`name` in a merged directory: the topmost layer's entry, None if none has one or
    a whiteout hides the lower ones."""
    for level, dirfd in enumerate(dirs):
        found = _layer_entry(dirfd, name)
        if found is False:
            return None
        if found is not None:
            return level, *found
    return None


def _layer_entry(dirfd: int, name: str) -> tuple[int, os.stat_result] | bool | None:
    """(O_PATH fd, stat) of `name` in one layer's directory; None where the layer has no
    such entry; False where it has a whiteout for it."""
    try:
        fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
    except FileNotFoundError:
        return False if _exists(dirfd, AUFS_WHITEOUT + name) else None
    st = os.fstat(fd)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlayfs's whiteout
        os.close(fd)
        return False
    return fd, st


def _merged_dir(top: int, lower: Sequence[int], name: str) -> list[int]:
    """The layers' directories that show as one: `top`, then each lower layer's
    directory `name`, down to an opaque one or a layer where `name` is no directory."""
    merged = [top]
    try:
        if _is_opaque(top):
            return merged
        for dirfd in lower:
            found = _layer_entry(dirfd, name)
            if found is None:
                continue
            if found is False:
                break
            fd, st = found
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                break
            merged.append(fd)
            if _is_opaque(fd):
                break
    except BaseException:
        _close_all(merged)
        raise
    return merged


def _is_opaque(dir_fd: int) -> bool:
    try:  # fgetxattr(2) refuses O_PATH descriptors (EBADF); their /proc link does not
        if os.getxattr(f"/proc/self/fd/{dir_fd}", OPAQUE_XATTR) == b"y":
            return True
    except OSError:
        pass
    return _exists(dir_fd, AUFS_OPAQUE)


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:  # `.wh.` + a 252-byte name: no such marker
            return False
        raise
    return True


def _close_all(fds: list[int] | None) -> None:
    for fd in fds or ():
        os.close(fd)


def _dup_dir(fd: int) -> int:
    return os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=fd)
