"""Safe path resolution inside a root directory: every path is resolved as if the root
were `/`, the way a process chrooted there would see it, and nothing is ever reached
outside it.

Why not `os.path.join(root, path)`: an absolute right-hand side silently drops the left
(`join("/store/layer", "/etc/passwd")` is `/etc/passwd`), `..` climbs out, and a symlink
anywhere along the path (`layer/a -> /etc`) is followed by the host's kernel relative to
the host's `/`. Charliecloud and umoci both learned this the hard way. So paths inside a
root are only ever resolved relative to a descriptor of the root:

- Linux >= 5.6 has openat2(2) with RESOLVE_IN_ROOT: the kernel resolves every component
  (symlinks included) with the dirfd as `/`, and `..` at the root stays there. We add
  RESOLVE_NO_MAGICLINKS so /proc/self/fd/N style links cannot jump anywhere.
- Elsewhere (older kernels, seccomp profiles that refuse openat2 with ENOSYS or EPERM) a
  component walk does the same in user space: each component is opened with O_PATH |
  O_NOFOLLOW relative to the previous one; a symlink is read and its target walked
  again from the root (absolute) or from the current directory (relative), at most
  MAX_SYMLINKS times; `..` pops the stack of directories walked, never past the root.
  The walk never hands a path string containing a symlink to the kernel.

Returned descriptors are O_CLOEXEC and owned by the caller. Functions raise OSError with
the kernel's errno (ENOENT, ENOTDIR, ELOOP, ...); callers turn them into messages.
"""

from __future__ import annotations

import errno
import os
import stat

MAX_SYMLINKS = 40  # Linux's own limit (MAXSYMLINKS) on one resolution

_O_PATH = os.O_PATH | os.O_CLOEXEC
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


_shim = None  # (ffi, lib), loaded on first use


def _openat2(dirfd: int, path: str, flags: int, mode: int) -> int:
    global _shim
    if _shim is None:
        from rootless._shim import ffi, lib

        _shim = ffi, lib
    ffi, lib = _shim
    from rootless.kernel.constants import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS

    raw = os.fsencode(path)
    for _ in range(16):
        fd = lib.rl_openat2(dirfd, raw, flags | os.O_CLOEXEC, mode,
                            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        if fd >= 0:
            return fd
        err = ffi.errno
        if err != errno.EAGAIN:  # EAGAIN: a concurrent rename raced a `..`; retry
            break
    raise OSError(err, os.strerror(err), path)


def components(path: str) -> list[str]:
    """`/a//b/./c/` -> ['a', 'b', 'c']; `..` is kept (resolution decides what it means)."""
    return [part for part in path.split("/") if part not in ("", ".")]


# ---- the public helpers ----

def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """open(2) of `path` inside the root. A final symlink is followed (inside the root)
    unless `flags` has O_NOFOLLOW; O_CREAT never creates through a symlink in the walk
    (the final open has O_NOFOLLOW there)."""
    if has_openat2():
        return _openat2(root_fd, path or ".", flags, mode)
    dirfd, name = _walk(root_fd, path, follow_last=not flags & os.O_NOFOLLOW, create=False)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dirfd)
    finally:
        os.close(dirfd)


def parent_fd_in_root(root_fd: int, path: str, create: bool = False,
                      mode: int = 0o755) -> tuple[int, str]:
    """(O_PATH descriptor of the directory that holds `path`, its last component),
    resolving every component but the last inside the root; the last is never followed,
    so callers use it with *at calls and AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. With
    `create`, missing parent directories are made (mode `mode`), also where a dangling
    symlink points (inside the root), as `mkdir -p` in a chroot would."""
    parts = components(path)
    if not parts or parts[-1] == "..":
        raise IsADirectoryError(errno.EISDIR, "path names no entry of its own", path)
    parent = "/".join(parts[:-1])
    if has_openat2() and parent:
        try:
            return _openat2(root_fd, parent, _O_PATH | os.O_DIRECTORY, 0), parts[-1]
        except FileNotFoundError:
            if not create:
                raise
    elif has_openat2():
        return os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=root_fd), parts[-1]
    dirfd, name = _walk(root_fd, parent, follow_last=True, create=create, mode=mode)
    try:
        if create and name != ".":
            _mkdir_missing(dirfd, name, mode)
        fd = os.open(name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)
    return fd, parts[-1]


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755) -> int:
    """`mkdir -p` inside the root; returns an O_RDONLY|O_DIRECTORY descriptor of the
    (possibly existing) directory, usable for fchmod, fsetxattr and as a dirfd."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    if has_openat2():
        try:
            return _openat2(root_fd, path or ".", flags, 0)
        except FileNotFoundError:
            pass
    dirfd, name = _walk(root_fd, path, follow_last=True, create=True, mode=mode)
    try:
        if name != ".":
            _mkdir_missing(dirfd, name, mode)
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)


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

def _walk(root_fd: int, path: str, follow_last: bool, create: bool,
          mode: int = 0o755) -> tuple[int, str]:
    """Resolve `path` inside the root in user space: returns (an O_PATH descriptor of the
    directory holding the final entry, the final entry's name), where the name is never
    a symlink that should have been followed, and is "." when the path resolves to a
    directory already walked (the root, or a path ending in `..`). Missing directories
    on the way are created when `create` is set."""
    todo = list(reversed(components(path)))
    stack: list[int] = []  # descriptors of the directories below the root, in order
    links = 0
    try:
        while todo:
            name = todo.pop()
            here = stack[-1] if stack else root_fd
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            if not todo and not follow_last:
                return _dup_dir(here), name
            try:
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=here)
            except FileNotFoundError:
                if not create and not todo:
                    return _dup_dir(here), name  # the final entry may be created by the caller
                if not create:
                    raise
                _mkdir_missing(here, name, mode)
                todo.append(name)
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=here)
                os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                todo.extend(reversed(components(target)))
                continue
            if not todo:
                os.close(fd)
                return _dup_dir(here), name
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return _dup_dir(stack[-1] if stack else root_fd), "."
    finally:
        for fd in stack:
            os.close(fd)


def _dup_dir(fd: int) -> int:
    return os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=fd)
