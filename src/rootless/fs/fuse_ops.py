"""The FUSE overlay's request handlers: pyfuse3's Operations over the merged tree.

Thin by design, as pyfuse3's passthroughfs is: each handler finds its nodes
(fs/fuse_nodes.py), checks the caller where the kernel does not (fs/fuse_access.py),
asks the tree (fs/fuse_tree.py) for any change, and answers with attributes; an OSError
becomes the FUSEError of its errno.

What keeps it fast: fewer round trips to the kernel. Entries and attributes are
cached by the kernel for TIMEOUT seconds, negative lookups too (only this server
changes the tree while it is mounted, and every change passes through the kernel,
which updates its caches); the page cache is kept across opens (keep_cache) and
written back in large requests (writeback cache, libfuse's 1 MiB max_write); readdir
answers with attributes (readdirplus), so `find` and `ls -l` need no lookups; FLUSH is
answered ENOSYS once, and the kernel sends no more; no direct_io, so mmap works; large
READs are answered from a mapping of the file, one copy instead of two (fs/fuse_io.py). The
server waits for requests in poll(2), not through trio, and polls without sleeping
during a burst of requests (fs/fuse_loop.py). What pyfuse3 cannot ask of the kernel:
caching symlink targets (FUSE_CAP_CACHE_SYMLINKS) and directory listings
(FOPEN_CACHE_DIR), which fuse-overlayfs does; so `find -ls` over a warm tree costs a
READLINK per symlink and a READDIR per directory here.
With the writeback cache the kernel owns O_APPEND and may read through a write-only
open, so files are opened read-write and without O_APPEND here (libfuse's
passthrough_ll does the same).

Hidden from the container: the overlay's own xattrs (user.overlay.*) and the store's
(user.containers.*, user.rootless.*). The ownership record may be read and written
through the mount by a process outside the container's pid namespace (FUSE then
reports pid 0): the fakeroot in the container's monitor records a chown that way.
"""

from __future__ import annotations

import errno
import functools
import os
import select
import stat
import sys

import pyfuse3

from rootless.fs import fuse_access as access
from rootless.fs.fuse_access import Creds, request_creds
from rootless.fs.fuse_io import Reads
from rootless.fs.fuse_layers import UPPER
from rootless.fs.fuse_nodes import Node, Nodes
from rootless.fs.fuse_tree import Tree
from rootless.kernel.override import OVERRIDE_XATTR, parse_override

TIMEOUT = 60.0
ROOT = Creds(0, 0)
_HIDDEN_XATTRS = ("user.overlay.", "user.containers.", "user.rootless.")
_STRIP_FLAGS = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_APPEND | getattr(os, "O_DIRECT", 0)
_FMODE_EXEC = 0x20  # the kernel's __FMODE_EXEC, set in the open flags of execve(2)
# ROOTLESS_FUSE_TRACE=1: every refused request on stderr (ROOTLESS_FUSE_LOG names it)
_TRACE = bool(os.environ.get("ROOTLESS_FUSE_TRACE"))


def _errors(handler):
    """OSError -> FUSEError(errno); anything else is a bug: EIO, not a dead server.
    The handlers are plain functions (none waits for anything): the wrapper is the
    request's one coroutine, as pyfuse3 wants one."""
    @functools.wraps(handler)
    async def wrapper(*args):
        try:
            return handler(*args)
        except OSError as e:
            if _TRACE:
                print(f"{handler.__name__}{args[1:3]}: {e!r}", file=sys.stderr, flush=True)
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        except pyfuse3.FUSEError:
            raise
        except Exception:  # noqa: BLE001 - one request fails, the filesystem stays
            import traceback

            traceback.print_exc()
            raise pyfuse3.FUSEError(errno.EIO) from None
    return wrapper


