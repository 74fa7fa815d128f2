"""`rootless image ...` (import, load, ls, tag, history, prune, rm, inspect) and the
docker shortcuts `rootless images|rmi|load|import|tag|history`. Thin: parse, call the
engine (engine/images.py and its siblings), render (cli/image_views.py)."""

from __future__ import annotations

from typing import List, Optional

import typer

app = typer.Typer(name="image", help="Manage images.", no_args_is_help=True,
                  add_completion=False)


@app.command("import")
def import_(ctx: typer.Context,
            source: str = typer.Argument(..., metavar="FILE|URL|-",
                                         help="A root filesystem tar (plain or compressed)."),
            name: Optional[str] = typer.Argument(None, metavar="[REPOSITORY[:TAG]]"),
            change: List[str] = typer.Option([], "-c", "--change",
                                             help="Apply a Dockerfile instruction "
                                                  "(CMD, ENTRYPOINT, ENV, WORKDIR, ...)."),
            message: str = typer.Option("", "-m", "--message",
                                        help="Commit message for the imported image.")
            ) -> None:
    """Import a root filesystem tarball as a one-layer image."""
    from rootless.cli.common import get_store
    from rootless.engine.images import image_import

    print(image_import(get_store(ctx), source, name, change, message))


@app.command("load")
def load(ctx: typer.Context,
         input: Optional[str] = typer.Option(None, "-i", "--input", metavar="FILE",
                                             help="Read from a tar archive file, "
                                                  "instead of stdin."),
         quiet: bool = typer.Option(False, "-q", "--quiet", help="Suppress progress output.")
         ) -> None:
    """Load images from a docker-archive or OCI archive (docker/podman save)."""
    from rootless.cli.common import get_store
    from rootless.engine.images import image_load

    for item in image_load(get_store(ctx), input):
        kind = "Loaded image ID" if item.startswith("sha256:") else "Loaded image"
        print(f"{kind}: {item}")


@app.command("ls")
def ls(ctx: typer.Context,
       reference: Optional[str] = typer.Argument(None, metavar="[REPOSITORY[:TAG]]"),
       all: bool = typer.Option(False, "-a", "--all", help="Show all images (by default the "
                                "intermediate images of builds are hidden)."),
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show image ids."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output."),
       digests: bool = typer.Option(False, "--digests", help="Show digests."),
       filter: List[str] = typer.Option([], "-f", "--filter", metavar="FILTER",
                                        help="dangling=true|false, reference=PATTERN, "
                                             "before=IMAGE, since=IMAGE, label=KEY[=VALUE], "
                                             "until=TIMESTAMP|DURATION."),
       format: str = typer.Option("", "--format", help="A Go template, `table TEMPLATE`, "
                                  "or `json` (one object per line).")
       ) -> None:
    """List images."""
    from rootless.cli.common import get_store
    from rootless.cli.image_views import images_print

    images_print(get_store(ctx), reference, quiet, no_trunc, digests, filter, format, all)


@app.command("tag")
def tag(ctx: typer.Context,
        source: Optional[str] = typer.Argument(None, metavar="SOURCE_IMAGE[:TAG]"),
        target: Optional[str] = typer.Argument(None, metavar="TARGET_IMAGE[:TAG]")) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from rootless.cli.common import get_store
    from rootless.engine.images import image_tag
    from rootless.errors import UsageError

    if source is None or target is None:  # typer does not enforce it outside standalone
        raise UsageError('"tag" requires exactly 2 arguments: SOURCE_IMAGE TARGET_IMAGE')
    image_tag(get_store(ctx), source, target)


