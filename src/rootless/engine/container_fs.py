"""`diff` and `export` of a container, and the tar writer `commit` shares.

A running container's overlay is mounted in its own mount namespace; its upper
directory and the image's layers are read from here as they are for a stopped one
(overlayfs(5) lets the upper layer be read while mounted). Files may change under us
meanwhile, as with docker, unless the caller pauses it: `commit` does by default.

The trees are read in a user namespace with the user's id map (kernel/storage_ns.py),
through engine/container_tree.py: descriptors only, no symlink of the container's tree
ever followed; a file's data is opened through the in-root resolver (kernel/paths.py)
with O_NOFOLLOW, relative to the root it came from.

The tar is what `docker export` writes: names without a leading `/` (directories with
a trailing one), owners and modes from the ownership records, device nodes from them
too, hardlinks as links to the first name of the same inode, extended attributes as
PAX SCHILY.xattr.* records: security.capability and user.* ones, except the overlay's
own (user.overlay.*) and the store's bookkeeping (user.containers.*).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from rootless.errors import RootlessError, UsageError

_KEPT_XATTR_PREFIXES = ("user.",)
_DROPPED_XATTR_PREFIXES = ("user.overlay.", "user.containers.", "user.rootless.")
_CAPABILITY = "security.capability"


class StoppedContainer:
    """A container's record and the roots its two views are made of (running or not:
    the name says what the views assume: nothing writes while they are read)."""

    def __init__(self, store, ref: str, verb: str) -> None:
        from rootless.engine.containers import container_dir, container_lookup
        from rootless.store import metadata as md

        record = container_lookup(store, ref)
        self.record = record
        self.dir = container_dir(store, record.id)
        image = md.image_get(store, record.image_id)
        if image is None:
            raise RootlessError(f"the image of container {ref} ({record.image_id[7:19]}) is "
                                "gone from the store")
        self.image_row = image
        self.layers = [str(md.layer_dir(store, chain)) for chain in reversed(image.layers)]
        for layer in self.layers:
            if not os.path.isdir(layer):
                raise RootlessError(f"a layer of the image of container {ref} is missing "
                                    "from the store")
        upper, rootfs = self.dir / "upper", self.dir / "rootfs"
        self.overlay = not _has_entries(rootfs)
        self.mount_points = _mount_points(self.dir / "config.json")
        self.fuse = _fuse_rootfs(self.dir / "config.json")
        if self.overlay and not upper.is_dir():
            raise RootlessError(f"container {ref} has no filesystem (upper/ is missing)")

    def views(self):
        """(the image's view, the container's view, how many roots they share)."""
        from rootless.engine.container_tree import View, layer_root, plain_root, upper_root
        from rootless.runtime.fakeroot_owners import owners_read

        image = View([layer_root(p) for p in self.layers])
        owners = owners_read(str(self.dir))  # the fakeroot's records of symlinks, fifos
        if self.overlay:
            roots = [upper_root(str(self.dir / "upper"), aufs=self.fuse)] + [
                layer_root(p) for p in self.layers]
            return image, View(roots, owners), len(self.layers)
        return image, View([plain_root(str(self.dir / "rootfs"))], owners), 0


def _mount_points(spec_path: Path) -> set[str]:
    """Where the runtime mounts (hosts, resolv.conf, volumes, /proc...): the empty files
    and directories it made there are its own, not changes (docker keeps them in a
    layer of their own that diff and commit leave out)."""
    from rootless.engine.container_inspect import spec_read

    spec, _ = spec_read(spec_path)
    mounts = spec.get("mounts") if isinstance(spec.get("mounts"), list) else []
    points = set()
    for mount in mounts:
        target = mount.get("destination") if isinstance(mount, dict) else None
        if isinstance(target, str):
            points.add("/".join(p for p in target.split("/") if p not in ("", ".")))
    return points


def _fuse_rootfs(spec_path: Path) -> bool:
    """Whether our FUSE overlay wrote the container's upper/ (engine/spec.py)."""
    from rootless.engine.container_inspect import spec_read
    from rootless.runtime.annotations import ROOTFS_OVERLAY_ANNOTATION

    spec, _ = spec_read(spec_path)
    annotations = spec.get("annotations") if isinstance(spec.get("annotations"), dict) else {}
    return '"driver": "fuse"' in str(annotations.get(ROOTFS_OVERLAY_ANNOTATION) or "")


