"""`--network` values and the user-mode helper that serves `slirp`.

Modes: `host` (the host's stack), `none` (own namespace, loopback only) and `slirp` (own
namespace, user-mode TCP/IP through pasta, else slirp4netns). `bridge` and `default`
are slirp's other names: scripts written for docker say `--network bridge`. slirp takes
options after a colon, `slirp:allow_host_loopback=true`, podman's spelling (podman's
pasta equivalent, `pasta:--map-gw`, is accepted too).

Nothing here spawns or imports anything heavy: `run --network host|none` reads only this.
"""

from __future__ import annotations

import os

from rootless.errors import UsageError
from rootless.records import record

SLIRP_NAMES = ("slirp", "bridge", "default", "slirp4netns", "pasta")
HELPERS = ("pasta", "slirp4netns")  # pasta preferred: faster, keeps clients' addresses
# the address the container reaches the host's loopback at, with allow_host_loopback:
# slirp4netns's fixed gateway (slirp4netns(1), "Gateway/Host"); pasta maps its gateway
# (the host's default gateway, pasta(1) --no-map-gw) instead, found at start
SLIRP4NETNS_HOST = "10.0.2.2"
SLIRP4NETNS_DNS = "10.0.2.3"
SLIRP4NETNS_ADDRESS = "10.0.2.100"
# where pasta's --dns-forward answers, podman's choice: a link-local address no host
# network uses, so the container's resolver works whatever the host's resolv.conf says
PASTA_DNS = "169.254.1.1"


# the container's network in its config.json, for its monitor and `inspect`: JSON of
# NetworkMode's fields. Under the reserved "run." prefix: no --label or image label can
# set it (engine/containers.labels_annotations)
NETWORK_ANNOTATION = "run.rootless.network"


@record
class NetworkMode:
    mode: str  # host | none | slirp | user (user networks) | container (another's)
    # pasta | slirp4netns: slirp's, and a user network container's way out ("" where
    # none is installed: its networks then reach only each other)
    helper: str = ""
    allow_host_loopback: bool = False
    # user: the network named at create (docker's NetworkMode); container: the id of
    # the container whose network namespace this one joins
    name: str = ""

    def annotation(self) -> str:
        import json

        return json.dumps({"mode": self.mode, "helper": self.helper,
                           "allow_host_loopback": self.allow_host_loopback,
                           "name": self.name})


def mode_from_spec(spec: dict) -> NetworkMode | None:
    """The NetworkMode recorded in a spec; None when it records none (host or none)."""
    import json

    text = (spec.get("annotations") or {}).get(NETWORK_ANNOTATION)
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    mode, helper, name = data.get("mode"), data.get("helper"), data.get("name", "")
    if mode == "slirp" and helper in HELPERS:
        return NetworkMode("slirp", helper, data.get("allow_host_loopback") is True)
    if mode == "user" and helper in (*HELPERS, "") and isinstance(name, str):
        return NetworkMode("user", helper, name=name)
    if mode == "container" and isinstance(name, str) and len(name) == 64 and \
            all(c in "0123456789abcdef" for c in name):
        return NetworkMode("container", name=name)
    return None


def network_kind(value: str) -> str:
    """builtin (host, none, slirp and its names, with options), container
    (container:NAME) or user (anything else: a user network's name)."""
    name = value.partition(":")[0]
    if name == "container" and ":" in value:
        return "container"
    if name in ("host", "none", *SLIRP_NAMES):
        return "builtin"
    return "user"


def helper_path(name: str) -> str | None:
    """The helper's executable on PATH (and /usr/bin, /usr/sbin: a minimal PATH in a
    batch job must not silently turn networking off)."""
    for d in os.environ.get("PATH", "").split(":") + ["/usr/bin", "/usr/sbin", "/bin"]:
        path = os.path.join(d or ".", name)
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return path
    return None


def helper_choice() -> tuple[str | None, str]:
    """(the helper slirp uses, why); None when neither is installed.
    ROOTLESS_NETWORK_HELPER=pasta|slirp4netns picks one (tests use it)."""
    wanted = os.environ.get("ROOTLESS_NETWORK_HELPER")
    if wanted:
        if wanted not in HELPERS:
            raise UsageError(f"ROOTLESS_NETWORK_HELPER={wanted}: must be pasta or "
                             "slirp4netns")
        if helper_path(wanted) is None:
            raise UsageError(f"ROOTLESS_NETWORK_HELPER={wanted}: {wanted} is not "
                             "installed")
        return wanted, "chosen by ROOTLESS_NETWORK_HELPER"
    for name in HELPERS:
        if helper_path(name) is not None:
            return name, ("pasta found (preferred: its port forwarding keeps the "
                          "client's address)" if name == "pasta" else
                          "slirp4netns found (pasta not installed)")
    return None, "neither pasta nor slirp4netns is installed"


def default_network() -> str:
    """slirp when a helper is installed, else host (with a notice, printed by the caller)."""
    helper, _ = helper_choice()
    return "slirp" if helper else "host"


def parse_network(value: str) -> NetworkMode:
    """A --network value; UsageError (docker's wording) for an unknown one."""
    name, _, options = value.partition(":")
    if name in ("host", "none") and not options:
        return NetworkMode(name)
    if name not in SLIRP_NAMES:
        raise UsageError(f"network {value} not found")
    helper, why = helper_choice()
    if name in HELPERS:
        if helper_path(name) is None:
            raise UsageError(f"network {name}: {name} is not installed")
        helper = name
    if helper is None:
        raise UsageError(f"network {name}: user-mode networking needs pasta or "
                         f"slirp4netns ({why})")
    return NetworkMode("slirp", helper, _loopback_option(value, options))


def _loopback_option(value: str, options: str) -> bool:
    allow = False
    for opt in filter(None, options.split(",")):
        key, _, val = opt.partition("=")
        if key == "allow_host_loopback" and val in ("true", "false"):
            allow = val == "true"
        elif opt == "--map-gw":  # podman's pasta spelling
            allow = True
        else:
            raise UsageError(f"invalid network option {opt!r} in {value} (supported: "
                             "allow_host_loopback=true|false)")
    return allow
