"""`import --change`: the Dockerfile instructions `docker import -c` accepts, applied to
an image config's `config` section (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from rootless.errors import UsageError


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        rest = rest.strip()
        handler = _HANDLERS.get(keyword.upper())
        if handler is None:
            raise UsageError(f"{keyword or change!r} is not a valid change command "
                             f"(want one of: {', '.join(sorted(_HANDLERS))})")
        if not rest:
            raise UsageError(f"{keyword.upper()} requires an argument: {change!r}")
        handler(config, rest)


def _json_or_shell(rest: str) -> list[str]:
    """JSON form `["a", "b"]` as is; shell form `a b` -> ["/bin/sh", "-c", "a b"]."""
    value = _json_list(rest)
    return ["/bin/sh", "-c", rest] if value is None else value


def _json_or_words(rest: str) -> list[str]:
    value = _json_list(rest)
    return rest.split() if value is None else value


def _json_list(rest: str) -> list[str] | None:
    """A JSON array of strings (Dockerfile's exec form), or None."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return None


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` or the legacy single `K V` form."""
    words = shlex.split(rest)
    if words and "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} needs KEY=VALUE pairs: {rest!r}")
        pairs.append((key, value))
    return pairs


def _cmd(config, rest):
    config["Cmd"] = _json_or_shell(rest)


def _entrypoint(config, rest):
    config["Entrypoint"] = _json_or_shell(rest)


def _env(config, rest):
    env = [e for e in config.get("Env") or []]
    for key, value in _pairs(rest, "ENV"):
        env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
    config["Env"] = env


def _expose(config, rest):
    ports = config.setdefault("ExposedPorts", {})
    for port in rest.split():
        ports[port if "/" in port else f"{port}/tcp"] = {}


def _label(config, rest):
    labels = config.setdefault("Labels", {})
    for key, value in _pairs(rest, "LABEL"):
        labels[key] = value


def _onbuild(config, rest):
    config.setdefault("OnBuild", []).append(rest)


def _volume(config, rest):
    volumes = config.setdefault("Volumes", {})
    for path in _json_or_words(rest):
        volumes[path] = {}


def _setter(key: str):
    def handler(config, rest):
        config[key] = rest
    return handler


_HANDLERS = {"CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose,
             "LABEL": _label, "ONBUILD": _onbuild, "STOPSIGNAL": _setter("StopSignal"),
             "USER": _setter("User"), "VOLUME": _volume, "WORKDIR": _setter("WorkingDir")}
