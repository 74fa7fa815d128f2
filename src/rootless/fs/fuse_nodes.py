"""The FUSE overlay's inodes: what the kernel knows by number, and where each one lives.

A Node is one file of the merged tree as the kernel sees it: its inode number (ours,
never reused while the server runs), the layer its data and metadata come from (upper/
once copied up), its name in its parent (a non-directory may have more: hardlinks) and,
for a directory, the layers it merges and its merged listing, loaded on first use and
kept in step with every change this overlay makes (fuse-overlayfs loads directories the
same way). Nodes live while the kernel holds a lookup count on them (pyfuse3's
developer-notes/lookup_counts.rst): `forget` drops them.

Owners and modes come from the override_stat record when a file has one. Without it:
in single-id mode the file belongs to container root (0:0), whatever id the one mapped
host user shows as, since that is what the unpacker and the kernel overlay mean by a
file of the user's (image/layers.py); with a subordinate range the kernel's owner
stands (the server runs in the container's user namespace, so it sees container ids).

What the kernel is told (`shown`): with a subordinate range, those owners. In single-id
mode every file is said to be the one mapped id's, as the kernel overlay shows it: an
owner the container's user namespace cannot map becomes INVALID_UID in the inode, and
the VFS then refuses every write to it (inode_permission: HAS_UNMAPPED_ID, EACCES) and
its removal (may_delete: EOVERFLOW), whoever asks, so root could not write `_apt`'s
directory nor `-u 1000` make a file in root's /tmp. The modes, setuid bits and device
nodes are shown as recorded, and the server enforces the recorded owners itself
(fs/fuse_access.py); the fakeroot's stat answers show the owners to `ls -l`.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.fs.fuse_layers import UPPER, Entry, Layers, Listing, join
from rootless.kernel.override import OVERRIDE_XATTR

ROOT_INODE = 1  # pyfuse3.ROOT_INODE, FUSE_ROOT_ID


class Node:
    __slots__ = ("ino", "parent", "name", "layer", "dirs", "st", "record", "lookups",
                 "listing", "aliases", "orphan", "handles", "key", "gone", "told",
                 "children", "xnames")

    def __init__(self, ino: int, parent: Node | None, name: str, layer: int,
                 st: os.stat_result, dirs: tuple[int, ...] = ()) -> None:
        self.ino = ino
        self.parent, self.name = parent, name
        self.layer = layer
        self.dirs = dirs  # a directory's merge chain, topmost first
        self.st = st  # lstat of the entry in `layer` (refreshed for upper/ entries)
        self.record: tuple | None = None  # parsed override_stat
        self.lookups = 0
        self.listing: Listing | None = None
        self.aliases: set[tuple[Node, str]] = set()  # other names of a hardlinked file
        self.orphan = -1  # an O_PATH fd of a file whose every name is gone
        self.handles: set[int] = set()  # open descriptors (fh) of this node
        self.key = (layer, st.st_ino)
        self.gone = False  # no name left in the tree: rel() is stale
        # the file type the kernel was told first: an inode's type never changes
        # (a reply with another makes it a bad inode, EIO), so a record that turns a
        # file into a device is shown by a new node (OverlayOps._retype)
        self.told = 0
        self.children: dict[str, Node] = {}  # a directory's known nodes, by name
        # the names of its xattrs, once asked (Nodes.xattr): only this server changes
        # them while mounted, and each change forgets them (Nodes.xattrs_changed)
        self.xnames: frozenset[str] | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def kind(self) -> int:
        """The file type the container sees: a device record's, else the entry's."""
        if self.record is not None and self.record[3]:
            return self.record[3]
        return stat.S_IFMT(self.st.st_mode)

    def rel(self) -> str:
        """The path in every layer: each component a directory of the merged tree. A
        removed directory has no path (its name may be a symlink's by now)."""
        parts = []
        node = self
        if node.gone and node.is_dir:
            raise OSError(errno.ENOENT, "the directory was removed")
        while node.parent is not None:
            parts.append(node.name)
            node = node.parent
            if node.gone:
                raise OSError(errno.ENOENT, "a parent directory was removed")
        return "/".join(reversed(parts))


class Nodes:
    """The inode table and the merged tree's lookups."""

    def __init__(self, layers: Layers, single_id: bool) -> None:
        self.layers = layers
        self.single_id = single_id
        chain = layers.merge_chain("", tuple(range(len(layers.fds))))
        root = Node(ROOT_INODE, None, "", UPPER, layers.lstat(UPPER, ""), chain)
        root.lookups = 1 << 60  # the kernel never forgets its root
        root.record = layers.record(UPPER, "")
        self.by_ino: dict[int, Node] = {ROOT_INODE: root}
        self.by_key: dict[tuple[int, int], Node] = {root.key: root}
        self.next_ino = ROOT_INODE + 1
        # single-id mode: the one mapped id, which the server is in the container's
        # user namespace (see the module's note)
        self.shown = (os.geteuid(), os.getegid()) if single_id else None

    def get(self, ino: int) -> Node:
        node = self.by_ino.get(ino)
        if node is None:
            raise OSError(errno.ENOENT, "no such inode")
        return node

    # ---- owners ----

    def owner(self, node: Node) -> tuple[int, int, int]:
        """(uid, gid, permission bits) as the container sees them."""
        if node.record is not None:
            return node.record[0], node.record[1], node.record[2]
        st = node.st
        if self.single_id:
            return 0, 0, stat.S_IMODE(st.st_mode)
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    def shown_ids(self, node: Node) -> tuple[int, int]:
        """The owner the kernel is told (see the module's note)."""
        if self.shown is not None:
            return self.shown
        uid, gid, _ = self.owner(node)
        return uid, gid

    # ---- where a node is ----

    def path(self, node: Node) -> tuple[str, bool]:
        """(a path of the node's entry for the path-only calls, whether that path's last
        component must be followed): its layer's, or an orphan's descriptor link."""
        if node.orphan >= 0:
            return f"/proc/self/fd/{node.orphan}", True
        if node.gone:
            raise OSError(errno.ENOENT, "no longer in the tree")
        return self.layers.at(node.layer, node.rel()), False

    def xattr(self, node: Node, name: str) -> bytes | None:
        """The value of xattr `name`, or None. The kernel asks for security.capability
        before every write(2) and chown (file_remove_privs, for the capabilities a write
        must drop), so a name the node lacks is answered from its cached names."""
        if node.orphan >= 0 or node.gone:
            path, follow = self.path(node)
            try:
                return os.getxattr(path, name, follow_symlinks=follow)
            except OSError as e:
                if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                    raise
                return None
        names = node.xnames
        if names is None:
            names = node.xnames = frozenset(self.layers.xattr_names(node.layer, node.rel()))
        if name not in names:
            return None
        return self.layers.xattr(node.layer, node.rel(), name)

    def xattrs_changed(self, node: Node) -> None:
        """An xattr of the node's entry was set or removed: ask the disk next time (and
        for the node now indexed by the same entry, if a retype made another)."""
        node.xnames = None
        other = self.by_key.get(node.key)
        if other is not None:
            other.xnames = None

    def xattr_names(self, node: Node) -> list[str]:
        if node.orphan >= 0 or node.gone:
            path, follow = self.path(node)
            return os.listxattr(path, follow_symlinks=follow)
        return self.layers.xattr_names(node.layer, node.rel())

    # ---- the merged tree ----

    def listing(self, node: Node) -> Listing:
        if node.listing is None:
            if not node.is_dir:
                raise OSError(errno.ENOTDIR, "not a directory")
            node.listing = self.layers.merge(node.rel(), node.dirs)
        return node.listing

    def find(self, parent: Node, name: str) -> Node | None:
        """The node `name` in `parent` names (made if the kernel does not know it yet),
        without counting a lookup; None if there is no such entry. A node already made
        costs no stat (readdir lists every entry with its attributes, each time)."""
        entry = self.listing(parent).entries.get(name)
        if entry is None:
            return None
        node = parent.children.get(name)
        if node is not None and node.layer == entry.layer and node.orphan < 0 \
                and self.by_key.get(node.key) is node:
            if node.layer == UPPER:
                node.st = self.layers.lstat(UPPER, join(parent.rel(), name))
            return node
        return self.node_for(parent, name, entry)

    def node_for(self, parent: Node, name: str, entry: Entry,
                 st: os.stat_result | None = None, fresh: bool = False) -> Node:
        """`fresh`: an entry this server just made in upper/ (no record yet), whose
        attributes `st` may already hold (an fstat of its descriptor)."""
        rel = join(parent.rel(), name)
        if st is None:
            st = self.layers.lstat(entry.layer, rel)
        node = self.by_key.get((entry.layer, st.st_ino))
        if node is not None and node.orphan < 0:
            if (node.parent, node.name) != (parent, name):
                node.aliases.add((parent, name))
            if entry.layer == UPPER:
                node.st = st
            parent.children[name] = node
            return node
        dirs = self.layers.merge_chain(rel, entry.dirs) if entry.dirs else ()
        node = Node(self.next_ino, parent, name, entry.layer, st, dirs)
        self.next_ino += 1
        if not fresh and not stat.S_ISLNK(st.st_mode):
            # the names first (no exception where there is no record, the common case;
            # they answer the kernel's security.capability questions later)
            node.xnames = frozenset(self.layers.xattr_names(entry.layer, rel))
            if OVERRIDE_XATTR in node.xnames:
                node.record = self.layers.record(entry.layer, rel)
        self.by_ino[node.ino] = node
        self.by_key[node.key] = node
        parent.children[name] = node
        return node

    def refresh(self, node: Node) -> os.stat_result:
        """A fresh lstat of an upper/ entry (image layers never change)."""
        if node.orphan >= 0:
            node.st = os.stat(node.orphan)
        elif node.layer == UPPER and not node.gone:
            node.st = self.layers.lstat(UPPER, node.rel())
        return node.st

    def detach(self, node: Node) -> None:
        """The next lookup of the node's name makes a new node (of a new type)."""
        if self.by_key.get(node.key) is node:
            del self.by_key[node.key]

    def rekey(self, node: Node, layer: int, st: os.stat_result) -> None:
        """`node` now lives in `layer` (a copy-up): index it by its new entry."""
        if self.by_key.get(node.key) is node:
            del self.by_key[node.key]
        node.layer, node.st = layer, st
        node.key = (layer, st.st_ino)
        node.xnames = None  # the copy's: overlayfs's own and refused ones are not copied
        self.by_key[node.key] = node

    # ---- names ----

    def rename_node(self, node: Node, parent: Node, name: str) -> None:
        _unlink_child(node, node.parent, node.name)
        node.aliases.discard((parent, name))
        node.parent, node.name = parent, name
        parent.children[name] = node

    def drop_name(self, node: Node, parent: Node, name: str) -> None:
        """`name` in `parent` no longer names `node`. A file still open or known to the
        kernel under no other name keeps an O_PATH descriptor (unlink(2) semantics)."""
        _unlink_child(node, parent, name)
        if (node.parent, node.name) != (parent, name):
            node.aliases.discard((parent, name))
            return
        if node.aliases:
            node.parent, node.name = node.aliases.pop()
            return
        if node.orphan < 0 and not node.is_dir:
            try:
                node.orphan = self.layers.open(node.layer, node.rel(), os.O_PATH)
            except OSError:
                pass
        node.gone = True
        if self.by_key.get(node.key) is node:
            del self.by_key[node.key]

    def forget(self, ino: int, count: int) -> None:
        node = self.by_ino.get(ino)
        if node is None or ino == ROOT_INODE:
            return
        node.lookups -= count
        if node.lookups > 0:
            return
        del self.by_ino[ino]
        if self.by_key.get(node.key) is node:
            del self.by_key[node.key]
        for parent, name in ((node.parent, node.name), *node.aliases):
            _unlink_child(node, parent, name)
        if node.orphan >= 0:
            os.close(node.orphan)
            node.orphan = -1
        node.listing = None


def _unlink_child(node: Node, parent: Node | None, name: str) -> None:
    if parent is not None and parent.children.get(name) is node:
        del parent.children[name]
