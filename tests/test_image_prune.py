"""`rootless image prune [-a] [-f] [--filter ...]`: dangling images (or, with -a, every
image no container uses) removed through rmi's own steps, reported as docker does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_error, load_one_layer_image, ok

WARNING = ("WARNING! This will remove all dangling images.\n"
           "Are you sure you want to continue? [y/N] ")
WARNING_ALL = ("WARNING! This will remove all images without at least one container "
               "associated to them.\nAre you sure you want to continue? [y/N] ")


@pytest.fixture
def make(rootless, tmp_path):
    """make(name, size, created=..., labels=None, extra=b"") loads a one-layer image whose
    file is `size` bytes; returns its id."""
    def load(name: str, size: int, created: str = "2024-01-01T00:00:00Z",
             labels: dict | None = None) -> str:
        return load_one_layer_image(rootless, tmp_path, name, b"x" * size, created, labels,
                                    file=name.replace(":", "_"))

    return load


def ids(rootless) -> set[str]:
    return set(ok(rootless("images", "-q", "--no-trunc")).split())


def dangle(rootless, name: str) -> None:
    """Leave the image `name` without a name by moving its tag to busybox."""
    ok(rootless("tag", "busybox", name))


def add_container(rootless_env, image_id: str) -> None:
    from rootless.store import Store

    store = Store.open(Path(rootless_env["ROOTLESS_ROOT"]))
    with store.db:
        store.db.execute("INSERT INTO containers (id, name, image_id, state) VALUES "
                         "(?, ?, ?, 'exited')", (image_id[7:], "c" + image_id[7:13],
                                                 image_id))
    store.close()


def test_nothing_to_prune(rootless, busybox):
    assert ok(rootless("image", "prune", "-f")) == "Total reclaimed space: 0B\n"
    assert len(ids(rootless)) == 1


def test_prune_removes_dangling_images_and_their_layers(rootless, busybox, make):
    old = make("app:1", 1500)
    dangle(rootless, "app:1")
    out = ok(rootless("image", "prune", "-f"))
    lines = out.splitlines()
    assert lines[0] == "Deleted Images:"
    assert lines[1] == f"deleted: {old}"
    assert lines[2].startswith("deleted: sha256:") and len(lines) == 5
    assert lines[3] == ""
    assert lines[4] == "Total reclaimed space: 1.5kB"
    assert old not in ids(rootless) and len(ids(rootless)) == 1


def test_prune_keeps_tagged_images(rootless, busybox, make):
    make("app:1", 10)
    assert ok(rootless("image", "prune", "-f")) == "Total reclaimed space: 0B\n"
    assert len(ids(rootless)) == 2


def test_prune_keeps_a_dangling_image_a_container_uses(rootless, busybox, make,
                                                       rootless_env):
    old = make("app:1", 10)
    add_container(rootless_env, old)
    dangle(rootless, "app:1")
    assert ok(rootless("image", "prune", "-f")) == "Total reclaimed space: 0B\n"
    assert old in ids(rootless)


def test_shared_layer_stays_and_is_not_reclaimed(rootless, busybox, load_variant, store):
    [layer] = json.loads(ok(rootless("image", "inspect", "busybox")))[0]["RootFS"]["Layers"]
    assert layer  # a diff id; with one layer the chain id is the same
    load_variant("variant", "--env", "V=1")  # same layer as busybox, other config
    dangle(rootless, "variant")
    lines = ok(rootless("image", "prune", "-f")).splitlines()
    assert lines[1].startswith("deleted: sha256:") and lines[2] == ""
    assert lines[3] == "Total reclaimed space: 0B"
    assert (store / "layers" / layer[7:]).is_dir()


def test_answer_yes_prunes(rootless, busybox, make):
    old = make("app:1", 10)
    dangle(rootless, "app:1")
    out = ok(rootless("image", "prune", input="y\n"))
    assert out.startswith(WARNING + "Deleted Images:\n")
    assert old not in ids(rootless)


def test_answer_no_cancels(rootless, busybox, make):
    old = make("app:1", 10)
    dangle(rootless, "app:1")
    result = rootless("image", "prune", input="n\n")
    assert_error(result, 1, "image prune has been cancelled")
    assert result.stdout == WARNING
    assert old in ids(rootless)


def test_no_answer_without_force_cancels(rootless, busybox, make):
    old = make("app:1", 10)
    dangle(rootless, "app:1")
    assert_error(rootless("image", "prune"), 1, "cancelled")  # stdin is /dev/null
    assert old in ids(rootless)


def test_all_removes_every_unused_image(rootless, busybox, make, rootless_env):
    used = make("used:1", 10)
    add_container(rootless_env, used)
    busybox_id = ids(rootless) - {used}
    out = ok(rootless("image", "prune", "-a", "-f"))
    assert "untagged: busybox:latest\n" in out
    assert f"deleted: {busybox_id.pop()}\n" in out
    assert ids(rootless) == {used}
    assert ok(rootless("images", "--format", "{{.Repository}}")) == "used\n"


def test_all_asks_its_own_question(rootless, busybox):
    result = rootless("image", "prune", "-a", input="N\n")
    assert result.returncode == 1 and result.stdout == WARNING_ALL
    assert len(ids(rootless)) == 1


def test_filter_until(rootless, make):
    make("old:1", 10, created="2023-01-01T00:00:00Z")
    new = make("new:1", 10, created="2025-01-01T00:00:00Z")
    out = ok(rootless("image", "prune", "-a", "-f", "--filter", "until=2024-01-01T00:00:00Z"))
    assert "untagged: old:1" in out and "new:1" not in out
    assert ids(rootless) == {new}


def test_filter_label(rootless, make):
    keep = make("keep:1", 10, labels={"keep": "yes"})
    make("drop:1", 10, labels={"keep": "no"})
    make("plain:1", 10)
    ok(rootless("image", "prune", "-a", "-f", "--filter", "label=keep=no"))
    assert len(ids(rootless)) == 2
    ok(rootless("image", "prune", "-a", "-f", "--filter", "label!=keep"))
    assert ids(rootless) == {keep}


def test_unknown_filter_fails_before_asking(rootless, busybox):
    result = rootless("image", "prune", "--filter", "dangling=false")
    assert_error(result, 1, "invalid filter 'dangling'")
    assert result.stdout == ""


def test_bad_until_fails(rootless, busybox):
    assert_error(rootless("image", "prune", "-f", "--filter", "until=later"), 1,
                 "invalid filter 'until=later'")
    assert len(ids(rootless)) == 1


def test_pruned_image_is_gone_from_disk(rootless, busybox, make, store):
    make("app:1", 10)
    layers_before = [p for p in (store / "layers").iterdir() if p.is_dir()]
    dangle(rootless, "app:1")
    ok(rootless("image", "prune", "-f"))
    assert len([p for p in (store / "layers").iterdir() if p.is_dir()]) == \
        len(layers_before) - 1
    assert json.loads(ok(rootless("image", "inspect", "busybox")))[0]["RepoTags"] == \
        ["app:1", "busybox:latest"]
