"""How a container's root filesystem is made: kernel overlayfs, else a private copy.

Kernel overlayfs may be mounted inside a user namespace since Linux 5.11 (with the
`userxattr` option); it is the default. Older kernels (RHEL 8 class) and filesystems that
refuse it get a copy of the layers per container, with whiteouts applied. The choice is
automatic and `rootless system info` says which was made and why; ROOTLESS_ROOTFS=copy
forces the copy (tests use it to cover both paths).
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

OPAQUE_XATTR = "user.overlay.opaque"


@dataclass(frozen=True)
class Strategy:
    name: str  # "overlay" | "copy"
    reason: str


def choose_strategy(store_root: Path) -> Strategy:
    forced = os.environ.get("ROOTLESS_ROOTFS")
    if forced in ("overlay", "copy"):
        return Strategy(forced, "set by ROOTLESS_ROOTFS")
    release = platform.release()
    try:
        major, minor = (int(x) for x in release.split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    if (major, minor) < (5, 11):
        return Strategy("copy", f"kernel {release} < 5.11: no overlayfs in user namespaces")
    from rootless.fs.probe import overlay_works

    ok, reason = overlay_works(store_root)
    return Strategy("overlay" if ok else "copy", reason)


@dataclass(frozen=True)
class RootfsDirs:
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
    """Apply one extracted layer onto `dest`: whiteouts delete, opaque dirs replace."""
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = Path(dirpath).relative_to(layer)
        target_dir = dest / rel
        if rel != Path(".") and _is_opaque(dirpath) and target_dir.is_dir():
            shutil.rmtree(target_dir)
        if not target_dir.exists():
            target_dir.mkdir()
            shutil.copystat(dirpath, target_dir)
        for name in filenames + [d for d in dirnames if os.path.islink(Path(dirpath) / d)]:
            _copy_entry(Path(dirpath) / name, target_dir / name)


def _copy_entry(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout
        _remove(dst)
        return
    _remove(dst)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst, follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
