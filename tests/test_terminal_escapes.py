"""Text from an image never reaches the user's terminal raw: an escape sequence in an
image's Cmd, history or labels is printed escaped, as Go's strconv.Quote writes it, in
`ps`, `history`, `images` and `inspect` output."""

from __future__ import annotations

import pytest
from helpers import ok

ESC = "\x1b]0;owned\x07\x1b[2J"  # set the window title, clear the screen
SHOWN = r"\x1b]0;owned"  # as Go quotes it (the bell may read \a or \x07)


@pytest.fixture
def hostile(rootless, tmp_path):
    """evil:1, whose Cmd, history and labels carry terminal escape sequences."""
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    history = [{"created": "2024-01-01T00:00:00Z", "created_by": f"/bin/sh -c {ESC}",
                "comment": f"c{ESC}\r"}]
    config = {"Cmd": [f"/no{ESC}such"], "Labels": {"note": f"n{ESC}"}}
    image = Image([tar_bytes(entry("f", data=b"x"))], history=history, config=config)
    path = oci_archive(tmp_path / "evil.tar",
                       [(image, {"org.opencontainers.image.ref.name": "evil:1"})])
    ok(rootless("load", "-i", str(path)))
    return "evil:1"


def assert_escaped(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert SHOWN in out


@pytest.mark.container
def test_ps_escapes_the_command(rootless, hostile):
    rootless("run", "--name", "evil", hostile)  # fails (no such command), stays listed
    out = ok(rootless("ps", "-a", "--no-trunc"))
    assert_escaped(out)


@pytest.mark.container
def test_ps_format_escapes_the_command(rootless, hostile):
    rootless("run", "--name", "evil", hostile)
    assert_escaped(ok(rootless("ps", "-a", "--no-trunc", "--format", "{{.Command}}")))


def test_history_table_escapes_created_by_and_comment(rootless, hostile):
    out = ok(rootless("history", "--no-trunc", hostile))
    assert_escaped(out)
    assert len(out.splitlines()) == 2  # a "\r" or "\n" in the image cannot add a row


def test_history_format_escapes(rootless, hostile):
    assert_escaped(ok(rootless("history", "--no-trunc", "--format",
                               "{{.CreatedBy}} {{.Comment}}", hostile)))


def test_images_never_prints_a_name_with_escapes(rootless, tmp_path):
    """An archive may name its image anything; a name that is no reference is refused
    or shown escaped, never printed raw."""
    from test_image_load import Image, docker_archive
    from test_layer_unpack import entry, tar_bytes

    image = Image([tar_bytes(entry("f", data=b"x"))])
    path = docker_archive(tmp_path / "d.tar", [(image, [f"evil{ESC}:1"])])
    result = rootless("load", "-i", str(path))
    out = result.stdout + result.stderr + ok(rootless("images", "-a"))
    assert "\x1b" not in out and "\x07" not in out


def test_inspect_format_escapes(rootless, hostile):
    assert_escaped(ok(rootless("image", "inspect", "--format", "{{.Config.Cmd}}", hostile)))


def test_inspect_json_escapes(rootless, hostile):
    out = ok(rootless("image", "inspect", hostile))
    assert "\x1b" not in out and "\\u001b" in out


def test_template_newlines_and_tabs_of_the_format_itself_stay(rootless, hostile):
    out = ok(rootless("images", "--format", '{{.Repository}}{{"\\t"}}{{.Tag}}'))
    assert out.strip() == "evil\t1"
