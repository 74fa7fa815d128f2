"""User networks as records: `network create|ls|inspect|rm|prune`, and the endpoints
`network connect|disconnect` (engine/network_connect.py) and `run --network` make.

A network is a row of state.db's `networks` (store/networks.py): a name, an IPv4
subnet no other network of the store overlaps, a gateway. An endpoint is a container's
place on one: its address, its aliases, and `seq`, the order the container was
connected (its first network is its default route). Nothing here touches a namespace:
the bridges, veth pairs and hosts files are made from these rows by net/bridge.py and
engine/network_live.py.

Addresses are handed out inside one BEGIN IMMEDIATE transaction each (store/
networks.immediate): two commands connecting at once are serialised by SQLite, and the
UNIQUE (network_id, ip) constraint is the backstop.

Docker's predefined networks `bridge`, `host` and `none` are listed and inspected as
docker shows them (`bridge` is the slirp mode here) but are no rows: they cannot be
created, removed or connected to by `network connect`.

Every name, subnet, address and alias is a flag value, so it is parsed strictly here:
names and aliases end up in hosts files and interface tables, where a newline or a
space would let one inject entries.
"""

from __future__ import annotations

import os
import sys
import time

from rootless.errors import NotFoundError, RootlessError
from rootless.store import networks as rows
from rootless.store.networks import EndpointRow, NetworkRow

# Names: podman's rule [a-zA-Z0-9][a-zA-Z0-9_.-]* (docker accepts any non-blank name;
# these end up in hosts files and in the names of what the hub namespace holds).
# Aliases: a DNS name, as the hosts files resolve them. Checked as character sets, not
# with `re`: `run --network NAME` reaches these, and re costs it ~5 ms to import.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
ALIAS_MAX = 253  # a DNS name's length (RFC 1035)
# name -> (driver, id): fixed ids, sha256("rootless predefined network NAME")
PREDEFINED = {
    "bridge": ("bridge", "bac27cfb7f48953042b12b2cb652e58c25f76784f1b573a14ae59229047174bb"),
    "host": ("host", "6ee681de2d28d4cf88437d19a34658b0e2645cdf12c47c687dc9cd072ee3f65e"),
    "none": ("null", "3eccb0e79e1836e40baf2a3789bdd8d59653c071050c324b3b94b1480a71bf84"),
}
# docker's other names for its predefined ones, and our --network modes
RESERVED = ("bridge", "host", "none", "default", "slirp", "container", "pasta",
            "slirp4netns")
DRIVER = "bridge"
LIST_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")
PRUNE_FILTERS = ("until", "label", "label!")
DEFAULT_POOL = "10.89.{}.0/24"  # podman's default pool, N = 0..255
MIN_PREFIX, MAX_PREFIX = 8, 30  # a /30 holds a gateway and one container
# the way out of a user network container is its tap0: on 10.0.2.0/24 with slirp4netns
# (its default --cidr; pasta copies the host's addresses, which default_subnet avoids):
# a network there would take the container's route to its gateway and DNS (10.0.2.3)
SLIRP_SUBNET = (10 << 24 | 2 << 8, 24)


# ---- IPv4 as integers (the ipaddress module costs a millisecond of every `run`) ----