class OverlayOps(pyfuse3.Operations):
    enable_writeback_cache = True
    supports_dot_lookup = True

    def __init__(self, nodes: Nodes, tree: Tree) -> None:
        super().__init__()
        self.nodes, self.tree, self.layers = nodes, tree, nodes.layers
        self.checks = tree.checks
        self.files: dict[int, Node] = {}  # fh (our descriptor) -> node
        self.dirs: dict[int, tuple[Node, list[str]]] = {}
        self.next_dir = 1
        self.reads = Reads()  # large READs answered from a mapping (fs/fuse_io.py)
        self.setup = None  # the init's socket, while the runtime sets the container up

    # ---- helpers ----

    def _creds(self, ctx) -> Creds:
        """Root's for the runtime (the init until its exec, pid 1) and for our own
        processes outside the container's pid namespace (pid 0: the monitor's
        fakeroot, cp, a kernel worker's writeback); else the caller's (faked) ones."""
        if ctx.pid == 0 or (ctx.pid == 1 and self._in_setup()):
            return ROOT
        return request_creds(ctx.pid, ctx.uid, ctx.gid)

    def _in_setup(self) -> bool:
        """Is the init's end of the socket still open? Checked at each of its requests:
        its exec closes it before any of the image's code can ask anything."""
        if self.setup is None:
            return False
        poller = select.poll()
        poller.register(self.setup.fileno(), select.POLLIN)
        if not poller.poll(0):
            return True
        self.setup.close()
        self.setup = None
        return False

    def _check(self, node: Node, ctx, want: int) -> None:
        if self.checks:
            access.check(self.nodes.owner(node), node.kind, self._creds(ctx), want)

    def attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        st = node.st
        perm = self.nodes.owner(node)[2]
        if not node.told:
            node.told = node.kind
        e = pyfuse3.EntryAttributes()
        e.st_ino = node.ino
        e.entry_timeout = e.attr_timeout = TIMEOUT
        e.st_mode = node.told | perm
        # a merged directory's link count is 1, as the kernel overlay says (find(1)
        # then never takes it for a leaf)
        e.st_nlink = 1 if node.is_dir and len(node.dirs) > 1 else st.st_nlink
        e.st_uid, e.st_gid = self.nodes.shown_ids(node)
        record = node.record
        if record is not None and record[3] and record[3] == node.told:
            e.st_rdev = os.makedev(*record[4])
        else:
            e.st_rdev = st.st_rdev
        e.st_size = st.st_size
        e.st_blksize = st.st_blksize
        e.st_blocks = st.st_blocks
        e.st_atime_ns, e.st_mtime_ns, e.st_ctime_ns = (st.st_atime_ns, st.st_mtime_ns,
                                                        st.st_ctime_ns)
        return e

    def _entry(self, node: Node) -> pyfuse3.EntryAttributes:
        node.lookups += 1
        return self.attrs(node)

    # ---- lookups ----

    @_errors
    def lookup(self, parent_inode, name, ctx):
        parent = self.nodes.get(parent_inode)
        name = os.fsdecode(name)
        if name in (".", ".."):
            return self._entry(parent if name == "." or parent.parent is None
                               else parent.parent)
        self._check(parent, ctx, access.X)
        node = self.nodes.find(parent, name)
        if node is None:  # negative, cached by the kernel like a positive one
            e = pyfuse3.EntryAttributes()
            e.st_ino = 0
            e.entry_timeout = TIMEOUT
            return e
        return self._entry(node)

    async def forget(self, inode_list):
        for ino, count in inode_list:
            self.nodes.forget(ino, count)

    @_errors
    def getattr(self, inode, ctx):
        node = self.nodes.get(inode)
        self.nodes.refresh(node)
        return self.attrs(node)

    @_errors
    def setattr(self, inode, attr, fields, fh, ctx):
        node, creds = self.nodes.get(inode), self._creds(ctx)
        # each change reads the owner and mode the one before it left (a chown of a
        # setuid file comes with the mode that drops the bit); none reads them again
        changed = False
        if fields.update_size:
            self.tree.truncate(node, attr.st_size, fh, creds)
            changed = True
        if fields.update_uid or fields.update_gid:
            if changed:
                self.nodes.refresh(node)
            self.tree.chown(node, attr.st_uid if fields.update_uid else None,
                            attr.st_gid if fields.update_gid else None, creds)
            changed = True
        if fields.update_mode:
            if changed:
                self.nodes.refresh(node)
            self.tree.chmod(node, stat.S_IMODE(attr.st_mode), creds, outside=ctx.pid == 0)
            changed = True
        if fields.update_atime or fields.update_mtime:
            if changed:
                self.nodes.refresh(node)
            self.tree.utimes(node, attr.st_atime_ns if fields.update_atime else None,
                             attr.st_mtime_ns if fields.update_mtime else None, creds)
        self.nodes.refresh(node)
        return self.attrs(node)

    @_errors
    def readlink(self, inode, ctx):
        node = self.nodes.get(inode)
        if node.orphan >= 0:
            return os.fsencode(os.readlink("", dir_fd=node.orphan))
        return os.fsencode(os.readlink(node.rel(), dir_fd=self.layers.fds[node.layer]))

    @_errors
    def access(self, inode, mode, ctx):
        node = self.nodes.get(inode)
        if not self.checks:
            return True
        return access.allowed(self.nodes.owner(node), node.kind, self._creds(ctx),
                              mode & 7)

    @_errors
    def statfs(self, ctx):
        vfs = os.statvfs(self.layers.fds[UPPER])
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(out, name, getattr(vfs, name))
        return out

    # ---- files ----

    @_errors
    def open(self, inode, flags, ctx):
        node = self.nodes.get(inode)
        want = access.open_wants(flags) | (access.X if flags & _FMODE_EXEC else 0)
        self._check(node, ctx, want)
        if want & access.W:
            self.tree.upper.copy_up(node)
        fd = self._open_node(node, flags)
        return pyfuse3.FileInfo(fh=fd, keep_cache=True)

    def _open_node(self, node: Node, flags: int) -> int:
        flags &= ~(_STRIP_FLAGS | _FMODE_EXEC)
        if flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        if node.orphan >= 0:
            fd = os.open(f"/proc/self/fd/{node.orphan}", flags | os.O_CLOEXEC)
        else:
            fd = self.layers.open(node.layer, node.rel(), flags)
        self.files[fd] = node
        node.handles.add(fd)
        return fd

    @_errors
    def create(self, parent_inode, name, mode, flags, ctx):
        parent = self.nodes.get(parent_inode)
        node, fd = self.tree.create(parent, os.fsdecode(name), stat.S_IFREG, mode,
                                    self._creds(ctx))
        self.files[fd] = node
        node.handles.add(fd)
        return pyfuse3.FileInfo(fh=fd, keep_cache=True), self._entry(node)

    @_errors
    def read(self, fh, off, size):
        return self.reads.read(fh, off, size)

    @_errors
    def write(self, fh, off, buf):
        return os.pwrite(fh, buf, off)

    # no flush handler: pyfuse3 answers ENOSYS, and the kernel then stops sending a
    # FLUSH at every close (fc->no_flush); it still writes back the dirty pages first

    @_errors
    def fsync(self, fh, datasync):
        (os.fdatasync if datasync else os.fsync)(fh)

    @_errors
    def release(self, fh):
        node = self.files.pop(fh, None)
        if node is not None:
            node.handles.discard(fh)
        self.reads.forget(fh)
        os.close(fh)

    # ---- directories ----

    @_errors
    def opendir(self, inode, ctx):
        node = self.nodes.get(inode)
        self._check(node, ctx, access.R)
        names = list(self.nodes.listing(node).entries)
        fh, self.next_dir = self.next_dir, self.next_dir + 1
        self.dirs[fh] = (node, names)
        return fh

    @_errors
    def readdir(self, fh, start_id, token):
        """"." and ".." first (as every local filesystem lists them; no lookup count
        for those), then the merged entries; offsets are positions in the listing
        taken at opendir, so entries removed meanwhile are skipped, never repeated."""
        node, names = self.dirs[fh]
        for index in range(start_id, len(names) + 2):
            if index < 2:
                dot = node if index == 0 or node.parent is None else node.parent
                if not pyfuse3.readdir_reply(token, b"." * (index + 1), self.attrs(dot),
                                             index + 1):
                    return
                continue
            name = names[index - 2]
            child = self.nodes.find(node, name)
            if child is None:
                continue  # removed since opendir
            if not pyfuse3.readdir_reply(token, os.fsencode(name), self.attrs(child),
                                         index + 1):
                return
            child.lookups += 1

    async def releasedir(self, fh):
        self.dirs.pop(fh, None)

    @_errors
    def fsyncdir(self, fh, datasync):
        node, _ = self.dirs[fh]
        if node.layer == UPPER:
            fd = self.layers.open(UPPER, node.rel(), os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # ---- the tree ----

    @_errors
    def mkdir(self, parent_inode, name, mode, ctx):
        node, _ = self.tree.create(self.nodes.get(parent_inode), os.fsdecode(name),
                                   stat.S_IFDIR, mode, self._creds(ctx))
        return self._entry(node)

    @_errors
    def mknod(self, parent_inode, name, mode, rdev, ctx):
        kind = stat.S_IFMT(mode) or stat.S_IFREG
        node, fd = self.tree.create(self.nodes.get(parent_inode), os.fsdecode(name), kind,
                                    mode, self._creds(ctx), rdev=rdev)
        if fd >= 0:
            os.close(fd)
        return self._entry(node)

    @_errors
    def symlink(self, parent_inode, name, target, ctx):
        node, _ = self.tree.create(self.nodes.get(parent_inode), os.fsdecode(name),
                                   stat.S_IFLNK, 0o777, self._creds(ctx),
                                   target=os.fsdecode(target))
        return self._entry(node)

    @_errors
    def link(self, inode, new_parent_inode, new_name, ctx):
        node = self.nodes.get(inode)
        self.tree.link(node, self.nodes.get(new_parent_inode), os.fsdecode(new_name),
                       self._creds(ctx))
        return self._entry(node)

    @_errors
    def unlink(self, parent_inode, name, ctx):
        self.tree.unlink(self.nodes.get(parent_inode), os.fsdecode(name), self._creds(ctx))

    @_errors
    def rmdir(self, parent_inode, name, ctx):
        self.tree.rmdir(self.nodes.get(parent_inode), os.fsdecode(name), self._creds(ctx))

    @_errors
    def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags,
                     ctx):
        self.tree.rename(self.nodes.get(parent_inode_old), os.fsdecode(name_old),
                         self.nodes.get(parent_inode_new), os.fsdecode(name_new), flags,
                         self._creds(ctx))

    # ---- extended attributes ----

    def _hidden(self, name: str, ctx) -> bool:
        """The overlay's and the store's own: only the record, and only for a process
        outside the container (pid 0: the fakeroot in its monitor, cp)."""
        if not name.startswith(_HIDDEN_XATTRS):
            return False
        return not (name == OVERRIDE_XATTR and ctx.pid == 0)

    @_errors
    def getxattr(self, inode, name, ctx):
        node, name = self.nodes.get(inode), os.fsdecode(name)
        if self._hidden(name, ctx):
            raise OSError(errno.ENODATA, "no such attribute")
        value = self.nodes.xattr(node, name)
        if value is None:
            raise OSError(errno.ENODATA, "no such attribute")
        return value

    @_errors
    def listxattr(self, inode, ctx):
        node = self.nodes.get(inode)
        names = self.nodes.xattr_names(node)
        return [os.fsencode(n) for n in names if not self._hidden(n, ctx)]

    @_errors
    def setxattr(self, inode, name, value, ctx):
        node, name = self.nodes.get(inode), os.fsdecode(name)
        self._xattr_write_check(node, name, ctx)
        self.tree.upper.copy_up(node)
        if name == OVERRIDE_XATTR:  # the fakeroot's record: checked, then kept
            text = value.decode(errors="replace")
            if parse_override(text) is None:
                raise OSError(errno.EINVAL, "malformed override_stat record")
            self.tree.upper.write_record(node, text)
            self._recorded(node)
            return
        path, follow = self.nodes.path(node)
        try:
            os.setxattr(path, name, value, follow_symlinks=follow)
        finally:
            self.nodes.xattrs_changed(node)

    @_errors
    def removexattr(self, inode, name, ctx):
        node, name = self.nodes.get(inode), os.fsdecode(name)
        self._xattr_write_check(node, name, ctx)
        if self.nodes.xattr(node, name) is None:
            raise OSError(errno.ENODATA, "no such attribute")
        self.tree.upper.copy_up(node)
        if name == OVERRIDE_XATTR:
            self.tree.upper.write_record(node, None)
            self._recorded(node)
            return
        path, follow = self.nodes.path(node)
        try:
            os.removexattr(path, name, follow_symlinks=follow)
        finally:
            self.nodes.xattrs_changed(node)

    def _recorded(self, node: Node) -> None:
        """A record written through the mount changes what the kernel shows, which it
        caches (a setxattr reply carries no attributes): drop its attributes (only
        those: no page is waited for, so this cannot block on the caller's writeback),
        and give a file that became a device a new node."""
        try:
            pyfuse3.invalidate_inode(node.ino, attr_only=True)
        except OSError:
            pass  # the kernel holds no such inode (any more)
        self._retype(node)

    def _retype(self, node: Node) -> None:
        """A record made a file a device (the fakeroot's mknod), or undid it: the
        kernel's inode keeps its type, so the name gets a new node, and the kernel's
        entry is dropped (asynchronously: from within a request it could deadlock)."""
        if not node.told or node.kind == node.told or node.gone:
            return
        self.nodes.detach(node)
        for parent, name in ((node.parent, node.name), *node.aliases):
            if parent is not None:
                pyfuse3.invalidate_entry_async(parent.ino, os.fsencode(name),
                                               ignore_enoent=True)

    def _xattr_write_check(self, node: Node, name: str, ctx) -> None:
        """xattr(7): user.* only on files and directories, by a writer (the owner, in a
        sticky directory); the kernel checks the other namespaces before asking us."""
        if self._hidden(name, ctx):
            raise OSError(errno.EPERM, "the overlay's own attribute")
        if not name.startswith("user.") or not self.checks:
            return
        creds = self._creds(ctx)
        owner = self.nodes.owner(node)
        if node.is_dir and owner[2] & stat.S_ISVTX:
            access.check_owner(owner, creds)
        access.check(owner, node.kind, creds, access.W)
