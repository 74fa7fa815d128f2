"""Rootless podman driving rootless-oci (`podman --runtime PATH`), as it drives crun:
create with --console-socket and --pid-file under conmon, start, state, kill, delete,
and exec. busybox and the Debian fixture, with and without a terminal (tmux gives
podman the terminal that -t needs)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ok
from oci_helpers import OCI_BIN

pytestmark = pytest.mark.container

PODMAN = shutil.which("podman")


class Podman:
    """podman with its own HOME (storage.conf: overlay, graphroot and runroot in the
    test's directory), the test user's XDG_RUNTIME_DIR, and rootless-oci as runtime."""

    def __init__(self, home: Path, runtime_dir: str, single_id: bool) -> None:
        self.home = home
        conf = home / ".config" / "containers"
        conf.mkdir(parents=True)
        # without subordinate ids podman cannot chown a Debian image's files (PEERS.md)
        extra = ('[storage.options.overlay]\nignore_chown_errors = "true"\n'
                 if single_id else "")
        (conf / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{home}/graph"\n'
            f'runroot = "{home}/run"\n{extra}')
        self.env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "xterm",
                    "XDG_RUNTIME_DIR": runtime_dir}

    def argv(self, *args: str) -> list[str]:
        return [PODMAN, "--runtime", str(OCI_BIN), *args]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def in_tmux(self, tmp: Path, *args: str, timeout: float = 60) -> tuple[str, int]:
        """Run podman ARGS in a tmux pane (a real terminal); (what the pane showed, its
        exit status)."""
        sock = str(tmp / "tmux.sock")
        done = tmp / "exit-status"
        command = " ".join(f"'{a}'" for a in self.argv(*args))
        subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "120", "-y", "30",
                        f"{command}; echo $? > {done}; sleep 60"], env=self.env, check=True)
        try:
            deadline = time.monotonic() + timeout
            while not done.exists() or not done.read_text().strip():
                assert time.monotonic() < deadline, "podman -t did not finish"
                time.sleep(0.1)
            pane = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"],
                                  env=self.env, capture_output=True, text=True).stdout
        finally:
            subprocess.run(["tmux", "-S", sock, "kill-server"], env=self.env)
        return pane, int(done.read_text())


@pytest.fixture(scope="module")
def podman(tmp_path_factory, image_archives):
    import os

    from helpers import has_subids

    if PODMAN is None:
        pytest.skip("podman is not installed")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir or not os.access(runtime_dir, os.W_OK):
        runtime_dir = str(tmp_path_factory.mktemp("xdg-run"))
        os.chmod(runtime_dir, 0o700)
    runner = Podman(tmp_path_factory.mktemp("podman-home"), runtime_dir, not has_subids())
    info = runner("info")
    if info.returncode != 0:
        pytest.skip(f"podman cannot run for this user: {info.stderr.strip()[-300:]}")
    ok(runner("load", "-i", str(image_archives.oci)))
    yield runner
    runner("rm", "-a", "-f", "-t", "0")
    runner("system", "reset", "-f")


@pytest.fixture(scope="module")
def podman_debian(podman, debian_tar):
    ok(podman("import", str(debian_tar), "debian:bookworm", timeout=300))
    return "debian:bookworm"


IMAGES = ["busybox", "debian"]


@pytest.fixture(params=IMAGES)
def image(request):
    if request.param == "debian":
        return request.getfixturevalue("podman_debian")
    return "localhost/busybox:latest"


def test_podman_runs_a_container_and_returns_its_status(podman, image):
    result = podman("run", "--rm", "--network", "none", image, "sh", "-c",
                    "echo hello from $(cat /proc/1/comm); exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from sh\n"


def test_podman_shows_the_images_owners(podman, podman_debian):
    from helpers import has_subids

    out = ok(podman("run", "--rm", "--network", "none", podman_debian, "stat", "-c",
                    "%u:%g", "/etc/shadow"))
    # with a subordinate range the true owner (group shadow, 42); without one podman
    # itself could not keep it (ignore_chown_errors)
    assert out == ("0:42\n" if has_subids() else "0:0\n")


def test_podman_execs_into_a_running_container(podman, image):
    cid = ok(podman("run", "-d", "--network", "none", image, "sleep", "300")).strip()
    try:
        result = podman("exec", cid, "sh", "-c", "echo in exec; exit 4")
        assert result.returncode == 4, result.stderr
        assert result.stdout == "in exec\n"
    finally:
        podman("rm", "-f", "-t", "0", cid)


def test_podman_stops_and_removes_a_container(podman, image):
    cid = ok(podman("run", "-d", "--network", "none", image, "sh", "-c",
                    "trap 'exit 0' TERM; while :; do sleep 0.1; done")).strip()
    ok(podman("stop", "-t", "10", cid))
    inspect = ok(podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                        cid))
    assert inspect.split() == ["exited", "0"]
    ok(podman("rm", cid))
    assert cid not in ok(podman("ps", "-a", "-q", "--no-trunc"))


def test_podman_kill_reaches_the_containers_init(podman):
    cid = ok(podman("run", "-d", "--network", "none", "localhost/busybox:latest",
                    "sleep", "300")).strip()
    ok(podman("kill", cid))  # SIGKILL: pid 1 of the namespace ignores what it lacks a
    # handler for, but never that one
    inspect = ok(podman("wait", cid))
    assert inspect.strip() == "137"
    ok(podman("rm", cid))


def test_podman_run_with_a_terminal(podman, image, tmp_path):
    pane, status = podman.in_tmux(tmp_path, "run", "--rm", "-t", "--network", "none",
                                  image, "sh", "-c", "tty; test -t 1 && echo TTY-YES; "
                                  "exit 5")
    assert status == 5, pane
    assert "/dev/pts/" in pane and "TTY-YES" in pane


def test_podman_exec_with_a_terminal(podman, image, tmp_path):
    cid = ok(podman("run", "-d", "--network", "none", image, "sleep", "300")).strip()
    try:
        pane, status = podman.in_tmux(tmp_path, "exec", "-t", cid, "sh", "-c",
                                      "test -t 0 && echo EXEC-TTY; exit 6")
        assert status == 6, pane
        assert "EXEC-TTY" in pane
    finally:
        podman("rm", "-f", "-t", "0", cid)


def test_podman_leaves_no_state_behind_after_rm(podman, tmp_path):
    cid = ok(podman("run", "-d", "--network", "none", "localhost/busybox:latest",
                    "sleep", "300")).strip()
    ok(podman("rm", "-f", "-t", "0", cid))
    import os

    root = Path(podman.env["XDG_RUNTIME_DIR"]) / "rootless-oci"
    leftovers = [p.name for p in root.iterdir()] if root.is_dir() else []
    assert cid not in leftovers
    assert not [p for p in leftovers if p.startswith(cid[:12])], os.listdir(root)
