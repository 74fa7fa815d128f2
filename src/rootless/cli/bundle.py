"""`rootless bundle IMAGE DIR`: write an OCI runtime bundle for rootless-oci, crun, runc
or Slurm's `srun --container` (engine/bundle.py)."""

from __future__ import annotations

import typer

from rootless.cli.common import get_store

HELP = ("Write an OCI runtime bundle (rootfs/ and config.json) of a local image into "
        "DIR, for rootless-oci, crun, runc or srun --container.")


def bundle(ctx: typer.Context,
           image: str = typer.Argument(..., help="A local image (name or id)."),
           directory: str = typer.Argument(..., metavar="DIR",
                                           help="A new or empty directory.")) -> None:
    from rootless.engine.bundle import bundle_write

    print(bundle_write(get_store(ctx), image, directory))
