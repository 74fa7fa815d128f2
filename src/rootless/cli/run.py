"""`rootless run`."""

from __future__ import annotations

from typing import List, Optional

import typer

# Everything after IMAGE belongs to the container's command, as in `docker run`.
CONTEXT = {"allow_interspersed_args": False}


def run(
    ctx: typer.Context,
    image: str = typer.Argument(..., help="Image name or id."),
    command: Optional[List[str]] = typer.Argument(None, help="Command and arguments."),
    rm: bool = typer.Option(False, "--rm", help="Remove the container when it exits."),
    interactive: bool = typer.Option(False, "-i", "--interactive", help="Keep stdin open."),
    tty: bool = typer.Option(False, "-t", "--tty", help="Allocate a pseudo-TTY."),
    name: Optional[str] = typer.Option(None, "--name", help="Container name."),
    env: List[str] = typer.Option([], "-e", "--env", help="Set an environment variable."),
    env_file: List[str] = typer.Option([], "--env-file", help="Read variables from a file."),
    workdir: Optional[str] = typer.Option(None, "-w", "--workdir", help="Working directory."),
    user: Optional[str] = typer.Option(None, "-u", "--user", help="USER[:GROUP] or UID[:GID]."),
    volume: List[str] = typer.Option([], "-v", "--volume", help="Bind mount HOST:CTR[:ro]."),
    hostname: Optional[str] = typer.Option(None, "-h", "--hostname", help="Hostname."),
    network: str = typer.Option("host", "--network", "--net", help="host or none."),
    entrypoint: Optional[str] = typer.Option(None, "--entrypoint", help="Override ENTRYPOINT."),
    init: bool = typer.Option(False, "--init", help="Run an init that reaps zombies."),
    security_opt: List[str] = typer.Option([], "--security-opt",
                                           help="no-new-privileges is supported."),
) -> int:
    from rootless.cli.common import get_store, global_options
    from rootless.engine.run import RunOptions, container_run
    from rootless.errors import UsageError

    for opt in security_opt:
        if opt not in ("no-new-privileges", "no-new-privileges:true"):
            raise UsageError(f"unsupported --security-opt: {opt}")
    opts = RunOptions(
        image=image, command=list(command or []), entrypoint=entrypoint, env=env,
        env_files=env_file, workdir=workdir, user=user, volumes=volume, hostname=hostname,
        network=network, name=name, remove=rm, interactive=interactive, tty=tty, init=init,
        no_new_privileges=bool(security_opt), debug=global_options(ctx).debug)
    return container_run(get_store(ctx), opts)
