"""`ps` / `container ls`: -f filters with docker's semantics, -n, -l, -s, and the Labels,
Mounts and Size fields of --format, through the real CLI.
"""

from __future__ import annotations

import time

import pytest
from helpers import assert_error, ok, read_until

pytestmark = pytest.mark.container


def shown(rootless, *args: str) -> list[str]:
    """The names `ps ARGS` lists, in its order (newest first)."""
    return ok(rootless("ps", *args, "--format", "{{.Names}}")).split()


@pytest.fixture
def three(rootless, busybox):
    """first (exit 0, label tier=web), second (exit 3, labels tier=db, solo),
    third (exit 0), made in that order, a little apart so their order is sure."""
    ok(rootless("run", "--name", "first", "-l", "tier=web", busybox, "true"))
    time.sleep(0.01)
    result = rootless("run", "--name", "second", "-l", "tier=db", "-l", "solo", busybox,
                      "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    time.sleep(0.01)
    ok(rootless("run", "--name", "third", busybox, "true"))


@pytest.fixture
def running(rootless, busybox):
    """A container named `up` that runs until the test ends."""
    proc = rootless.popen("run", "--name", "up", busybox, "sh", "-c", "echo ready; sleep 60")
    read_until(proc.stdout, "ready")
    return proc


# ---- name, id ----

def test_filter_name_is_a_substring(rootless, three):
    assert shown(rootless, "-a", "-f", "name=ir") == ["third", "first"]


def test_filter_name_is_a_regular_expression(rootless, three):
    assert shown(rootless, "-a", "-f", "name=^/f") == ["first"]
    assert shown(rootless, "-a", "-f", "name=^sec.*d$") == ["second"]


def test_several_filters_of_one_key_or(rootless, three):
    assert shown(rootless, "-a", "-f", "name=first", "-f", "name=third") == ["third", "first"]


def test_filters_of_different_keys_and(rootless, three):
    assert shown(rootless, "-a", "-f", "name=ir", "-f", "exited=0") == ["third", "first"]
    assert shown(rootless, "-a", "-f", "name=ir", "-f", "label=tier=web") == ["first"]


def test_filter_name_that_is_not_a_valid_expression_matches_nothing(rootless, three):
    assert shown(rootless, "-a", "-f", "name=[") == []


def test_filter_id_by_prefix(rootless, three):
    full = ok(rootless("inspect", "--format", "{{.Id}}", "second")).strip()
    assert shown(rootless, "-a", "-f", f"id={full[:8]}") == ["second"]


# ---- status, exited, health ----

def test_filter_status_exited_shows_stopped_containers_without_a(rootless, three, running):
    assert shown(rootless, "-f", "status=exited") == ["third", "second", "first"]


def test_filter_status_running(rootless, three, running):
    assert shown(rootless, "-a", "-f", "status=running") == ["up"]


def test_filter_status_with_an_unknown_value_is_refused(rootless):
    assert_error(rootless("ps", "-f", "status=sleeping"), 1,
                 "invalid filter 'status=sleeping'")


def test_filter_exited_by_code(rootless, three):
    assert shown(rootless, "-a", "-f", "exited=3") == ["second"]
    assert shown(rootless, "-a", "-f", "exited=0") == ["third", "first"]


def test_filter_exited_must_not_match_a_running_container(rootless, running):
    assert shown(rootless, "-a", "-f", "exited=0") == []
    assert shown(rootless, "-a") == ["up"]  # it is there, only not exited


def test_filter_exited_with_a_non_number_is_refused(rootless):
    assert_error(rootless("ps", "-a", "-f", "exited=zero"), 1, "invalid filter 'exited=zero'")


def test_filter_health_none_matches_containers_without_a_healthcheck(rootless, three):
    assert shown(rootless, "-a", "-f", "health=none") == ["third", "second", "first"]
    assert shown(rootless, "-a", "-f", "health=healthy") == []


def test_filter_health_with_an_unknown_value_is_refused(rootless):
    assert_error(rootless("ps", "-f", "health=fine"), 1, "invalid filter 'health=fine'")


# ---- label, ancestor, volume ----

def test_filter_label_by_key(rootless, three):
    assert shown(rootless, "-a", "-f", "label=tier") == ["second", "first"]


def test_filter_label_by_key_and_value(rootless, three):
    assert shown(rootless, "-a", "-f", "label=tier=db") == ["second"]


def test_several_label_filters_must_all_match(rootless, three):
    assert shown(rootless, "-a", "-f", "label=tier", "-f", "label=solo") == ["second"]


def test_filter_ancestor_by_name_and_id(rootless, three, tmp_path):
    from helpers import load_one_layer_image

    other = load_one_layer_image(rootless, tmp_path, "other:latest", b"x")
    rootless("run", "--name", "fourth", "other:latest", "true")  # fails (no `true`), exists
    busybox_id = ok(rootless("image", "inspect", "--format", "{{.Id}}", "busybox")).strip()
    assert shown(rootless, "-a", "-f", "ancestor=other") == ["fourth"]
    assert shown(rootless, "-a", "-f", f"ancestor={other}") == ["fourth"]
    assert shown(rootless, "-a", "-f", f"ancestor={busybox_id[7:19]}") == [
        "third", "second", "first"]


def test_filter_ancestor_that_names_no_image_matches_nothing(rootless, three):
    assert shown(rootless, "-a", "-f", "ancestor=nosuchimage") == []


def test_filter_volume_by_source_or_destination(rootless, busybox, tmp_path):
    ok(rootless("run", "--name", "bound", "-v", f"{tmp_path}:/data", busybox, "true"))
    ok(rootless("run", "--name", "plain", busybox, "true"))
    assert shown(rootless, "-a", "-f", "volume=/data") == ["bound"]
    assert shown(rootless, "-a", "-f", f"volume={tmp_path}") == ["bound"]
    assert shown(rootless, "-a", "-f", "volume=/elsewhere") == []


# ---- before, since ----

def test_filter_before(rootless, three):
    assert shown(rootless, "-a", "-f", "before=third") == ["second", "first"]


def test_filter_since(rootless, three):
    assert shown(rootless, "-a", "-f", "since=first") == ["third", "second"]


def test_filter_before_of_no_such_container_is_refused(rootless, three):
    assert_error(rootless("ps", "-a", "-f", "before=ghost"), 1, "no such container: ghost")


def test_unknown_filter_is_refused(rootless):
    assert_error(rootless("ps", "-f", "colour=red"), 1, "invalid filter 'colour'")


def test_filter_without_equals_is_a_usage_error(rootless):
    assert_error(rootless("ps", "-f", "name"), 125, "bad format of filter")


# ---- -n, -l ----

def test_last_n_shows_the_newest_stopped_ones_too(rootless, three):
    assert shown(rootless, "-n", "2") == ["third", "second"]


def test_latest_shows_the_newest(rootless, three):
    assert shown(rootless, "-l") == ["third"]


def test_last_counts_only_containers_that_pass_the_filters(rootless, three):
    assert shown(rootless, "-n", "1", "-f", "label=tier") == ["second"]


def test_container_ls_takes_the_same_options(rootless, three):
    assert ok(rootless("container", "ls", "-l", "--format", "{{.Names}}")) == "third\n"


# ---- fields: Labels, Mounts, Size ----

def test_labels_field(rootless, three):
    assert ok(rootless("ps", "-a", "-f", "name=second", "--format", "{{.Labels}}")) == \
        "solo=,tier=db\n"


def test_mounts_field_names_the_bind_sources(rootless, busybox, tmp_path):
    ok(rootless("run", "--name", "bound", "-v", f"{tmp_path}:/data", busybox, "true"))
    out = ok(rootless("ps", "-a", "--no-trunc", "--format", "{{.Mounts}}"))
    assert out == f"{tmp_path}\n"


def test_size_column_with_s(rootless, busybox):
    ok(rootless("run", "--name", "sized", busybox, "sh", "-c", "printf ab > /two"))
    lines = ok(rootless("ps", "-a", "-s")).splitlines()
    assert lines[0].split()[-1] == "SIZE"
    assert lines[0].index("SIZE") > lines[0].index("NAMES")
    assert lines[1].endswith(")") and " 2B (virtual " in lines[1]


def test_size_field_in_a_template_without_s(rootless, busybox):
    ok(rootless("run", "--name", "sized", busybox, "sh", "-c", "printf ab > /two"))
    size = ok(rootless("ps", "-a", "--format", "{{.Size}}")).strip()
    assert size.startswith("2B (virtual ") and size.endswith("MB)"), size


def test_no_size_column_without_s(rootless, three):
    assert "SIZE" not in ok(rootless("ps", "-a")).splitlines()[0]
