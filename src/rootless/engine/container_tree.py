"""A stopped container's filesystem as trees of entries, for `diff`, `export` and
`commit`: the image's view (its layers merged, as overlayfs merges them) and the
container's (the layers under upper/, or the private copy in rootfs/).

Each root is walked by descriptors (kernel/tree.py: iterative, O_NOFOLLOW|O_DIRECTORY,
never into a symlink); nothing here follows a link of the container's tree. What marks a
deletion depends on who wrote the root, so a container cannot forge one:

- image layers (written by image/layers.py): a character device 0:0 or a `.wh.NAME`
  file is a whiteout, `.wh..wh..opq` or user.overlay.opaque=y an opaque directory;
- upper/ (written by kernel overlayfs, `userxattr`, Linux 5.11): a character device 0:0
  is a whiteout (what overlayfs itself reads), user.overlay.opaque=y an opaque directory
  (the container cannot set user.overlay.* through the mount); a file the container named
  `.wh.x` is just a file. Written by our FUSE overlay, `.wh.` names are whiteouts too:
  where the kernel refuses to make a 0:0 device (before Linux 5.8) it keeps the AUFS form,
  and it lets no container make a `.wh.` name (fs/fuse_tree.py);
- rootfs/ of the copy strategy: the container's final view; nothing is special.

Owners: user.containers.override_stat ("UID:GID:0MODE[:KIND]", containers-storage's
record) when present, else, in the container's view, the fakeroot's sidecar record of a
symlink, fifo or socket (runtime/fakeroot_owners.py), else the owner the kernel shows. The walks run as root of a user
namespace with the user's id map (kernel/storage_ns.py), where files of subordinate ids
show their ids inside the container and every file can be read.

The comparison is Docker's (moby pkg/archive changes.go): a path only in the container
is `A`, only in the image `D` (only the top of a deleted tree), in both with a different
type, mode, owner or device, or (not for directories) size or mtime, `C`; and every
directory above a change is `C`.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import NamedTuple

from rootless.image.layers import (OPAQUE_MARKER, OPAQUE_XATTR, OVERRIDE_XATTR,
                                   WHITEOUT_PREFIX, parse_override)

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Root(NamedTuple):
    path: str
    whiteouts: bool  # char 0:0 deletes, user.overlay.opaque hides lower layers
    aufs: bool  # `.wh.NAME` and `.wh..wh..opq` names too (image layers only)


def layer_root(path: str) -> Root:
    return Root(path, True, True)


def upper_root(path: str, aufs: bool = False) -> Root:
    """`aufs`: written by our FUSE overlay (see the module's note)."""
    return Root(path, True, aufs)


def plain_root(path: str) -> Root:
    return Root(path, False, False)


class Meta(NamedTuple):
    """What an entry is, as the container sees it."""
    kind: int  # stat.S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK
    mode: int  # permission bits, setuid/setgid/sticky included
    uid: int
    gid: int
    rdev: tuple[int, int]  # (major, minor) of a device
    size: int
    mtime_ns: int


class Entry(NamedTuple):
    root: int  # index into View.roots
    st: os.stat_result
    override: str | None  # the raw override_stat record
    opaque: bool  # a directory that hides what lower roots have below it

    def meta(self) -> Meta:
        return entry_meta(self.st, self.override)


def entry_meta(st: os.stat_result, override: str | None) -> Meta:
    kind = stat.S_IFMT(st.st_mode)
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in (
        stat.S_IFCHR, stat.S_IFBLK) else (0, 0)
    mode, uid, gid, size = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size
    record = parse_override(override)
    if record is not None:
        uid, gid, mode, dev_kind, dev = record
        if dev_kind and kind == stat.S_IFREG:  # a device node unprivileged unpacking
            kind, rdev, size = dev_kind, dev, 0  # could not make
    if kind == stat.S_IFDIR:
        size = 0
    return Meta(kind, mode, uid, gid, rdev, size, st.st_mtime_ns)


def changed(old: Meta, new: Meta) -> bool:
    """moby's statDifferent: size and mtime are not looked at for directories."""
    if old[:5] != new[:5]:
        return True
    if new.kind == stat.S_IFLNK:  # the copy strategy does not keep a symlink's times
        return old.size != new.size
    return new.kind != stat.S_IFDIR and (old.size != new.size or old.mtime_ns != new.mtime_ns)


class View:
    """The merged tree of `roots` (top first): relative path -> Entry. `owners`: the
    container's fakeroot sidecar records (path -> record), for its own view."""

    def __init__(self, roots: list[Root], owners: dict[str, dict] | None = None) -> None:
        self.roots = roots
        self.owners = owners or {}
        self.entries: dict[str, Entry] = {}
        hidden: set[str] = set()  # deleted by a higher root: lower roots do not show it
        opaque: set[str] = set()  # directories whose lower content is hidden
        for index, root in enumerate(roots):
            new_hidden: set[str] = set()
            new_opaque: set[str] = set()
            self._walk(index, root, hidden, opaque, new_hidden, new_opaque)
            hidden |= new_hidden
            opaque |= new_opaque

    def _walk(self, index: int, root: Root, hidden: set[str], opaque: set[str],
              new_hidden: set[str], new_opaque: set[str]) -> None:
        from rootless.kernel.tree import open_subdir, walk_tree

        names: list[str] = []  # the path of the directory being walked

        def open_dir(dir_fd: int, name: str) -> int | None:
            fd = open_subdir(dir_fd, name)
            if fd is not None:
                names.append(name)
            return fd

        def leave(dir_fd: int, name: str) -> bool:
            names.pop()
            return False

        def enter(fd: int, st: os.stat_result) -> list[str]:
            rel = "/".join(names[1:])
            return self._enter(index, root, fd, rel, hidden, opaque, new_hidden, new_opaque)

        parent = os.open(os.path.dirname(root.path) or "/", _DIR)
        try:
            walk_tree(parent, os.path.basename(root.path), enter, open_dir, leave)
        finally:
            os.close(parent)

    def _enter(self, index: int, root: Root, fd: int, rel: str, hidden: set[str],
               opaque: set[str], new_hidden: set[str], new_opaque: set[str]) -> list[str]:
        listing = sorted(os.listdir(fd))
        if rel and root.whiteouts and (
                (root.aufs and OPAQUE_MARKER in listing) or read_xattr(fd, OPAQUE_XATTR) == b"y"):
            new_opaque.add(rel)
            entry = self.entries.get(rel)
            if entry is not None and entry.root == index:
                self.entries[rel] = entry._replace(opaque=True)
        subdirs = []
        for name in listing:
            if root.aufs and name.startswith(WHITEOUT_PREFIX):
                if not name.startswith(WHITEOUT_PREFIX * 2):  # .wh..wh.*: aufs bookkeeping
                    _hide(self.entries, new_hidden, _join(rel, name[len(WHITEOUT_PREFIX):]))
                continue
            path = _join(rel, name)
            if path in hidden:
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if root.whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _hide(self.entries, new_hidden, path)
                continue
            have = self.entries.get(path)
            if have is None:
                override = _override(fd, name, st)
                if override is None and self.owners:
                    override = _owner_record(self.owners, fd, name, path, st)
                have = Entry(index, st, override, False)
                self.entries[path] = have
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(have.st.st_mode) and path not in opaque:
                subdirs.append(name)
        return subdirs[::-1]  # walk_tree pops from the end: go in sorted order


def _hide(entries: dict[str, Entry], new_hidden: set[str], path: str) -> None:
    if path not in entries:  # a whiteout hides only what lower roots have
        new_hidden.add(path)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def read_xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None


def _override(dir_fd: int, name: str, st: os.stat_result) -> str | None:
    """The override_stat record of a regular file or directory (the only kinds that can
    carry user xattrs), read through the directory's descriptor: /proc/self/fd/N is the
    directory itself, and the last component is not followed."""
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return None
    try:
        value = os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", OVERRIDE_XATTR,
                            follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EACCES, errno.EPERM):
            raise
        return None
    return value[:256].decode("ascii", "replace")


