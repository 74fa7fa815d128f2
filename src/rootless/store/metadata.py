"""Rows of state.db about images: images, tags, repository digests, layers.

Plain data access; the policy (what a name means, what may be removed) lives in
engine/images.py. Callers hold the store lock around read-modify-write sequences and
wrap changes in `with store.db:` so each is one transaction.
"""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` does without pathlib (store/store.py)
    from pathlib import Path


@record
class ImageRow:
    id: str
    config: str
    manifest_digest: str | None
    manifest_type: str | None
    layers: list[str]  # chain ids, lowest first
    created: float | None
    added: float
    size: int
    removed: bool = False  # see images.removed in store/schema.py


@record
class LayerRow:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    blob_digest: str | None
    blob_size: int | None
    media_type: str | None
    added: float
    # how its files hold their owners: "records" (single-id: override_stat), "ids ..."
    # (kernel/storage_ns.StorageIds.key: true owners mapped into that range), None for
    # a layer of a store older than schema 7 (records)
    owners: str | None = None


_LAYER_COLUMNS = ("chain_id, diff_id, parent, size, blob_digest, blob_size, media_type, "
                  "added, owners")
_IMAGE_COLUMNS = ("id, config, manifest_digest, manifest_type, layers, created, added, size, "
                  "removed")


def _image(row) -> ImageRow:
    return ImageRow(row[0], row[1], row[2], row[3], jsonfast.loads(row[4]), row[5], row[6],
                    row[7], bool(row[8]))


def layer_dir(store, chain_id: str) -> Path:
    """layers/<hex>; ids come from rows written after digest_hex() validated them, but
    a damaged database must still not make a path of anything else."""
    from pathlib import Path

    return Path(layer_path(store, chain_id))


def layer_path(store, chain_id: str) -> str:
    """layer_dir as a str (for `run`: no pathlib)."""
    hexpart = chain_id[7:]
    if not chain_id.startswith("sha256:") or len(hexpart) != 64 or "/" in hexpart \
            or hexpart.startswith("."):
        from rootless.store.blobs import digest_hex

        digest_hex(chain_id)  # raises, naming the bad id
    return os.path.join(store.dir, "layers", hexpart)


# ---- layers ----

def layer_get(store, chain_id: str) -> LayerRow | None:
    row = store.db.execute(
        f"SELECT {_LAYER_COLUMNS} FROM layers WHERE chain_id=?", (chain_id,)).fetchone()
    return LayerRow(*row) if row else None


def layer_add(store, layer: LayerRow) -> None:
    store.db.execute(f"INSERT OR REPLACE INTO layers ({_LAYER_COLUMNS}) VALUES"
                     " (?,?,?,?,?,?,?,?,?)", tuple(layer))


def layer_delete(store, chain_id: str) -> None:
    store.db.execute("DELETE FROM layers WHERE chain_id=?", (chain_id,))


def layers_all(store) -> list[LayerRow]:
    return [LayerRow(*r) for r in store.db.execute(f"SELECT {_LAYER_COLUMNS} FROM layers")]


def layer_owners(store, chain_ids: list[str]) -> dict[str, str | None]:
    """chain id -> how the layer holds its owners (LayerRow.owners), for those present."""
    marks = ",".join("?" * len(chain_ids))
    return dict(store.db.execute(
        f"SELECT chain_id, owners FROM layers WHERE chain_id IN ({marks})", chain_ids))


def layer_set_owners(store, chain_id: str, owners: str) -> None:
    store.db.execute("UPDATE layers SET owners=? WHERE chain_id=?", (owners, chain_id))


# ---- images ----

def image_add(store, image: ImageRow) -> None:
    store.db.execute(f"INSERT OR IGNORE INTO images ({_IMAGE_COLUMNS}) VALUES"
                     " (?,?,?,?,?,?,?,?,?)",
                     (*image[:4], jsonfast.dumps(image.layers), *image[5:8], int(image.removed)))
    # the same image again (pull, load) brings back one that `rmi -f` had removed
    store.db.execute("UPDATE images SET removed=0 WHERE id=?", (image.id,))


def image_mark_removed(store, image_id: str) -> None:
    store.db.execute("UPDATE images SET removed=1 WHERE id=?", (image_id,))


def image_get(store, image_id: str) -> ImageRow | None:
    row = store.db.execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id=?",
                           (image_id,)).fetchone()
    return _image(row) if row else None


def image_ids_with_prefix(store, prefix: str, limit: int = 2) -> list[str]:
    """Ids starting with `prefix` ("sha256:<hex prefix>"), at most `limit`."""
    return [r[0] for r in store.db.execute(
        "SELECT id FROM images WHERE id >= ? AND id < ? AND removed=0 ORDER BY id LIMIT ?",
        (prefix, prefix + "\uffff", limit))]


def images_all(store) -> list[ImageRow]:
    """Every image row, removed ones too (their layers are still in use)."""
    return [_image(r) for r in store.db.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images ORDER BY created DESC, added DESC")]


def images_listed(store) -> list[ImageRow]:
    """The images commands show and act on: not removed."""
    return [image for image in images_all(store) if not image.removed]


def image_delete(store, image_id: str) -> None:
    store.db.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))
    store.db.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
    store.db.execute("DELETE FROM digests WHERE image_id=?", (image_id,))
    store.db.execute("DELETE FROM images WHERE id=?", (image_id,))


# ---- names ----

def tag_get(store, name: str) -> str | None:
    row = store.db.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
    return row[0] if row else None


def tag_set(store, name: str, image_id: str) -> None:
    store.db.execute("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?,?)",
                     (name, image_id))


def tag_delete(store, name: str) -> None:
    store.db.execute("DELETE FROM tags WHERE name=?", (name,))


def tags_of(store, image_id: str) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT name FROM tags WHERE image_id=? ORDER BY name", (image_id,))]


def tags_all(store) -> dict[str, list[str]]:
    """image id -> its tag names."""
    result: dict[str, list[str]] = {}
    for name, image_id in store.db.execute("SELECT name, image_id FROM tags ORDER BY name"):
        result.setdefault(image_id, []).append(name)
    return result


def digest_get(store, name: str) -> str | None:
    row = store.db.execute("SELECT image_id FROM digests WHERE name=?", (name,)).fetchone()
    return row[0] if row else None


def digest_set(store, name: str, image_id: str) -> None:
    store.db.execute("INSERT OR REPLACE INTO digests (name, image_id) VALUES (?,?)",
                     (name, image_id))


def digests_of(store, image_id: str) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT name FROM digests WHERE image_id=? ORDER BY name", (image_id,))]


def containers_using(store, image_id: str) -> list[tuple[str, str]]:
    """(container id, name) of the containers created from the image."""
    return [(r[0], r[1]) for r in store.db.execute(
        "SELECT id, name FROM containers WHERE image_id=?", (image_id,))]


def digests_all(store) -> dict[str, list[str]]:
    """image id -> its repository digest names."""
    result: dict[str, list[str]] = {}
    for name, image_id in store.db.execute("SELECT name, image_id FROM digests ORDER BY name"):
        result.setdefault(image_id, []).append(name)
    return result


def container_counts(store) -> dict[str, int]:
    """image id -> how many containers were created from it."""
    return dict(store.db.execute(
        "SELECT image_id, COUNT(*) FROM containers GROUP BY image_id"))


# ---- build cache ----

def build_cache_get(store, key: str) -> str | None:
    row = store.db.execute("SELECT image_id FROM build_cache WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def build_cache_set(store, key: str, image_id: str, created: float) -> None:
    store.db.execute("INSERT OR REPLACE INTO build_cache (key, image_id, created) "
                     "VALUES (?, ?, ?)", (key, image_id, created))


def build_cache_images(store) -> set[str]:
    """The images some build step made (docker's intermediate images when untagged)."""
    return {r[0] for r in store.db.execute("SELECT DISTINCT image_id FROM build_cache")}
