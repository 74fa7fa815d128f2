"""Container names (docker's rule), `rename`, `--label`/`--label-file`, `--cidfile` and
`container prune`: docker's messages and exit codes, through the real CLI as the
unprivileged user running pytest.
"""

from __future__ import annotations

import json
import os

import pytest
from helpers import assert_error, ok

pytestmark = pytest.mark.container

INVALID = "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"


def names(rootless) -> list[str]:
    return ok(rootless("ps", "-a", "--format", "{{.Names}}")).split()


def inspect(rootless, ref: str) -> dict:
    return json.loads(ok(rootless("inspect", ref)))[0]


# ---- the name rule ----

@pytest.mark.parametrize("name", ["bad name!", "a", "-web", ".web", "_web", "wéb", "a/b",
                                  ""])
def test_a_name_outside_dockers_rule_is_refused_and_leaves_no_container(rootless, busybox,
                                                                       name):
    result = rootless("run", "--name", name, busybox, "true")
    assert_error(result, 125, f"Invalid container name ({name}), {INVALID}")
    assert names(rootless) == []


@pytest.mark.parametrize("name", ["web", "w1", "My_Web-1.0", "0a"])
def test_a_name_inside_dockers_rule_is_kept(rootless, busybox, name):
    ok(rootless("run", "--name", name, busybox, "true"))
    assert names(rootless) == [name]


def test_a_leading_slash_is_dockers_spelling_of_the_same_name(rootless, busybox):
    ok(rootless("run", "--name", "/web", busybox, "true"))
    assert names(rootless) == ["web"]
    assert inspect(rootless, "web")["Name"] == "/web"


