"""`run`'s network options (engine/run.RunOptions): the default mode, docker's checks,
and what the container's spec and /etc files get. Imported only when --network is not
host or none, or a network option is given: those two modes cost `run` nothing more."""

from __future__ import annotations

import json
import os

from rootless.errors import UsageError


def network_default(opts):
    """--network as given, or the default: slirp when a helper is installed, else host
    with a one-line notice (`system info` says why)."""
    if opts.network is not None:
        return opts
    from rootless.net.modes import default_network

    network = default_network()
    if network == "host":
        import sys

        print("notice: neither pasta nor slirp4netns is installed: the container uses "
              "the host's network (see: rootless system info)", file=sys.stderr,
              flush=True)
    return opts._replace(network=network)


def network_validate(opts) -> None:
    """--network and its companions, before any container exists, with docker's
    messages."""
    from rootless.net.files import check_options
    from rootless.net.ports import parse_expose, parse_publish

    from rootless.net.modes import network_kind, parse_network

    kind = network_kind(opts.network)
    if kind == "container":
        _container_mode_conflicts(opts)
    elif kind == "builtin" and opts.network not in ("host", "none"):
        parse_network(opts.network)
    if opts.network_aliases and kind != "user":
        raise UsageError("network-scoped alias is supported only for containers in user "
                         "defined networks")
    if opts.ip is not None:
        if kind != "user":  # moby's runconfig.ErrUnsupportedNetworkAndIP
            raise UsageError("user specified IP address is supported on user defined "
                             "networks only")
        from rootless.engine.networks import ip_check

        ip_check(opts.ip)
    if opts.network == "none" and (opts.publish or opts.publish_all):
        raise UsageError("conflicting options: port publishing and the container type "
                         "network mode")
    for spec in opts.publish:
        parse_publish(spec)
    for spec in opts.expose:
        parse_expose(spec)
    check_options(opts.dns, opts.extra_hosts)


def _container_mode_conflicts(opts) -> None:
    """docker's refusals for --network container:NAME, which has no network of its own
    to configure."""
    for given, what in ((opts.publish or opts.publish_all,
                         "port publishing and the container type network mode"),
                        (opts.expose, "port exposing and the container type network mode"),
                        (opts.dns or opts.dns_search or opts.dns_options,
                         "dns and the network mode"),
                        (opts.extra_hosts, "custom host-to-IP mapping and the network mode"),
                        (opts.hostname, "hostname and the network mode")):
        if given:
            raise UsageError(f"conflicting options: {what}")


def network_resolve(store, opts):
    """Before the container exists: the user network (engine/networks.NetworkRow) or
    the container (its record) --network names; None for the built-in modes. Docker's
    errors for an unknown one."""
    from rootless.net.modes import network_kind

    kind = network_kind(opts.network or "host")
    if kind == "user":
        from rootless.engine.networks import network_lookup

        return network_lookup(store, opts.network)
    if kind == "container":
        from rootless.engine.containers import container_lookup

        return container_lookup(store, opts.network.partition(":")[2])
    return None


def network_spec(opts, image_config: dict, cdir: str, store=None,
                 container_id: str = "", target=None):
    """(the NetworkFiles of the container's /etc files, its annotations: the network
    mode and the published ports, host ports decided now). The ports also go to
    PORTS_FILE in `cdir`: `ps` shows them without reading config.json. `target`:
    network_resolve's answer; a user network's address is allocated here, in the
    store (its endpoint goes with the container)."""
    from rootless.net.files import NetworkFiles
    from rootless.net.modes import network_kind

    kind = network_kind(opts.network)
    if kind == "container":
        return _container_network_spec(target)
    if kind == "user":
        return _user_network_spec(opts, image_config, cdir, store, container_id, target)
    files = NetworkFiles(opts.network, dns=tuple(opts.dns), dns_search=tuple(opts.dns_search),
                         dns_options=tuple(opts.dns_options),
                         extra_hosts=tuple(opts.extra_hosts))
    if opts.network in ("host", "none"):
        if opts.network == "host" and (opts.publish or opts.publish_all):
            import sys

            print("WARNING: Published ports are discarded when using host network mode",
                  file=sys.stderr, flush=True)
        return files, {}
    from rootless.net.modes import NETWORK_ANNOTATION, parse_network

    mode = parse_network(opts.network)
    annotations = {NETWORK_ANNOTATION: mode.annotation(),
                   **_published(opts, image_config, cdir)}
    return files._replace(network="slirp", helper=mode.helper,
                          allow_host_loopback=mode.allow_host_loopback), annotations


def _published(opts, image_config: dict, cdir: str) -> dict[str, str]:
    """The annotation of -p/-P's table (host ports decided now), also in PORTS_FILE."""
    from rootless.net.ports import (PORTS_ANNOTATION, PORTS_FILE, exposed_ports,
                                    publish_table)

    table = publish_table(tuple(opts.publish), opts.publish_all,
                          exposed_ports(image_config, tuple(opts.expose)))
    if not table:
        return {}
    text = json.dumps(table)
    with open(os.path.join(cdir, PORTS_FILE), "w") as f:
        f.write(text)
    return {PORTS_ANNOTATION: text}


def _user_network_spec(opts, image_config: dict, cdir: str, store, container_id: str,
                       network):
    """On a user network: its endpoint (an address of its subnet), the way out (the
    slirp helper, when one is installed: containers reach each other over the hub's
    bridge, the world through the helper's interface), published ports as slirp's."""
    from rootless.engine.networks import endpoint_add
    from rootless.net.files import NetworkFiles
    from rootless.net.modes import NETWORK_ANNOTATION, NetworkMode, helper_choice

    endpoint = endpoint_add(store, network, container_id, tuple(opts.network_aliases),
                            opts.ip)
    helper, _ = helper_choice()
    mode = NetworkMode("user", helper or "", name=network.name)
    files = NetworkFiles("user", helper=helper or "", dns=tuple(opts.dns),
                         dns_search=tuple(opts.dns_search),
                         dns_options=tuple(opts.dns_options),
                         extra_hosts=tuple(opts.extra_hosts), address=endpoint.ip)
    annotations = {NETWORK_ANNOTATION: mode.annotation(),
                   **_published(opts, image_config, cdir)}
    return files, annotations


def _container_network_spec(target):
    """--network container:NAME: NAME's network namespace, entered at each start; its
    /etc/hosts and resolv.conf are copied now (docker shares NAME's)."""
    from rootless.net.files import NetworkFiles
    from rootless.net.modes import NETWORK_ANNOTATION, NetworkMode

    mode = NetworkMode("container", name=target.id)
    return NetworkFiles("container", joined=target.id), {NETWORK_ANNOTATION:
                                                         mode.annotation()}