def _has_entries(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(True for _ in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


# ---- diff ----

def container_diff(store, ref: str) -> list[str]:
    """`docker diff`: lines `A /path`, `C /path`, `D /path`, sorted by path."""
    import tempfile

    from rootless.engine.container_tree import changes
    from rootless.kernel.storage_ns import call_as_root

    container = StoppedContainer(store, ref, "diff")
    with tempfile.TemporaryFile() as out:
        def work() -> None:
            image, view, shared = container.views()
            found = changes(image, view, shared, container.mount_points)
            text = "".join(f"{c.kind} /{c.path}\n" for c in found)
            os.write(out.fileno(), text.encode("utf-8", "surrogateescape"))

        call_as_root(work)
        out.seek(0)
        return out.read().decode("utf-8", "surrogateescape").splitlines()


# ---- export ----

def container_export(store, ref: str, output: str | None) -> None:
    """`docker export`: the container's flattened filesystem as a tar, to `output`
    (written to a temporary name beside it, renamed into place when complete) or to
    stdout, which must not be a terminal."""
    import sys

    from rootless.kernel.storage_ns import call_as_root

    container = StoppedContainer(store, ref, "export")
    if output is None:
        if sys.stdout.isatty():
            raise RootlessError("cowardly refusing to save to a terminal. Use the -o flag or "
                                "redirect")
        sys.stdout.flush()
        fd = sys.stdout.fileno()
        call_as_root(lambda: _export_to(container, fd))
        return
    target = Path(output)
    if target.is_dir():
        raise RootlessError(f"cannot write {output}: it is a directory (give a file name)")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise RootlessError(f"cannot write {output}: {(e.strerror or str(e)).lower()}") from None
    try:
        try:
            call_as_root(lambda: _export_to(container, fd))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _export_to(container: StoppedContainer, fd: int) -> None:
    _, view, _ = container.views()
    items = [(path, "entry") for path in sorted(view.entries)]
    with open(fd, "wb", closefd=False) as out:
        write_tar(view, items, out)


# ---- the tar ----

def write_tar(view, items: list[tuple[str, str]], out: BinaryIO) -> int:
    """Write `items` (path, "entry" | "whiteout" | "opaque") of `view` as a tar; returns
    where its end-of-archive blocks end (tarfile then pads to a 10 KiB record, which a
    layer need not keep: Go's archive/tar, docker's and podman's, writes none)."""
    import tarfile

    links: dict[tuple[int, int], str] = {}
    root_fds = [os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                        | os.O_CLOEXEC) for root in view.roots]
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path, what in items:
                if what == "whiteout":
                    parent, _, name = path.rpartition("/")
                    tar.addfile(_marker(f"{parent}/.wh.{name}" if parent else f".wh.{name}"))
                elif what == "opaque":
                    tar.addfile(_marker(f"{path}/.wh..wh..opq"))
                else:
                    _add_entry(tar, view, root_fds, path, links)
            end = tar.offset + 2 * tarfile.BLOCKSIZE
        return end
    finally:
        for fd in root_fds:
            os.close(fd)


def _marker(name: str):
    import tarfile

    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def _add_entry(tar, view, root_fds: list[int], path: str, links: dict) -> None:
    import tarfile

    entry = view.entries[path]
    meta = entry.meta()
    info = tarfile.TarInfo(path)
    info.mode, info.uid, info.gid = meta.mode, meta.uid, meta.gid
    info.mtime = entry.st.st_mtime_ns // 1_000_000_000
    kind = meta.kind
    root_fd = root_fds[entry.root]
    if kind == stat.S_IFSOCK:
        return  # a socket cannot be in a tar (docker's archive skips them too)
    if kind == stat.S_IFLNK:
        info.type = tarfile.SYMTYPE
        info.linkname = _readlink_in(root_fd, path)
        tar.addfile(info)
        return
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
        info.type = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                     stat.S_IFIFO: tarfile.FIFOTYPE}[kind]
        info.devmajor, info.devminor = meta.rdev
        tar.addfile(info)
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    if kind == stat.S_IFDIR:
        flags |= os.O_DIRECTORY
    from rootless.kernel.paths import open_in_root

    fd = open_in_root(root_fd, path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_IFMT(st.st_mode) != stat.S_IFMT(entry.st.st_mode):
            raise RootlessError(f"/{path} changed while being read: refused")
        info.pax_headers = _xattrs(fd)
        if kind == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
            info.name = path + "/"
            tar.addfile(info)
            return
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            tar.addfile(info)
            return
        links[key] = path
        info.size = st.st_size
        with open(fd, "rb", closefd=False) as data:
            tar.addfile(info, data)
    finally:
        os.close(fd)


def _readlink_in(root_fd: int, path: str) -> str:
    from rootless.kernel.paths import parent_fd_in_root

    dir_fd, name = parent_fd_in_root(root_fd, path)
    try:
        return os.readlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _xattrs(fd: int) -> dict[str, str]:
    """The extended attributes a tar carries (PAX SCHILY.xattr.NAME), as tarfile wants
    them: str, binary values kept through surrogateescape."""
    try:
        names = os.listxattr(fd)
    except OSError:
        return {}
    kept = {}
    for name in sorted(names):
        if name != _CAPABILITY and not (name.startswith(_KEPT_XATTR_PREFIXES)
                                        and not name.startswith(_DROPPED_XATTR_PREFIXES)):
            continue
        try:
            value = os.getxattr(fd, name)
        except OSError:
            continue
        kept[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return kept
