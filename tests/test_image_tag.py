"""`rootless image tag SOURCE TARGET` and the `rootless tag` shortcut, through the real
console script: names normalised as docker's, stored once, printed familiar."""

from __future__ import annotations

import json

from helpers import assert_error, ok


def names(rootless) -> list[tuple[str, str]]:
    rows = ok(rootless("images", "--format", "{{.Repository}} {{.Tag}}")).splitlines()
    return sorted(tuple(row.split()) for row in rows)


def image_id(rootless, name: str) -> str:
    return json.loads(ok(rootless("image", "inspect", name)))[0]["Id"]


def test_tag_adds_a_name_and_prints_nothing(rootless, busybox):
    assert ok(rootless("image", "tag", "busybox", "mine:1")) == ""
    assert image_id(rootless, "mine:1") == image_id(rootless, "busybox")
    assert names(rootless) == [("busybox", "latest"), ("mine", "1")]


def test_tag_shortcut(rootless, busybox):
    ok(rootless("tag", "busybox:latest", "other"))
    assert names(rootless) == [("busybox", "latest"), ("other", "latest")]


def test_target_is_normalised_like_docker(rootless, busybox):
    ok(rootless("tag", "busybox", "docker.io/library/alias"))
    ok(rootless("tag", "busybox", "index.docker.io/user/img:2"))
    ok(rootless("tag", "busybox", "localhost:5000/a/b:3"))
    assert names(rootless) == [("alias", "latest"), ("busybox", "latest"),
                               ("localhost:5000/a/b", "3"), ("user/img", "2")]
    tags = json.loads(ok(rootless("image", "inspect", "alias:latest")))[0]["RepoTags"]
    assert sorted(tags) == ["alias:latest", "busybox:latest", "localhost:5000/a/b:3",
                            "user/img:2"]


def test_source_by_id_and_id_prefix(rootless, busybox):
    full = image_id(rootless, "busybox")
    ok(rootless("tag", full, "byid:1"))
    ok(rootless("tag", full[7:19], "byprefix:1"))
    assert image_id(rootless, "byid:1") == image_id(rootless, "byprefix:1") == full


def test_retag_moves_the_name_and_leaves_the_old_image_dangling(rootless, busybox,
                                                                load_variant):
    load_variant("variant", "--env", "V=1")
    old = image_id(rootless, "variant")
    ok(rootless("tag", "busybox", "variant"))
    assert image_id(rootless, "variant") == image_id(rootless, "busybox")
    assert ("<none>", "<none>") in names(rootless)
    dangling = ok(rootless("images", "-q", "--no-trunc", "-f", "dangling=true")).split()
    assert dangling == [old]


def test_retag_keeps_the_old_images_other_names(rootless, busybox, load_variant):
    load_variant("variant", "--env", "V=1")
    ok(rootless("tag", "variant", "keep:1"))
    ok(rootless("tag", "busybox", "variant"))
    assert json.loads(ok(rootless("image", "inspect", "keep:1")))[0]["RepoTags"] == \
        ["keep:1"]


def test_tag_to_its_own_name_changes_nothing(rootless, busybox):
    ok(rootless("tag", "busybox", "busybox:latest"))
    assert names(rootless) == [("busybox", "latest")]


def test_tag_of_unknown_image_fails(rootless, busybox):
    assert_error(rootless("tag", "nothere", "x:1"), 1, "no such image: nothere")
    assert names(rootless) == [("busybox", "latest")]


def test_invalid_target_fails(rootless, busybox):
    assert_error(rootless("tag", "busybox", "Bad:Name"), 1, "invalid reference format")
    assert_error(rootless("tag", "busybox", "a b"), 1, "invalid reference format")
    assert names(rootless) == [("busybox", "latest")]


def test_digest_target_is_refused(rootless, busybox):
    target = "x@sha256:" + "a" * 64
    assert_error(rootless("tag", "busybox", target), 1,
                 "refusing to create a tag with a digest reference")
    assert names(rootless) == [("busybox", "latest")]


def test_tag_needs_two_arguments(rootless, busybox):
    result = rootless("tag", "busybox")
    assert result.returncode == 125 and "Traceback" not in result.stderr
