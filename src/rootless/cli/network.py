"""`rootless network create|ls|inspect|rm|prune|connect|disconnect`: parse, call
engine/networks.py, render as the docker CLI does (cli/command/network/)."""

from __future__ import annotations

from typing import List, Optional

import typer

app = typer.Typer(name="network", help="Manage networks.", no_args_is_help=True,
                  add_completion=False)

_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
            "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
            "CreatedAt": "CREATED AT"}
_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
PRUNE_WARNING = "WARNING! This will remove all custom networks not used by at least one " \
                "container."


def _pairs(items: List[str], what: str) -> dict[str, str]:
    """--label K[=V] / --opt K=V, as the docker CLI reads them."""
    from rootless.errors import UsageError

    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (what == "opt" and not sep):
            raise UsageError(f'invalid argument "{item}" for "--{what}" flag: want '
                             "KEY=VALUE")
        result[key] = value
    return result


@app.command("create")
def create(ctx: typer.Context,
           name: str = typer.Argument(..., metavar="NETWORK"),
           driver: str = typer.Option("bridge", "-d", "--driver",
                                      help="Driver to manage the network (bridge)."),
           subnet: Optional[str] = typer.Option(None, "--subnet", metavar="CIDR",
                                                help="IPv4 subnet (default: the first "
                                                     "free 10.89.N.0/24)."),
           gateway: Optional[str] = typer.Option(None, "--gateway", metavar="IP",
                                                 help="Gateway of the subnet (default: "
                                                      "its first address)."),
           internal: bool = typer.Option(False, "--internal",
                                         help="No route out of the network."),
           label: List[str] = typer.Option([], "-l", "--label", metavar="K=V",
                                           help="Set metadata on the network."),
           opt: List[str] = typer.Option([], "-o", "--opt", metavar="K=V",
                                         help="Driver options.")) -> None:
    """Create a network; prints its id."""
    from rootless.cli.common import get_store
    from rootless.engine.networks import network_create

    labels, options = _pairs(label, "label"), _pairs(opt, "opt")
    row = network_create(get_store(ctx), name, subnet=subnet, gateway=gateway,
                         internal=internal, labels=labels, options=options, driver=driver)
    print(row.id)


