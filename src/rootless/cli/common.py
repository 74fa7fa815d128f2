"""What every command shares: the global options and the store they select."""

from __future__ import annotations

from typing import NamedTuple
from pathlib import Path

import typer


class GlobalOptions(NamedTuple):
    root: Path | None = None
    debug: bool = False


def global_options(ctx: typer.Context) -> GlobalOptions:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()


def get_store(ctx: typer.Context):
    from rootless.store import Store

    return Store.open(global_options(ctx).root)
