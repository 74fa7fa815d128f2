"""`-p [IP:][HOSTPORT:]CTRPORT[/tcp|/udp]`, `-P` and `--expose`, as docker reads them.

The grammar and the error texts are docker's (moby's go-connections/nat ParsePortSpec):
ranges on either side (`8000-8001:80-81`; a host range with one container port picks
one free host port of the range), `[::1]:80:80` for an IPv6 address, and a random free
host port when HOSTPORT is left out. The result is docker's NetworkSettings.Ports shape,
{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}, kept in the container's spec
(engine/container_ports.PORTS_ANNOTATION): `port`, `ps` and `inspect` read it there.

Random ports are chosen at create time, by binding port 0 on the host address with the
protocol concerned and reading what the kernel gave (ip(7): the ephemeral range), so
`port` shows the same mapping for the container's whole life, restarts included.
"""

from __future__ import annotations

import re

from rootless.errors import UsageError
from rootless.records import record

PROTOCOLS = ("tcp", "udp")


@record
class PortSpec:
    host_ip: str  # "" for every address
    host_ports: tuple[int, int] | None  # an inclusive range; None: a random port
    ctr_ports: tuple[int, int]
    proto: str


def _port_range(text: str, what: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if not m:
        raise UsageError(f"invalid {what}: {text}")
    low, high = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 0 < low <= 65535 or not 0 < high <= 65535 or high < low:
        raise UsageError(f"invalid {what}: {text}")
    return low, high


def _split(spec: str) -> tuple[str, str, str]:
    """(ip, host ports, container ports[/proto]) as written."""
    if spec.startswith("["):  # [v6addr]:host:ctr
        end = spec.find("]")
        if end < 0 or spec[end + 1:end + 2] != ":":
            raise UsageError(f"invalid ip address: {spec}")
        ip, rest = spec[1:end], spec[end + 2:]
        host, _, ctr = rest.rpartition(":")
        return ip, host, ctr
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    # an unbracketed IPv6 address, as docker still accepts: the last two are ports
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_publish(spec: str) -> PortSpec:
    """One -p value; UsageError with docker's message for a bad one."""
    ip, host, ctr = _split(spec)
    ctr, _, proto = ctr.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid proto: {proto}")
    if ip:
        import ipaddress

        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise UsageError(f"invalid ip address: {ip}") from None
    if not ctr:
        raise UsageError(f"no port specified: {spec}<empty>")
    ctr_ports = _port_range(ctr, "containerPort")
    host_ports = _port_range(host, "hostPort") if host else None
    if host_ports is not None and ctr_ports[1] != ctr_ports[0] and (
            host_ports[1] - host_ports[0] != ctr_ports[1] - ctr_ports[0]):
        raise UsageError(f"invalid ranges specified for container and host Ports: "
                         f"{ctr} and {host}")
    return PortSpec(ip, host_ports, ctr_ports, proto)


def parse_expose(spec: str) -> list[str]:
    """--expose PORT[-PORT][/PROTO] -> ["80/tcp", ...]."""
    port, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise UsageError(f"invalid proto: {proto}")
    low, high = _port_range(port, "range format for --expose specification")
    return [f"{p}/{proto}" for p in range(low, high + 1)]


def free_port(ip: str, proto: str, candidates: range | None = None) -> int:
    """A host port nothing is bound to now: the kernel's pick, or the first of
    `candidates` that binds."""
    import socket

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for port in candidates or (0,):
        with socket.socket(family, kind) as s:
            try:
                s.bind((ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise UsageError(f"no free host port for {proto} in {candidates.start}-"
                     f"{candidates.stop - 1}")


def publish_table(publish: tuple[str, ...], publish_all: bool,
                  exposed: list[str]) -> dict[str, list[dict[str, str]]]:
    """docker's NetworkSettings.Ports for -p (and -P over `exposed`): host ports of
    every entry decided now."""
    table: dict[str, list[dict[str, str]]] = {}
    for text in publish:
        spec = parse_publish(text)
        count = spec.ctr_ports[1] - spec.ctr_ports[0] + 1
        for i in range(count):
            ctr = spec.ctr_ports[0] + i
            if spec.host_ports is None:
                host = free_port(spec.host_ip, spec.proto)
            elif count == 1 and spec.host_ports[1] != spec.host_ports[0]:
                host = free_port(spec.host_ip, spec.proto,
                                 range(spec.host_ports[0], spec.host_ports[1] + 1))
            else:
                host = spec.host_ports[0] + i
            table.setdefault(f"{ctr}/{spec.proto}", []).append(
                {"HostIp": spec.host_ip or "0.0.0.0", "HostPort": str(host)})
    if publish_all:
        for key in exposed:
            if key not in table:
                port, _, proto = key.partition("/")
                table[key] = [{"HostIp": "0.0.0.0",
                               "HostPort": str(free_port("", proto or "tcp"))}]
    return table


def exposed_ports(image_config: dict, expose: tuple[str, ...]) -> list[str]:
    """The image's ExposedPorts and --expose, as "80/tcp" keys."""
    found = [k if "/" in k else f"{k}/tcp" for k in (image_config.get("ExposedPorts")
                                                      or {})]
    for spec in expose:
        found += parse_expose(spec)
    return list(dict.fromkeys(found))


def forwards(table: dict[str, list[dict[str, str]]]) -> list[tuple[str, str, int, int]]:
    """(proto, host ip, host port, container port) of every published entry."""
    found = []
    for key, bindings in table.items():
        port, _, proto = key.partition("/")
        for b in bindings:
            ip = b.get("HostIp", "")
            found.append((proto or "tcp", "" if ip in ("0.0.0.0", "") else ip,
                          int(b["HostPort"]), int(port)))
    return found


def check_free(table: dict[str, list[dict[str, str]]]) -> None:
    """A clear error for a host port that is taken, before any helper binds it."""
    import socket

    from rootless.errors import RootlessError

    for proto, ip, host, _ in forwards(table):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        with socket.socket(family, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip or "0.0.0.0", host))
            except OSError as e:
                shown = f"[{ip}]" if ":" in ip else (ip or "0.0.0.0")
                raise RootlessError(f"bind for {shown}:{host}/{proto} failed: port is "
                                    f"already allocated ({e.strerror.lower()})") from None


# docker's NetworkSettings.Ports of the container, in its config.json (JSON); read by
# engine/container_ports.py for `port`, `ps` and `inspect`, and by the monitor
PORTS_ANNOTATION = "run.rootless.ports"


def ports_from_spec(spec: dict) -> dict[str, list[dict[str, str]]]:
    """The published ports a spec records ({} for none, or an unreadable record)."""
    import json

    text = (spec.get("annotations") or {}).get(PORTS_ANNOTATION)
    try:
        table = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    if not isinstance(table, dict):
        return {}
    return {str(k): [b for b in v if isinstance(b, dict) and
                     str(b.get("HostPort", "")).isdigit()]
            for k, v in table.items() if isinstance(v, list) and
            re.fullmatch(r"\d{1,5}/(tcp|udp)", str(k))}


PORTS_FILE = "ports.json"  # the annotation's copy in the container's directory, for `ps`


def ports_display(container_dir: str) -> str:
    """ps's PORTS: "0.0.0.0:8080->80/tcp, ..." ("" without published ports). Here,
    not in engine/container_ports.py: `ps` must not import typing (its NamedTuple)."""
    import json

    try:
        with open(f"{container_dir}/{PORTS_FILE}") as f:
            table = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return ""
    entries = []
    for proto_port, bindings in sorted(
            ports_from_spec({"annotations": {PORTS_ANNOTATION: json.dumps(table)}}).items(),
            key=lambda item: (int(item[0].partition("/")[0]), item[0])):
        for b in bindings:
            ip = b.get("HostIp", "")
            host = f"[{ip}]" if ":" in ip else ip
            entries.append(f"{host}:{b['HostPort']}->{proto_port}")
    return ", ".join(entries)
