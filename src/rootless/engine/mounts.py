"""`run -v`, `--mount` and `--tmpfs`: flag values -> mount requests -> OCI spec mounts.

Parsed before any container exists (a bad value leaves nothing behind), with docker's
grammar and messages (the docker CLI's opts/mount.go and opts/volume.go; the daemon's
volume/mounts validation). Volumes are made or found only when the container's spec is
written (engine/volumes.py). Imported by `run` only when one of these flags is given.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from rootless.errors import RootlessError, UsageError

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
# tmpfs options passed to the kernel as data (tmpfs(5)); the flag-like ones are mount flags
_TMPFS_DATA = re.compile(r"(size=[0-9]+[kmgKMG%]?|nr_inodes=[0-9]+[kmgKMG]?|"
                         r"mode=[0-7]{1,4}|uid=[0-9]+|gid=[0-9]+)")
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "noatime",
                "relatime", "strictatime"}
# docker's default tmpfs flags (moby daemon/oci_linux.go); the user's own override them
_TMPFS_DEFAULT = ("nosuid", "nodev", "noexec")


class MountRequest(NamedTuple):
    type: str  # bind | volume | tmpfs
    source: str | None  # host path; volume name (None: a new anonymous volume); tmpfs: None
    target: str
    readonly: bool = False
    options: tuple[str, ...] = ()  # tmpfs: flags and data; bind: propagation
    recursive: bool = True  # bind: rbind (bind-nonrecursive=true: bind)
    nocopy: bool = False  # volume-nocopy: a new volume is not filled from the image
    volume_options: tuple[tuple[str, str], ...] = ()  # volume-opt=K=V


def _target(target: str, spec: str) -> str:
    if not target.startswith("/"):
        raise UsageError(f"invalid mount config: invalid mount path: '{target}' mount path "
                         "must be absolute")
    if os.path.normpath(target) == "/":
        raise UsageError(f"invalid specification: destination can't be '/' in '{spec}'")
    return os.path.normpath(target)


def parse_volume(spec: str) -> MountRequest:
    """`-v`: `HOST:CTR[:MODE]` (HOST absolute), `NAME:CTR[:MODE]`, or `CTR` alone (a new
    anonymous volume); MODE is ro, rw, z, Z, nocopy, comma-separated."""
    parts = spec.split(":")
    if len(parts) == 1 and parts[0]:
        return MountRequest("volume", None, _target(parts[0], spec))
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume specification: '{spec}' (want HOST:CTR[:ro], "
                         "NAME:CTR[:ro] or CTR)")
    source, target = parts[0], _target(parts[1], spec)
    modes = parts[2].split(",") if len(parts) == 3 else ["rw"]
    if not set(modes) <= {"ro", "rw", "z", "Z", "nocopy"} or {"ro", "rw"} <= set(modes):
        raise UsageError(f"invalid mode: {parts[2]} in volume '{spec}'")
    readonly = "ro" in modes
    if not source.startswith("/"):
        from rootless.engine.volumes import name_check

        name_check(source)
        return MountRequest("volume", source, target, readonly, nocopy="nocopy" in modes)
    if not os.path.exists(source):
        raise RootlessError(f"bind source path does not exist: {source}")
    return MountRequest("bind", os.path.realpath(source), target, readonly)


def _bool(key: str, value: str | None) -> bool:
    if value is None or value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise UsageError(f"invalid value for {key}: {value}")


_KEYS = {"type": "type", "source": "source", "src": "source", "target": "target",
         "destination": "target", "dst": "target", "readonly": "readonly", "ro": "readonly",
         "bind-propagation": "bind-propagation", "bind-nonrecursive": "bind-nonrecursive",
         "consistency": "consistency", "volume-nocopy": "volume-nocopy",
         "volume-opt": "volume-opt", "volume-driver": "volume-driver",
         "volume-label": "volume-label", "tmpfs-size": "tmpfs-size",
         "tmpfs-mode": "tmpfs-mode"}
_BARE = ("readonly", "volume-nocopy", "bind-nonrecursive")


def _mount_fields(spec: str) -> dict[str, list[str | None]]:
    import csv

    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as e:
        raise UsageError(f"invalid argument {spec!r} for \"--mount\" flag: {e}") from None
    found: dict[str, list[str | None]] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key not in _KEYS:
            if not sep:
                raise UsageError(f"invalid field '{item}' must be a key=value pair")
            raise UsageError(f"unexpected key '{key}' in '{item}'")
        key = _KEYS[key]
        if not sep and key not in _BARE:
            raise UsageError(f"invalid field '{item}' must be a key=value pair")
        found.setdefault(key, []).append(value if sep else None)
    return found


def parse_mount(spec: str) -> MountRequest:
    """`--mount type=bind|volume|tmpfs,source=,target=[,readonly][,...]` (docker's CSV
    grammar; the type defaults to volume, as docker's)."""
    fields = _mount_fields(spec)
    one = {key: values[-1] for key, values in fields.items()}
    kind = (one.get("type") or "volume").lower()
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError(f'invalid mount config for type "{kind}": mount type unknown')
    for prefix in ("bind-", "volume-", "tmpfs-"):
        if prefix[:-1] != kind and any(key.startswith(prefix) for key in fields):
            raise UsageError(f"cannot mix '{prefix}*' options with mount type '{kind}'")
    if not one.get("target"):
        raise UsageError("target is required")
    target = _target(one["target"], spec)
    readonly = _bool("readonly", one["readonly"]) if "readonly" in one else False
    source = one.get("source") or None
    if kind == "tmpfs":
        return _mount_tmpfs(source, target, readonly, one)
    if kind == "volume":
        return _mount_volume(source, target, readonly, fields, one)
    return _mount_bind(source, target, readonly, one)


def _mount_tmpfs(source, target: str, readonly: bool, one: dict) -> MountRequest:
    if source:
        raise UsageError('invalid mount config for type "tmpfs": field Source must not be '
                         "specified")
    options = list(_TMPFS_DEFAULT) + (["ro"] if readonly else [])
    if one.get("tmpfs-size"):
        options.append(f"size={_bytes(one['tmpfs-size'], 'tmpfs-size')}")
    if one.get("tmpfs-mode"):
        mode = one["tmpfs-mode"]
        if not re.fullmatch(r"0?[0-7]{1,4}", mode):
            raise UsageError(f"invalid value for tmpfs-mode: {mode}")
        options.append(f"mode={int(mode, 8):o}")
    return MountRequest("tmpfs", None, target, readonly, tuple(options))


def _mount_volume(source, target: str, readonly: bool, fields: dict,
                  one: dict) -> MountRequest:
    driver = one.get("volume-driver") or "local"
    if driver != "local":
        raise RootlessError(f'error looking up volume plugin {driver}: plugin "{driver}" '
                            "not found (only the local driver exists)")
    opts = []
    for value in fields.get("volume-opt", []):
        key, sep, val = (value or "").partition("=")
        if not sep:
            raise UsageError(f"invalid volume-opt '{value}': want KEY=VALUE")
        opts.append((key, val))
    if source is not None:
        from rootless.engine.volumes import name_check

        if source.startswith("/"):
            raise UsageError(f'invalid mount config for type "volume": invalid volume '
                             f'name "{source}" (use type=bind for a host path)')
        name_check(source)
    nocopy = _bool("volume-nocopy", one["volume-nocopy"]) if "volume-nocopy" in one \
        else False
    return MountRequest("volume", source, target, readonly, nocopy=nocopy,
                        volume_options=tuple(opts))


def _mount_bind(source, target: str, readonly: bool, one: dict) -> MountRequest:
    if not source:
        raise UsageError('invalid mount config for type "bind": field Source must not be '
                         "empty")
    if not source.startswith("/"):
        raise UsageError(f'invalid mount config for type "bind": invalid mount path: '
                         f"'{source}' mount path must be absolute")
    if not os.path.exists(source):
        raise RootlessError(f'invalid mount config for type "bind": bind source path does '
                            f"not exist: {source}")
    propagation = one.get("bind-propagation") or "rprivate"
    if propagation not in PROPAGATIONS:
        raise UsageError(f"invalid value for bind-propagation: {propagation}")
    recursive = not (_bool("bind-nonrecursive", one["bind-nonrecursive"])
                     if "bind-nonrecursive" in one else False)
    return MountRequest("bind", os.path.realpath(source), target, readonly, (propagation,),
                        recursive)


def _bytes(text: str, what: str) -> int:
    """docker's units.RAMInBytes: 64m, 1g, 512k, 1024 (b, k, m, g, t; 1024-based)."""
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)i?b?", text.strip().lower())
    if not found:
        raise UsageError(f"invalid value for {what}: {text}")
    scale = 1024 ** "bkmgt".index(found.group(2) or "b")
    return int(float(found.group(1)) * scale)


