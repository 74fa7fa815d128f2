"""Layers are shown to containers only as they were stored for this user's id mode.

Each layer row records how its files hold their owners (store/metadata.LayerRow.owners):
override_stat records (single-id mode, and every layer of a store older than schema 7)
or true owners mapped into one subordinate range (kernel/storage_ns.StorageIds.key).
The kernel overlay shows what is on disk, so before a container is made or started
from layers stored otherwise than this user stores them now:

- records, and the user now has a range (a store of an older version, or the
  administrator gave the range since): the layers are migrated, each as root of the
  storage namespace (image/layer_migrate.py), automatically, as `rootless system
  migrate` does for every layer. A migration that fails leaves the layer as it was
  (records still), and says so naming the command.
- true owners, and the user has no range now (the administrator removed it,
  ROOTLESS_IDMAP=single) or another one: refused with one line. Their files belong to
  ids this user can no longer map, so they can be neither shown as they are nor
  converted; only the administrator can restore the range (or remove the files).
"""

from __future__ import annotations

from rootless.errors import StoreError
from rootless.kernel.storage_ns import RECORDS
from rootless.store import metadata as md


class OwnersError(StoreError):
    """Layers stored for another id mode or range than this user has now."""


def layers_ready(store, name: str, chain_ids: list[str], key: str) -> None:
    """Make the layers `chain_ids` (of the image `name`) fit the current layer key
    `key` (kernel/storage_ns.storage_key), or refuse naming why."""
    owners = md.layer_owners(store, chain_ids)
    stale = [c for c in chain_ids if (owners.get(c) or RECORDS) != key and c in owners]
    if not stale:
        return
    stored = {owners[c] or RECORDS for c in stale}
    foreign = sorted(s for s in stored if s != RECORDS)
    if foreign:
        raise OwnersError(_refusal(f"image {name}", foreign[0], key))
    if key == RECORDS:  # records everywhere: nothing to convert
        return
    with store.lock():
        for chain in stale:
            _migrate_one(store, chain, f"image {name}")


def _refusal(what: str, stored: str, key: str) -> str:
    now = ("this user has no subordinate range now (single-id mode)" if key == RECORDS
           else f"this user's range is now {_ranges(key)}")
    return (f"{what} holds owners mapped into the subordinate range {_ranges(stored)}, "
            f"but {now}: check /etc/subuid and /etc/subgid (rootless cannot show or "
            "convert those files without that range)")


def _ranges(key: str) -> str:
    """'uids 165536-231071' of a layer key, for messages."""
    try:
        uid_map = key.split(" ", 1)[1].split(" / ")[0]
        parts = [r.split(":") for r in uid_map.split(",")]
        sub = [p for p in parts if p[0] != "0"] or parts
        start, size = int(sub[0][1]), int(sub[0][2])
        return f"{start}-{start + size - 1}"
    except (IndexError, ValueError):
        return key


def _migrate_one(store, chain: str, what: str) -> int:
    """Migrate one layer's records to true owners (the store's lock held); how many
    records were applied."""
    from rootless.image.layer_migrate import migrate_layer
    from rootless.image.transports.storage import layer_ids
    from rootless.kernel.storage_ns import call_as_root

    row = md.layer_get(store, chain)
    ids = layer_ids()
    if row is None or ids is None:
        return 0
    key = ids.key()
    if (row.owners or RECORDS) == key:
        return 0  # another command did it meanwhile
    if row.owners not in (None, RECORDS):
        raise OwnersError(_refusal(what, row.owners, key))
    path = md.layer_dir(store, chain)
    try:
        count = call_as_root(migrate_layer, str(path), ids, f"layer {chain[:19]}",
                             maps=ids.maps)
    except StoreError as e:
        raise StoreError(f"cannot migrate {what} to owners mapped into this user's "
                         f"subordinate range ({e}): try rootless system migrate") from None
    with store.db:
        md.layer_set_owners(store, chain, key)
    return count


def layers_migrate_all(store) -> list[str]:
    """`rootless system migrate`: every layer stored with records gets its true owners
    (nothing to do in single-id mode); one line per layer migrated."""
    from rootless.kernel.storage_ns import storage_key

    key = storage_key()
    lines = []
    with store.lock():
        rows = md.layers_all(store)
        foreign = sorted({r.owners for r in rows if r.owners not in (None, RECORDS, key)})
        if foreign:
            raise OwnersError(_refusal("the store", foreign[0], key))
        if key == RECORDS:
            return lines
        for row in rows:
            if (row.owners or RECORDS) == RECORDS:
                count = _migrate_one(store, row.chain_id, f"layer {row.chain_id[:19]}")
                lines.append(f"migrated layer {row.chain_id} ({count} owners)")
    return lines


def image_layers_ready(store, image_id: str, name: str) -> None:
    """layers_ready for the layers of an image the store has (a container's)."""
    from rootless.kernel.storage_ns import storage_key

    row = md.image_get(store, image_id)
    if row is not None:
        layers_ready(store, name, row.layers, storage_key())


def layers_owners_status(store) -> str:
    """How layers hold their owners, for `system info`: true owners in which range, or
    override_stat records; and how many layers wait for `rootless system migrate`."""
    from rootless.kernel.storage_ns import storage_key

    key = storage_key()
    now = (f"true owners, mapped into the subordinate range {_ranges(key)}"
           if key != RECORDS else "override_stat records (single-id mode)")
    stored = [r.owners or RECORDS for r in md.layers_all(store)]
    records = sum(1 for o in stored if o == RECORDS != key)
    foreign = sum(1 for o in stored if o not in (RECORDS, key))
    if records:
        now += f"; {records} layers hold records (migrated when used, or by rootless " \
               "system migrate)"
    if foreign:
        now += f"; {foreign} layers hold another range's owners (refused)"
    return now
