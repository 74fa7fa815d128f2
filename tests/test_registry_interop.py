"""Interop with the real peers through the real registry: what rootless pushes, skopeo
(and rootless podman) pull; what skopeo pushes, rootless pulls and runs."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from helpers import MARKER, MARKER_PATH, ok
from registry_server import RegistryServer, isolate_registry_client

pytestmark = pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-interop")).start()
    yield server
    server.stop()


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path)


def peer(*args: str, env: dict) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_skopeo_copies_what_rootless_pushed(reg, busybox, registry, tmp_path):
    ref = f"{registry.host}/interop/from-rootless:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    layout = tmp_path / "layout"
    peer("skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:x",
         env=reg.env)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest[7:]).read_text())
    config_id = json.loads(ok(reg("image", "inspect", busybox)))[0]["Id"]
    assert manifest["config"]["digest"] == config_id


@pytest.mark.container
def test_rootless_pulls_and_runs_what_skopeo_pushed(reg, registry, image_archives, tmp_path):
    ref = f"{registry.host}/interop/from-skopeo:1"
    peer("skopeo", "copy", "--dest-tls-verify=false", f"oci-archive:{image_archives.oci}",
         f"docker://{ref}", env=reg.env)
    ok(reg("pull", "--tls-verify=false", ref))
    assert ok(reg("run", "--rm", ref, "cat", MARKER_PATH)).strip() == MARKER


def test_skopeo_docker_schema2_push_pulls_here(reg, registry, image_archives):
    """skopeo converts to a docker v2 schema 2 manifest with gzip layers on request."""
    ref = f"{registry.host}/interop/schema2:1"
    peer("skopeo", "copy", "--dest-tls-verify=false", "--format", "v2s2",
         f"oci-archive:{image_archives.oci}", f"docker://{ref}", env=reg.env)
    ok(reg("pull", "--tls-verify=false", ref))
    data = json.loads(ok(reg("image", "inspect", ref)))[0]
    assert data["Id"].startswith("sha256:")


@pytest.mark.container
def test_podman_pulls_and_runs_what_rootless_pushed(reg, busybox, registry, tmp_path):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    ref = f"{registry.host}/interop/for-podman:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    home = tmp_path / "podman-home"
    home.mkdir()
    env = {k: v for k, v in reg.env.items() if k != "DOCKER_CONFIG"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"))
    storage = home / ".config/containers"
    storage.mkdir(parents=True)
    (storage / "storage.conf").write_text(
        '[storage]\ndriver = "vfs"\n[storage.options]\n'
        '[storage.options.vfs]\nignore_chown_errors = "true"\n')
    pulled = subprocess.run(["podman", "pull", "--tls-verify=false", ref], env=env,
                            capture_output=True, text=True, timeout=180)
    if pulled.returncode != 0 and "newuidmap" in pulled.stderr + pulled.stdout:
        pytest.skip(f"podman cannot run as this user here: {pulled.stderr.strip()[:200]}")
    assert pulled.returncode == 0, pulled.stderr
    try:
        out = peer("podman", "run", "--rm", "--network", "none", ref, "cat", MARKER_PATH,
                   env=env)
        assert out.strip() == MARKER
    finally:
        subprocess.run(["podman", "system", "reset", "-f"], env=env, capture_output=True,
                       timeout=120, check=False)
