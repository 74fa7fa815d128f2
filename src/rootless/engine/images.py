"""Images as the commands see them: import, load, list, remove, inspect, and the
resolution of a name to an image that every `rootless run` does (kept fast: no
heavy imports at module level, a few indexed SQLite lookups and one stat per layer).
"""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.errors import ImageError, NotFoundError, RootlessError, UsageError
from rootless.records import record
from rootless.store import metadata as md


@record
class ImageRecord:
    id: str  # sha256:<hex> of the config
    names: list[str]  # as docker prints them: busybox:latest, host:5000/a/b:1
    config: dict[str, object]  # the full OCI image config
    layer_dirs: list[str]  # lowest layer first, all present


class ConflictError(RootlessError):
    """An image cannot be removed because something uses it (Docker's 409)."""


# ---- resolution ----

def image_resolve(store, name: str) -> ImageRecord:
    """An image by id ("sha256:<hex>" or <hex>), name (busybox, busybox:1,
    name@sha256:...) or unique id prefix."""
    image_id = image_lookup(store, name)
    row = md.image_get(store, image_id)
    if row is None:
        raise NotFoundError(f"no such image: {name} (try: rootless pull {name})")
    dirs = [md.layer_path(store, chain) for chain in row.layers]
    for chain, path in zip(row.layers, dirs):
        if not os.path.isdir(path):
            raise ImageError(f"layer {chain[:19]} of image {name} is missing from the store "
                             f"(try: rootless rmi -f {name}, then load or pull it again)")
    _owners_check(store, name, row.layers)
    names = [_familiar(n) for n in md.tags_of(store, image_id)]
    return ImageRecord(image_id, names, jsonfast.loads(row.config), dirs)


def _owners_check(store, name: str, chains: list[str]) -> None:
    """The layers as this user's id mode stores them, or migrated, or refused
    (engine/layer_owners.py): a container must never see its files' owners wrong."""
    from rootless.kernel.storage_ns import RECORDS, storage_key

    key = storage_key()
    if any((owners or RECORDS) != key for owners in md.layer_owners(store, chains).values()):
        from rootless.engine.layer_owners import layers_ready

        layers_ready(store, name, chains, key)


def image_lookup(store, name: str) -> str:
    """The id of the image `name` means; NotFoundError if none, ImageError if a prefix
    is ambiguous or the name is not a valid reference."""
    return _lookup(store, name)[0]


def _lookup(store, name: str) -> tuple[str, bool]:
    """(image id, whether `name` named it by a tag or digest reference rather than by
    id). As Docker: a full id first, then a reference, then an id prefix."""
    hexpart = name[7:] if name.startswith("sha256:") else name
    is_hex = bool(hexpart) and all(c in "0123456789abcdef" for c in hexpart)
    if is_hex and len(hexpart) == 64:
        row = md.image_get(store, "sha256:" + hexpart)
        if row is not None and not row.removed:
            return "sha256:" + hexpart, False
        raise NotFoundError(f"no such image: {name}")
    if not name.startswith("sha256:"):
        from rootless.image.reference import parse_reference

        try:
            ref = parse_reference(name)
        except ImageError:
            if not is_hex:
                raise
            ref = None
        found = ref and (md.digest_get(store, str(ref)) if ref.digest
                         else md.tag_get(store, str(ref)))
        if found:
            return found, True
    if is_hex:
        ids = md.image_ids_with_prefix(store, "sha256:" + hexpart)
        if len(ids) == 1:
            return ids[0], False
        if len(ids) > 1:
            raise ImageError(f"image id prefix {name} is ambiguous: it matches several "
                             "images (give more characters)")
    raise NotFoundError(f"no such image: {name} (try: rootless pull {name})")


def _familiar(name: str) -> str:
    """A stored (normalised) name as docker prints it; string work only, since this
    runs on every `rootless run`."""
    if not name.startswith("docker.io/"):
        return name
    rest = name[len("docker.io/"):]
    path = rest.split("@", 1)[0].split(":", 1)[0]
    if path.startswith("library/") and "/" not in path[len("library/"):]:
        rest = rest[len("library/"):]
    return rest


