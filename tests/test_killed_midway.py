"""Commands killed midway leave a store the next command trusts: `commit` killed at
any point leaves either no image or a whole one, and the next commit works; a monitor
killed while the container waits to restart leaves a record `ps` reads truthfully."""

from __future__ import annotations

import time

import pytest
from helpers import ok, wait_for

pytestmark = pytest.mark.container


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 1.0])
def test_a_killed_commit_leaves_no_image_or_a_whole_one(rootless, busybox, delay, store):
    ok(rootless("run", "--name", "src", busybox, "sh", "-c",
                "head -c 3000000 /dev/urandom > /blob; echo hi > /greeting"))
    proc = rootless.popen("commit", "src", "cut:latest")
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=10)
    listed = ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    if "cut:latest" in listed:  # it finished: the image must be whole
        assert ok(rootless("run", "--rm", "cut:latest", "cat", "/greeting")) == "hi\n"
    ok(rootless("commit", "src", "again:latest"))
    assert ok(rootless("run", "--rm", "again:latest", "cat", "/greeting")) == "hi\n"
    wait_for(lambda: not any((store / "tmp").iterdir()), timeout=10)


def test_a_monitor_killed_while_restarting_leaves_an_exited_container(rootless, busybox):
    import os
    import signal

    ok(rootless("run", "-d", "--name", "loop", "--restart", "always", busybox, "sh", "-c",
                "sleep 0.3; exit 2"))
    wait_for(lambda: int(ok(rootless("inspect", "--format", "{{.RestartCount}}",
                                     "loop"))) >= 1, timeout=30)
    monitor = wait_for(lambda: _monitor_of(rootless, "loop"), timeout=30)
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: ok(rootless("inspect", "--format", "{{.State.Status}}",
                                 "loop")).strip() == "exited", timeout=10)
    assert "Exited" in ok(rootless("ps", "-a", "--format", "{{.Status}}"))
    ok(rootless("start", "loop"))  # a new monitor takes it over
    assert ok(rootless("inspect", "--format", "{{.State.Status}}", "loop")).strip() in (
        "running", "restarting")
    ok(rootless("rm", "-f", "loop"))
    assert ok(rootless("ps", "-a", "-q")) == ""


def _monitor_of(rootless, name: str) -> int | None:
    """The monitor's pid (the init's parent), or None while the container sits between
    two runs (Pid 0) or its init exits under us."""
    pid = int(ok(rootless("inspect", "--format", "{{.State.Pid}}", name)))
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except FileNotFoundError:
        return None
