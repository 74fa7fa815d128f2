"""cli/hot.py parses `ps`, `images`, `image inspect`, `inspect` and `container inspect`
without typer; it must take exactly what the typer commands take, give the same values,
and hand back (None) everything click would refuse or answer with help."""

from __future__ import annotations

import contextlib
import io

import click
import pytest
import typer

from rootless.cli import hot
from rootless.cli.image_views import IMAGE_COLUMNS, IMAGE_HEADERS, IMAGE_TABLE, plain_table
from rootless.cli.template import render_rows


@pytest.fixture(scope="module")
def commands() -> dict[tuple[str, ...], click.Command]:
    """The click command typer builds for each hot spelling."""
    from rootless.cli import app

    app._register()
    root = typer.main.get_command(app.app)
    found = {}
    for spelling in hot.COMMANDS:
        command = root
        for word in spelling:
            command = command.commands[word]
        found[spelling] = command
    return found


def _kind(option: click.Option) -> str:
    if option.is_flag:
        return hot.FLAG
    if option.multiple:
        return hot.LIST
    return hot.INT if isinstance(option.type, click.types.IntParamType) else hot.TEXT


def _click_params(command: click.Command, args: list[str]) -> dict | None:
    """What click gives the command for `args` (lists for tuples); None where it
    refuses them or prints help."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ctx = command.make_context("rootless", list(args))
    except (click.exceptions.UsageError, click.exceptions.Exit):
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ctx.params.items()}


@pytest.mark.parametrize("spelling", list(hot.COMMANDS), ids=" ".join)
def test_each_option_table_is_the_typer_commands_own(commands, spelling):
    command, table = commands[spelling], hot.COMMANDS[spelling][1]
    options, defaults, positional, fewest, most = table
    wanted = {name: (p.name, _kind(p)) for p in command.params
              if isinstance(p, click.Option) for name in p.opts + p.secondary_opts}
    assert options == wanted
    minimal = ["x"] * fewest  # the defaults
    assert hot.parse(minimal, table) == _click_params(command, minimal)
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    assert [(a.name, a.required, a.nargs) for a in arguments] == (
        [(positional, fewest > 0, -1 if most is None else 1)] if positional else [])


PS_ARGS = [
    [], ["-a"], ["-aq"], ["-qa", "--no-trunc"], ["-n", "3"], ["-n3"], ["--last=3"],
    ["--last", "-1"], ["-n", " 5 "], ["-n", "1_0"], ["-n", "5", "-n", "7"],
    ["-f", "name=x", "--filter=status=exited", "-fid=abc", "-f=label=a"],
    ["--format", "{{.Names}}"], ["--format={{.ID}}"], ["--format="], ["--format", "--all"],
    ["--format", "a", "--format", "b"], ["-s", "-l"], ["-asln2"], ["-all"],
    # what click refuses or answers with help
    ["--", "x"], ["x"], ["-"], ["--all=1"], ["-n", "abc"], ["-n", "0x1"], ["-n"],
    ["--nope"], ["-z"], ["-aqz"], ["--help"], ["-a", "--help"], ["--format"], ["-a", "--", "-q"],
    ["--al"], ["-a=x"],
]
IMAGES_ARGS = [
    [], ["busybox"], ["-a", "--digests", "busybox"], ["--filter", "dangling=true", "-q"],
    ["busybox", "--no-trunc"], ["--", "-weird"], ["-"], ["-qf", "reference=b*"],
    ["busybox", "extra"], ["--digests=true"], ["--help"], ["-f"],
]
INSPECT_ARGS = [
    ["x"], ["x", "y", "z"], ["-f", "{{.Id}}", "x"], ["x", "--format={{.Id}}"], ["-fjson", "x"],
    ["--", "-a"], ["-s", "x"], ["--type", "image", "x"], ["--type=container", "-s", "x", "y"],
    [], ["-s"], ["--type"], ["-f"], ["--help", "x"], ["--size=1", "x"], ["-sf", "{{.Id}}", "x"],
]


def _cases():
    for spelling in hot.COMMANDS:
        name = hot.COMMANDS[spelling][0]
        argsets = {"ps": PS_ARGS, "images": IMAGES_ARGS}.get(name, INSPECT_ARGS)
        for args in argsets:
            yield pytest.param(spelling, args, id=f"{' '.join(spelling)}: {' '.join(args)}")


@pytest.mark.parametrize("spelling,args", list(_cases()))
def test_parse_gives_what_click_gives_or_hands_over(commands, spelling, args):
    assert hot.parse(args, hot.COMMANDS[spelling][1]) == _click_params(commands[spelling], args)


def test_other_commands_are_not_hot():
    for argv in (["run", "busybox"], ["image", "rm", "x"], ["container", "rm", "x"],
                 ["version"], ["system", "info"], ["image"], [], ["volume", "ls"]):
        assert hot.hot_command(argv, None) is None


def test_an_empty_root_goes_to_typer():
    """typer reads `--root ""` as the current directory; the store code reads it as
    unset: leave it to typer."""
    assert hot.hot_command(["ps"], "") is None
    assert hot.hot_command(["ps"], "/some/where") is not None


ROWS = [
    {"Repository": "busybox", "Tag": "latest", "ID": "9b1c10c62c16",
     "CreatedSince": "2 years ago", "Size": "1.98MB"},
    {"Repository": "a\tb", "Tag": "x\ny", "ID": "\x1b[31mred", "CreatedSince": "é ü",
     "Size": ""},
    {"Repository": "<none>", "Tag": "<none>", "ID": "0" * 64, "CreatedSince": "N/A",
     "Size": "1e+03B"},
]


@pytest.mark.parametrize("rows", [[], ROWS[:1], ROWS], ids=["none", "one", "hostile"])
def test_plain_table_prints_what_the_template_prints(rows):
    assert plain_table(IMAGE_COLUMNS, rows, IMAGE_HEADERS) == \
        render_rows(IMAGE_TABLE, rows, IMAGE_HEADERS)