def ip_parse(text: str) -> int | None:
    """A dotted quad as Go's netip parses it (four decimal octets, no leading
    zeros), as an int; None otherwise."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 3 or \
                (len(part) > 1 and part[0] == "0") or int(part) > 255:
            return None
        value = value << 8 | int(part)
    return value


def ip_text(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def _mask(prefix: int) -> int:
    return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF


def cidr_parse(text: str) -> tuple[int, int] | None:
    """"10.89.0.0/24" -> (address, prefix length); None if it is no IPv4 CIDR."""
    address, sep, prefix = text.partition("/")
    value = ip_parse(address)
    if not sep or value is None or not prefix.isascii() or not prefix.isdigit() or \
            (len(prefix) > 1 and prefix[0] == "0") or int(prefix) > 32:
        return None
    return value, int(prefix)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    mask = _mask(min(a[1], b[1]))
    return a[0] & mask == b[0] & mask


# ---- predefined networks ----

def _predefined(name: str) -> NetworkRow:
    driver, network_id = PREDEFINED[name]
    return NetworkRow(network_id, name, driver, "", "", False, {}, {}, None)


def is_predefined(row: NetworkRow) -> bool:
    return row.created is None and row.name in PREDEFINED


# ---- create ----

def _quoted(text: str) -> str:
    """A flag value in an error message: quoted, a newline in it escaped."""
    import json

    return json.dumps(text, ensure_ascii=False)


def name_check(name: str) -> str:
    if not name or name[0] not in _ALNUM or not set(name) <= _NAME_CHARS:
        raise RootlessError(f"invalid network name {_quoted(name)}: only "
                            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    if name in RESERVED:
        # moby's PredefinedNetworkError, without its trailing space
        raise RootlessError(f"operation is not permitted on predefined {name} network")
    return name


def _subnet_check(text: str) -> tuple[int, int]:
    if ":" in text:
        raise RootlessError(f"invalid subnet {text}: IPv6 is not supported (user "
                            "networks are IPv4 only)")
    parsed = cidr_parse(text)
    if parsed is None:
        raise RootlessError(f"invalid subnet {text}: invalid CIDR block notation")
    address, prefix = parsed
    if address & _mask(prefix) != address:  # moby's ValidateIPAM words
        raise RootlessError(f"invalid subnet {text}: it should be "
                            f"{ip_text(address & _mask(prefix))}/{prefix}")
    if not MIN_PREFIX <= prefix <= MAX_PREFIX:
        raise RootlessError(f"invalid subnet {text}: the prefix length must be between "
                            f"/{MIN_PREFIX} and /{MAX_PREFIX} (room for a gateway and "
                            "a container)")
    return parsed


def _gateway_check(text: str, subnet: tuple[int, int]) -> int:
    if ":" in text:
        raise RootlessError(f"invalid gateway {text}: parent subnet is an IPv4 block")
    value = ip_parse(text)
    if value is None:
        raise RootlessError(f"invalid gateway {text}: invalid address")
    cidr = f"{ip_text(subnet[0])}/{subnet[1]}"
    if value & _mask(subnet[1]) != subnet[0]:
        raise RootlessError(f"invalid gateway {text}: parent subnet {cidr} doesn't "
                            "contain this address")
    if value in (subnet[0], subnet[0] | ~_mask(subnet[1]) & 0xFFFFFFFF):
        what = "network" if value == subnet[0] else "broadcast"
        raise RootlessError(f"invalid gateway {text}: it is the {what} address of {cidr}")
    return value


def _driver_check(driver: str) -> None:
    if driver != DRIVER:
        raise RootlessError(f'plugin "{driver}" not found (the only network driver '
                            f"without root is {DRIVER})")


def host_routes(path: str = "/proc/net/route") -> list[tuple[int, int]]:
    """The host's IPv4 routes as (destination, prefix length), the default route left
    out (it overlaps everything). proc(5): each field is the kernel's __be32 printed as
    a native-endian hex int."""
    try:
        with open(path) as f:
            lines = f.read(1 << 20).splitlines()[1:]
    except OSError:
        return []
    routes = []
    for line in lines:
        fields = line.split()
        try:
            dest, mask = (int.from_bytes(int(fields[i], 16).to_bytes(4, sys.byteorder),
                                         "big") for i in (1, 7))
        except (IndexError, ValueError, OverflowError):
            continue
        if mask:
            routes.append((dest, bin(mask).count("1")))
    return routes


def default_subnet(taken: list[tuple[int, int]],
                   routes: list[tuple[int, int]] | None = None) -> tuple[int, int]:
    """The first 10.89.N.0/24 that overlaps no network of the store (`taken`) and no
    route of the host (a container must still reach that host network through the
    helper)."""
    avoid = taken + (host_routes() if routes is None else routes)
    for n in range(256):
        candidate = cidr_parse(DEFAULT_POOL.format(n))
        if not any(_overlap(candidate, other) for other in avoid):
            return candidate
    raise RootlessError("could not find an available, non-overlapping IPv4 address pool "
                        "among the defaults to assign to the network")


def network_create(store, name: str, *, subnet: str | None = None,
                   gateway: str | None = None, internal: bool = False,
                   labels: dict[str, str] | None = None,
                   options: dict[str, str] | None = None,
                   driver: str = DRIVER) -> NetworkRow:
    """`network create`: the new row, or docker's refusal (exit 1 in the CLI)."""
    name_check(name)
    _driver_check(driver)
    wanted = _subnet_check(subnet) if subnet else None
    if gateway and wanted is None:
        raise RootlessError(f"invalid gateway {gateway}: --gateway needs a --subnet it "
                            "belongs to")
    gateway_ip = _gateway_check(gateway, wanted) if gateway else None
    with rows.immediate(store):
        if rows.network_by_name(store, name) is not None:
            raise RootlessError(f"network with name {name} already exists")
        existing = rows.networks_all(store)
        if wanted is not None:
            for other in existing:
                theirs = cidr_parse(other.subnet)
                if theirs and _overlap(wanted, theirs):
                    raise RootlessError(
                        "invalid pool request: Pool overlaps with other one on this "
                        f"address space (network {other.name} has {other.subnet})")
            if _overlap(wanted, SLIRP_SUBNET):
                raise RootlessError(
                    "invalid pool request: Pool overlaps with other one on this address "
                    "space (10.0.2.0/24 is the slirp4netns/pasta address space of every "
                    "container's tap0)")
        else:
            wanted = default_subnet([p for p in (cidr_parse(o.subnet) for o in existing)
                                      if p])
        row = NetworkRow(os.urandom(32).hex(), name, driver,
                         f"{ip_text(wanted[0])}/{wanted[1]}",
                         ip_text(gateway_ip if gateway_ip is not None else wanted[0] + 1),
                         bool(internal), dict(labels or {}), dict(options or {}),
                         time.time())
        rows.network_insert(store, row)
    return row


