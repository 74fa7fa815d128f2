"""`network connect` and `network disconnect`: a container's endpoints changed, and a
running container's interfaces with them (engine/network_live.py), one command at a
time per container (network_live.interfaces_locked), a connect killed midway undone
by the next (network_live.settle). The records' rules are engine/networks.py's."""

from __future__ import annotations

import os

from rootless.engine import network_live
from rootless.engine.networks import (EndpointRow, endpoint_add, endpoint_remove,
                                      ip_check, is_predefined, network_lookup,
                                      predefined_refusal)
from rootless.errors import NotFoundError, RootlessError
from rootless.store import networks as rows


def _container(store, ref: str):
    """(the container's row, whether its init is running)."""
    from rootless.engine.containers import container_lookup, container_row

    record = container_lookup(store, ref)
    row = container_row(store, record.id)
    if row is None:
        raise NotFoundError(f"no such container: {ref}")
    return row, row.state in ("running", "paused")


def _connect_refusal(store, container_id: str) -> str | None:
    """docker's reason a container cannot join a user network, by its network mode:
    `--network host` (no network namespace of its own), `container:NAME` (another's),
    `none` (docker: private). slirp and user network containers may (a stopped slirp
    container then starts as a user network one, its slirp helper its way out)."""
    from rootless.engine.container_inspect import network_mode, spec_read
    from rootless.engine.containers import container_path

    spec, _ = spec_read(os.path.join(container_path(store, container_id), "config.json"))
    mode = network_mode(spec)
    if mode == "host" or mode.startswith("container:"):
        return ("container sharing network namespace with another container or host "
                "cannot be connected to any other network")
    if mode == "none":
        return ("container cannot be connected to multiple networks with one of the "
                "networks in private (none) mode")  # moby's ErrConflictNoNetwork
    return None


def network_connect(store, network_ref: str, container_ref: str,
                    aliases=(), ip: str | None = None) -> EndpointRow:
    """`network connect`: the endpoint recorded; a running container is attached at
    once (engine/network_live.py), a stopped one when it starts. Under the container's
    interfaces lock, after undoing what a killed connect of it left."""
    network = network_lookup(store, network_ref)
    row, running = _container(store, container_ref)
    refusal = _connect_refusal(store, row.record.id)
    if refusal:
        raise RootlessError(refusal)
    predefined_refusal(network)
    if ip is not None:
        ip_check(ip)
    with network_live.interfaces_locked(store, row.record.id):
        row, running = _container(store, row.record.id)  # as it is under the lock
        network_live.settle(store, row, running)
        if rows.endpoint_get(store, network.id, row.record.id) is not None:
            raise RootlessError(f"endpoint with name {row.record.name or row.record.id} "
                                f"already exists in network {network.name}")
        if running:
            endpoint = network_live.connect_running(store, row, network, aliases, ip)
        else:
            endpoint = endpoint_add(store, network, row.record.id, aliases, ip)
            try:
                network_live.adopt_user_networks(store, row.record.id, network)
            except BaseException:
                endpoint_remove(store, network.id, row.record.id)
                raise
    network_live.refresh_hosts(store, network)
    return endpoint


def network_disconnect(store, network_ref: str, container_ref: str,
                       force: bool = False) -> None:
    """`network disconnect`: the endpoint removed; a running container is detached at
    once. With `force`, the record goes even if detaching failed."""
    network = network_lookup(store, network_ref)
    row, _ = _container(store, container_ref)
    with network_live.interfaces_locked(store, row.record.id):
        row, running = _container(store, row.record.id)
        try:
            network_live.settle(store, row, running)
        except RootlessError:
            if not force:
                raise
        endpoint = None if is_predefined(network) else \
            rows.endpoint_get(store, network.id, row.record.id)
        if endpoint is None:
            raise RootlessError(f"container {row.record.id} is not connected to the "
                                f"network {network.name}")
        if running:
            try:
                network_live.disconnect_running(store, row, network, endpoint)
            except RootlessError:
                if not force:
                    raise
        endpoint_remove(store, network.id, row.record.id)
    network_live.refresh_hosts(store, network)
