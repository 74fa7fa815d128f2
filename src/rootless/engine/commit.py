"""`docker commit` of a stopped container: its image plus one layer of its changes.

The layer is written as a tar in tmp/ (in a user namespace, as `export` reads the
trees: engine/container_fs.py), from the A/C/D list `diff` prints: added and changed
entries as they are in the container (owners from the ownership records or the real
owner, modes, xattrs, hardlinks, device nodes), deleted ones as `.wh.NAME`, and a
directory overlayfs made opaque as its entry, `.wh..wh..opq` and all it holds now.

The image is then stored through the one copy routine (image/transports/copy.py) into
the store destination, as `import` and `load` store theirs: the tar becomes a verified
blob, is unpacked by the same unpacker into layers/<chain-id>, and the image and its
name are recorded in one transaction; the image's own layers are already there and are
not read. Until then nothing refers to what was written, and a failure or Ctrl-C
removes this command's tmp/ entries.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, BinaryIO

from rootless.errors import RootlessError, UsageError
from rootless.image.manifest import (
    CONFIG_TYPES,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    Descriptor,
    make_manifest,
    parse_manifest,
    rfc3339,
)
from rootless.image.transports.base import ImageSource


def container_commit(store, ref: str, name: str | None = None, author: str = "",
                     message: str = "", changes: list[str] = (), pause: bool = True) -> str:
    """Commit container `ref`; returns the new image's id. A running container is
    paused meanwhile (docker's --pause, the default), so its layer is one moment's."""
    from rootless.engine.lifecycle import paused_for

    with paused_for(store, ref, pause):
        return _commit(store, ref, name, author, message, changes)


def _commit(store, ref: str, name: str | None, author: str, message: str,
            changes: list[str]) -> str:
    from rootless.engine.container_fs import StoppedContainer
    from rootless.engine.images import _tag_name, _temp_cleaned
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination

    names = [_tag_name_checked(name, _tag_name)] if name else []
    _check_changes(changes)
    container = StoppedContainer(store, ref, "commit")
    with _temp_cleaned(store):
        layer = store.temp_path("commit")
        try:
            _write_layer(container, layer)
            source = CommitSource(store, container, layer, author, message, list(changes))
            return copy_image(source, StoreDestination(store), names)
        finally:
            layer.unlink(missing_ok=True)


def _tag_name_checked(name: str, tag_name) -> str:
    try:
        return tag_name(name)
    except UsageError as e:  # docker's CLI: exit 1, as for any other bad reference
        raise RootlessError(str(e)) from None


def _check_changes(changes) -> None:
    """-c values, before anything is written (docker: exit 1)."""
    from rootless.image.changes import apply_changes

    try:
        apply_changes({}, list(changes))
    except UsageError as e:
        raise RootlessError(str(e)) from None


# ---- the layer ----

def _write_layer(container, path: Path) -> None:
    import os

    from rootless.kernel.storage_ns import call_as_root

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        call_as_root(lambda: _layer_to(container, fd))
    finally:
        os.close(fd)


def _layer_to(container, fd: int) -> None:
    import os

    from rootless.engine.container_fs import write_tar
    from rootless.engine.container_tree import changes

    image, view, shared = container.views()
    with open(fd, "wb", closefd=False) as out:
        found = changes(image, view, shared, container.mount_points)
        end = write_tar(view, layer_items(found, view), out)
    os.ftruncate(fd, end)  # no record padding: the layer is the bytes docker's would be


def layer_items(found, view) -> list[tuple[str, str]]:
    """The tar items of a layer holding `found` (Change list, sorted by path)."""
    items: list[tuple[str, str]] = []
    # opaque directories written whole: a set, not the last one, since sorting puts
    # `cron-x` (and `cron.d`) between `cron` and `cron/...`
    opaque: set[str] = set()
    for change in found:
        inside = _under(change.path, opaque)
        if change.kind == "D":
            if not inside:
                items.append((change.path, "whiteout"))
            continue
        if inside:
            continue  # written below, with the whole of the opaque directory
        items.append((change.path, "entry"))
        entry = view.entries[change.path]
        if entry.opaque:
            opaque.add(change.path)
            items.append((change.path, "opaque"))
            prefix = change.path + "/"
            items += [(p, "entry") for p in sorted(view.entries) if p.startswith(prefix)]
    return items


def _under(path: str, dirs: set[str]) -> bool:
    parent = path.rpartition("/")[0]
    while parent:
        if parent in dirs:
            return True
        parent = parent.rpartition("/")[0]
    return False


# ---- the image ----

class CommitSource(ImageSource):
    """The container's image, one layer (the tar at `layer`) and a config added."""

    def __init__(self, store, container, layer: Path, author: str, message: str,
                 changes: list[str]) -> None:
        from rootless.store.blobs import blob_read

        self.store, self.layer_path = store, layer
        self.names: list[str] = []
        self.description = f"container {container.record.short_id}"
        row = container.image_row
        base = parse_manifest(blob_read(store, row.manifest_digest), row.manifest_type or "",
                              f"manifest of image {row.id[7:19]}")
        docker = base.media_type == DOCKER_MANIFEST
        from rootless.store.blobs import file_digest

        diff_id, size = file_digest(layer)
        self.layer = Descriptor(DOCKER_LAYER if docker else OCI_LAYER, diff_id, size)
        config = json.loads(row.config)
        _add_commit(config, _container_config(store, container), diff_id, author, message,
                    changes)
        self.config_raw = json.dumps(config, separators=(",", ":")).encode()
        config_type = DOCKER_CONFIG if docker else OCI_CONFIG
        if base.config.media_type in CONFIG_TYPES:
            config_type = base.config.media_type
        self.config = Descriptor(config_type, "sha256:" + hashlib.sha256(
            self.config_raw).hexdigest(), len(self.config_raw))
        self.raw_manifest = make_manifest(self.config, [*base.layers, self.layer],
                                          base.media_type)
        self.media_type = base.media_type

    def manifest(self) -> tuple[bytes, str]:
        return self.raw_manifest, self.media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        import io

        from rootless.store.blobs import blob_path

        if desc.digest == self.config.digest:
            return io.BytesIO(self.config_raw)
        if desc.digest == self.layer.digest:
            return open(self.layer_path, "rb")
        return open(blob_path(self.store, desc.digest), "rb")


def _container_config(store, container) -> dict[str, Any]:
    """What docker's commit takes from the container's Config: its command, entrypoint,
    environment, working directory and user."""
    from rootless.engine.container_inspect import config, spec_read

    spec, _ = spec_read(container.dir / "config.json")
    return config(store, container.record, spec)


_RUNTIME_ENV = ("HOSTNAME=", "HOME=")  # set for each run; not part of the image


def _add_commit(config: dict[str, Any], container: dict[str, Any], diff_id: str,
                author: str, message: str, changes: list[str]) -> None:
    from rootless.image.changes import apply_changes

    section = config.get("config") if isinstance(config.get("config"), dict) else {}
    image_env = section.get("Env") or []
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User"):
        if container.get(key):
            section[key] = container[key]
    env = [e for e in container.get("Env") or []
           if not e.startswith(_RUNTIME_ENV) or e in image_env]
    if env:
        section["Env"] = env
    apply_changes(section, changes)
    created = rfc3339(time.time())
    config["config"] = section
    config["created"] = created
    if author:
        config["author"] = author
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    config["rootfs"] = {"type": "layers", "diff_ids": [*(rootfs.get("diff_ids") or []),
                                                       diff_id]}
    # docker's: the container's Cmd, joined with spaces
    entry: dict[str, Any] = {"created": created,
                             "created_by": " ".join(container.get("Cmd") or [])}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    history = config.get("history") if isinstance(config.get("history"), list) else []
    config["history"] = [*history, entry]
