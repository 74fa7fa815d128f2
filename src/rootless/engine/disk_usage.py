"""`docker system df`: the space images and containers take in the store.

Image sizes are the recorded sizes of their layers (bytes of file content, as Docker's
DiffSize); a layer several images share is counted once in the total and is their
"shared size". A container's size is what it wrote: its overlay upper directory, or
its private copy of the root filesystem where no overlay was available.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from rootless.store import metadata as md


class ImageUsage(NamedTuple):
    id: str
    repository: str  # of its first tag, as docker prints it; "<none>" if untagged
    tag: str
    created: float | None
    size: int
    shared_size: int  # bytes of its layers that other images use too
    containers: int


class ContainerUsage(NamedTuple):
    row: Any  # engine.containers.ContainerRow
    size: int  # bytes it wrote (upper dir or rootfs copy)


class DiskUsage(NamedTuple):
    images: list[ImageUsage]
    layers_size: int  # every layer once
    containers: list[ContainerUsage]


def disk_usage(store) -> DiskUsage:
    from rootless.engine.containers import container_dir, container_list

    images = md.images_listed(store)
    layer_sizes = {layer.chain_id: layer.size for layer in md.layers_all(store)}
    users: dict[str, int] = {}
    for image in images:
        for chain in set(image.layers):
            users[chain] = users.get(chain, 0) + 1
    counts = md.container_counts(store)
    tags = md.tags_all(store)
    image_usage = [
        ImageUsage(image.id, *_first_tag(tags.get(image.id)), image.created or image.added,
                   image.size,
                   sum(layer_sizes.get(c, 0) for c in set(image.layers) if users[c] > 1),
                   counts.get(image.id, 0))
        for image in images]
    containers = [ContainerUsage(row, container_size(container_dir(store, row.record.id)))
                  for row in container_list(store)]
    return DiskUsage(image_usage, sum(layer_sizes.values()), containers)


def _first_tag(names: list[str] | None) -> tuple[str, str]:
    """(repository, tag) of an image's first name: `system df -v` shows one row per
    image, as docker does."""
    if not names:
        return "<none>", "<none>"
    from rootless.image.reference import parse_reference

    ref = parse_reference(names[0])
    return ref.familiar_name, ref.tag or "<none>"


def container_size(path: Path) -> int:
    """Bytes a container wrote. A rootfs/ that is a mount point is the overlay seen
    from here (its content is the layers'), so only a plain rootfs copy counts."""
    size = directory_size(path / "upper")
    rootfs = path / "rootfs"
    if rootfs.is_dir() and not os.path.ismount(rootfs):
        size += directory_size(rootfs)
    return size


def directory_size(path: Path) -> int:
    """Sum of the sizes of everything but directories, each inode once (as Docker's
    fs.directory.Size). Best effort: what subordinate ids made unreadable is skipped.
    By descriptor and iteratively (kernel/tree.py): a container's tree may be deeper
    than Python's recursion limit and PATH_MAX, and a running one may swap in symlinks."""
    from rootless.kernel.tree import walk_tree

    seen: set[tuple[int, int]] = set()
    total = 0

    def enter(fd: int, _: os.stat_result) -> list[str]:
        nonlocal total
        subdirs = []
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append(entry.name)
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
        return subdirs

    parent, name = os.path.split(os.fspath(path))
    try:
        parent_fd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        walk_tree(parent_fd, name, enter)
    except OSError:
        pass  # a mount point, a directory moved away meanwhile: what was counted so far
    finally:
        os.close(parent_fd)
    return total