# ---- lookup, list ----

def network_lookup(store, ref: str) -> NetworkRow:
    """moby's FindNetwork: a full id, then a full name, then a unique id prefix."""
    if not ref:
        raise NotFoundError(f"network {ref} not found")
    predefined = [_predefined(name) for name in PREDEFINED]
    for row in predefined:
        if ref in (row.id, row.name):
            return row
    found = rows.network_get(store, ref) or rows.network_by_name(store, ref)
    if found is not None:
        return found
    matches = rows.networks_with_prefix(store, ref) + \
        [row for row in predefined if row.id.startswith(ref)]
    if len(matches) > 1:
        raise RootlessError(f"network {ref} is ambiguous ({len(matches)} matches found "
                            "based on ID prefix)")
    if not matches:
        raise NotFoundError(f"network {ref} not found")
    return matches[0]


def networks_list(store) -> list[NetworkRow]:
    """The predefined networks, then the store's, by name."""
    return [_predefined(name) for name in PREDEFINED] + rows.networks_all(store)


def networks_filtered(store, filters: list[str]) -> list[NetworkRow]:
    """`network ls -f`, as moby's filterNetworks: driver= and scope= exact, id= and
    name= a substring or regular expression, label=KEY[=VALUE], type=custom|builtin,
    dangling=true|false (a custom network no container is on)."""
    from rootless.engine.container_filters import _regex_any
    from rootless.engine.image_list import filter_bool, labels_match, parse_filters

    spec = parse_filters(filters, LIST_FILTERS)
    for value in spec.get("type", []):
        if value not in ("custom", "builtin"):
            raise RootlessError(f"invalid filter: 'type'='{value}'")
    dangling = filter_bool(spec, "dangling")
    used = rows.networks_in_use(store)

    def keep(row: NetworkRow) -> bool:
        builtin = is_predefined(row)
        return all((
            "driver" not in spec or row.driver in spec["driver"],
            "scope" not in spec or "local" in spec["scope"],
            "name" not in spec or _regex_any(spec["name"], row.name),
            "id" not in spec or _regex_any(spec["id"], row.id),
            labels_match(row.labels, spec.get("label", [])),
            "type" not in spec or ("builtin" if builtin else "custom") in spec["type"],
            dangling is None or (not builtin and row.id not in used) == dangling))

    return [row for row in networks_list(store) if keep(row)]


# ---- inspect ----

def network_inspect(store, row: NetworkRow) -> dict:
    """docker's network JSON (moby's network.Inspect), keys in its order."""
    from rootless.engine.container_inspect import ZERO_TIME, rfc3339
    endpoints = [] if is_predefined(row) else rows.endpoints_of_network(store, row.id)
    names = rows.container_names(store, [e.container_id for e in endpoints])
    prefix = row.subnet.partition("/")[2]
    containers = {}
    for e in endpoints:
        settings = container_networks(store, e.container_id, names.get(e.container_id, ""))
        if e.container_id in names and row.name in settings:  # not a connect under way
            containers[e.container_id] = {
                "Name": names[e.container_id], "EndpointID": e.endpoint_id,
                "MacAddress": settings[row.name]["MacAddress"],
                "IPv4Address": f"{e.ip}/{prefix}", "IPv6Address": ""}
    config = [{"Subnet": row.subnet, "Gateway": row.gateway}] if row.subnet else []
    return {
        "Name": row.name, "Id": row.id,
        "Created": rfc3339(row.created) if row.created is not None else ZERO_TIME,
        "Scope": "local", "Driver": row.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {} if row.subnet else None,
                 "Config": config},
        "Internal": row.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": containers, "Options": dict(row.options), "Labels": dict(row.labels),
    }


