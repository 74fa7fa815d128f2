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

    if opts.network not in ("host", "none"):
        from rootless.net.modes import parse_network

        parse_network(opts.network)
    if opts.network_aliases:
        raise UsageError("network-scoped alias is supported only for containers in user "
                         "defined networks")
    if opts.network == "none" and (opts.publish or opts.publish_all):
        raise UsageError("conflicting options: port publishing and the container type "
                         "network mode")
    for spec in opts.publish:
        parse_publish(spec)
    for spec in opts.expose:
        parse_expose(spec)
    check_options(opts.dns, opts.extra_hosts)


def network_spec(opts, image_config: dict, cdir: str):
    """(the NetworkFiles of the container's /etc files, its annotations: the network
    mode and the published ports, host ports decided now). The ports also go to
    PORTS_FILE in `cdir`: `ps` shows them without reading config.json."""
    from rootless.net.files import NetworkFiles

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
    from rootless.net.ports import PORTS_ANNOTATION, exposed_ports, publish_table

    mode = parse_network(opts.network)
    table = publish_table(tuple(opts.publish), opts.publish_all,
                          exposed_ports(image_config, tuple(opts.expose)))
    annotations = {NETWORK_ANNOTATION: mode.annotation()}
    if table:
        annotations[PORTS_ANNOTATION] = json.dumps(table)
        from rootless.net.ports import PORTS_FILE

        with open(os.path.join(cdir, PORTS_FILE), "w") as f:
            f.write(annotations[PORTS_ANNOTATION])
    return files._replace(network="slirp", helper=mode.helper,
                          allow_host_loopback=mode.allow_host_loopback), annotations
