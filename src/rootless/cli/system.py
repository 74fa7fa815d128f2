"""`rootless system ...` and `rootless version`."""

from __future__ import annotations

from typing import List

import typer

app = typer.Typer(no_args_is_help=True)


class GoFields(dict):
    """A struct for templates: docker's Go field names where they differ from the JSON
    keys (`{{.Client.APIVersion}}` reads "ApiVersion", as with docker's types)."""

    ALIASES = {"APIVersion": "ApiVersion"}

    def __missing__(self, key: str):
        if key in self.ALIASES:
            return self[self.ALIASES[key]]
        raise KeyError(key)


def version(format: str = typer.Option("", "--format", "-f",
                                       help="`json` for JSON, or a Go template over "
                                            "docker's fields ({{.Client.Version}}).")) -> None:
    from rootless.engine.info import version_info

    data = version_info()
    data = GoFields({k: GoFields(v) for k, v in data.items()})
    if format:
        print(_formatted(format, data))
        return
    client, server = data["Client"], data["Server"]
    print("Client:")
    _fields(1, [("Version", client["Version"]), ("API version", client["ApiVersion"]),
                ("Python version", client["GoVersion"][len("python"):]),
                ("OS/Arch", f"{client['Os']}/{client['Arch']}"),
                ("Context", client["Context"])])
    print("\nServer: rootless (no daemon: each command is its own engine)")
    print(" Engine:")
    _fields(2, [("Version", server["Version"]),
                ("API version", f"{server['ApiVersion']} (minimum version "
                                f"{server['MinAPIVersion']})"),
                ("Python version", server["GoVersion"][len("python"):]),
                ("OS/Arch", f"{server['Os']}/{server['Arch']}"),
                ("Kernel version", server["KernelVersion"])])


def _fields(indent: int, pairs: list[tuple[str, object]]) -> None:
    for key, value in pairs:
        print(f"{' ' * indent}{key + ':':<{19 - indent}}{value}")


def _formatted(format: str, data: dict) -> str:
    """`json` (the whole structure), else a Go template over it."""
    import json

    if format.strip() == "json":
        return json.dumps(data, indent=2)
    from rootless.cli.template import render

    return render(format, data)


def info(ctx: typer.Context,
         format: str = typer.Option("", "--format", "-f",
                                    help="`json` for JSON, or a Go template over docker's "
                                         "fields ({{.Containers}}) and rootless's own "
                                         "({{.rootfs}}, {{.kernel_fallbacks}}).")) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.info import docker_info, system_info

    store = get_store(ctx)
    data = system_info(store)
    docker = docker_info(store, data)
    if format:
        print(_formatted(format, {**docker, **data}))
        return
    _info_summary(docker)
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key}:" if value else f"{key}: none")
            for v in value:
                print(f"  - {v}")
        else:
            print(f"{key}: {value}")
    import sys

    for warning in docker["Warnings"]:  # as docker's CLI: after the rest, on stderr
        print(warning, file=sys.stderr)


def _info_summary(docker: dict) -> None:
    """docker info's Server section, the part that applies."""
    print("Server:")
    print(f" Containers: {docker['Containers']}")
    for key in ("Running", "Paused", "Stopped"):
        print(f"  {key}: {docker['Containers' + key]}")
    print(f" Images: {docker['Images']}")
    print(f" Server Version: {docker['ServerVersion']}")
    print(f" Storage Driver: {docker['Driver']}")
    print(f" Cgroup Driver: {docker['CgroupDriver']}")
    print(f" Cgroup Version: {docker['CgroupVersion']}")
    print(" Security Options:")
    for option in docker["SecurityOptions"]:  # "name=seccomp,profile=builtin"
        name, *rest = option.removeprefix("name=").split(",")
        print(f"  {name}")
        for pair in rest:
            key, _, value = pair.partition("=")
            print(f"   {key.capitalize()}: {value}")
    print(f" Kernel Version: {docker['KernelVersion']}")
    print(f" Operating System: {docker['OperatingSystem']}")
    print(f" OSType: {docker['OSType']}")
    print(f" Architecture: {docker['Architecture']}")
    print(f" CPUs: {docker['NCPU']}")
    print(f" Total Memory: {bytes_size(docker['MemTotal'])}")
    print(f" Docker Root Dir: {docker['DockerRootDir']}")
    print()


def bytes_size(size: float) -> str:
    """go-units BytesSize, as docker info prints Total Memory: 4 significant digits,
    binary units (3.822GiB)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size, i = size / 1024, i + 1
    return f"{size:.4g}{units[i]}"


INFO_HELP = ("Show system-wide information: what this machine offers and what rootless "
             "chose.")
app.command("info", help=INFO_HELP)(info)


def prune_warning(all_images: bool, volumes: bool, filters: list[str]) -> str:
    """docker's question (cli/command/system/prune.go), what will go, in its order."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    items += (["all images without at least one container associated to them",
               "all build cache"] if all_images
              else ["all dangling images", "unused build cache"])
    text = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if filters:
        text += "\n  Items to be pruned will be filtered with:\n"
        text += "".join(f"  - {f}\n" for f in filters)
    return text


@app.command("prune", help="Remove unused data: stopped containers, dangling images "
                           "(-a: every unused image), anonymous volumes with --volumes.")
def prune(ctx: typer.Context,
          all: bool = typer.Option(False, "-a", "--all",
                                   help="Remove all unused images, not just dangling ones."),
          force: bool = typer.Option(False, "-f", "--force",
                                     help="Do not prompt for confirmation."),
          volumes: bool = typer.Option(False, "--volumes", help="Prune anonymous volumes."),
          filter: List[str] = typer.Option([], "--filter", metavar="FILTER",
                                           help="until=TIMESTAMP|DURATION, "
                                                "label=KEY[=VALUE], label!=KEY[=VALUE].")
          ) -> None:
    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.prune import system_prune, system_prune_check

    system_prune_check(filter, volumes)  # a bad filter fails before the question
    if not force and not views.confirm(prune_warning(all, volumes, filter)):
        from rootless.errors import RootlessError

        raise RootlessError("system prune has been cancelled")
    report = system_prune(get_store(ctx), all, volumes, filter)
    for title, lines in (("Deleted Containers:", report.containers),
                         ("Deleted Networks:", report.networks),
                         ("Deleted Volumes:", report.volumes),
                         ("Deleted Images:", report.images)):
        if lines:
            print(title)
            print("\n".join(lines) + "\n")
    print(f"Total reclaimed space: {views.human_size(report.reclaimed, 4)}")


@app.command("df", help="Show disk usage: images, containers, volumes, build cache.")
def df(ctx: typer.Context,
       verbose: bool = typer.Option(False, "-v", "--verbose",
                                    help="Show detailed information on space usage."),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json` (one object per line).")) -> None:
    import time

    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.disk_usage import disk_usage
    from rootless.errors import UsageError

    if verbose and format:
        raise UsageError("--format is not supported with -v/--verbose")
    usage = disk_usage(get_store(ctx))  # read-only, best effort: no lock to wait for
    lines = views.df_verbose(usage, time.time()) if verbose else None
    if lines is None:
        from rootless.cli.template import render_rows

        lines = render_rows(format or views.DF_TABLE, views.df_summary(usage),
                            views.DF_HEADERS)
    print("\n".join(lines))


@app.command("migrate", help="Give the layers of an older store (ownership records) their "
                             "true owners in this user's subordinate range.")
def migrate(ctx: typer.Context) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.layer_owners import layers_migrate_all

    for line in layers_migrate_all(get_store(ctx)):
        print(line)
