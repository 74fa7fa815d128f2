"""`rootless image history IMAGE` and the `rootless history` shortcut: the config's
history newest first, each step with the size of the layer it made."""

from __future__ import annotations

import json

import pytest
from helpers import assert_error, ok

LONG = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / "
HISTORY = [
    {"created": "2024-01-01T00:00:00Z", "created_by": LONG, "comment": "base"},
    {"created": "2024-01-02T00:00:00Z", "created_by": "/bin/sh -c #(nop)  ENV A=1",
     "empty_layer": True},
    {"created": "2024-01-03T00:00:00Z", "created_by": "/bin/sh -c echo\thi > /etc/hi"},
    {"created": "2024-01-04T00:00:00Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
     "empty_layer": True},
]


@pytest.fixture(autouse=True)
def utc(rootless_env):
    """Times print in local time, as Go's do; the tests read them in UTC."""
    rootless_env["TZ"] = "UTC"


@pytest.fixture
def layered(rootless, tmp_path):
    """app:1, two layers of 1000 and 20000 bytes of files, four history steps."""
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    layers = [tar_bytes(entry("a", data=b"a" * 1000)), tar_bytes(entry("b", data=b"b" * 20000))]
    path = oci_archive(tmp_path / "app.tar", [(Image(layers, history=HISTORY),
                                               {"org.opencontainers.image.ref.name": "app:1"})])
    ok(rootless("load", "-i", str(path)))
    return "app:1"


def image_id(rootless, name: str) -> str:
    return json.loads(ok(rootless("image", "inspect", name)))[0]["Id"]


def test_history_table_newest_first(rootless, layered):
    lines = ok(rootless("image", "history", layered)).splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(lines) == 5
    assert lines[1].split()[0] == image_id(rootless, layered)[7:19]
    assert [line.split()[0] for line in lines[2:]] == ["<missing>"] * 3
    assert "CMD" in lines[1] and "ENV A=1" in lines[3] and "ADD file" in lines[4]
    assert "ago" in lines[1]


def test_sizes_belong_to_the_non_empty_steps(rootless, layered):
    sizes = ok(rootless("history", "--format", "{{.Size}}", layered)).split()
    assert sizes == ["0B", "20kB", "0B", "1kB"]


def test_human_false_gives_bytes_and_rfc3339_times(rootless, layered):
    lines = ok(rootless("history", "-H=false", layered)).splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "CREATED", "AT"]
    assert lines[1].split()[1] == "2024-01-04T00:00:00Z"
    rows = ok(rootless("history", "--human=false", "--format", "{{.CreatedSince}} {{.Size}}",
                       layered)).splitlines()
    assert rows == ["2024-01-04T00:00:00Z 0", "2024-01-03T00:00:00Z 20000",
                    "2024-01-02T00:00:00Z 0", "2024-01-01T00:00:00Z 1000"]


def test_rfc3339_times_are_local_with_their_offset(rootless, rootless_env, layered):
    rootless_env["TZ"] = "CET-1"  # POSIX form: one hour east of UTC, no tz database
    rows = ok(rootless("history", "--format", "{{.CreatedAt}}", layered)).splitlines()
    assert rows[0] == "2024-01-04T01:00:00+01:00"


def test_human_flag_alone_before_the_image(rootless, layered):
    assert "ago" in ok(rootless("history", "-H", layered)).splitlines()[1]


def test_created_by_truncated_to_45_with_ellipsis(rootless, layered):
    rows = ok(rootless("history", "--format", "{{.CreatedBy}}", layered)).splitlines()
    assert rows[3] == LONG[:44] + "…"
    assert rows[1] == "/bin/sh -c echo hi > /etc/hi"  # a tab shown as a space


def test_no_trunc_shows_full_ids_and_commands(rootless, layered):
    rows = ok(rootless("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}",
                       layered)).splitlines()
    assert rows[0].split("|")[0] == image_id(rootless, layered)
    assert rows[3] == f"<missing>|{LONG}"


def test_comment_column(rootless, layered):
    rows = ok(rootless("history", "--format", "{{.Comment}}", layered)).splitlines()
    assert rows == ["", "", "", "base"]


def test_quiet_prints_the_ids(rootless, layered):
    short = image_id(rootless, layered)[7:19]
    assert ok(rootless("history", "-q", layered)).split() == [short] + ["<missing>"] * 3


def test_format_table_and_json(rootless, layered):
    lines = ok(rootless("history", "--format", "table {{.ID}}\t{{.CreatedAt}}",
                        layered)).splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "AT"]
    assert lines[4].split() == ["<missing>", "2024-01-01T00:00:00Z"]
    first = json.loads(ok(rootless("history", "--format", "json", layered)).splitlines()[0])
    assert first["Size"] == "0B" and first["Comment"] == ""


def test_history_by_id(rootless, layered):
    full = image_id(rootless, layered)
    assert len(ok(rootless("history", "-q", full[7:19])).split()) == 4


def test_image_without_history_shows_one_row_per_layer(rootless, tmp_path):
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    layers = [tar_bytes(entry("a", data=b"a" * 10)), tar_bytes(entry("b", data=b"b" * 30))]
    path = oci_archive(tmp_path / "bare.tar", [(Image(layers),
                                                {"org.opencontainers.image.ref.name": "bare:1"})])
    ok(rootless("load", "-i", str(path)))
    rows = ok(rootless("history", "--format", "{{.Size}} {{.CreatedAt}}", "bare:1"))
    assert rows.splitlines() == ["30B 2024-01-01T00:00:00Z", "10B 2024-01-01T00:00:00Z"]


def test_busybox_history(rootless, busybox):
    out = ok(rootless("image", "history", "--format", "{{.CreatedBy}}", busybox))
    assert out == "scripts/make-image\n"


def test_history_of_unknown_image_fails(rootless):
    assert_error(rootless("history", "nothere"), 1, "no such image: nothere")


def test_history_without_image_is_a_usage_error(rootless):
    assert_error(rootless("history"), 125, "requires exactly 1 argument")


def test_bad_human_value_is_a_usage_error(rootless, layered):
    assert_error(rootless("history", "--human=maybe", layered), 125, "-H/--human")


def test_history_with_more_layer_steps_than_layers_fails(rootless, tmp_path):
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    layers = [tar_bytes(entry("a", data=b"a"))]
    history = [{"created_by": "one"}, {"created_by": "two"}]
    path = oci_archive(tmp_path / "odd.tar", [(Image(layers, history=history),
                                               {"org.opencontainers.image.ref.name": "odd:1"})])
    ok(rootless("load", "-i", str(path)))
    assert_error(rootless("history", "odd:1"), 1, "odd:1", "history")
