"""`rootless pull|push|login|logout|search` (and `image pull|push`): thin, over
engine/registry.py. Progress as docker prints it (cli/progress.py)."""

from __future__ import annotations

from typing import List, Optional

import typer

TLS_HELP = "Require HTTPS and verify certificates (false: allow unverified TLS or plain HTTP)."


def _tls(value: Optional[str]) -> Optional[bool]:
    """podman's --tls-verify[=BOOL]; None when not given (registries.json decides)."""
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    from rootless.errors import UsageError

    raise UsageError(f"invalid value {value!r} for --tls-verify (want true or false)")


def _tls_option():
    return typer.Option(None, "--tls-verify", is_flag=False, flag_value="true",
                        metavar="[=BOOL]", help=TLS_HELP)


def pull(ctx: typer.Context,
         name: str = typer.Argument(..., metavar="NAME[:TAG|@DIGEST]"),
         all_tags: bool = typer.Option(False, "-a", "--all-tags",
                                       help="Download all tagged images in the repository."),
         platform: Optional[str] = typer.Option(None, "--platform",
                                                metavar="OS/ARCH[/VARIANT]",
                                                help="Pick this platform from a "
                                                     "multi-platform image."),
         quiet: bool = typer.Option(False, "-q", "--quiet", help="Suppress verbose output."),
         tls_verify: Optional[str] = _tls_option()) -> None:
    """Download an image from a registry."""
    from rootless.cli.common import get_store
    from rootless.cli.progress import LayerProgress, pull_progress, pull_status
    from rootless.engine.registry import image_pull

    progress = pull_progress(LayerProgress())
    if not quiet and not all_tags and _without_tag(name):
        print("Using default tag: latest", flush=True)
    results = image_pull(get_store(ctx), name, all_tags, platform, _tls(tls_verify),
                         None if quiet else progress)
    for result in results:
        if not quiet:
            print(pull_status(result))
        print(result.full)


def _without_tag(name: str) -> bool:
    """True if `name` gives neither a tag nor a digest (docker then says it uses latest)."""
    last = name.rsplit("/", 1)[-1]
    return "@" not in name and ":" not in last


def push(ctx: typer.Context,
         name: str = typer.Argument(..., metavar="IMAGE"),
         destination: Optional[str] = typer.Argument(
             None, metavar="[DESTINATION]",
             help="Push to this reference instead of the image's own name (as podman)."),
         quiet: bool = typer.Option(False, "-q", "--quiet", help="Suppress verbose output."),
         tls_verify: Optional[str] = _tls_option()) -> None:
    """Upload an image to a registry."""
    from rootless.cli.common import get_store
    from rootless.engine.registry import image_push

    from rootless.cli.progress import LayerProgress

    board = LayerProgress()

    def progress(event: str, text: str, done: int, total: int) -> None:
        if event == "uploading":
            board.bytes(text, done, total, "Pushing")
        else:
            board.status(text, event)

    result = image_push(get_store(ctx), name, destination, _tls(tls_verify),
                        None if quiet else progress)
    tag = result.reference.rsplit(":", 1)[-1] if "@" not in result.reference else "digest"
    if quiet:
        print(result.reference)
    else:
        print(f"{tag}: digest: {result.digest} size: {result.size}")


def login(server: Optional[str] = typer.Argument(None, metavar="[SERVER]"),
          username: Optional[str] = typer.Option(None, "-u", "--username"),
          password: Optional[str] = typer.Option(None, "-p", "--password"),
          password_stdin: bool = typer.Option(False, "--password-stdin",
                                              help="Take the password from stdin."),
          tls_verify: Optional[str] = _tls_option()) -> None:
    """Log in to a registry (credentials go to ~/.docker/config.json, mode 0600)."""
    import sys

    from rootless.engine.registry import registry_login
    from rootless.errors import UsageError

    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("login needs --username (stdin is not a terminal)")
        username = input("Username: ")
    if not password:
        if not sys.stdin.isatty():
            raise UsageError("login needs --password or --password-stdin (stdin is not a "
                             "terminal)")
        import getpass

        password = getpass.getpass("Password: ")
    elif not password_stdin:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
    registry_login(server, username, password, _tls(tls_verify))
    print("Login Succeeded")


def logout(server: Optional[str] = typer.Argument(None, metavar="[SERVER]")) -> None:
    """Log out from a registry."""
    from rootless.engine.registry import registry_logout

    host, removed = registry_logout(server)
    if removed:
        print(f"Removing login credentials for {host}")
    else:
        print(f"Not logged in to {host}")


def search(term: str = typer.Argument(..., metavar="TERM"),
           filter: List[str] = typer.Option([], "-f", "--filter",
                                            help="stars=N, is-official=BOOL, "
                                                 "is-automated=BOOL"),
           limit: int = typer.Option(25, "--limit", help="Max number of results."),
           no_trunc: bool = typer.Option(False, "--no-trunc", help="Don't truncate output."),
           tls_verify: Optional[str] = _tls_option()) -> None:
    """Search a registry for images (Docker Hub's /v1/search API)."""
    from rootless.cli.table import print_table
    from rootless.engine.registry import registry_search

    rows = []
    for r in registry_search(term, limit, filter, _tls(tls_verify)):
        text = " ".join(r.description.split())
        if not no_trunc and len(text) > 45:
            text = text[:44] + "…"
        rows.append([r.name, text, str(r.stars), "[OK]" if r.official else "",
                     "[OK]" if r.automated else ""])
    print_table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"], rows)


def register(root: typer.Typer, image_app: typer.Typer) -> None:
    image_app.command("pull", help="Download an image from a registry.")(pull)
    image_app.command("push", help="Upload an image to a registry.")(push)
    root.command("pull", help="Download an image from a registry.")(pull)
    root.command("push", help="Upload an image to a registry.")(push)
    root.command("login", help="Log in to a registry.")(login)
    root.command("logout", help="Log out from a registry.")(logout)
    root.command("search", help="Search a registry for images.")(search)
