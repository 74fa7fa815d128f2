"""`port`: a container's published ports, as docker/cli's runPort shows them.

`run -p`/`-P` publish them (net/ports.py); `published_ports` is the one place here
that reads them, from the PORTS_ANNOTATION of the container's config.json:
docker's NetworkSettings.Ports shape, {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort":
"8080"}]}. The annotation is under the reserved "run." prefix, which no --label or
image label can set (engine/containers.labels_annotations).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rootless.errors import RootlessError
from rootless.net.ports import PORTS_ANNOTATION  # noqa: F401  (re-exported)


class PortBinding(NamedTuple):
    private: str  # "80/tcp"
    host_ip: str
    host_port: str


def published_ports(spec: dict) -> list[PortBinding]:
    """The container's published ports from its OCI spec; [] for none."""
    import json

    annotations = spec.get("annotations")
    text = annotations.get(PORTS_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(text, str):
        return []
    try:
        ports = json.loads(text)
    except ValueError:
        return []
    found = []
    for private, frontends in (ports.items() if isinstance(ports, dict) else ()):
        for frontend in frontends if isinstance(frontends, list) else ():
            if isinstance(frontend, dict):
                found.append(PortBinding(str(private), str(frontend.get("HostIp", "")),
                                         str(frontend.get("HostPort", ""))))
    return found


def join_host_port(host: str, port: str) -> str:
    """Go's net.JoinHostPort: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _natural(text: str) -> list[tuple[bool, int | str]]:
    """A sort key like sortorder.NaturalLess: runs of digits compare as numbers."""
    return [(True, int(part)) if part.isdigit() else (False, part)
            for part in re.findall(r"\d+|\D+", text)]


def container_port(store, ref: str, private: str | None) -> list[str]:
    """The lines `docker port CONTAINER [PRIVATE_PORT[/PROTO]]` prints: for a private
    port its host addresses, else every "PRIVATE -> HOST:PORT"; a stopped container
    publishes nothing."""
    from rootless.engine.container_inspect import spec_read
    from rootless.engine.containers import container_dir, container_lookup, container_row

    record = container_lookup(store, ref)
    row = container_row(store, record.id)
    ports: list[PortBinding] = []
    if row is not None and row.running:
        spec, _ = spec_read(container_dir(store, record.id) / "config.json")
        ports = published_ports(spec)
    if private is None:
        lines = [f"{p.private} -> {join_host_port(p.host_ip, p.host_port)}" for p in ports]
    else:
        port, _, proto = private.partition("/")
        if not re.fullmatch(r"\d+", port) or int(port) > 65535:
            why = "invalid syntax" if not re.fullmatch(r"\d+", port) else "value out of range"
            raise RootlessError(f'invalid port ({port}): strconv.ParseUint: parsing '
                                f'"{port}": {why}')
        key = f"{port}/{proto or 'tcp'}"
        lines = [join_host_port(p.host_ip, p.host_port) for p in ports if p.private == key]
        if not lines:
            raise RootlessError(f"No public port '{private}' published for {ref}")
    return sorted(lines, key=_natural)
