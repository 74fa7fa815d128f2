"""The directories under a FUSE overlay, and how they merge, as kernel overlayfs does it.

The FUSE overlay (fs/fuse_ops.py) serves exactly the directories the kernel overlay of
the same container would mount (fs/rootfs.container_dirs): the image's extracted layers
(read-only, topmost first) and the container's upper/ and work/. It reads and writes
them in the kernel's on-disk format with `userxattr` (Documentation/filesystems/
overlayfs.rst), so that diff, commit, export and cp see the same upper/ whichever
overlay wrote it, and a container may switch between them:

- a whiteout is a character device 0:0 (any user may make one since Linux 5.8); where
  mknod was refused, the AUFS `.wh.NAME` file stands for it, in the image's layers
  (image/layers.py) and in upper/ (fs/fuse_upper.py). No container makes a `.wh.` name
  through this overlay (fs/fuse_tree.py), so every one in upper/ is ours, and diff and
  commit read them so for a container of this overlay (engine/container_tree.py);
- an opaque directory has user.overlay.opaque=y (or a `.wh..wh..opq` file);
- a directory merges with the directories of the same name below it, down to the first
  opaque one, the first layer where the name is not a directory, or a whiteout.

Paths: every path handed to the kernel here is relative to a descriptor of its layer's
root, and every component before the last is a directory this module found as one (a
layer is never changed but by us: image layers are read-only, upper/ is written only by
this overlay while it is mounted), so no symlink of the image is ever followed on the
host. The last component is never followed (lstat, O_NOFOLLOW, lgetxattr).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import NamedTuple

from rootless.kernel.override import OVERRIDE_XATTR, parse_override
from rootless.kernel.paths import AUFS_OPAQUE, AUFS_WHITEOUT, OPAQUE_XATTR

UPPER = 0  # layer index of upper/; the image's layers follow, topmost first
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SIDECAR_LIMIT = 64 << 20


class Entry(NamedTuple):
    layer: int  # where the name is found first (topmost)
    dirs: tuple[int, ...]  # a directory: the layers it merges, topmost first; else ()


class Listing(NamedTuple):
    """A merged directory: what it shows, and which names the layers below upper/ show
    (removing one of those needs a whiteout in upper/, as ovl_lower_positive decides)."""

    entries: dict[str, Entry]
    lower: set[str]


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


class Layers:
    """Descriptors of upper/ (index 0), the image's layers (1..n) and work/."""

    def __init__(self, upper: str, work: str, lower: list[str]) -> None:
        self.paths = [upper, *lower]
        self.fds = [os.open(p, _DIR) for p in self.paths]
        self.work = os.open(work, _DIR)
        # for the calls os offers no dir_fd for (xattrs): the descriptor's magic link,
        # then the relative path (every component a directory, see the module's note)
        self.prefix = [f"/proc/self/fd/{fd}" for fd in self.fds]
        self.sidecars = [{}] + [_read_sidecar(p) for p in lower]

    def close(self) -> None:
        for fd in (*self.fds, self.work):
            os.close(fd)

    def at(self, layer: int, rel: str) -> str:
        """A path for the xattr calls: through /proc/self/fd, never a store path."""
        return f"{self.prefix[layer]}/{rel}" if rel else self.prefix[layer]

    def lstat(self, layer: int, rel: str) -> os.stat_result:
        return os.stat(rel or ".", dir_fd=self.fds[layer], follow_symlinks=False)

    def open(self, layer: int, rel: str, flags: int, mode: int = 0o600) -> int:
        return os.open(rel or ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                       dir_fd=self.fds[layer])

    # ---- records and xattrs ----

    def record(self, layer: int, rel: str) -> tuple | None:
        """The parsed override_stat record of an entry, or None."""
        raw = self.xattr(layer, rel, OVERRIDE_XATTR)
        return parse_override(raw.decode(errors="replace")) if raw is not None else None

    def xattr(self, layer: int, rel: str, name: str) -> bytes | None:
        try:
            return os.getxattr(self.at(layer, rel), name, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
        value = self.sidecars[layer].get(rel, {}).get(name) if layer else None
        return value.encode() if isinstance(value, str) else None

    def xattr_names(self, layer: int, rel: str) -> list[str]:
        try:
            names = os.listxattr(self.at(layer, rel), follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            names = []
        if layer:
            names += [n for n in self.sidecars[layer].get(rel, {}) if n not in names]
        return names

    # ---- merging ----

    def is_opaque(self, layer: int, rel: str) -> bool:
        if self.xattr(layer, rel, OPAQUE_XATTR) == b"y":
            return True
        try:
            os.stat(join(rel, AUFS_OPAQUE), dir_fd=self.fds[layer], follow_symlinks=False)
            return True
        except OSError:
            return False

    def merge_chain(self, rel: str, dirs: tuple[int, ...]) -> tuple[int, ...]:
        """`dirs` (the layers holding directory `rel`) cut after the first opaque one."""
        for i, layer in enumerate(dirs[:-1]):
            if self.is_opaque(layer, rel):
                return dirs[:i + 1]
        return dirs

    def scan(self, layer: int, rel: str) -> list[tuple[str, bool, bool]]:
        """(name, is a directory, is a whiteout) of the entries of one layer's directory."""
        fd = self.open(layer, rel, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as it:
                out = []
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        out.append((e.name, True, False))
                    elif e.is_file(follow_symlinks=False) or e.is_symlink():
                        out.append((e.name, False, False))
                    else:  # a device, fifo or socket: stat it (is it 0:0?)
                        out.append((e.name, False, is_whiteout(e.stat(follow_symlinks=False))))
                return out
        finally:
            os.close(fd)

    def merge(self, rel: str, dirs: tuple[int, ...]) -> Listing:
        """The merged view of directory `rel`, whose merge chain is `dirs`."""
        entries: dict[str, Entry] = {}
        closed: set[str] = set()  # names whose directory chain a lower entry ended
        hidden: set[str] = set()  # names a whiteout hides below its layer
        hidden_lower: set[str] = set()  # the same, counting the image's layers only
        lower_first: dict[str, bool] = {}  # first thing below upper/: positive?
        for layer in dirs:
            level_hidden = []
            for name, is_dir, whiteout in self.scan(layer, rel):
                if name.startswith(AUFS_WHITEOUT):
                    if name.startswith(AUFS_WHITEOUT * 2):
                        continue  # the opaque marker, or aufs bookkeeping
                    name, whiteout, is_dir = name[len(AUFS_WHITEOUT):], True, False
                if layer != UPPER:
                    lower_first.setdefault(name, not whiteout and name not in hidden_lower)
                if name in hidden:
                    continue
                if whiteout:
                    level_hidden.append(name)
                    if name in entries:
                        closed.add(name)
                    continue
                entry = entries.get(name)
                if entry is None:
                    entries[name] = Entry(layer, (layer,) if is_dir else ())
                elif entry.dirs and is_dir and name not in closed:
                    entries[name] = entry._replace(dirs=(*entry.dirs, layer))
                else:
                    closed.add(name)
            hidden.update(level_hidden)
            if layer != UPPER:
                hidden_lower.update(level_hidden)
        return Listing(entries, {n for n, positive in lower_first.items() if positive})


def _read_sidecar(layer: str) -> dict:
    """xattrs the layer's filesystem refused, kept beside it by the store
    (image/transports/storage.py): {path: {name: value}}; bounded, regular file only."""
    from rootless.kernel.paths import read_regular_path

    try:
        data = json.loads(read_regular_path(layer.rstrip("/") + ".xattrs.json",
                                            _SIDECAR_LIMIT))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