def parse_tmpfs(spec: str) -> MountRequest:
    """`--tmpfs /path[:opts]`: opts as mount(8) takes them for tmpfs (size=64m,
    mode=1777, exec, ro...), after docker's noexec,nosuid,nodev."""
    target, _, text = spec.partition(":")
    target = _target(target, spec)
    options = list(_TMPFS_DEFAULT)
    for opt in filter(None, text.split(",")):
        if opt not in _TMPFS_FLAGS and not _TMPFS_DATA.fullmatch(opt):
            raise UsageError(f"invalid tmpfs option {opt!r} in --tmpfs {spec} (want "
                             "size=, mode=, nr_inodes=, uid=, gid=, or a mount flag)")
        options.append(opt)
    return MountRequest("tmpfs", None, target, "ro" in options, tuple(options))


def parse_all(volumes, mounts, tmpfs) -> list[MountRequest]:
    """Every request, or docker's refusal of two on one path."""
    requests = [parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts] + \
        [parse_tmpfs(t) for t in tmpfs]
    seen = set()
    for request in requests:
        if request.target in seen:
            raise UsageError(f"duplicate mount point: {request.target}")
        seen.add(request.target)
    return requests


# ---- requests -> OCI mounts ----

def _tmpfs_options(options: tuple[str, ...]) -> list[str]:
    """The last of each pair (exec/noexec...) wins, as mount(8) reads them."""
    result: list[str] = []
    for opt in options:
        bare = opt[2:] if opt.startswith("no") and opt[2:] in _TMPFS_FLAGS else opt
        result = [o for o in result if o not in (bare, "no" + bare)]
        if opt in ("ro", "rw"):
            result = [o for o in result if o not in ("ro", "rw")]
        if opt not in ("exec", "suid", "dev", "rw"):
            result.append(opt)
    return result