# ---- rm, prune ----

def network_remove(store, row: NetworkRow) -> None:
    """`network rm`: refused for a predefined network and while any container, running
    or not, has an endpoint on it (moby's words)."""
    from rootless.engine import network_live

    if is_predefined(row):
        raise RootlessError(f"{row.name} is a pre-defined network and cannot be removed")
    _settle_endpoints(store, rows.endpoints_of_network(store, row.id))
    with rows.immediate(store):
        if rows.endpoints_of_network(store, row.id):
            raise RootlessError(f"error while removing network: network {row.name} id "
                                f"{row.id} has active endpoints")
        rows.network_delete(store, row.id)
    network_live.bridge_forget(store, row)


def _settle_endpoints(store, endpoints: list[EndpointRow]) -> None:
    """A connect killed midway left these endpoints half-made? Undo it first: that is
    no endpoint to keep a network in use (engine/network_live.settle)."""
    from rootless.engine.network_live import settle_container
    from rootless.engine.network_run import pending_networks

    for container_id in dict.fromkeys(e.container_id for e in endpoints):
        if pending_networks(store, container_id):
            settle_container(store, container_id)


def network_prune_check(filters: list[str]) -> dict[str, list[str]]:
    """The filters `network prune` takes; a bad one fails before docker's question."""
    from rootless.engine.image_list import parse_filters, until_cutoff

    spec = parse_filters(filters, PRUNE_FILTERS)
    if spec.get("until"):
        until_cutoff(spec["until"])
    return spec


def network_prune(store, filters: list[str]) -> list[str]:
    """`network prune`: the custom networks no container is on that pass until= (made
    before), label= and label!=; their names, as docker reports them."""
    from rootless.engine.image_list import labels_match, until_cutoff

    spec = network_prune_check(filters)
    cutoff = until_cutoff(spec["until"]) if spec.get("until") else None
    deleted = []
    _settle_endpoints(store, [e for row in rows.networks_all(store)
                              for e in rows.endpoints_of_network(store, row.id)])
    with rows.immediate(store):
        used = rows.networks_in_use(store)
        for row in rows.networks_all(store):
            if row.id in used or (cutoff is not None and row.created >= cutoff):
                continue
            if not (labels_match(row.labels, spec.get("label", [])) and
                    labels_match(row.labels, spec.get("label!", []), negate=True)):
                continue
            rows.network_delete(store, row.id)
            deleted.append(row)
    from rootless.engine.network_live import bridge_forget

    bridge_forget(store, *deleted)
    return [row.name for row in deleted]


# ---- endpoints ----

def alias_check(alias: str) -> str:
    if not alias or alias[0] not in _ALNUM | {"_"} or not set(alias) <= _NAME_CHARS or \
            len(alias) > ALIAS_MAX:
        raise RootlessError(f"invalid network alias {_quoted(alias)}: only letters, "
                            "digits, '-', '_' and '.' are allowed (a DNS name)")
    return alias


def _free_address(network: NetworkRow, used: set[str]) -> str:
    """The lowest address of the subnet that is not the network, broadcast or gateway
    address and no container's."""
    parsed = cidr_parse(network.subnet)
    if parsed is None:  # a damaged row: no address of it is safe to hand out
        raise RootlessError(f"network {network.name} has no valid subnet "
                            f"({network.subnet!r}): remove it and create it again")
    base, prefix = parsed
    broadcast = base | ~_mask(prefix) & 0xFFFFFFFF
    taken = {network.gateway, *used}
    for value in range(base + 1, broadcast):
        text = ip_text(value)
        if text not in taken:
            return text
    raise RootlessError(f"no available addresses on this pool: the subnet "
                        f"{network.subnet} of network {network.name} is full")


def ip_check(text: str) -> str:
    """--ip's value: a dotted quad (docker's words otherwise)."""
    if ip_parse(text) is None or text == "0.0.0.0":
        raise RootlessError(f"invalid IPv4 address: {text}")
    return text


