"""Named volumes: `volume create|ls|inspect|rm|prune` and the volumes `run` mounts.

A volume is a directory of the store, `volumes/<name>/_data` as docker lays it out,
and a row of state.db's `volumes` table; `container_volumes` records which containers
use it, so `rm` and `prune` refuse or skip those. A volume is made in tmp/ (filled there
from the image when `run` creates it) and renamed into place under the store's
exclusive lock once its row is in; it is removed the other way round (row first, then
the tree moved into tmp/ and removed by descriptor), so a killed command leaves
nothing a later one trips on.

Filling a new volume from the image (docker's copy-up): the mount point is resolved in
the merged view of the image's layers by the one in-root resolver (kernel/paths.py),
so a symlink on the way resolves inside the image, never on the host; each layer's
directory there is then copied by descriptor, lowest first, with its whiteouts, as the
copy rootfs is made (fs/rootfs.py). Symlinks are copied as links, devices are not
copied, regular files are opened with O_NOFOLLOW.
"""

from __future__ import annotations

import json
import os
import re
import time

from rootless.errors import NotFoundError, RootlessError, UsageError
from rootless.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `inspect` does without pathlib (store/store.py)
    from pathlib import Path

# moby's volume/local RestrictedNamePattern
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
DRIVER = "local"
# what moby's local driver accepts for --opt (volume/local/local_unix.go)
_OPTIONS = ("type", "device", "o", "size")
VOLUME_FILTERS = ("name", "label", "dangling", "driver")
PRUNE_FILTERS = ("label", "label!", "all")


@record
class VolumeRow:
    name: str
    created: float
    labels: dict[str, str]
    options: dict[str, str]
    anonymous: bool


def name_check(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f'create {name}: "{name}" includes invalid characters for a local '
                         'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you '
                         "intended to pass a host directory, use absolute path")
    return name


def volume_dir(store, name: str) -> Path:
    """volumes/<name>: names come from rows written after name_check."""
    if not _NAME.fullmatch(name):
        raise RootlessError(f"invalid volume name in the store: {name!r}")
    from pathlib import Path

    return Path(store.volumes_dir) / name


def data_dir(store, name: str) -> Path:
    return volume_dir(store, name) / "_data"


