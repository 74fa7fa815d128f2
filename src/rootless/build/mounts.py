"""`RUN --mount=...` values: buildkit's grammar, defaults and messages (commands_runmount.go).

A value is one CSV record of `key=value` fields (`type=cache,target=/root/.cache`).
parse_mount() is called twice for each value: once when the Dockerfile is parsed, with
no expander (a field whose value holds `$` is then left for later, as Docker does,
except `from`, which never expands), and once by the executor when the step runs, with
the stage's variables. The second call's Mount is the one to use.

Defaults filled in here (what buildkit's dispatch applies):
- readonly: true for bind, secret and ssh; false for cache and tmpfs;
- cache: id = the cleaned target, sharing "shared", mode 0755, uid/gid 0;
- secret: id = source, else the target's base name; target = /run/secrets/<id> unless
  `env=` names a variable; mode 0400, uid/gid 0;
- ssh: id "default"; mode 0600, uid/gid 0; target left "" when not given (buildkit
  picks /run/buildkit/ssh_agent.<n> by position).
A relative target is relative to the step's WORKDIR: the executor joins it, and must
refuse a target that resolves to "/" (buildkit: invalid mount target "/").
"""

from __future__ import annotations

import csv
import posixpath

from rootless.build.dockerfile import did_you_mean
from rootless.build.units import parse_size
from rootless.records import record

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_KEYS = ("type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
         "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class MountError(ValueError):
    """A --mount value Docker refuses; callers add file and line."""


@record
class Mount:
    type: str
    target: str
    source: str
    from_: str
    readonly: bool
    id: str
    mode: int | None
    uid: int | None
    gid: int | None
    required: bool
    size: int | None  # tmpfs bytes
    sharing: str  # cache only: shared|private|locked, else ""
    env: str | None = None  # secret: expose as this environment variable instead


def parse_mount(value: str, expand=None) -> Mount:
    """The Mount a --mount value describes; MountError with Docker's message if invalid.

    `expand(word) -> str` expands one field value (the executor passes expand_word with
    the stage's variables); without it, `$` values are skipped (see the module doc).
    """
    try:
        fields = next(csv.reader([value], strict=True), [])
    except csv.Error as e:
        raise MountError(f"failed to parse csv mounts: {e}") from None
    state = {"type": "bind", "readonly": None, "required": False, "sharing": "", "from": "",
             "source": "", "target": "", "id": "", "mode": None, "uid": None, "gid": None,
             "size": None, "env": None}
    for field in fields:
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            _flag_field(state, key, field)
            continue
        if expand is not None:
            val = expand(val)
        elif key == "from" and "$" in val[:-1]:
            raise MountError(f"'{key}' doesn't support variable expansion, define alias "
                             "stage instead")
        elif "$" in val:
            continue  # the executor's call expands and checks it
        _value_field(state, key, val, field)
    return _finish(state)


def _flag_field(state: dict, key: str, field: str) -> None:
    if key in ("readonly", "ro"):
        state["readonly"] = True
    elif key in ("readwrite", "rw"):
        state["readonly"] = False
    elif key == "required":
        if state["type"] not in ("secret", "ssh"):
            raise MountError(f"unexpected key '{key}' for mount type '{state['type']}'")
        state["required"] = True
    else:
        raise MountError(f"invalid field '{field}' must be a key=value pair")


def _value_field(state: dict, key: str, val: str, field: str) -> None:
    if key == "type":
        if val.lower() not in MOUNT_TYPES:
            raise MountError(f'unsupported mount type "{val}"' + _hint(val, MOUNT_TYPES))
        state["type"] = val.lower()
    elif key in ("from", "source", "src", "target", "dst", "destination", "id", "env"):
        name = {"src": "source", "dst": "target", "destination": "target"}.get(key, key)
        state[name] = val
    elif key in ("readonly", "ro", "readwrite", "rw"):
        state["readonly"] = _go_bool(key, val) == (key in ("readonly", "ro"))
    elif key in ("required", "size"):
        _typed_field(state, key, val)
    elif key == "sharing":
        if val.lower() not in SHARING_MODES:
            raise MountError(f'unsupported sharing value "{val}"' + _hint(val, SHARING_MODES))
        state["sharing"] = val.lower()
    elif key in ("mode", "uid", "gid"):
        state[key] = _uint32(key, val, 8 if key == "mode" else 10)
    else:
        raise MountError(f"unexpected key '{key}' in '{field}'" + _hint(key, _KEYS))


def _typed_field(state: dict, key: str, val: str) -> None:
    allowed = ("secret", "ssh") if key == "required" else ("tmpfs",)
    if state["type"] not in allowed:
        raise MountError(f"unexpected key '{key}' for mount type '{state['type']}'")
    if key == "required":
        state["required"] = _go_bool(key, val)
        return
    try:
        state["size"] = parse_size(val)
    except ValueError:
        raise MountError(f"invalid value for {key}: {val}") from None


def _finish(state: dict) -> Mount:
    kind = state["type"]
    if kind in ("bind", "tmpfs"):
        for key in ("mode", "uid", "gid"):
            if state[key] is not None:
                raise MountError(f'{key} not allowed for "{kind}" type mounts')
    if kind == "secret":
        _check_secret(state)
    if kind == "ssh" and state["source"]:
        raise MountError("ssh does not support source")
    if state["sharing"] and kind != "cache":
        raise MountError(f"invalid cache sharing set for {kind} mount")
    readonly = state["readonly"]
    if readonly is None:
        readonly = kind not in ("cache", "tmpfs")
    ident, target = state["id"], state["target"]
    if kind == "cache":
        ident = ident or (posixpath.normpath(target) if target else "")
    elif kind == "secret":
        ident = state["source"] or ident or posixpath.basename(target)
        if not target and state["env"] is None:
            target = "/run/secrets/" + posixpath.basename(ident)
    elif kind == "ssh":
        ident = ident or "default"
    mode, uid, gid = state["mode"], state["uid"], state["gid"]
    if kind in ("cache", "secret", "ssh"):
        default_mode = {"cache": 0o755, "secret": 0o400, "ssh": 0o600}[kind]
        mode = default_mode if mode is None else mode
        uid, gid = uid or 0, gid or 0
    sharing = (state["sharing"] or "shared") if kind == "cache" else ""
    return Mount(kind, target, state["source"], state["from"], readonly, ident, mode, uid,
                 gid, state["required"], state["size"], sharing, state["env"])


def _check_secret(state: dict) -> None:
    if state["from"]:
        raise MountError("secret mount should not have a from")
    if state["sharing"]:
        raise MountError("secret mount should not define sharing")
    if not (state["source"] or state["target"] or state["id"]):
        raise MountError("invalid secret mount. one of source, target required")
    if state["source"] and state["id"]:
        raise MountError("both source and id can't be set")


def _go_bool(key: str, val: str) -> bool:
    if val in _TRUE:
        return True
    if val in _FALSE:
        return False
    raise MountError(f"invalid value for {key}: {val}")


def _uint32(key: str, val: str, base: int) -> int:
    try:
        number = int(val, base) if val.isascii() and val.isalnum() else -1
    except ValueError:
        number = -1
    if not 0 <= number < 2**32:
        raise MountError(f"invalid value {val} for {key}")
    return number


def _hint(word: str, options) -> str:
    return did_you_mean(word, options, case_sensitive=True)
