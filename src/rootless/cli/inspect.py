"""`rootless container inspect` and the top-level `rootless inspect`.

As docker: every name is looked up, what was found is printed (a JSON array, or the
template once per object), then one error line per name that was not, and exit 1.
Without --type, a name is a container first, then an image.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import typer

TYPES = ("container", "image")


def container_inspect(ctx: typer.Context,
                      containers: List[str] = typer.Argument(..., metavar="CONTAINER..."),
                      format: str = typer.Option("", "--format", "-f",
                                                 help="A Go template, printed once per "
                                                      "container, or `json`."),
                      size: bool = typer.Option(False, "-s", "--size",
                                                help="Display total file sizes.")) -> int:
    """Show details of containers, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.engine.container_inspect import container_inspect as inspect_one

    template = _template(format)  # a bad template fails before any lookup, as in docker
    store = get_store(ctx)
    return _report(containers, lambda name: inspect_one(store, name, size), template)


def inspect(ctx: typer.Context,
            names: List[str] = typer.Argument(..., metavar="NAME|ID..."),
            type: Optional[str] = typer.Option(None, "--type",
                                               help="Only look for this type of object: "
                                                    "container or image."),
            format: str = typer.Option("", "--format", "-f",
                                       help="A Go template, printed once per object, "
                                            "or `json`."),
            size: bool = typer.Option(False, "-s", "--size",
                                      help="Display total file sizes if the type is "
                                           "container.")) -> int:
    """Show details of containers or images, as a JSON array."""
    from rootless.cli.common import get_store
    from rootless.errors import UsageError

    if type is not None and type not in TYPES:
        raise UsageError(f'"{type}" is not a valid value for --type (container or image)')
    template = _template(format)
    store = get_store(ctx)
    return _report(names, lambda name: _lookup(store, name, type, size), template)


def _lookup(store, name: str, kind: str | None, size: bool) -> dict[str, Any]:
    """docker's rule: a container of that name first, then an image; "no such object"
    when neither (with --type, the error of that type's lookup)."""
    from rootless.engine.container_inspect import container_inspect as inspect_container
    from rootless.engine.images import image_inspect
    from rootless.errors import NotFoundError, RootlessError

    if kind != "image":
        try:
            return inspect_container(store, name, size)
        except NotFoundError:
            if kind == "container":
                raise
    try:
        return image_inspect(store, [name])[0]
    except RootlessError:
        if kind == "image":
            raise
    raise NotFoundError(f"no such object: {name}")


def _template(format: str):
    if not format or format.strip() == "json":
        return None
    from rootless.cli.template import parse

    return parse(format)


def _report(names: list[str], lookup: Callable[[str], dict[str, Any]], template) -> int:
    """Print what was found, then an error line per name that was not; 1 if any."""
    import json

    from rootless.cli.main import error
    from rootless.errors import RootlessError

    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in names:
        try:
            found.append(lookup(name))
        except RootlessError as e:  # no such object, or a name that is no reference
            missing.append(str(e))
    if template is None:
        print(json.dumps(found, indent=4))
    else:
        for obj in found:
            print(template.execute(obj))
    for message in missing:
        error(message)
    return 1 if missing else 0
