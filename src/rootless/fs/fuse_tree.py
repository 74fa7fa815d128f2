"""The FUSE overlay's changes to the merged tree: create (files, directories, symlinks,
fifos, device records), link, unlink, rmdir, rename, and attribute changes.

Each one checks permissions (single-id mode; fs/fuse_access.py), copies up what it
changes (fs/fuse_upper.py), changes upper/, and keeps the merged listings of the
directories involved in step, as the kernel overlay would leave them:

- removing a name the image's layers show leaves a whiteout in its place;
- a directory made where the image had one (now whited out) is opaque, so the old
  contents stay hidden; so is a directory renamed over such a name;
- a directory that is (partly) in the image's layers cannot be renamed: EXDEV, which
  rename(2) callers (mv, dpkg) answer with a copy. The kernel overlay says the same with
  `userxattr` (it implies redirect_dir=nofollow) and so does fuse-overlayfs: redirects
  would make an upper/ the other overlay cannot read;
- RENAME_EXCHANGE and RENAME_WHITEOUT are refused (EINVAL).
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.fs import fuse_access as access
from rootless.fs.fuse_access import Creds
from rootless.fs.fuse_layers import UPPER, Entry, Listing, is_whiteout, join
from rootless.fs.fuse_nodes import Node, Nodes
from rootless.fs.fuse_upper import Upper
from rootless.kernel.paths import AUFS_WHITEOUT

RENAME_NOREPLACE = 1
_SETID = stat.S_ISUID | stat.S_ISGID


def _check_name(name: str) -> None:
    """A `.wh.` name in upper/ is a whiteout of ours (fs/fuse_layers.py): no container
    may make one, or it could hide the image's files from diff and commit."""
    if name.startswith(AUFS_WHITEOUT):
        raise OSError(errno.EPERM, "names starting with .wh. are the overlay's")


