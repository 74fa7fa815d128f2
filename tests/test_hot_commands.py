"""`ps`, `images`, `image inspect`, `inspect` and `container inspect` answer without
loading typer or click (cli/hot.py: ~45 ms of a ~75 ms command), and say exactly what
the typer front end says: the same lines, the same errors, the same exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import remove_containers
from helpers import ROOTLESS_BIN, Rootless, ok

HOT = [["ps", "-a"], ["container", "ls"], ["container", "list", "-q"], ["images"],
       ["image", "ls", "--digests"], ["image", "inspect", "busybox"],
       ["inspect", "busybox"], ["container", "inspect", "web"]]

# The typer front end, as cli/main.py runs it for every other command.
TYPER_PATH = ("import sys; from rootless.cli.main import guarded; "
              "from rootless.cli.app import invoke; "
              "sys.exit(guarded(lambda: invoke(sys.argv[1:])))")


@pytest.fixture(scope="module")
def store_env(tmp_path_factory, image_archives):
    """One store for the module: busybox (also tagged other:1) and two exited
    containers, web (label tier=front) and db."""
    where = tmp_path_factory.mktemp("hot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOTLESS_")}
    env.update(ROOTLESS_ROOT=str(where / "store"), XDG_DATA_HOME=str(where / "xdg"))
    if not os.access(env.get("XDG_RUNTIME_DIR") or "/nonexistent", os.W_OK):
        env["XDG_RUNTIME_DIR"] = str(where / "run")
        os.mkdir(env["XDG_RUNTIME_DIR"], 0o700)
    runner = Rootless(env)
    ok(runner("load", "-i", str(image_archives.oci)))
    ok(runner("tag", "busybox:latest", "other:1"))
    ok(runner("run", "--name", "web", "--label", "tier=front", "busybox", "true"))
    assert runner("run", "--name", "db", "busybox", "sh", "-c", "exit 3").returncode == 3
    yield env
    remove_containers(runner, where / "store")


def _both(env, args: list[str]):
    """(hot path, typer path) results of `rootless ARGS`."""
    fast = subprocess.run([str(ROOTLESS_BIN), *args], env=env, capture_output=True,
                          text=True, timeout=60)
    slow = subprocess.run([sys.executable, "-c", TYPER_PATH, *args], env=env,
                          capture_output=True, text=True, timeout=60)
    return fast, slow


_AGO = re.compile(r"(Less than a second|About an? \w+|\d+ \w+) ago")


def _steady(text: str) -> str:
    """Relative times tick between the two runs: `2 seconds ago` and the widths of the
    columns around it may differ; nothing else may."""
    return re.sub(r" {2,}", "  ", _AGO.sub("T ago", text))


@pytest.mark.container
@pytest.mark.parametrize("args", HOT, ids=" ".join)
def test_hot_commands_load_neither_typer_nor_click(store_env, args):
    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOTLESS_BIN), *args],
                            env=store_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:")}
    assert not loaded & {"typer", "click"}, args
    assert "rootless.cli.main" in loaded  # the check itself sees imports


# The commands measured against podman (scripts/bench) load neither typing (~3 ms at
# import: rootless/records.py) nor pathlib (~3.5 ms with its urllib.parse:
# store/store.py); `create` is `run`'s command without its monitor.
LEAN = [["create", "busybox", "true"], ["exec", "up", "true"], ["ps", "-a"], ["images"],
        ["image", "inspect", "busybox"], ["inspect", "up"]]


@pytest.mark.container
@pytest.mark.parametrize("args", LEAN, ids=" ".join)
def test_the_measured_commands_load_neither_typing_nor_pathlib(rootless, busybox, args):
    ok(rootless("run", "-d", "--name", "up", busybox, "sleep", "1000"))
    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOTLESS_BIN), *args],
                            env=rootless.env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:")}
    assert "rootless.cli.main" in loaded  # the check itself sees imports
    assert not loaded & {"typing", "pathlib"}, args


def test_help_of_a_hot_command_is_still_typers(rootless):
    """--help is handed to typer: the page every other command prints."""
    out = ok(rootless("ps", "--help"))
    assert out.startswith("Usage: rootless ps [OPTIONS]")
    assert "-f, --filter KEY=VALUE" in out and "--help  " in out


SAME = [
    # ps and its spellings
    ["ps"], ["ps", "-a"], ["ps", "-aq"], ["ps", "-qa", "--no-trunc"],
    ["container", "ls", "-a", "--no-trunc"], ["container", "ps", "-a", "-f", "name=web"],
    ["ps", "-a", "-f", "label=tier=front", "--format", "{{.Names}} {{.Labels}}"],
    ["ps", "-a", "--format", "table {{.ID}}\t{{.Names}}\t{{.Status}}"],
    ["ps", "-a", "--format", "json"], ["ps", "-a", "--format", "table"], ["ps", "-as"],
    ["ps", "-n", "1"], ["ps", "-n1", "--format={{.Names}}"], ["ps", "-lq"],
    ["ps", "-a", "-f", "exited=3", "-f", "status=exited"],
    ["ps", "-f", "nope=1"], ["ps", "-f", "novalue"], ["ps", "-a", "--format", "{{.Nope"],
    ["ps", "-n", "x"], ["ps", "--all=1"], ["ps", "extra"], ["ps", "-z"],
    # images
    ["images"], ["image", "ls", "--digests"], ["image", "list", "-q"],
    ["images", "--no-trunc"], ["images", "busybox"], ["images", "-f", "dangling=false"],
    ["images", "--format", "{{.Repository}}:{{.Tag}}"], ["images", "--format", "table {{.ID}}"],
    ["images", "--digests", "--format", "table {{.ID}}"], ["images", "-f", "bogus=1"],
    ["images", "Bad:Name!"], ["images", "-f", "reference=oth*"], ["images", "a", "b"],
    # inspect
    ["image", "inspect", "busybox"], ["image", "inspect", "-f", "{{.Id}}", "busybox", "other:1"],
    ["image", "inspect", "nope"], ["image", "inspect", "-f", "{{.Bad", "busybox"],
    ["image", "inspect"], ["inspect", "web"], ["inspect", "busybox"],
    ["inspect", "--type", "image", "busybox"], ["inspect", "--type", "container", "busybox"],
    ["inspect", "-f", "{{.Name}} {{.State.ExitCode}}", "web", "db", "nope"],
    ["inspect", "--type", "bogus", "x"], ["inspect", "-f", "json", "db"],
    ["container", "inspect", "-s", "web"], ["container", "inspect", "nope", "web"],
    ["container", "inspect", "--format={{.Config.Labels}}", "web"],
]


@pytest.mark.container
@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_hot_path_says_what_typer_says(store_env, args):
    fast, slow = _both(store_env, args)
    assert (fast.returncode, _steady(fast.stdout), fast.stderr) == \
        (slow.returncode, _steady(slow.stdout), slow.stderr)
