"""`run --pull missing|always|never` against a real registry (Debian's docker-registry,
plain HTTP on 127.0.0.1, listed as insecure in registries.json): docker's default pulls
an image that is not local, `always` pulls every time, `never` refuses."""

from __future__ import annotations

import json

import pytest
from helpers import MARKER, MARKER_PATH, assert_error, ok
from registry_server import RegistryServer, isolate_registry_client

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-run-pull")).start()
    yield server
    server.stop()


@pytest.fixture
def remote(rootless, busybox, registry, tmp_path):
    """A reference to busybox in the registry, and a client whose store lacks it."""
    reg = isolate_registry_client(rootless, tmp_path, "10")
    (tmp_path / "registries.json").write_text(json.dumps({"insecure": [registry.host]}))
    ref = f"{registry.host}/runpull/{tmp_path.name.lower()}:1"
    ok(reg("push", busybox, ref))
    reg.env["ROOTLESS_ROOT"] = str(tmp_path / "empty-store")
    return ref


def test_run_pulls_an_image_that_is_not_local(rootless, remote):
    result = rootless("run", "--rm", remote, "cat", MARKER_PATH)
    assert result.stdout.strip() == MARKER, result.stderr
    assert f"Unable to find image '{remote}' locally" in result.stderr
    assert f"Status: Downloaded newer image for {remote}" in result.stderr
    assert remote in ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}"))


def test_run_pull_lines_go_to_stderr_not_the_containers_stdout(rootless, remote):
    result = rootless("run", "--rm", remote, "echo", "only this")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "only this\n"
    assert "Pulling from" in result.stderr


def test_run_quiet_pulls_without_output(rootless, remote):
    result = rootless("run", "--rm", "-q", remote, "true")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_run_of_a_local_image_does_not_pull(rootless, remote):
    ok(rootless("run", "--rm", remote, "true"))
    result = rootless("run", "--rm", remote, "true")
    assert result.returncode == 0, result.stderr
    assert "Unable to find image" not in result.stderr and "Pulling" not in result.stderr


def test_run_pull_never_refuses_an_image_that_is_not_local(rootless, remote):
    assert_error(rootless("run", "--rm", "--pull", "never", remote, "true"),
                 125, f"no such image: {remote}")
    assert ok(rootless("images", "-q")) == ""


def test_run_pull_never_runs_a_local_image(rootless, remote):
    ok(rootless("pull", "-q", remote))
    assert ok(rootless("run", "--rm", "--pull=never", remote, "cat", MARKER_PATH)) \
        .strip() == MARKER


def test_run_pull_always_pulls_a_local_image_again(rootless, remote):
    ok(rootless("pull", "-q", remote))
    result = rootless("run", "--rm", "--pull", "always", remote, "true")
    assert result.returncode == 0, result.stderr
    assert "Unable to find image" not in result.stderr
    assert "Pulling from runpull/" in result.stderr
    assert f"Status: Image is up to date for {remote}" in result.stderr


def test_run_pull_of_an_image_the_registry_lacks_says_so(rootless, remote, registry):
    missing = f"{registry.host}/runpull/absent:1"
    result = rootless("run", "--rm", missing, "true")
    assert result.returncode == 125
    assert f"Unable to find image '{missing}' locally" in result.stderr
    assert "Traceback" not in result.stderr and "absent" in result.stderr.splitlines()[-1]


def test_run_pull_rejects_an_unknown_policy(rootless, busybox):
    assert_error(rootless("run", "--rm", "--pull", "sometimes", busybox, "true"),
                 125, "invalid pull option: 'sometimes'")
