"""`rootless image ls` / `rootless images`: docker's columns, --digests, --no-trunc,
-a, repeated -f/--filter (dangling, reference, before, since, label, until) and
--format with docker's field names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_error, load_one_layer_image, ok


@pytest.fixture(autouse=True)
def utc(rootless_env):
    rootless_env["TZ"] = "UTC"


@pytest.fixture
def make(rootless, tmp_path):
    """make(name, created, labels=None) loads a one-layer image of its own content."""
    def load(name: str, created: str, labels: dict | None = None) -> str:
        return load_one_layer_image(rootless, tmp_path, name, name.encode(), created, labels)

    return load


@pytest.fixture
def three(make):
    """old:1 (2023), mid:1 (2024, label tier=web), new:1 (2025, label tier=db)."""
    return {"old": make("old:1", "2023-01-01T00:00:00Z"),
            "mid": make("mid:1", "2024-01-01T00:00:00Z", {"tier": "web"}),
            "new": make("new:1", "2025-01-01T00:00:00Z", {"tier": "db", "x": ""})}


def repos(rootless, *args: str) -> list[str]:
    return ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}", *args)).split()


def add_row(rootless_env, sql: str, *params) -> None:
    from rootless.store import Store

    store = Store.open(Path(rootless_env["ROOTLESS_ROOT"]))
    with store.db:
        store.db.execute(sql, params)
    store.close()


def test_default_columns(rootless, busybox):
    header, row = ok(rootless("image", "ls")).splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert header.index("TAG") == row.index("latest")  # columns aligned
    assert row.split()[:2] == ["busybox", "latest"] and row.endswith("MB")


def test_newest_first(rootless, three):
    assert repos(rootless) == ["new:1", "mid:1", "old:1"]


def test_all_is_the_same_list(rootless, three):
    assert ok(rootless("images", "-a")) == ok(rootless("images"))


def test_no_trunc_shows_full_ids(rootless, three):
    lines = ok(rootless("images", "--no-trunc")).splitlines()
    assert lines[1].split()[2] == three["new"]


def test_quiet_prints_each_image_once(rootless, busybox):
    ok(rootless("tag", "busybox", "two"))
    assert len(ok(rootless("images", "-q")).split()) == 1


def test_digests_column_none_without_a_repo_digest(rootless, busybox):
    header, row = ok(rootless("images", "--digests")).splitlines()
    assert header.split()[:4] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE"]
    assert row.split()[2] == "<none>"


def test_digests_adds_a_digest_column_to_a_custom_table(rootless, busybox):
    header, row = ok(rootless("images", "--digests", "--format",
                              "table {{.Repository}}\t{{.Tag}}")).splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "DIGEST"]
    assert row.split() == ["busybox", "latest", "<none>"]
    plain = ok(rootless("images", "--digests", "--format", "{{.Repository}}")).splitlines()
    assert plain == ["busybox"]  # not a table: left as written


def test_digests_column_shows_the_repositorys_digest(rootless, busybox, rootless_env):
    image = json.loads(ok(rootless("image", "inspect", "busybox")))[0]["Id"]
    digest = "sha256:" + "d" * 64
    add_row(rootless_env, "INSERT INTO digests (name, image_id) VALUES (?, ?)",
            f"docker.io/library/busybox@{digest}", image)
    ok(rootless("tag", "busybox", "other:1"))
    rows = ok(rootless("images", "--digests", "--format",
                       "{{.Repository}} {{.Tag}} {{.Digest}}")).splitlines()
    assert sorted(rows) == [f"busybox latest {digest}", "other 1 <none>"]


def test_digest_only_image_is_listed_with_tag_none(rootless, busybox, rootless_env):
    image = json.loads(ok(rootless("image", "inspect", "busybox")))[0]["Id"]
    digest = "sha256:" + "e" * 64
    add_row(rootless_env, "INSERT INTO digests (name, image_id) VALUES (?, ?)",
            f"example.com/app@{digest}", image)
    ok(rootless("rmi", "busybox"))
    assert repos(rootless) == ["example.com/app:<none>"]
    assert ok(rootless("images", "--digests", "--format", "{{.Digest}}")).strip() == digest


def test_filter_dangling(rootless, three):
    ok(rootless("tag", "mid:1", "old:1"))  # old's only name moves away
    assert ok(rootless("images", "-q", "--no-trunc", "-f", "dangling=true")).split() == \
        [three["old"]]
    assert "<none>:<none>" not in repos(rootless, "--filter", "dangling=false")
    assert "<none>:<none>" in repos(rootless)


def test_filter_reference_glob(rootless, three):
    assert repos(rootless, "-f", "reference=mi*") == ["mid:1"]
    assert repos(rootless, "-f", "reference=*:1") == ["new:1", "mid:1", "old:1"]
    assert repos(rootless, "-f", "reference=old", "-f", "reference=new") == ["new:1", "old:1"]
    assert repos(rootless, "-f", "reference=[mn]*") == ["new:1", "mid:1"]


def test_filter_reference_star_stops_at_slash(rootless, busybox):
    ok(rootless("tag", "busybox", "user/app:1"))
    assert repos(rootless, "-f", "reference=*") == ["busybox:latest"]
    assert repos(rootless, "-f", "reference=*/*") == ["user/app:1"]


def test_filter_reference_keeps_only_matching_tags(rootless, busybox):
    ok(rootless("tag", "busybox", "busybox:2"))
    assert repos(rootless, "-f", "reference=busybox:2") == ["busybox:2"]


def test_filter_before_and_since(rootless, three):
    assert repos(rootless, "-f", "before=mid:1") == ["old:1"]
    assert repos(rootless, "-f", "since=mid:1") == ["new:1"]
    assert repos(rootless, "-f", "since=old:1", "-f", "before=new:1") == ["mid:1"]
    assert repos(rootless, "-f", f"before={three['new'][7:19]}") == ["mid:1", "old:1"]


def test_filter_label(rootless, three):
    assert repos(rootless, "-f", "label=tier") == ["new:1", "mid:1"]
    assert repos(rootless, "-f", "label=tier=web") == ["mid:1"]
    assert repos(rootless, "-f", "label=tier", "-f", "label=x") == ["new:1"]
    assert repos(rootless, "-f", "label=nope") == []


def test_filter_until(rootless, three):
    assert repos(rootless, "-f", "until=2024-06-01") == ["mid:1", "old:1"]
    assert repos(rootless, "-f", "until=1h") == ["new:1", "mid:1", "old:1"]


def test_positional_reference_still_filters(rootless, three):
    assert repos(rootless, "mid") == ["mid:1"]
    assert repos(rootless, "mid:2") == []


def test_format_fields(rootless, busybox):
    out = ok(rootless("images", "--format",
                      "{{.ID}}|{{.Repository}}|{{.Tag}}|{{.Digest}}|{{.CreatedSince}}|"
                      "{{.CreatedAt}}|{{.Size}}|{{.Containers}}"))
    image_id, repo, tag, digest, since, at, size, containers = out.strip().split("|")
    assert len(image_id) == 12 and (repo, tag, digest) == ("busybox", "latest", "<none>")
    assert since.endswith(" ago") and at == "2024-01-01 00:00:00 +0000 UTC"
    assert size.endswith("MB") and containers == "0"


def test_format_table_and_json(rootless, busybox):
    header, _ = ok(rootless("images", "--format", "table {{.Repository}}\t{{.ID}}"))\
        .splitlines()
    assert header.split() == ["REPOSITORY", "IMAGE", "ID"]
    data = json.loads(ok(rootless("images", "--format", "json")))
    assert data["Repository"] == "busybox" and data["Tag"] == "latest"


def test_containers_field_counts_containers(rootless, busybox, rootless_env):
    image = json.loads(ok(rootless("image", "inspect", "busybox")))[0]["Id"]
    add_row(rootless_env, "INSERT INTO containers (id, name, image_id, state) VALUES "
            "(?, 'c1', ?, 'exited')", "c" * 64, image)
    assert ok(rootless("images", "--format", "{{.Containers}}")).strip() == "1"


def test_unknown_filter_fails(rootless, busybox):
    assert_error(rootless("images", "-f", "color=red"), 1, "invalid filter 'color'")


def test_filter_without_value_is_a_usage_error(rootless, busybox):
    assert_error(rootless("images", "-f", "dangling"), 125, "bad format of filter")


def test_bad_dangling_value_fails(rootless, busybox):
    assert_error(rootless("images", "-f", "dangling=maybe"), 1, "invalid filter")


def test_bad_reference_pattern_fails(rootless, busybox):
    assert_error(rootless("images", "-f", "reference=[a"), 1, "syntax error in pattern")


def test_before_unknown_image_fails(rootless, busybox):
    assert_error(rootless("images", "-f", "before=nothere"), 1, "no such image: nothere")


def test_bad_until_fails(rootless, busybox):
    assert_error(rootless("images", "-f", "until=soon"), 1, "invalid filter 'until=soon'")


def test_bad_format_template_fails(rootless, busybox):
    result = rootless("images", "--format", "{{.ID")
    assert result.returncode != 0 and "Traceback" not in result.stderr
