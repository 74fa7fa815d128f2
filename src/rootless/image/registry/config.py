"""Registry settings: ~/.config/rootless/registries.json ($XDG_CONFIG_HOME respected;
ROOTLESS_REGISTRIES_CONF names another file):

    {
      "default": "docker.io",            # the registry `login`/`logout`/`search` use
                                         # when none is named
      "insecure": ["host:5000", "10.0.0.1"]  # plain HTTP / unverified TLS allowed
    }

A registry listed as insecure is tried over HTTPS without certificate verification,
then over plain HTTP, as docker's `insecure-registries` does. `--tls-verify=false` on a
command does the same for that command. Every other registry gets HTTPS verified
against the system CA store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from rootless.errors import UsageError

DEFAULT_REGISTRY = "docker.io"


class RegistriesConf(NamedTuple):
    default: str = DEFAULT_REGISTRY
    insecure: tuple[str, ...] = ()

    def is_insecure(self, host: str) -> bool:
        bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return host in self.insecure or bare in self.insecure


def conf_path() -> Path:
    explicit = os.environ.get("ROOTLESS_REGISTRIES_CONF")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                              ".config")
    return Path(base) / "rootless" / "registries.json"


def conf_load() -> RegistriesConf:
    path = conf_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return RegistriesConf()
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: want a JSON object with 'default' and 'insecure'")
    default = data.get("default", DEFAULT_REGISTRY)
    insecure = data.get("insecure", [])
    if not isinstance(default, str) or not isinstance(insecure, list) \
            or not all(isinstance(h, str) for h in insecure):
        raise UsageError(f"{path}: 'default' must be a string and 'insecure' a list of "
                         "host[:port] strings")
    return RegistriesConf(default or DEFAULT_REGISTRY, tuple(insecure))
