"""`rootless system prune [-a] [-f] [--volumes] [--filter]`: docker's question listing
what will go, then stopped containers, (anonymous volumes,) dangling images or with -a
every unused image, each through its own prune command's routine, reported in docker's
sections."""

from __future__ import annotations

import time

import pytest
from helpers import assert_error, load_one_layer_image, ok

QUESTION = ("WARNING! This will remove:\n"
            "  - all stopped containers\n"
            "  - all networks not used by at least one container\n"
            "  - all dangling images\n"
            "  - unused build cache\n"
            "\n"
            "Are you sure you want to continue? [y/N] ")

pytestmark = pytest.mark.container


def stopped(rootless, image: str, *options: str) -> str:
    """A stopped container's full id."""
    ok(rootless("run", *options, image, "true"))
    return ok(rootless("ps", "-a", "-l", "-q", "--no-trunc")).strip()


def containers(rootless) -> list[str]:
    return ok(rootless("ps", "-a", "-q", "--no-trunc")).split()


def dangling(rootless, tmp_path) -> str:
    """An image without a name (its tag moved to busybox); returns its id."""
    image_id = load_one_layer_image(rootless, tmp_path, "app:1", b"x" * 1500)
    ok(rootless("tag", "busybox", "app:1"))
    return image_id


def test_system_prune_asks_docker_question(rootless, busybox):
    result = rootless("system", "prune", input="n\n")
    assert result.stdout == QUESTION


def test_system_prune_answer_no_removes_nothing(rootless, busybox):
    cid = stopped(rootless, busybox)
    assert_error(rootless("system", "prune", input="n\n"), 1,
                 "system prune has been cancelled")
    assert containers(rootless) == [cid]


def test_system_prune_question_lists_every_unused_image_with_all(rootless):
    out = rootless("system", "prune", "-a", input="\n").stdout
    assert "  - all images without at least one container associated to them\n" \
           "  - all build cache\n" in out


def test_system_prune_question_lists_volumes_with_volumes(rootless):
    out = rootless("system", "prune", "--volumes", input="\n").stdout
    assert "  - all networks not used by at least one container\n" \
           "  - all anonymous volumes not used by at least one container\n" in out


def test_system_prune_question_lists_the_filters(rootless):
    out = rootless("system", "prune", "--filter", "label=a=b", input="\n").stdout
    assert out.endswith("  - unused build cache\n\n"
                        "  Items to be pruned will be filtered with:\n"
                        "  - label=a=b\n\n"
                        "Are you sure you want to continue? [y/N] ")


def test_system_prune_yes_removes_stopped_containers(rootless, busybox):
    cid = stopped(rootless, busybox)
    out = ok(rootless("system", "prune", input="y\n"))
    assert out.startswith(QUESTION + "Deleted Containers:\n" + cid + "\n\n")
    assert containers(rootless) == []


def test_system_prune_keeps_a_running_container(rootless, busybox):
    rootless.popen("run", busybox, "sleep", "60")
    deadline = time.monotonic() + 30
    while not ok(rootless("ps", "-q")).strip():
        assert time.monotonic() < deadline, "the container did not start"
        time.sleep(0.1)
    running = containers(rootless)
    out = ok(rootless("system", "prune", "-f"))
    assert "Deleted Containers" not in out
    assert containers(rootless) == running


def test_system_prune_removes_dangling_images_and_keeps_tagged_ones(rootless, busybox,
                                                                    tmp_path):
    kept = ok(rootless("images", "-q", "--no-trunc")).split()
    old = dangling(rootless, tmp_path)
    out = ok(rootless("system", "prune", "-f"))
    assert f"Deleted Images:\ndeleted: {old}\n" in out
    assert ok(rootless("images", "-q", "--no-trunc")).split() == kept


def test_system_prune_all_removes_images_freed_by_the_containers_it_removes(rootless,
                                                                           busybox):
    cid = stopped(rootless, busybox)
    out = ok(rootless("system", "prune", "-a", "-f"))
    lines = out.splitlines()
    assert lines[:3] == ["Deleted Containers:", cid, ""]
    assert lines[3:5] == ["Deleted Images:", "untagged: busybox:latest"]
    assert any(line.startswith("deleted: sha256:") for line in lines)
    assert lines[-1].startswith("Total reclaimed space: ") and lines[-1] != \
        "Total reclaimed space: 0B"
    assert ok(rootless("images", "-q")) == ""


def test_system_prune_with_nothing_to_remove_reclaims_zero(rootless, busybox):
    assert ok(rootless("system", "prune", "-f")) == "Total reclaimed space: 0B\n"


def test_system_prune_label_filter_spares_other_containers(rootless, busybox):
    kept = stopped(rootless, busybox, "--label", "keep=1")
    gone = stopped(rootless, busybox, "--label", "tmp=1")
    out = ok(rootless("system", "prune", "-f", "--filter", "label=tmp"))
    assert f"Deleted Containers:\n{gone}\n" in out
    assert containers(rootless) == [kept]


def test_system_prune_bad_filter_fails_before_the_question(rootless, busybox):
    cid = stopped(rootless, busybox)
    result = rootless("system", "prune", "--filter", "dangling=true", input="y\n")
    assert "WARNING" not in result.stdout
    assert result.returncode != 0 and "dangling" in result.stderr
    assert containers(rootless) == [cid]


def test_system_prune_volumes_refuses_the_until_filter(rootless):
    assert_error(rootless("system", "prune", "-f", "--volumes", "--filter", "until=1h"),
                 125, 'the "until" filter is not supported with "--volumes"')


def volumes(rootless) -> list[str]:
    return ok(rootless("volume", "ls", "-q")).split()


def test_system_prune_volumes_removes_anonymous_volumes_its_containers_freed(rootless,
                                                                            busybox):
    ok(rootless("volume", "create", "named"))
    cid = stopped(rootless, busybox, "-v", "/data")
    [anonymous] = [v for v in volumes(rootless) if v != "named"]
    out = ok(rootless("system", "prune", "-f", "--volumes"))
    assert out.startswith(f"Deleted Containers:\n{cid}\n\n"
                          f"Deleted Volumes:\n{anonymous}\n\n")
    assert volumes(rootless) == ["named"]


def test_system_prune_without_volumes_keeps_anonymous_volumes(rootless, busybox):
    stopped(rootless, busybox, "-v", "/data")
    before = volumes(rootless)
    out = ok(rootless("system", "prune", "-f"))
    assert "Deleted Containers:" in out and "Deleted Volumes:" not in out
    assert volumes(rootless) == before and len(before) == 1