def _owner_record(owners: dict[str, dict], dir_fd: int, name: str, path: str,
                  st: os.stat_result) -> str | None:
    """A sidecar record of the fakeroot's for an entry that cannot carry an xattr."""
    from rootless.runtime.fakeroot_owners import owners_value

    if path not in owners or stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            return None
    return owners_value(owners, path, stat.S_IFMT(st.st_mode), target)


class Change(NamedTuple):
    kind: str  # "A", "C" or "D"
    path: str  # relative, no leading slash


def changes(image: View, container: View, same_roots: int,
            ignored: set[str] = frozenset()) -> list[Change]:
    """Docker's A/C/D list, sorted by path. The first `same_roots` roots of `container`
    (from the bottom) are the image's own: entries still served by them are unchanged.
    Paths in `ignored` (the runtime's mount points) are never a change."""
    offset = len(container.roots) - len(image.roots)
    found: dict[str, str] = {}
    for path, entry in container.entries.items():
        old = image.entries.get(path)
        if old is None:
            found[path] = "A"
        elif entry.root - offset == old.root and entry.override == old.override and \
                entry.root >= len(container.roots) - same_roots:
            continue  # still the image's own (a sidecar record would change it)
        elif changed(old.meta(), entry.meta()):
            found[path] = "C"
    for path in image.entries:
        if path not in container.entries:
            parent = path.rpartition("/")[0]
            if not parent or parent in container.entries:
                found[path] = "D"
    for path in ignored:
        found.pop(path, None)
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found[parent] = "C"
            parent = parent.rpartition("/")[0]
    return [Change(found[p], p) for p in sorted(found)]