def _requested_address(network: NetworkRow, text: str, used: set[str]) -> str:
    """--ip on `network`: inside its subnet, not its network or broadcast address, not
    its gateway's or another container's (moby's words: IPAM's ErrIPAlreadyAllocated)."""
    value = ip_parse(ip_check(text))
    parsed = cidr_parse(network.subnet)
    if parsed is None or value & _mask(parsed[1]) != parsed[0]:
        raise RootlessError(f"no configured subnet or ip-range contain the IP address "
                            f"{text} (network {network.name} has {network.subnet})")
    if value in (parsed[0], parsed[0] | ~_mask(parsed[1]) & 0xFFFFFFFF):
        what = "network" if value == parsed[0] else "broadcast"
        raise RootlessError(f"invalid IPv4 address {text}: it is the {what} address of "
                            f"{network.subnet}")
    if text == network.gateway or text in used:
        whose = "its gateway" if text == network.gateway else "another container"
        raise RootlessError(f"Address already in use: {text} on network {network.name} "
                            f"is {whose}'s")
    return text


def endpoint_add(store, network: NetworkRow, container_id: str,
                 aliases=(), ip: str | None = None) -> EndpointRow:
    """The container's endpoint on `network`: the address `ip` asks for, or the next
    free one, and seq one past the container's highest, in one IMMEDIATE
    transaction."""
    aliases = [alias_check(a) for a in aliases]
    predefined_refusal(network)
    if ip is not None:
        ip_check(ip)
    with rows.immediate(store):
        if rows.network_get(store, network.id) is None:  # removed meanwhile
            raise NotFoundError(f"network {network.name} not found")
        name = rows.container_names(store, [container_id]).get(container_id)
        if name is None:
            raise NotFoundError(f"no such container: {container_id}")
        if rows.endpoint_get(store, network.id, container_id) is not None:
            raise RootlessError(f"endpoint with name {name} already exists in network "
                                f"{network.name}")
        used = rows.endpoint_ips(store, network.id)
        address = _free_address(network, used) if ip is None else \
            _requested_address(network, ip, used)
        endpoint = EndpointRow(network.id, container_id,
                               rows.endpoint_max_seq(store, container_id) + 1, address,
                               aliases, ip or "")
        rows.endpoint_insert(store, endpoint)
    return endpoint


def predefined_refusal(network: NetworkRow) -> None:
    if is_predefined(network):
        raise RootlessError(f"cannot connect a container to the predefined {network.name} "
                            f"network with `network connect` (use `run --network "
                            f"{network.name}`)")


def endpoint_remove(store, network_id: str, container_id: str) -> bool:
    """True if the container had an endpoint on the network."""
    with store.db:
        return rows.endpoint_delete(store, network_id, container_id)


def endpoints_remove_container(store, container_id: str) -> None:
    """Every endpoint of a container (`rm`)."""
    with store.db:
        rows.endpoints_delete_container(store, container_id)


def endpoints_of_container(store, container_id: str) -> list[tuple[NetworkRow, EndpointRow]]:
    """The container's networks and endpoints, the first connected first."""
    return rows.endpoints_of_container(store, container_id)


def endpoints_of_network(store, network_id: str) -> list[EndpointRow]:
    return rows.endpoints_of_network(store, network_id)


def endpoint_settings(network: NetworkRow, endpoint: EndpointRow, name: str) -> dict:
    """One entry of a container's NetworkSettings.Networks (moby's EndpointSettings)."""
    return {
        "IPAMConfig": {"IPv4Address": endpoint.requested_ip} if endpoint.requested_ip
        else None,
        "Links": None, "Aliases": list(endpoint.aliases) or None,
        "MacAddress": "", "NetworkID": network.id, "EndpointID": endpoint.endpoint_id,
        "Gateway": network.gateway, "IPAddress": endpoint.ip,
        "IPPrefixLen": int(network.subnet.partition("/")[2]), "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None,
        "DNSNames": [name, *endpoint.aliases, endpoint.container_id[:12]],
    }


def container_networks(store, container_id: str, name: str) -> dict[str, dict]:
    """network name -> EndpointSettings, for `inspect`; not those of a connect under way
    or killed midway (it has no interface yet: engine/network_run.PENDING). A running
    container's MacAddress is its interface's, as read when it was attached."""
    from rootless.engine.network_run import interfaces_of, is_pending

    interfaces = interfaces_of(store, container_id)
    running = _running(store, container_id)
    found = {}
    for network, endpoint in endpoints_of_container(store, container_id):
        names = interfaces.get(network.id, [])
        if is_pending(names):
            continue
        found[network.name] = settings = endpoint_settings(network, endpoint, name)
        if running and len(names) == 4:
            settings["MacAddress"] = names[3]
    return found


def _running(store, container_id: str) -> bool:
    from rootless.engine.containers import container_row

    row = container_row(store, container_id)
    return row is not None and row.state in ("running", "paused")