def test_a_taken_name_is_refused_with_dockers_conflict_message(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    full_id = ok(rootless("ps", "-a", "-q", "--no-trunc")).strip()
    result = rootless("run", "--name", "web", busybox, "true")
    assert_error(result, 125, f'Conflict. The container name "/web" is already in use by '
                 f'container "{full_id}". You have to remove (or rename) that container')
    assert names(rootless) == ["web"]


# ---- rename ----

def test_rename_by_name(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    assert ok(rootless("rename", "old", "new")) == ""
    assert names(rootless) == ["new"]


def test_rename_by_id_prefix_under_the_container_group(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    short = ok(rootless("ps", "-a", "-q")).strip()
    ok(rootless("container", "rename", short[:6], "new"))
    assert inspect(rootless, short)["Name"] == "/new"


def test_renamed_container_answers_to_the_new_name_only(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    ok(rootless("rename", "old", "new"))
    assert_error(rootless("container", "inspect", "old"), 1, "no such container: old")
    ok(rootless("inspect", "new"))


def test_rename_to_a_taken_name_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "a1", busybox, "true"))
    ok(rootless("run", "--name", "b1", busybox, "true"))
    owner = inspect(rootless, "b1")["Id"]
    assert_error(rootless("rename", "a1", "b1"), 1,
                 f'Conflict. The container name "/b1" is already in use by container '
                 f'"{owner}"')
    assert sorted(names(rootless)) == ["a1", "b1"]


def test_rename_to_an_invalid_name_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    assert_error(rootless("rename", "old", "bad name!"), 1,
                 f"Invalid container name (bad name!), {INVALID}")
    assert names(rootless) == ["old"]


def test_rename_to_the_same_name_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    assert_error(rootless("rename", "old", "old"), 1,
                 "Renaming a container with the same name as its current name")


def test_rename_of_no_such_container(rootless):
    assert_error(rootless("rename", "ghost", "new"), 1, "no such container: ghost")


def test_rename_to_an_empty_name_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    assert_error(rootless("rename", "old", ""), 1, "Neither old nor new names may be empty")


def test_a_reference_with_sql_wildcards_names_no_container(rootless, busybox):
    ok(rootless("run", "--name", "old", busybox, "true"))
    for ref in ("%", "_"):
        assert_error(rootless("rename", ref, "new"), 1, f"no such container: {ref}")
    assert names(rootless) == ["old"]


# ---- labels ----

def test_labels_are_kept_with_the_container(rootless, busybox):
    ok(rootless("run", "--name", "web", "--label", "tier=front", "-l", "solo", busybox,
                "true"))
    labels = inspect(rootless, "web")["Config"]["Labels"]
    assert labels == {"tier": "front", "solo": ""}


def test_labels_reach_the_oci_annotations(rootless, busybox, store):
    ok(rootless("run", "--name", "web", "--label", "tier=front", busybox, "true"))
    cid = inspect(rootless, "web")["Id"]
    spec = json.loads((store / "containers" / cid / "config.json").read_text())
    assert spec["annotations"]["tier"] == "front"


def test_a_label_must_not_become_a_runtime_annotation(rootless, busybox, store):
    ok(rootless("run", "--name", "web", "--label", "run.rootless.init=true",
                "--label", "run.oci.keep_original_groups=1", busybox, "sh", "-c",
                "echo $$"))
    cid = inspect(rootless, "web")["Id"]
    spec = json.loads((store / "containers" / cid / "config.json").read_text())
    assert "run.rootless.init" not in spec["annotations"]
    assert "run.oci.keep_original_groups" not in spec["annotations"]
    # still the container's labels, as docker keeps any label
    assert inspect(rootless, "web")["Config"]["Labels"]["run.rootless.init"] == "true"


def test_image_labels_are_the_containers_unless_overridden(rootless, tmp_path):
    from helpers import load_one_layer_image

    load_one_layer_image(rootless, tmp_path, "labelled:latest", b"x",
                         labels={"a": "image", "b": "image"})
    # the image holds no `true`: the run fails (127), the container is made all the same
    assert_error(rootless("run", "--name", "web", "--label", "b=flag", "labelled:latest",
                          "true"), 127, "true")
    labels = inspect(rootless, "web")["Config"]["Labels"]
    assert labels == {"a": "image", "b": "flag"}


def test_label_file_in_dockers_format(rootless, busybox, tmp_path):
    path = tmp_path / "labels"
    path.write_text("\ufeff# a comment\n\n   tier=front\nempty=\nbare\nx=a=b\n")
    ok(rootless("run", "--name", "web", "--label-file", str(path), "--label", "tier=back",
                busybox, "true"))
    assert inspect(rootless, "web")["Config"]["Labels"] == {
        "tier": "back", "empty": "", "bare": "", "x": "a=b"}


def test_a_label_file_key_with_whitespace_is_refused(rootless, busybox, tmp_path):
    path = tmp_path / "labels"
    path.write_text("my key=1\n")
    assert_error(rootless("run", "--name", "web", "--label-file", str(path), busybox,
                          "true"), 125, "variable 'my key' contains whitespaces")
    assert names(rootless) == []


def test_a_missing_label_file_is_refused(rootless, busybox, tmp_path):
    assert_error(rootless("run", "--label-file", str(tmp_path / "nope"), busybox, "true"),
                 125, "no such file or directory", str(tmp_path / "nope"))
    assert names(rootless) == []


def test_a_label_without_a_name_is_refused(rootless, busybox):
    assert_error(rootless("run", "--label", "=x", busybox, "true"), 125,
                 "invalid label '=x': empty name")
    assert names(rootless) == []


# ---- cidfile ----

def test_cidfile_gets_the_full_id(rootless, busybox, tmp_path):
    path = tmp_path / "cid"
    ok(rootless("run", "--name", "web", "--cidfile", str(path), busybox, "true"))
    assert path.read_text() == inspect(rootless, "web")["Id"]


def test_an_existing_cidfile_is_refused_and_left_alone(rootless, busybox, tmp_path):
    path = tmp_path / "cid"
    path.write_text("earlier")
    assert_error(rootless("run", "--cidfile", str(path), busybox, "true"), 125,
                 "container ID file found, make sure the other container isn't running "
                 f"or delete {path}")
    assert path.read_text() == "earlier"
    assert names(rootless) == []


def test_a_cidfile_must_not_be_written_through_a_symlink(rootless, busybox, tmp_path):
    target = tmp_path / "target"
    os.symlink(target, tmp_path / "cid")  # dangling: O_EXCL refuses it all the same
    assert_error(rootless("run", "--cidfile", str(tmp_path / "cid"), busybox, "true"), 125,
                 "container ID file found")
    assert not target.exists()


def test_a_cidfile_is_removed_when_no_container_is_made(rootless, busybox, tmp_path):
    path = tmp_path / "cid"
    assert_error(rootless("run", "--pull", "never", "--cidfile", str(path), "nosuchimage",
                          "true"), 125, "nosuchimage")
    assert not path.exists()


def test_a_cidfile_is_removed_when_the_name_is_taken(rootless, busybox, tmp_path):
    ok(rootless("run", "--name", "web", busybox, "true"))
    path = tmp_path / "cid"
    assert_error(rootless("run", "--name", "web", "--cidfile", str(path), busybox, "true"),
                 125, "Conflict.")
    assert not path.exists()


def test_an_unwritable_cidfile_is_refused_before_any_container(rootless, busybox, tmp_path):
    path = tmp_path / "no-dir" / "cid"
    assert_error(rootless("run", "--cidfile", str(path), busybox, "true"), 125,
                 "failed to create the container ID file")
    assert names(rootless) == []


# ---- container prune ----

def test_prune_removes_stopped_containers_and_lists_them(rootless, busybox):
    ok(rootless("run", "--name", "one", busybox, "true"))
    ok(rootless("run", "--name", "two", busybox, "sh", "-c", "echo hello > /f"))
    ids = ok(rootless("ps", "-a", "-q", "--no-trunc")).split()
    lines = ok(rootless("container", "prune", "-f")).splitlines()
    assert lines[0] == "Deleted Containers:"
    assert sorted(lines[1:3]) == sorted(ids)
    assert lines[3] == ""
    assert lines[4].startswith("Total reclaimed space: ")
    assert lines[4] != "Total reclaimed space: 0B"  # /f was written
    assert names(rootless) == []


def test_prune_with_nothing_to_prune(rootless):
    assert ok(rootless("container", "prune", "-f")) == "Total reclaimed space: 0B\n"


def test_prune_keeps_a_running_container(rootless, busybox):
    from helpers import read_until

    proc = rootless.popen("run", "--name", "up", busybox, "sh", "-c", "echo ready; sleep 60")
    read_until(proc.stdout, "ready")
    ok(rootless("run", "--name", "done", busybox, "true"))
    ok(rootless("container", "prune", "-f"))
    assert names(rootless) == ["up"]


def test_prune_asks_first_and_does_nothing_without_yes(rootless, busybox):
    ok(rootless("run", "--name", "one", busybox, "true"))
    result = rootless("container", "prune", input="n\n")
    assert_error(result, 1, "container prune has been cancelled")
    assert result.stdout.startswith("WARNING! This will remove all stopped containers.\n"
                                    "Are you sure you want to continue? [y/N] ")
    assert names(rootless) == ["one"]


def test_prune_answered_yes_prunes(rootless, busybox):
    ok(rootless("run", "--name", "one", busybox, "true"))
    out = ok(rootless("container", "prune", input="y\n"))
    assert "Deleted Containers:" in out
    assert names(rootless) == []


def test_prune_filter_label(rootless, busybox):
    ok(rootless("run", "--name", "keep", "-l", "keep=yes", busybox, "true"))
    ok(rootless("run", "--name", "drop", "-l", "keep=no", busybox, "true"))
    ok(rootless("container", "prune", "-f", "--filter", "label=keep=no"))
    assert names(rootless) == ["keep"]
    ok(rootless("container", "prune", "-f", "--filter", "label!=keep"))
    assert names(rootless) == ["keep"]


def test_prune_filter_until(rootless, busybox):
    ok(rootless("run", "--name", "new", busybox, "true"))
    ok(rootless("container", "prune", "-f", "--filter", "until=1h"))
    assert names(rootless) == ["new"]  # made less than an hour ago
    ok(rootless("container", "prune", "-f", "--filter", "until=0s"))
    assert names(rootless) == []


def test_prune_bad_filter_fails_before_the_question(rootless, busybox):
    ok(rootless("run", "--name", "one", busybox, "true"))
    assert_error(rootless("container", "prune", "--filter", "color=red", input="y\n"), 1,
                 "invalid filter 'color'")
    assert names(rootless) == ["one"]