class Tree:
    def __init__(self, nodes: Nodes, upper: Upper, checks: bool) -> None:
        self.nodes, self.upper, self.layers = nodes, upper, nodes.layers
        self.checks = checks  # single-id mode: the kernel does not check permissions
        self.ufd = self.layers.fds[UPPER]

    def owner(self, node: Node) -> tuple[int, int, int]:
        return self.nodes.owner(node)

    def _check(self, node: Node, creds: Creds, want: int) -> None:
        if self.checks:
            access.check(self.owner(node), node.kind, creds, want)

    # ---- making entries ----

    def create(self, parent: Node, name: str, kind: int, mode: int, creds: Creds,
               rdev: int = 0, target: str = "") -> tuple[Node, int]:
        """A new entry (and, for a regular file, a read-write descriptor of it, else
        -1). Devices are empty files with a record (mknod needs CAP_MKNOD in the
        initial user namespace)."""
        listing = self._prepare_new(parent, name, creds)
        rel = join(parent.rel(), name)
        uid, gid, mode = self._new_owner(parent, kind, mode, creds)
        device = kind in (stat.S_IFCHR, stat.S_IFBLK)
        disk = 0 if device else self.upper.disk_mode(mode, kind == stat.S_IFDIR)
        fd = -1
        if kind == stat.S_IFDIR:
            os.mkdir(rel, disk, dir_fd=self.ufd)
        elif kind == stat.S_IFLNK:
            os.symlink(target, rel, dir_fd=self.ufd)
        elif kind in (stat.S_IFIFO, stat.S_IFSOCK):
            os.mknod(rel, kind | disk, dir_fd=self.ufd)
        else:  # a regular file, or a device's empty stand-in
            fd = os.open(rel, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, disk, dir_fd=self.ufd)
        try:
            entry = Entry(UPPER, (UPPER,) if kind == stat.S_IFDIR else ())
            node = self.nodes.node_for(parent, name, entry,
                                       os.fstat(fd) if fd >= 0 else None, fresh=True)
            self.upper.set_owner(node, uid, gid, mode, kind if device else 0,
                                 (os.major(rdev), os.minor(rdev)) if device else (0, 0),
                                 fresh=True)
            if kind == stat.S_IFDIR:
                if name in listing.lower:  # the image had it: hide what it held
                    self.upper.set_opaque(rel)
                    self.nodes.xattrs_changed(node)
                node.listing = Listing({}, set())
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        listing.entries[name] = entry
        if device:
            os.close(fd)
            fd = -1
        return node, fd

    def _prepare_new(self, parent: Node, name: str, creds: Creds) -> Listing:
        _check_name(name)
        self._check(parent, creds, access.W | access.X)
        listing = self.nodes.listing(parent)
        if name in listing.entries:
            raise OSError(errno.EEXIST, "file exists")
        self.upper.copy_up(parent)
        if name in listing.lower:
            self._drop_whiteout(join(parent.rel(), name))
        return listing

    def _drop_whiteout(self, rel: str) -> None:
        try:
            st = self.layers.lstat(UPPER, rel)
        except FileNotFoundError:
            st = None
        if st is not None and not is_whiteout(st):
            raise OSError(errno.EEXIST, "file exists")
        self.upper.drop_whiteout(rel)

    def _new_owner(self, parent: Node, kind: int, mode: int,
                   creds: Creds) -> tuple[int, int, int]:
        """The caller's fsuid and fsgid, or the directory's group where it is setgid
        (a directory then inherits the bit); a caller outside the group loses a
        requested setgid bit (inode_init_owner)."""
        puid, pgid, pmode = self.owner(parent)
        mode &= 0o7777
        gid = creds.gid
        if pmode & stat.S_ISGID:
            gid = pgid
            if kind == stat.S_IFDIR:
                mode |= stat.S_ISGID
            elif mode & stat.S_ISGID and creds.uid != 0 and not creds.in_group(gid):
                mode &= ~stat.S_ISGID
        return creds.uid, gid, mode

    def link(self, node: Node, parent: Node, name: str, creds: Creds) -> None:
        if node.is_dir:
            raise OSError(errno.EPERM, "hard link to a directory")
        if node.gone:
            raise OSError(errno.ENOENT, "no longer in the tree")
        listing = self._prepare_new(parent, name, creds)
        self.upper.copy_up(node)
        os.link(node.rel(), join(parent.rel(), name), src_dir_fd=self.ufd,
                dst_dir_fd=self.ufd, follow_symlinks=False)
        listing.entries[name] = Entry(UPPER, ())
        node.aliases.add((parent, name))
        self.nodes.refresh(node)

    # ---- removing entries ----

    def unlink(self, parent: Node, name: str, creds: Creds) -> Node:
        node = self._victim(parent, name, creds)
        if node.is_dir:
            raise OSError(errno.EISDIR, "is a directory")
        self._remove(parent, name, node)
        return node

    def rmdir(self, parent: Node, name: str, creds: Creds) -> Node:
        node = self._victim(parent, name, creds)
        if not node.is_dir:
            raise OSError(errno.ENOTDIR, "not a directory")
        if self.nodes.listing(node).entries:
            raise OSError(errno.ENOTEMPTY, "directory not empty")
        self._remove(parent, name, node)
        node.listing = Listing({}, set())
        return node

    def _victim(self, parent: Node, name: str, creds: Creds) -> Node:
        node = self.nodes.find(parent, name)
        if node is None:
            raise OSError(errno.ENOENT, "no such file or directory")
        if self.checks:
            access.check_delete(self.owner(parent), self.owner(node), creds)
        return node

    def _remove(self, parent: Node, name: str, node: Node) -> None:
        listing = self.nodes.listing(parent)
        entry = listing.entries[name]
        self.upper.copy_up(parent)
        rel = join(parent.rel(), name)
        self.nodes.drop_name(node, parent, name)
        if entry.layer == UPPER:
            if node.is_dir:
                self.upper.clear_whiteouts(rel)
                os.rmdir(rel, dir_fd=self.ufd)
            else:
                os.unlink(rel, dir_fd=self.ufd)
        if name in listing.lower:
            self.upper.whiteout(parent, name)
        del listing.entries[name]
        if not node.is_dir and node.orphan < 0 and node.layer == UPPER:
            self.nodes.refresh(node)  # another name: its link count fell

    # ---- rename ----

    def rename(self, parent: Node, name: str, new_parent: Node, new_name: str,
               flags: int, creds: Creds) -> None:
        if flags & ~RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, "rename flags not supported")
        _check_name(new_name)
        src = self.nodes.find(parent, name)
        if src is None:
            raise OSError(errno.ENOENT, "no such file or directory")
        dst = self.nodes.find(new_parent, new_name)
        if dst is src:
            return  # two names of one file: rename(2) does nothing
        if dst is not None and flags & RENAME_NOREPLACE:
            raise OSError(errno.EEXIST, "file exists")
        self._rename_checks(parent, src, new_parent, dst, creds)
        if src.is_dir and (src.layer != UPPER or len(src.dirs) > 1):
            raise OSError(errno.EXDEV, "a directory of the image: copy it instead")
        self.upper.copy_up(src)
        self.upper.copy_up(parent)
        self.upper.copy_up(new_parent)
        self._rename_on_disk(parent, name, new_parent, new_name, src, dst)

    def _rename_checks(self, parent: Node, src: Node, new_parent: Node,
                       dst: Node | None, creds: Creds) -> None:
        if dst is not None:
            if src.is_dir and not dst.is_dir:
                raise OSError(errno.ENOTDIR, "not a directory")
            if dst.is_dir and not src.is_dir:
                raise OSError(errno.EISDIR, "is a directory")
            if dst.is_dir and self.nodes.listing(dst).entries:
                raise OSError(errno.ENOTEMPTY, "directory not empty")
        if not self.checks:
            return
        access.check_delete(self.owner(parent), self.owner(src), creds)
        access.check(self.owner(new_parent), stat.S_IFDIR, creds, access.W | access.X)
        if dst is not None:
            access.check_delete(self.owner(new_parent), self.owner(dst), creds)
        if src.is_dir and new_parent is not parent:  # its ".." changes
            access.check(self.owner(src), stat.S_IFDIR, creds, access.W)

    def _rename_on_disk(self, parent: Node, name: str, new_parent: Node, new_name: str,
                        src: Node, dst: Node | None) -> None:
        old_listing, new_listing = self.nodes.listing(parent), self.nodes.listing(new_parent)
        srel, drel = join(parent.rel(), name), join(new_parent.rel(), new_name)
        if dst is not None:
            if dst.is_dir and new_listing.entries[new_name].layer == UPPER:
                self.upper.clear_whiteouts(drel)
            self.nodes.drop_name(dst, new_parent, new_name)
        elif new_name in new_listing.lower:  # a directory cannot replace the device,
            self._drop_whiteout(drel)  # and an AUFS one would stay beside the file
        os.rename(srel, drel, src_dir_fd=self.ufd, dst_dir_fd=self.ufd)
        del old_listing.entries[name]
        if name in old_listing.lower:
            self.upper.whiteout(parent, name)
        new_listing.entries[new_name] = Entry(UPPER, src.dirs if src.is_dir else ())
        if src.is_dir and new_name in new_listing.lower:
            self.upper.set_opaque(drel)
            self.nodes.xattrs_changed(src)
        if (src.parent, src.name) == (parent, name):
            self.nodes.rename_node(src, new_parent, new_name)
        else:
            src.aliases.discard((parent, name))
            src.aliases.add((new_parent, new_name))
        self.nodes.refresh(src)

    # ---- attributes ----

    def chmod(self, node: Node, mode: int, creds: Creds, outside: bool = False) -> None:
        """`outside`: asked by a process outside the container (the fakeroot in its
        monitor), which keeps the record itself: a file with one keeps it, and only its
        mode on disk changes (a device's stand-in is made mode 0 so)."""
        if outside and node.record is not None:
            self.upper.copy_up(node)
            path, _ = self.nodes.path(node)
            os.chmod(path, mode & (0o7777 & ~(stat.S_ISUID if node.is_dir else _SETID)))
            self.nodes.refresh(node)
            return
        uid, gid, _ = self.owner(node)
        if self.checks:
            access.check_owner((uid, gid, 0), creds)
            if mode & stat.S_ISGID and creds.uid != 0 and not creds.in_group(gid):
                mode &= ~stat.S_ISGID  # chmod(2): a group the caller is not in
        self.upper.copy_up(node)
        self.upper.set_owner(node, uid, gid, mode & 0o7777, *self._device(node))

    def chown(self, node: Node, uid: int | None, gid: int | None, creds: Creds) -> None:
        owner = self.owner(node)
        if self.checks:
            access.check_chown(owner, uid, gid, creds)
        self.upper.copy_up(node)
        mode = owner[2]
        if not node.is_dir:  # chown(2) clears setuid, and setgid with group execute
            mode &= ~stat.S_ISUID
            if mode & stat.S_IXGRP:
                mode &= ~stat.S_ISGID
        self.upper.set_owner(node, owner[0] if uid is None else uid,
                             owner[1] if gid is None else gid, mode, *self._device(node))

    def _device(self, node: Node) -> tuple[int, tuple[int, int]]:
        record = node.record
        return (record[3], record[4]) if record is not None and record[3] else (0, (0, 0))

    def truncate(self, node: Node, size: int, fd: int | None, creds: Creds) -> None:
        if fd is None:
            self._check(node, creds, access.W)
        self.upper.copy_up(node)
        if fd is not None:
            os.ftruncate(fd, size)
        else:
            path, follow = self.nodes.path(node)
            out = os.open(path, os.O_WRONLY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
            try:
                os.ftruncate(out, size)
            finally:
                os.close(out)
        uid, gid, mode = self.owner(node)
        if mode & _SETID and creds.uid != 0:  # as a write by another user would
            self.upper.set_owner(node, uid, gid, mode & ~stat.S_ISUID, *self._device(node))

    def utimes(self, node: Node, atime: int | None, mtime: int | None,
               creds: Creds) -> None:
        if self.checks and creds.uid not in (0, self.owner(node)[0]):
            self._check(node, creds, access.W)  # touch(1) by a writer: the times of now
        if node.gone and node.layer != UPPER:
            # an image file replaced or removed while open: no name is left to copy it
            # up to, and no one can see its times but through that descriptor. The
            # writeback cache sends its ctime/mtime at close (a rename over it dirties
            # them); failing that fails close(2) with EIO (apt's extended_states)
            return
        self.upper.copy_up(node)
        if atime is None or mtime is None:  # os.utime sets both: keep the other's
            st = self.nodes.refresh(node)
            atime = st.st_atime_ns if atime is None else atime
            mtime = st.st_mtime_ns if mtime is None else mtime
        times = (atime, mtime)
        path, follow = self.nodes.path(node)
        os.utime(path, ns=times, follow_symlinks=follow)