# ---- import and load ----
#
# As pull: nothing is visible until the image is recorded, and a failure or Ctrl-C
# (KeyboardInterrupt, raised in this thread; unpacking workers are killed by
# engine/layer_unpack.py) removes everything this command put in tmp/ before the
# command exits: spooled input, blobs and layers being written.

class _temp_cleaned:  # noqa: N801  a context, named as the function it replaced
    """Remove this process's tmp/ entries if the body fails or is interrupted. (A class:
    this module is on `run`'s path, and contextlib's imports cost it ~3 ms.)"""

    def __init__(self, store) -> None:
        self.store = store

    def __enter__(self) -> None:
        from rootless.store.space import layer_limit

        layer_limit()  # a bad ROOTLESS_LAYER_LIMIT is refused before any work
        self.store.clean_temp()

    def __exit__(self, kind, error, tb) -> None:
        if kind is not None:
            self.store.clean_temp(own=True)


def image_import(store, source: str, name: str | None = None, changes: list[str] = (),
                 message: str = "") -> str:
    """`docker image import`: a rootfs tar (path, URL or '-' for stdin) -> a one-layer
    image, named `name` if given. Returns the image id."""
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination
    from rootless.image.transports.tarball import TarballSource

    names = [_tag_name(name)] if name else []
    with _temp_cleaned(store):
        path, spooled = _local_copy(store, source, "import")
        try:
            tarball = TarballSource(path, source, list(changes), message)
            return copy_image(tarball, StoreDestination(store), names)
        finally:
            if spooled:
                path.unlink(missing_ok=True)


def image_load(store, source: str | None) -> list[str]:
    """`docker load`: every image of a docker-archive or OCI archive (a path, or stdin
    for None / '-'); gzip, bzip2, xz and zstd archives too. Returns, per image, its
    names as docker prints them, or its id when it has none."""
    from rootless.engine.layer_unpack import unpack_parallel
    from rootless.image.transports.archive import archive_sources
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination

    source = source or "-"
    with _temp_cleaned(store):
        path, spooled = _local_copy(store, source, "load")
        plain = None
        try:
            plain = _uncompressed(store, path, source)
            description = "stdin" if source == "-" else f"archive {source}"
            files, sources = archive_sources(plain, description)
            loaded: list[str] = []
            with files.tar:
                for image in sources:
                    image_id = copy_image(image, StoreDestination(store, unpack_parallel))
                    loaded += [_familiar(n) for n in image.names] or [image_id]
            return loaded
        finally:
            if plain is not None and plain != path:
                plain.unlink(missing_ok=True)
            if spooled:
                path.unlink(missing_ok=True)


def image_tag(store, source: str, target: str) -> str:
    """`docker tag`: name the image `source` means `target` too, moving that name from
    any image that had it (which keeps its other names, or is left dangling). Returns
    the target as docker prints it."""
    from rootless.image.reference import parse_reference

    ref = parse_reference(target)
    if ref.digest:
        raise ImageError(f"refusing to create a tag with a digest reference: {target} "
                         "(give REPOSITORY[:TAG])")
    with store.lock():
        image_id = image_lookup(store, source)
        with store.db:
            md.tag_set(store, str(ref), image_id)
    return ref.familiar()


def _tag_name(name: str) -> str:
    from rootless.image.reference import parse_reference

    ref = parse_reference(name)
    if ref.digest:
        raise UsageError(f"cannot name an image by digest: {name} (give a tag)")
    return str(ref)


TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` and `images` do without pathlib
    from pathlib import Path


def _spool(store, chunks, kind: str, what: str) -> Path:
    """A new file in tmp/ holding the byte strings of `chunks`, written within the
    store's free space less its reserve (store/space.py); gone if anything fails."""
    from rootless.store.space import SpaceGuard

    tmp = store.temp_path(kind)
    guard = SpaceGuard(store.tmp_dir, what)
    try:
        with open(tmp, "xb") as out:
            for chunk in chunks:
                guard.charge(len(chunk))
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _chunks(stream, size: int = 1 << 20):
    while chunk := stream.read(size):
        yield chunk


def _local_copy(store, source: str, kind: str) -> tuple[Path, bool]:
    """(a readable local file holding `source`, whether it is a temporary copy)."""
    if source == "-":
        import sys

        if sys.stdin.isatty():
            raise UsageError(f"requested {kind} from stdin, but stdin is a terminal "
                             "(give a file, or pipe the tar in)")
        return _spool(store, _chunks(sys.stdin.buffer), kind, f"{kind} from stdin"), True
    if source.startswith(("http://", "https://")):
        return _download(store, source, kind), True
    from pathlib import Path

    path = Path(source)
    if not path.is_file():
        reason = "is not a regular file" if path.exists() else "no such file or directory"
        raise ImageError(f"cannot read {source}: {reason}")
    if not os.access(path, os.R_OK):
        raise ImageError(f"cannot read {source}: permission denied")
    return path, False


def _download(store, url: str, kind: str) -> Path:
    import requests

    try:
        with requests.get(url, stream=True, timeout=60) as response:
            if response.status_code != 200:
                raise ImageError(f"cannot download {url}: HTTP {response.status_code}")
            return _spool(store, response.iter_content(1 << 20), kind, f"{kind} from {url}")
    except requests.RequestException as e:
        raise ImageError(f"cannot download {url}: {e}") from None


def _uncompressed(store, path: Path, source: str) -> Path:
    """`path` itself if it is a plain tar, else a decompressed copy in tmp/ (bounded by
    the store's free space: the archive may be a gzip bomb)."""
    from rootless.image.compression import decompressed, detect

    with open(path, "rb") as f:
        if detect(f.read(6)) == "none":
            return path
        f.seek(0)
        stream = decompressed(f, f"archive {source}")
        ok = False
        try:
            tmp = _spool(store, _chunks(stream), "load", f"archive {source}")
            ok = True
        finally:
            stream.close(check=ok)
    return tmp


# ---- list and inspect ----

def image_list(store, reference: str | None = None):
    """One row per tag, untagged images once; newest first (engine/image_list.py has
    the filters and the digest rows)."""
    from rootless.engine import image_list as listing

    return listing.image_list(store, reference)


def image_inspect(store, names: list[str]) -> list[dict[str, object]]:
    """`docker image inspect`, the fields that matter now."""
    result = []
    for name in names:
        image_id = image_lookup(store, name)
        row = md.image_get(store, image_id)
        config = jsonfast.loads(row.config)
        result.append({
            "Id": image_id,
            "RepoTags": [_familiar(n) for n in md.tags_of(store, image_id)],
            "RepoDigests": [_familiar(n) for n in md.digests_of(store, image_id)],
            "Parent": "",
            "Comment": config.get("comment", ""),
            "Created": config.get("created", ""),
            "Author": config.get("author", ""),
            "Config": config.get("config") or {},
            "Architecture": config.get("architecture", ""),
            **({"Variant": config["variant"]} if config.get("variant") else {}),
            "Os": config.get("os", ""),
            "Size": row.size,
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(
                md.layer_path(store, c) for c in reversed(row.layers))}},
            "RootFS": {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]},
            "Metadata": {"ManifestDigest": row.manifest_digest or ""},
        })
    return result


# ---- remove ----

def image_remove(store, names: list[str], force: bool = False) -> list[str]:
    """`docker rmi`: returns the lines docker prints ("Untagged: x", "Deleted: id").
    A name that is one of several tags is only untagged. An image used by a container
    is refused unless forced; forced, a stopped container's image loses its names but
    stays (its layers are that container's lower layers); a running container's image
    is refused even when forced."""
    lines: list[str] = []
    with store.lock():
        for name in names:
            lines += _remove_one(store, name, force)
    return lines


def _remove_one(store, name: str, force: bool) -> list[str]:
    image_id, by_name = _lookup(store, name)
    tags = md.tags_of(store, image_id)
    users = _containers_using(store, image_id)
    short = image_id[7:19]
    if by_name:
        ref = _normalised(name)
        if len(tags) + len(md.digests_of(store, image_id)) > 1:
            return _untag(store, [ref])
        if users and not force:
            raise ConflictError(f'conflict: unable to remove repository reference "{name}" '
                                f"(must force) - container {users[0][0][:12]} is using its "
                                f"referenced image {short}")
    else:
        repos = {n.rsplit(":", 1)[0] for n in tags}
        if len(repos) > 1 and not force:
            raise ConflictError(f"conflict: unable to delete {short} (must be forced) - "
                                "image is referenced in multiple repositories")
    running = [u for u in users if u[2]]
    if running:
        raise ConflictError(f"conflict: unable to delete {short} (cannot be forced) - image "
                            f"is being used by running container {running[0][0][:12]}")
    if users and not force:
        raise ConflictError(f"conflict: unable to delete {short} (must be forced) - image is "
                            f"being used by stopped container {users[0][0][:12]}")
    lines = _untag(store, tags + md.digests_of(store, image_id))
    if users:  # as docker: gone for every command; its stopped containers keep its layers
        with store.db:
            md.image_mark_removed(store, image_id)
        return lines + [f"Deleted: {image_id}"]
    return lines + _delete_image(store, image_id)


def image_release(store, image_id: str) -> list[str]:
    """After a container is removed: delete its image if `rmi -f` had removed it and no
    other container uses it any more (docker deleted it then; we kept its layers)."""
    with store.lock():
        row = md.image_get(store, image_id)
        if row is None or not row.removed or _containers_using(store, image_id):
            return []
        return _delete_image(store, image_id)


def _normalised(name: str) -> str:
    from rootless.image.reference import parse_reference

    return str(parse_reference(name))


def _untag(store, names: list[str]) -> list[str]:
    with store.db:
        for name in names:
            md.tag_delete(store, name)
            store.db.execute("DELETE FROM digests WHERE name=?", (name,))
    return [f"Untagged: {_familiar(n)}" for n in names]


def _containers_using(store, image_id: str) -> list[tuple[str, str, bool]]:
    """(id, name, running) of the containers made from the image."""
    from rootless.engine.containers import container_list

    return [(r.record.id, r.record.name, r.running) for r in container_list(store)
            if r.record.image_id == image_id]



def _delete_image(store, image_id: str) -> list[str]:
    """Delete the image row, then the layers and blobs no other image uses."""
    from rootless.runtime.overlay_options import short_link_remove
    from rootless.store.blobs import blob_remove, remove_tree

    row = md.image_get(store, image_id)
    with store.db:
        md.image_delete(store, image_id)
    others = md.images_all(store)
    used_layers = {chain for image in others for chain in image.layers}
    used_blobs = {image.id for image in others} | {image.manifest_digest for image in others}
    layer_rows = {layer.chain_id: layer for layer in md.layers_all(store)}
    used_blobs |= {layer_rows[c].blob_digest for c in used_layers if c in layer_rows}
    lines = [f"Deleted: {image_id}"]
    failed = None  # a tree that could not be removed (files of a range this user lost)
    for chain in reversed(row.layers):
        if chain in used_layers:
            continue
        layer = layer_rows.get(chain)
        with store.db:
            md.layer_delete(store, chain)
        path = md.layer_dir(store, chain)
        if path.is_dir():
            doomed = store.temp_path("old-layer")
            os.rename(path, doomed)  # gone at once; the slow removal follows
            try:
                remove_tree(doomed)
            except RootlessError as e:  # left in tmp/ for a later command: the other
                failed = failed or e  # layers still go, none is left without its row
        try:
            os.unlink(f"{path}.xattrs.json")
        except FileNotFoundError:
            pass
        short_link_remove(str(store.layers_dir), path.name)  # layers/l/, before Linux 6.8
        if layer and layer.blob_digest and layer.blob_digest not in used_blobs:
            blob_remove(store, layer.blob_digest)
        lines.append(f"Deleted: {chain}")
    for digest in (image_id, row.manifest_digest):
        if digest and digest not in used_blobs:
            blob_remove(store, digest)
    if failed is not None:
        raise failed
    return lines