@app.command("history")
def history(ctx: typer.Context,
            image: Optional[str] = typer.Argument(None, metavar="IMAGE"),
            human: str = typer.Option("true", "-H", "--human", is_flag=False,
                                      flag_value="true", metavar="[=true|false]",
                                      help="Print sizes and dates in human readable "
                                           "format."),
            no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output."),
            quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show image ids."),
            format: str = typer.Option("", "--format", help="A Go template, `table "
                                       "TEMPLATE`, or `json` (one object per line).")
            ) -> None:
    """Show the history of an image."""
    import time

    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.image_history import image_history
    from rootless.errors import UsageError

    # `-H=false` reaches click as -H with the value "=false"; a bare -H is spelled out
    # as --human=true before parsing (cli/main.py)
    flag = views.parse_bool(human.removeprefix("="))
    if image is None:
        raise UsageError('"history" requires exactly 1 argument: IMAGE')
    if flag is None:
        raise UsageError(f"invalid value for -H/--human: {human.removeprefix('=')} "
                         "(true or false)")
    rows = image_history(get_store(ctx), image)
    now = time.time()
    entries = [views.history_entry(r, now, flag, no_trunc) for r in rows]
    if not format:
        format = "{{.ID}}" if quiet else \
            views.HISTORY_TABLE if flag else views.HISTORY_TABLE_NON_HUMAN
    views.print_rows(format, entries, views.HISTORY_HEADERS)


@app.command("prune")
def prune(ctx: typer.Context,
          all: bool = typer.Option(False, "-a", "--all", help="Remove all unused images, "
                                   "not just dangling ones."),
          force: bool = typer.Option(False, "-f", "--force",
                                     help="Do not prompt for confirmation."),
          filter: List[str] = typer.Option([], "--filter", metavar="FILTER",
                                           help="until=TIMESTAMP|DURATION, "
                                                "label=KEY[=VALUE], label!=KEY[=VALUE].")
          ) -> None:
    """Remove unused images."""
    from rootless.cli import image_views as views
    from rootless.cli.common import get_store
    from rootless.engine.image_list import parse_filters
    from rootless.engine.prune import PRUNE_FILTERS, image_prune

    parse_filters(filter, PRUNE_FILTERS)  # a bad filter fails before the question
    if not force and not views.confirm(views.PRUNE_ALL_WARNING if all
                                       else views.PRUNE_WARNING):
        from rootless.errors import RootlessError

        raise RootlessError("image prune has been cancelled")
    report = image_prune(get_store(ctx), all, filter)
    if report.lines:
        print("Deleted Images:")
        print("\n".join(report.lines) + "\n")
    print(f"Total reclaimed space: {views.human_size(report.reclaimed, 4)}")


@app.command("rm")
def rm(ctx: typer.Context,
       images: List[str] = typer.Argument(..., metavar="IMAGE...", help="Names or ids."),
       force: bool = typer.Option(False, "-f", "--force",
                                  help="Remove even if stopped containers use it.")) -> None:
    """Remove images."""
    from rootless.cli.common import get_store
    from rootless.engine.images import image_remove

    for line in image_remove(get_store(ctx), images, force):
        print(line)


@app.command("inspect")
def inspect(ctx: typer.Context,
            images: List[str] = typer.Argument(..., metavar="IMAGE..."),
            format: str = typer.Option("", "--format", "-f",
                                       help="A Go template, printed once per image.")) -> None:
    """Show details of images, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.cli.inspect_show import image_inspect_print

    image_inspect_print(lambda: get_store(ctx), images, format)


@app.command("save")
def save(ctx: typer.Context,
         images: List[str] = typer.Argument(..., metavar="IMAGE..."),
         output: Optional[str] = typer.Option(None, "-o", "--output", metavar="FILE",
                                              help="Write to a file, instead of STDOUT."),
         format: str = typer.Option("docker-archive", "--format",
                                    help="docker-archive, oci-archive or oci-dir."),
         multi: bool = typer.Option(False, "-m", "--multi-image-archive",
                                    help="Accepted for podman: archives always hold "
                                         "several images."),
         quiet: bool = typer.Option(False, "-q", "--quiet", help="Suppress output.")
         ) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    from rootless.cli.common import get_store
    from rootless.engine.save import image_save

    image_save(get_store(ctx), images, output, format)


def register_shortcuts(root: typer.Typer) -> None:
    """docker's top-level spellings (images, rmi, load, save, import, tag, history) and
    its hidden aliases `image list|remove`: the same function, so the same flags, help
    and output either way."""
    app.command("list", hidden=True)(ls)
    app.command("remove", hidden=True)(rm)
    for name, command in (("images", ls), ("rmi", rm), ("tag", tag), ("history", history),
                          ("load", load), ("save", save), ("import", import_)):
        root.command(name)(command)