def _natural(name: str) -> list:
    """sortorder.NaturalLess, the docker CLI's order of `network ls`: digit runs as
    numbers."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.findall(r"\d+|\D+", name)]


def _go_time(when: float | None) -> str:
    """Go's Time.String() of the network's creation, as `network ls --format
    {{.CreatedAt}}` prints it: local time, the fraction without trailing zeros; Go's
    zero time for a predefined network."""
    import time

    if when is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    local = time.localtime(when)
    micros = f"{int(round(when * 1e6)) % 10**6:06d}".rstrip("0")
    return time.strftime("%Y-%m-%d %H:%M:%S", local) + (f".{micros}" if micros else "") + \
        time.strftime(" %z %Z", local)


class _Entry(dict):
    """One `network ls` row: its fields, and the docker CLI's networkContext.Label
    method (`{{.Label "KEY"}}`: the label's value, "" if it has none)."""

    def _label(self, key: str) -> str:
        return self._labels.get(key, "") if isinstance(key, str) else ""

    go_methods = {"Label": _label}


def _entry(row, no_trunc: bool) -> dict[str, str]:
    entry = _Entry({"ID": row.id if no_trunc else row.id[:12], "Name": row.name,
                    "Driver": row.driver, "Scope": "local", "IPv6": "false",
                    "Internal": "true" if row.internal else "false",
                    "Labels": ",".join(f"{k}={v}" for k, v in sorted(row.labels.items())),
                    "CreatedAt": _go_time(row.created)})
    entry._labels = dict(row.labels)
    return entry


@app.command("ls")
def ls(ctx: typer.Context,
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only display network IDs."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate the output."),
       filter: List[str] = typer.Option([], "-f", "--filter", metavar="KEY=VALUE",
                                        help="driver=, id=, label=KEY[=VALUE], name=, "
                                             "scope=local, type=custom|builtin, "
                                             "dangling=true|false"),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json`.")) -> None:
    """List networks."""
    from rootless.cli.common import get_store
    from rootless.engine.networks import networks_filtered

    rows = sorted(networks_filtered(get_store(ctx), filter), key=lambda r: _natural(r.name))
    if quiet and not format:
        for row in rows:
            print(row.id if no_trunc else row.id[:12])
        return
    from rootless.cli.image_views import print_rows

    print_rows(format or _TABLE, [_entry(row, no_trunc) for row in rows], _HEADERS)


@app.command("inspect")
def inspect(ctx: typer.Context,
            names: List[str] = typer.Argument(..., metavar="NETWORK..."),
            format: str = typer.Option("", "-f", "--format",
                                       help="A Go template, printed once per network."),
            ) -> int:
    """Show details of networks, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.cli.inspect_show import _report, _template
    from rootless.engine.networks import network_inspect, network_lookup

    template = _template(format)
    store = get_store(ctx)
    return _report(names, lambda name: network_inspect(store, network_lookup(store, name)),
                   template)


@app.command("rm")
def rm(ctx: typer.Context,
       names: List[str] = typer.Argument(..., metavar="NETWORK..."),
       force: bool = typer.Option(False, "-f", "--force",
                                  help="Do not error if the network does not exist.")
       ) -> int:
    """Remove networks (not one a container is on); each name is printed once gone."""
    from rootless.cli.common import get_store
    from rootless.cli.main import error
    from rootless.engine.networks import network_lookup, network_remove
    from rootless.errors import NotFoundError, RootlessError

    store, status = get_store(ctx), 0
    for name in names:
        try:
            network_remove(store, network_lookup(store, name))
        except NotFoundError as e:
            if not force:
                error(str(e))
                status = 1
            continue
        except RootlessError as e:
            error(str(e))
            status = 1
            continue
        print(name)
    return status


app.command("list", hidden=True)(ls)  # docker's aliases of `network ls|rm`
app.command("remove", hidden=True)(rm)


@app.command("prune")
def prune(ctx: typer.Context,
          force: bool = typer.Option(False, "-f", "--force",
                                     help="Do not prompt for confirmation."),
          filter: List[str] = typer.Option([], "--filter", metavar="FILTER",
                                           help="until=TIMESTAMP|DURATION, "
                                                "label=KEY[=VALUE], label!=KEY[=VALUE]")
          ) -> None:
    """Remove all networks no container is on."""
    from rootless.cli.common import get_store
    from rootless.cli.image_views import confirm
    from rootless.engine.networks import network_prune, network_prune_check

    network_prune_check(filter)  # a bad filter fails before the question
    if not force and not confirm(PRUNE_WARNING):
        from rootless.errors import RootlessError

        raise RootlessError("network prune has been cancelled")
    deleted = network_prune(get_store(ctx), filter)
    if deleted:
        print("Deleted Networks:")
        print("\n".join(deleted) + "\n")


@app.command("connect")
def connect(ctx: typer.Context,
            network: str = typer.Argument(..., metavar="NETWORK"),
            container: str = typer.Argument(..., metavar="CONTAINER"),
            alias: List[str] = typer.Option([], "--alias",
                                            help="Add a network-scoped alias for the "
                                                 "container."),
            ip: Optional[str] = typer.Option(None, "--ip", metavar="IPV4",
                                             help="IPv4 address (of the network's "
                                                  "subnet).")) -> None:
    """Connect a container to a network."""
    from rootless.cli.common import get_store
    from rootless.engine.network_connect import network_connect

    network_connect(get_store(ctx), network, container, alias, ip)


@app.command("disconnect")
def disconnect(ctx: typer.Context,
               network: str = typer.Argument(..., metavar="NETWORK"),
               container: str = typer.Argument(..., metavar="CONTAINER"),
               force: bool = typer.Option(False, "-f", "--force",
                                          help="Force the container to disconnect from "
                                               "a network.")) -> None:
    """Disconnect a container from a network."""
    from rootless.cli.common import get_store
    from rootless.engine.network_connect import network_disconnect

    network_disconnect(get_store(ctx), network, container, force)