def spec_mounts(store, container_id: str, requests: list[MountRequest],
                layer_dirs: list[Path]) -> list[dict]:
    """The OCI mounts, parents before children (docker sorts them so); volumes made,
    filled and recorded as the container's."""
    from rootless.engine.volumes import data_dir, volume_attach

    result = []
    for request in sorted(requests, key=lambda r: len(Path(r.target).parts)):
        ro = "ro" if request.readonly else "rw"
        if request.type == "tmpfs":
            result.append({"destination": request.target, "type": "tmpfs",
                           "source": "tmpfs", "options": _tmpfs_options(request.options)})
            continue
        if request.type == "volume":
            row = volume_attach(store, container_id, request.source, request.target,
                                layer_dirs, request.nocopy, dict(request.volume_options))
            if row.options.get("type") == "tmpfs":  # --opt type=tmpfs: a tmpfs per mount
                data = [o for o in (row.options.get("o") or "").split(",") if o]
                result.append({"destination": request.target, "type": "tmpfs",
                               "source": "tmpfs", "options": [ro] + data})
                continue
            source = str(data_dir(store, row.name))
        else:
            source = request.source
        result.append({"destination": request.target, "type": "bind", "source": source,
                       "options": ["rbind" if request.recursive else "bind", ro,
                                   *request.options]})
    return result