def _pairs(items: list[str] | tuple[str, ...], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (what == "opt" and not sep):
            raise UsageError(f"invalid {what} {item!r}: want KEY=VALUE")
        result[key] = value
    return result


def options_check(options: dict[str, str]) -> None:
    for key in options:
        if key not in _OPTIONS:
            raise UsageError(f'invalid option: "{key}" (the local driver takes: '
                             f'{", ".join(_OPTIONS)})')
    kind = options.get("type")
    if kind is not None and kind != "tmpfs":
        raise UsageError(f"volume option type={kind}: only tmpfs can be mounted without "
                         "root (a device or a network filesystem needs the mount(2) "
                         "privilege of the host)")


# ---- rows ----

def volume_get(store, name: str) -> VolumeRow | None:
    row = store.db.execute("SELECT name, created, labels, options, anonymous FROM volumes"
                           " WHERE name=?", (name,)).fetchone()
    return _row(row) if row else None


def _row(row) -> VolumeRow:
    return VolumeRow(row[0], row[1], json.loads(row[2]), json.loads(row[3]), bool(row[4]))


def volumes_all(store) -> list[VolumeRow]:
    return [_row(r) for r in store.db.execute(
        "SELECT name, created, labels, options, anonymous FROM volumes ORDER BY name")]


def users_of(store, name: str) -> list[str]:
    return [r[0] for r in store.db.execute(
        "SELECT container_id FROM container_volumes WHERE volume=? ORDER BY container_id",
        (name,))]


def _used(store) -> set[str]:
    return {r[0] for r in store.db.execute("SELECT DISTINCT volume FROM container_volumes")}


# ---- create ----

def volume_create(store, name: str | None = None, labels: tuple[str, ...] = (),
                  driver: str = DRIVER, options: tuple[str, ...] = ()) -> str:
    """`volume create`: the name (an existing volume of that name is kept, as docker
    keeps it)."""
    if driver != DRIVER:
        raise RootlessError(f'error looking up volume plugin {driver}: plugin "{driver}" '
                            "not found (only the local driver exists)")
    name = name_check(name) if name else os.urandom(32).hex()
    opts = _pairs(options, "opt")
    options_check(opts)
    with store.lock():
        if volume_get(store, name) is None:
            _make(store, name, _pairs(labels, "label"), opts, False, None)
    return name


def _make(store, name: str, labels: dict[str, str], options: dict[str, str],
          anonymous: bool, fill) -> None:
    """Under the exclusive lock: the tree made (and filled by `fill(fd)`) in tmp/, the
    row inserted, the tree renamed into place."""
    from rootless.store.temp import TempOwner

    os.makedirs(store.volumes_dir, mode=0o700, exist_ok=True)
    with TempOwner(store.root) as owner:
        tmp = owner.path("new-volume")
        tmp.mkdir(mode=0o700)
        try:
            (tmp / "_data").mkdir(mode=0o755)
            if fill is not None:
                fill(tmp / "_data")
            with store.db:
                store.db.execute(
                    "INSERT INTO volumes (name, created, labels, options, anonymous)"
                    " VALUES (?,?,?,?,?)", (name, time.time(), json.dumps(labels),
                                            json.dumps(options), int(anonymous)))
            os.rename(tmp, volume_dir(store, name))
        except BaseException:
            with store.db:
                store.db.execute("DELETE FROM volumes WHERE name=?", (name,))
            from rootless.engine.containers import remove_tree

            remove_tree(tmp)
            raise


# ---- what run mounts ----

def volume_attach(store, container_id: str, name: str | None, target: str,
                  layer_dirs: list[Path], nocopy: bool = False,
                  options: dict[str, str] | None = None) -> VolumeRow:
    """The volume `run -v NAME:TARGET` mounts (None: a new anonymous one, `-v TARGET`),
    made and filled from the image's TARGET when new, and recorded as used by the
    container in the same locked step (a concurrent `volume rm` cannot take it)."""
    anonymous = name is None
    name = os.urandom(32).hex() if anonymous else name_check(name)
    if options:
        options_check(options)
    with store.lock():
        if volume_get(store, name) is None:
            fill = None if nocopy else (
                lambda dest: fill_from_image(layer_dirs, target, dest))
            _make(store, name, {}, options or {}, anonymous, fill)
        with store.db:
            store.db.execute("INSERT OR IGNORE INTO container_volumes (container_id, volume)"
                             " VALUES (?,?)", (container_id, name))
        return volume_get(store, name)


def fill_from_image(layer_dirs: list[Path], target: str, dest: Path) -> None:
    """Copy what the image has at `target` into `dest` (docker's copy-up of a new
    volume). Nothing when the image has no directory there. With subordinate ids the
    layers' files belong to ids we do not own: the copy runs as root of a user
    namespace with our map, where they can be read."""
    from rootless.kernel.idmap import detect_maps

    if detect_maps().use_helpers:
        from rootless.kernel.storage_ns import call_as_root

        call_as_root(lambda: _fill(layer_dirs, target, dest))
    else:
        _fill(layer_dirs, target, dest)


def _fill(layer_dirs: list[Path], target: str, dest: Path) -> None:
    from rootless.fs.rootfs import copy_layer_at
    from rootless.kernel import paths

    tops = [os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for p in reversed(layer_dirs)]  # topmost first, as lowerdir= lists them
    try:
        try:
            merged = paths.dirs_in_layers(tops, target)
        except (FileNotFoundError, NotADirectoryError):
            return  # docker copies only a directory the image has
        except OSError as e:  # ELOOP: a symlink loop in the image
            raise RootlessError(f"cannot fill a new volume from the image's {target}: "
                                f"{(e.strerror or str(e)).lower()}") from None
        dst = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for fd in reversed(merged):  # lowest first, as overlayfs stacks them
                copy_layer_at(fd, dst)
        finally:
            os.close(dst)
            for fd in merged:
                os.close(fd)
    finally:
        for fd in tops:
            os.close(fd)


def volumes_detach(store, container_id: str, remove_anonymous: bool) -> None:
    """The container is gone: its volumes are free; its anonymous ones, that no other
    container uses, go too when `remove_anonymous` (docker's `rm -v`, `run --rm`)."""
    with store.lock():
        names = [r[0] for r in store.db.execute(
            "SELECT volume FROM container_volumes WHERE container_id=?", (container_id,))]
        with store.db:
            store.db.execute("DELETE FROM container_volumes WHERE container_id=?",
                             (container_id,))
        if not remove_anonymous:
            return
        for name in names:
            row = volume_get(store, name)
            if row is not None and row.anonymous and not users_of(store, name):
                _remove(store, name)


# ---- ls, inspect ----

def volumes_filtered(store, filters: list[str]) -> list[VolumeRow]:
    """`volume ls -f`: name= (a substring or regular expression, as moby's Match),
    label=KEY[=VALUE], dangling=true|false (used by no container), driver=local."""
    from rootless.engine.container_filters import _regex_any
    from rootless.engine.image_list import filter_bool, labels_match, parse_filters

    spec = parse_filters(filters, VOLUME_FILTERS)
    dangling = filter_bool(spec, "dangling")
    used = _used(store)
    rows = []
    for row in volumes_all(store):
        if "name" in spec and not _regex_any(spec["name"], row.name):
            continue
        if not labels_match(row.labels, spec.get("label", [])):
            continue
        if dangling is not None and (row.name not in used) != dangling:
            continue
        if "driver" in spec and DRIVER not in spec["driver"]:
            continue
        rows.append(row)
    return rows


def volume_json(store, row: VolumeRow) -> dict:
    """docker's Volume object, as `volume inspect` prints it."""
    from rootless.engine.container_inspect import rfc3339

    return {"CreatedAt": rfc3339(row.created)[:19] + "Z", "Driver": DRIVER,
            "Labels": row.labels or None, "Mountpoint": str(data_dir(store, row.name)),
            "Name": row.name, "Options": row.options or None, "Scope": "local"}


def volume_lookup(store, name: str) -> VolumeRow:
    row = volume_get(store, name) if name else None
    if row is None:
        raise NotFoundError(f"no such volume: {name}")
    return row


def volumes_inspect(store, names: list[str]) -> list[dict]:
    return [volume_json(store, volume_lookup(store, name)) for name in names]


# ---- rm, prune ----

def volumes_remove(store, names: list[str], force: bool) -> list[str]:
    """`volume rm`: each name, or docker's refusal; with -f a missing one is no error.
    Every name is tried; the first failure is raised after."""
    removed, failure = [], None
    store.clean_temp(remove=_remove_tree)
    with store.lock():
        for name in names:
            try:
                if volume_get(store, name) is None:
                    if force:
                        continue
                    raise NotFoundError(f"no such volume: {name}")
                users = users_of(store, name)
                if users:
                    raise RootlessError(f"remove {name}: volume is in use - "
                                        f"[{', '.join(users)}]")
                _remove(store, name)
                removed.append(name)
            except RootlessError as e:
                failure = failure or e
    if failure is not None:
        for name in removed:
            print(name)
        raise failure
    return removed


def _remove_tree(path: Path) -> None:
    from rootless.engine.containers import remove_tree

    remove_tree(path)


def _remove(store, name: str) -> None:
    """Row first, then the tree moved into tmp/ and removed there by descriptor."""
    from rootless.store.temp import TempOwner

    with store.db:
        store.db.execute("DELETE FROM volumes WHERE name=?", (name,))
    with TempOwner(store.root) as owner:
        doomed = owner.path("old-volume")
        try:
            os.rename(volume_dir(store, name), doomed)
        except FileNotFoundError:
            return
        _remove_tree(doomed)


@record
class PruneReport:
    deleted: list[str]
    reclaimed: int


def volumes_prune(store, filters: list[str], all_: bool = False) -> PruneReport:
    """`volume prune`: volumes no container uses; anonymous ones only unless -a or
    all=true (docker 23's rule), and those that pass label=/label!=."""
    from rootless.engine.disk_usage import directory_size
    from rootless.engine.image_list import filter_bool, labels_match, parse_filters

    spec = parse_filters(filters, PRUNE_FILTERS)
    all_ = all_ or bool(filter_bool(spec, "all"))
    store.clean_temp(remove=_remove_tree)
    deleted, reclaimed = [], 0
    with store.lock():
        used = _used(store)
        for row in volumes_all(store):
            if row.name in used or not (all_ or row.anonymous):
                continue
            if not (labels_match(row.labels, spec.get("label", [])) and
                    labels_match(row.labels, spec.get("label!", []), negate=True)):
                continue
            reclaimed += directory_size(data_dir(store, row.name))
            _remove(store, row.name)
            deleted.append(row.name)
    return PruneReport(deleted, reclaimed)


def volume_name_of(store_root: os.PathLike, source: str) -> str | None:
    """The volume a bind source `<store>/volumes/<name>/_data` is, else None."""
    volumes = os.path.join(os.fspath(store_root), "volumes") + os.sep
    if not source.startswith(volumes) or not source.endswith(os.sep + "_data"):
        return None
    name = source[len(volumes):-len(os.sep + "_data")]
    return name if _NAME.fullmatch(name) else None
