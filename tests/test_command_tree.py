"""docker's command tree: every verb under its management group (`container ls`, `image
rm`) and, where the docker CLI has one, at the top level (`ps`, `rmi`), the same command
either way: the same flags, the same help, the same output. Docker's own documentation
and the material our users learn from write `docker container ls -a -f name=...`.

NOT_YET names the verbs of docker's tree that do not exist here yet; the walk checks
that each of them is still "no such command" in every spelling, so the list stays
honest: when a verb lands, its test fails until it is taken off the list.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import Rootless, assert_error, ok

# docker's tree (docker CLI 24, `docker container --help` etc.): each verb by its group
# spelling -> its top-level spelling, None where docker has none (the top-level
# `inspect` is its own command: it takes --type and looks for containers and images).
CONTAINER = {
    "attach": "attach", "commit": "commit", "cp": "cp", "create": "create",
    "diff": "diff", "exec": "exec", "export": "export", "inspect": None, "kill": "kill",
    "logs": "logs", "ls": "ps", "pause": "pause", "port": "port", "prune": None,
    "rename": "rename", "restart": "restart", "rm": "rm", "run": "run", "start": "start",
    "stats": "stats", "stop": "stop", "top": "top", "unpause": "unpause",
    "update": "update", "wait": "wait",
}
IMAGE = {
    "build": "build", "history": "history", "import": "import", "inspect": None,
    "load": "load", "ls": "images", "prune": None, "pull": "pull", "push": "push",
    "rm": "rmi", "save": "save", "tag": "tag",
}
VOLUME = {"create": None, "inspect": None, "ls": None, "prune": None, "rm": None}
NETWORK = {"connect": None, "create": None, "disconnect": None, "inspect": None,
           "ls": None, "prune": None, "rm": None}
SYSTEM = {"df": None, "events": "events", "info": "info", "prune": None}
TREE = {"container": CONTAINER, "image": IMAGE, "volume": VOLUME, "network": NETWORK,
        "system": SYSTEM}
TOP_LEVEL_ONLY = ("inspect", "login", "logout", "search", "version")
# docker's other names of a verb (cobra Aliases, hidden from the group's help here too)
ALIASES = {
    "container list": "container ls", "container ps": "container ls",
    "container remove": "container rm", "image list": "image ls",
    "image remove": "image rm", "volume list": "volume ls", "volume remove": "volume rm",
    "network list": "network ls", "network remove": "network rm",
}

# Verbs of the tree above that do not exist yet, by group spelling. Take a verb off the
# list when it lands (in both spellings: the walk checks both).
NOT_YET = {
    # later: docker has them, no issue asks for them yet
    "container update", "system events",
}


def docker_verbs() -> list[str]:
    return [f"{group} {verb}" for group, verbs in TREE.items() for verb in verbs]


def spellings(verb: str) -> list[str]:
    """Every way docker spells `verb` (a group spelling): itself, its top-level name,
    its aliases."""
    group, name = verb.split()
    top = TREE[group][name]
    return [verb, *([top] if top else []),
            *(alias for alias, target in ALIASES.items() if target == verb)]


@pytest.fixture(scope="module")
def help_of(tmp_path_factory):
    """`rootless SPELLING --help` for every spelling of the tree, run once per module
    (four at a time: ~120 commands); SPELLING -> CompletedProcess."""
    env_dir = tmp_path_factory.mktemp("tree")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOTLESS_")}
    env.update(ROOTLESS_ROOT=str(env_dir / "store"), XDG_DATA_HOME=str(env_dir / "xdg"))
    runner = Rootless(env)
    every = [s for verb in docker_verbs() for s in spellings(verb)] + list(TOP_LEVEL_ONLY)
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda s: runner(*s.split(), "--help"), every)
        return dict(zip(every, results))


def _options_and_text(help_text: str) -> str:
    """A help page without its Usage line's command path (`rootless container ls`,
    `rootless ps`)."""
    return re.sub(r"^Usage: rootless( \S+)+? (?=\[|[A-Z])", "Usage: rootless VERB ", help_text,
                  count=1, flags=re.M)


def test_every_existing_docker_verb_answers_help_in_each_spelling(help_of):
    broken = [f"{s}: exit {help_of[s].returncode}: {help_of[s].stderr.strip()}"
              for verb in docker_verbs() if verb not in NOT_YET
              for s in spellings(verb)
              if help_of[s].returncode != 0 or "Usage:" not in help_of[s].stdout]
    broken += [f"{s}: exit {help_of[s].returncode}" for s in TOP_LEVEL_ONLY
               if help_of[s].returncode != 0]
    assert not broken, "\n".join(broken)


def test_every_spelling_of_a_verb_prints_the_same_help(help_of):
    """One function registered under each name: the same options, defaults and words."""
    differ = []
    for verb in docker_verbs():
        if verb in NOT_YET:
            continue
        first = _options_and_text(help_of[verb].stdout)
        differ += [f"{verb} / {s}" for s in spellings(verb)[1:]
                   if _options_and_text(help_of[s].stdout) != first]
    assert not differ, "help differs between spellings: " + ", ".join(differ)


def test_verbs_not_yet_written_are_still_no_such_command(help_of):
    """Keeps NOT_YET honest: a verb that has landed must be taken off it."""
    landed = [s for verb in sorted(NOT_YET) for s in spellings(verb)
              if help_of[s].returncode != 125 or "no such command" not in help_of[s].stderr]
    assert not landed, "these exist now, take them off NOT_YET: " + ", ".join(landed)


def test_aliases_answer_but_are_hidden_from_the_group_help(rootless, help_of):
    """As docker's `container --help`: one line per verb, the aliases not listed."""
    assert "Usage: rootless container list" in help_of["container list"].stdout
    out = ok(rootless("container", "--help"))
    assert re.search(r"^  ls ", out, re.M)
    assert not re.search(r"^  (list|remove) ", out, re.M)


@pytest.mark.container
def test_container_list_filters_as_ps_does(rootless, busybox):
    for name in ("web", "db"):
        ok(rootless("run", "--name", name, busybox, "true"))
    listed = ok(rootless("container", "list", "-a", "-f", "name=web", "--format",
                         "{{.Names}} {{.Status}}"))
    assert listed.split()[0] == "web" and "db" not in listed
    assert listed == ok(rootless("ps", "-a", "-f", "name=web", "--format",
                                 "{{.Names}} {{.Status}}"))


@pytest.mark.container
def test_container_remove_removes_as_rm_does(rootless, busybox):
    ok(rootless("run", "--name", "gone", busybox, "true"))
    assert ok(rootless("container", "remove", "gone")).strip() == "gone"
    assert_error(rootless("container", "inspect", "gone"), 1, "no such container")


def test_image_list_prints_what_images_prints(rootless, busybox):
    listed = ok(rootless("image", "list"))
    assert "busybox" in listed
    assert listed == ok(rootless("images"))


def test_image_remove_untags_as_rmi_does(rootless, busybox):
    ok(rootless("tag", busybox, "other:1"))
    assert ok(rootless("image", "remove", "other:1")).strip() == "Untagged: other:1"
    assert "other" not in ok(rootless("images"))


def test_volume_list_and_remove_are_ls_and_rm(rootless):
    ok(rootless("volume", "create", "data"))
    assert ok(rootless("volume", "list", "-q")).split() == ["data"]
    assert ok(rootless("volume", "remove", "data")).strip() == "data"
    assert ok(rootless("volume", "ls", "-q")).split() == []
