"""`rootless build` and `rootless image build`: docker build's flags. Thin: parse, call
engine/build.py, which prints the steps."""

from __future__ import annotations

from typing import List, Optional

import typer

HELP = "Build an image from a Dockerfile."


def build(ctx: typer.Context,
          context: str = typer.Argument(..., metavar="CONTEXT|-",
                                        help="The build context: a directory, or - for a "
                                             "tar (or a lone Dockerfile) on stdin."),
          tag: List[str] = typer.Option([], "-t", "--tag", metavar="NAME[:TAG]",
                                        help="Name the image (more than once: more names)."),
          file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE|-",
                                             help="The Dockerfile (default: "
                                                  "CONTEXT/Dockerfile; - for stdin)."),
          build_arg: List[str] = typer.Option([], "--build-arg", metavar="K=V",
                                              help="Set a build-time variable (an ARG)."),
          target: Optional[str] = typer.Option(None, "--target",
                                               help="Build this stage (name or index)."),
          no_cache: bool = typer.Option(False, "--no-cache",
                                        help="Do not use the cache of earlier builds."),
          pull: bool = typer.Option(False, "--pull", help="Pull base images even when "
                                    "they are in the store."),
          label: List[str] = typer.Option([], "--label", metavar="K=V",
                                          help="Set a label on the image."),
          platform: Optional[str] = typer.Option(None, "--platform",
                                                 help="Only this machine's platform."),
          quiet: bool = typer.Option(False, "-q", "--quiet",
                                     help="Print only the image id."),
          iidfile: Optional[str] = typer.Option(None, "--iidfile", metavar="FILE",
                                                help="Write the image id to FILE."),
          network: Optional[str] = typer.Option(None, "--network",
                                                help="The network of RUN steps (default: "
                                                     "run's, slirp where pasta or "
                                                     "slirp4netns is installed; host, "
                                                     "none)."),
          secret: List[str] = typer.Option([], "--secret", metavar="id=ID,src=PATH",
                                           help="A file RUN --mount=type=secret reads."),
          progress: str = typer.Option("auto", "--progress",
                                       help="auto, plain or tty (all plain here)."),
          ) -> None:
    from rootless.cli.common import get_store
    from rootless.engine.build import BuildOptions, image_build
    from rootless.engine.run import _pull_silently
    from rootless.errors import UsageError

    if progress not in ("auto", "plain", "tty", "quiet", "rawjson"):
        raise UsageError(f"invalid --progress {progress!r}: auto, plain or tty")
    if platform and platform not in _this_platform():
        raise UsageError(f"--platform {platform}: only this machine's platform "
                         f"({_this_platform()[0]}) can be built")
    opts = BuildOptions(context=context, dockerfile=file, tags=tuple(tag),
                        build_args=tuple(build_arg), target=target, no_cache=no_cache,
                        pull=pull, labels=tuple(label), quiet=quiet or progress == "quiet",
                        iidfile=iidfile, network=network, secrets=tuple(secret),
                        platform=platform)
    image_build(get_store(ctx), opts, _pull_silently)


def _this_platform() -> list[str]:
    from rootless.engine.build_image import scratch_config

    arch = scratch_config()["architecture"]
    return [f"linux/{arch}", arch]


def register(root: typer.Typer, image_app: typer.Typer) -> None:
    root.command("build", help=HELP)(build)
    image_app.command("build", help=HELP)(build)
