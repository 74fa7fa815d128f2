"""`rootless image ...` (import, load, ls, rm, inspect) and the docker shortcuts
`rootless images|rmi|load|import`. Thin: parse, call engine/images.py, render."""

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
       all: bool = typer.Option(False, "-a", "--all", help="Show all images (there are no "
                                "intermediate images yet)."),
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only show image ids."),
       no_trunc: bool = typer.Option(False, "--no-trunc", help="Do not truncate output.")
       ) -> None:
    """List images."""
    import time

    from rootless.cli.common import get_store
    from rootless.cli.table import print_table
    from rootless.engine.images import image_list

    rows = image_list(get_store(ctx), reference)
    ids = [r.id if no_trunc else r.id[7:19] for r in rows]
    if quiet:
        for image_id in dict.fromkeys(ids):
            print(image_id)
        return
    now = time.time()
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                [[r.repository, r.tag, image_id, _ago(now, r.created), human_size(r.size)]
                 for r, image_id in zip(rows, ids)])


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
            images: List[str] = typer.Argument(..., metavar="IMAGE...")) -> None:
    """Show details of images, as a JSON array."""
    import json

    from rootless.cli.common import get_store
    from rootless.engine.images import image_inspect

    print(json.dumps(image_inspect(get_store(ctx), images), indent=4))


def register_shortcuts(root: typer.Typer) -> None:
    """docker's top-level spellings: images, rmi, load, import."""
    root.command("images", help="List images.")(ls)
    root.command("rmi", help="Remove images.")(rm)
    root.command("load", help="Load images from an archive.")(load)
    root.command("import", help="Import a root filesystem tarball as an image.")(import_)


def _ago(now: float, created: float | None) -> str:
    if not created:
        return "N/A"
    from rootless.engine.containers import human_duration

    return f"{human_duration(now - created)} ago"


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 999.5 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"
