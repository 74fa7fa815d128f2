"""How a container's root filesystem is made: kernel overlayfs, else a private copy.

Kernel overlayfs may be mounted inside a user namespace since Linux 5.11 (with the
`userxattr` option); it is the default. Older kernels (RHEL 8 class) and filesystems that
refuse it get a copy of the layers per container, with whiteouts applied. The choice is
automatic and `rootless system info` says which was made and why; ROOTLESS_ROOTFS=copy
forces the copy (tests use it to cover both paths).
"""

from __future__ import annotations

import os
import stat
from typing import NamedTuple
from pathlib import Path

OPAQUE_XATTR = "user.overlay.opaque"


class Strategy(NamedTuple):
    name: str  # "overlay" | "copy"
    reason: str


def choose_strategy(store_root: Path) -> Strategy:
    forced = os.environ.get("ROOTLESS_ROOTFS")
    if forced in ("overlay", "copy"):
        return Strategy(forced, "set by ROOTLESS_ROOTFS")
    release = os.uname().release
    try:
        major, minor = (int(x) for x in release.split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    if (major, minor) < (5, 11):
        return Strategy("copy", f"kernel {release} < 5.11: no overlayfs in user namespaces")
    from rootless.fs.probe import overlay_works

    ok, reason = overlay_works(store_root)
    return Strategy("overlay" if ok else "copy", reason)


class RootfsDirs(NamedTuple):
    merged: Path
    upper: Path
    work: Path


def container_dirs(container_dir: Path) -> RootfsDirs:
    return RootfsDirs(container_dir / "rootfs", container_dir / "upper",
                      container_dir / "work")


def prepare(container_dir: Path, layer_dirs: list[Path], strategy: Strategy) -> RootfsDirs:
    dirs = container_dirs(container_dir)
    for d in (dirs.merged, dirs.upper, dirs.work):
        d.mkdir(mode=0o755, exist_ok=True)
    if strategy.name == "copy":
        for layer in layer_dirs:
            copy_layer(layer, dirs.merged)
    return dirs


def copy_layer(layer: Path, dest: Path) -> None:
    """Apply one extracted layer onto `dest`, as overlayfs would show it: whiteouts
    (char 0:0, or the AUFS `.wh.NAME` files kept where mknod was refused) delete, opaque
    directories (xattr, or `.wh..wh..opq`) hide what lower layers had there."""
    locked = _open_locked_dirs(layer)
    try:
        _copy_tree(layer, dest)
    finally:
        for path, mode in reversed(locked):
            os.chmod(path, mode)


def _open_locked_dirs(layer: Path) -> list[tuple[str, int]]:
    """Our own directories of mode 000 or 0444 cannot be walked: open them up for the
    copy, returning what to restore."""
    changed, stack = [], [str(layer)]
    while stack:
        path = stack.pop()
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o500 != 0o500:
            os.chmod(path, mode | 0o500)
            changed.append((path, mode))
        with os.scandir(path) as entries:
            stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    return changed


def _copy_tree(layer: Path, dest: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = Path(dirpath).relative_to(layer)
        target_dir = dest / rel
        if rel != Path(".") and _is_opaque(dirpath, filenames) and target_dir.is_dir():
            _remove(target_dir)
        if not target_dir.is_dir() or target_dir.is_symlink():
            _remove(target_dir)
            target_dir.mkdir()
        else:  # root in the container could write into it; so may the copy
            os.chmod(target_dir, stat.S_IMODE(target_dir.stat().st_mode) | stat.S_IRWXU)
        links = [d for d in dirnames if os.path.islink(Path(dirpath) / d)]
        for name in filenames + links:
            if name == AUFS_OPAQUE:
                continue
            if name.startswith(AUFS_WHITEOUT):
                _remove(target_dir / name[len(AUFS_WHITEOUT):])
                continue
            _copy_entry(Path(dirpath) / name, target_dir / name)
        dirnames[:] = [d for d in dirnames if d not in links]
    # directory modes and times last, deepest first, so read-only ones could be filled
    for dirpath, _, _ in sorted(os.walk(layer), key=lambda w: -w[0].count(os.sep)):
        _shutil().copystat(dirpath, dest / Path(dirpath).relative_to(layer),
                        follow_symlinks=False)


AUFS_WHITEOUT = ".wh."
AUFS_OPAQUE = ".wh..wh..opq"


def _copy_entry(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    _remove(dst)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(dst, stat.S_IMODE(st.st_mode))
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src, dst, st)


def _copy_file(src: Path, dst: Path, st: os.stat_result) -> None:
    """Files of mode 000 are ours: readable for the copy, their mode restored after."""
    unreadable = not st.st_mode & stat.S_IRUSR
    if unreadable:
        os.chmod(src, stat.S_IMODE(st.st_mode) | stat.S_IRUSR)
    try:
        _shutil().copy2(src, dst, follow_symlinks=False)
    finally:
        if unreadable:
            os.chmod(src, stat.S_IMODE(st.st_mode))
    os.chmod(dst, stat.S_IMODE(st.st_mode))


def _shutil():
    import shutil  # only the copy fallback needs it; `run` on overlayfs does not

    return shutil


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        from rootless.kernel.remove import rmtree_owned

        rmtree_owned(path)
    elif os.path.lexists(path):
        path.unlink()


def _is_opaque(path: str, filenames: list[str]) -> bool:
    if AUFS_OPAQUE in filenames:
        return True
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
