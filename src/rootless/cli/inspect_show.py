"""The bodies of `inspect`, `container inspect` and `image inspect`, without typer:
cli/inspect.py and cli/image.py call them with it, cli/hot.py without.

As docker: every name is looked up, what was found is printed (a JSON array, or the
template once per object), then one error line per name that was not, and exit 1.
Without --type, a name is a container first, then an image. A bad template fails
before any lookup (and before the store is opened), as in docker.
"""

from __future__ import annotations

TYPES = ("container", "image")


def inspect_print(open_store, names: list[str], type: str | None = None, format: str = "",
                  size: bool = False) -> int:
    """`rootless inspect`; `open_store()` gives the store."""
    from rootless.errors import UsageError

    if type is not None and type not in TYPES:
        raise UsageError(f'"{type}" is not a valid value for --type (container or image)')
    template = _template(format)
    store = open_store()
    return _report(names, lambda name: _lookup(store, name, type, size), template)


def container_inspect_print(open_store, containers: list[str], format: str = "",
                            size: bool = False) -> int:
    """`rootless container inspect`."""
    from rootless.engine.container_inspect import container_inspect as inspect_one

    template = _template(format)
    store = open_store()
    return _report(containers, lambda name: inspect_one(store, name, size), template)


def image_inspect_print(open_store, images: list[str], format: str = "") -> None:
    """`rootless image inspect`: stops at the first unknown name (docker prints the
    found ones first)."""
    from rootless.engine.images import image_inspect

    if format:
        from rootless.cli.template import parse

        template = parse(format)
        for obj in image_inspect(open_store(), images):
            print(template.execute(obj))
        return
    import json

    print(json.dumps(image_inspect(open_store(), images), indent=4))


def _lookup(store, name: str, kind: str | None, size: bool) -> dict:
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


def _report(names: list[str], lookup, template) -> int:
    """Print what was found, then an error line per name that was not; 1 if any."""
    import json

    from rootless.cli.main import error
    from rootless.errors import RootlessError

    found: list[dict] = []
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
