"""Everything the FUSE overlay writes into upper/: copy-up, whiteouts, opaque
directories and ownership records, in the kernel overlay's on-disk format.

Copy-up (what overlayfs does before the first change to a file of the image): the
parent directories first, topmost down, then the entry itself, made in work/ under a
temporary name with its data (holes kept: a sparse file stays sparse), xattrs (the
ownership record among them; overlayfs's own user.overlay.* are not copied), owner
(with a subordinate range), mode and times, and renamed into place last, so that a
server killed midway leaves nothing half-copied in upper/. Hardlinks of the image are
broken by a copy-up, as the kernel overlay breaks them without `index=on`.

Owners and modes on disk: in single-id mode every file belongs to the one user, so
what the container sets (chown, a setuid bit, a device node) is kept in override_stat
(containers-storage's record; kernel/override.py) and the file on disk never carries
a setuid or setgid bit (a setuid copy owned by a real user would let anyone who
reaches the store become that user, as image/layers.py argues); a directory keeps its
setgid bit. With a subordinate range the owner and the whole mode are real (chown(2)
through the container's user namespace, in which the server runs), and only a device
node, which no user namespace may create, is a record.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.fs.fuse_layers import UPPER, Entry, Layers, join
from rootless.fs.fuse_nodes import Node, Nodes
from rootless.kernel.override import OVERRIDE_XATTR, device_kind, override_value
from rootless.kernel.paths import AUFS_OPAQUE, AUFS_WHITEOUT, OPAQUE_XATTR

_SETID = stat.S_ISUID | stat.S_ISGID
_PRIVATE = ("user.overlay.",)  # the kernel overlay's own, never copied


class Upper:
    def __init__(self, layers: Layers, nodes: Nodes) -> None:
        self.layers, self.nodes = layers, nodes
        self.single_id = nodes.single_id
        self.serial = 0
        from rootless.kernel.syscalls import RealSyscalls

        self.sys = RealSyscalls()

    # ---- copy-up ----

    def copy_up(self, node: Node) -> None:
        """Make `node` an entry of upper/ (its parents first); a no-op if it is one."""
        if node.layer == UPPER:
            return
        if node.gone:  # removed while open for reading: nothing to put it back into
            raise OSError(errno.ENOENT, "no longer in the tree")
        if node.parent is None:
            raise OSError(errno.EIO, "the root is always in upper/")
        self.copy_up(node.parent)
        rel = node.rel()
        temp = self._temp_name()
        try:
            self._copy_entry(node, rel, temp)
            os.rename(temp, rel, src_dir_fd=self.layers.work, dst_dir_fd=self.layers.fds[UPPER])
        except BaseException:
            _remove_temp(self.layers.work, temp)
            raise
        listing = node.parent.listing
        if node.is_dir:
            node.dirs = (UPPER, *node.dirs)
        if listing is not None:
            listing.entries[node.name] = Entry(UPPER, node.dirs)
        self.nodes.rekey(node, UPPER, self.layers.lstat(UPPER, rel))
        node.aliases.clear()  # other names of the image's hardlink stay in the image
        self._reopen_readers(node, rel)

    def _temp_name(self) -> str:
        self.serial += 1
        return f"#fuse-copyup-{os.getpid()}-{self.serial}"

    def _copy_entry(self, node: Node, rel: str, temp: str) -> None:
        layer, st, work = node.layer, node.st, self.layers.work
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(temp, 0o700, dir_fd=work)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(rel, dir_fd=self.layers.fds[layer]), temp, dir_fd=work)
        elif stat.S_ISREG(st.st_mode):
            self._copy_data(layer, rel, temp, st)
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            os.mknod(temp, stat.S_IFMT(st.st_mode) | 0o600, dir_fd=work)
        else:
            raise OSError(errno.EIO, f"cannot copy up {rel!r}: unexpected file type")
        self._copy_meta(layer, rel, temp, st)

    def _copy_data(self, layer: int, rel: str, temp: str, st: os.stat_result) -> None:
        from rootless.fs.rootfs import _copy_data

        fin = self.layers.open(layer, rel, os.O_RDONLY)
        try:
            fout = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, 0o600, dir_fd=self.layers.work)
            try:
                _copy_data(fin, fout, st)
            finally:
                os.close(fout)
        finally:
            os.close(fin)

    def _copy_meta(self, layer: int, rel: str, temp: str, st: os.stat_result) -> None:
        """Owner (subordinate ids only), mode, xattrs, times: in that order, since
        chown(2) clears setuid bits and file capabilities."""
        work, link = self.layers.work, stat.S_ISLNK(st.st_mode)
        if not self.single_id:
            os.chown(temp, st.st_uid, st.st_gid, dir_fd=work, follow_symlinks=False)
        if not link:
            os.chmod(temp, stat.S_IMODE(st.st_mode), dir_fd=work)
            path = f"/proc/self/fd/{work}/{temp}"
            for name in self.layers.xattr_names(layer, rel):
                if name.startswith(_PRIVATE):
                    continue
                value = self.layers.xattr(layer, rel, name)
                if value is None:
                    continue
                try:
                    os.setxattr(path, name, value, follow_symlinks=False)
                except OSError as e:  # security.* and trusted.* may not be ours to set
                    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EINVAL):
                        raise
        os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=work,
                 follow_symlinks=False)

    def _reopen_readers(self, node: Node, rel: str) -> None:
        """Descriptors opened on the image's copy now read the new one (dup2 keeps the
        handle's number), so no reader sees old data after a write through another."""
        for fd in node.handles:
            flags = os.O_RDWR if node.kind == stat.S_IFREG else os.O_RDONLY
            try:
                new = self.layers.open(UPPER, rel, flags)
            except OSError:
                continue
            os.dup2(new, fd, inheritable=False)
            os.close(new)

    # ---- whiteouts and opaque directories ----

    def whiteout(self, parent: Node, name: str) -> None:
        """Hide `name` of the image's layers: a character device 0:0 in upper/ (no
        privilege needed since Linux 5.8; the Syscalls seam honours a kernel floor), or
        before that the AUFS `.wh.NAME` file, as fuse-overlayfs falls back."""
        self.copy_up(parent)
        rel, ufd = parent.rel(), self.layers.fds[UPPER]
        try:
            self.sys.mknod(join(rel, name), stat.S_IFCHR, 0, ufd)
        except PermissionError:
            os.close(os.open(join(rel, AUFS_WHITEOUT + name), os.O_WRONLY | os.O_CREAT
                             | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=ufd))

    def drop_whiteout(self, rel: str) -> None:
        """Remove the whiteout at `rel` (of either form), if there is one."""
        parent, _, name = rel.rpartition("/")
        for path in (rel, join(parent, AUFS_WHITEOUT + name)):
            try:
                os.unlink(path, dir_fd=self.layers.fds[UPPER])
            except FileNotFoundError:
                pass

    def set_opaque(self, rel: str) -> None:
        try:
            os.setxattr(self.layers.at(UPPER, rel), OPAQUE_XATTR, b"y",
                        follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
            os.close(os.open(join(rel, AUFS_OPAQUE), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=self.layers.fds[UPPER]))

    def clear_whiteouts(self, rel: str) -> None:
        """Remove the whiteouts of an upper/ directory that shows as empty (before
        rmdir, or a rename over it)."""
        fd = self.layers.open(UPPER, rel, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in os.listdir(fd):
                os.unlink(name, dir_fd=fd)  # only whiteouts: the caller checked
        finally:
            os.close(fd)

    # ---- owners and modes ----

    def disk_mode(self, mode: int, is_dir: bool) -> int:
        """The mode an entry gets on disk: without setuid/setgid in single-id mode (a
        directory keeps its setgid bit)."""
        if not self.single_id:
            return mode
        return mode & ~(stat.S_ISUID if is_dir else _SETID)

    def set_owner(self, node: Node, uid: int, gid: int, mode: int,
                  kind: int = 0, dev: tuple[int, int] = (0, 0), fresh: bool = False) -> None:
        """What the container sees as owner, permission bits and, for a device record,
        type and numbers, of an upper/ entry; written where the disk can hold it,
        recorded otherwise. `fresh`: an entry just made (with its disk mode, and no
        record): only what differs is written."""
        path, follow = self.nodes.path(node)
        st = node.st
        if not self.single_id and not (fresh and (st.st_uid, st.st_gid) == (uid, gid)):
            os.chown(path, uid, gid, follow_symlinks=follow)
        if stat.S_ISLNK(st.st_mode):
            return  # a symlink's mode is 0777, and no user xattr fits on it (xattr(7))
        disk = 0 if kind else self.disk_mode(mode, node.is_dir)  # a device: no data
        if not fresh or stat.S_IMODE(st.st_mode) != disk:
            os.chmod(path, disk)  # never a symlink here: following is safe
        default = (0, 0) if self.single_id else (uid, gid)
        record = None
        if (uid, gid) != default or disk != mode or kind:
            record = override_value(uid, gid, mode, device_kind(kind, dev))
        # only a new entry's attributes are refreshed here: every other caller is a
        # SETATTR, whose handler reads them once at its end (fs/fuse_ops.py)
        if record is None and (fresh or node.record is None):  # none kept, none to drop
            if fresh and (not self.single_id or stat.S_IMODE(st.st_mode) != disk):
                self.nodes.refresh(node)
            return
        self.write_record(node, record, refresh=fresh)

    def write_record(self, node: Node, value: str | None, refresh: bool = True) -> None:
        from rootless.kernel.override import parse_override

        path, follow = self.nodes.path(node)
        if value is None:
            try:
                os.removexattr(path, OVERRIDE_XATTR, follow_symlinks=follow)
            except OSError as e:
                if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                    raise
            node.record = None
        else:
            os.setxattr(path, OVERRIDE_XATTR, value.encode(), follow_symlinks=follow)
            node.record = parse_override(value)
        self.nodes.xattrs_changed(node)
        if refresh:
            self.nodes.refresh(node)


def _remove_temp(work: int, name: str) -> None:
    from rootless.kernel.remove import remove_at

    try:
        remove_at(work, name)
    except OSError:
        pass
