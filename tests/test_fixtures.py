"""The test images themselves: scripts/make-image writes archives the peers accept.

These check the harness, not rootless: if they fail, fix scripts/make-image first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import pytest
from helpers import make_image

needs_skopeo = pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")


def skopeo_inspect(transport: str, path, env) -> dict:
    result = subprocess.run(["skopeo", "inspect", "--config", f"{transport}:{path}"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_skopeo
@pytest.mark.parametrize("transport, kind", [("oci-archive", "oci"),
                                             ("docker-archive", "docker")])
def test_skopeo_reads_the_image_archives(image_archives, rootless_env, transport, kind):
    config = skopeo_inspect(transport, getattr(image_archives, kind), rootless_env)
    assert config["config"]["Cmd"] == ["sh"]
    assert config["os"] == "linux"


def test_archives_are_deterministic(image_archives, tmp_path):
    again = tmp_path / "again.oci.tar"
    make_image("--tag", "busybox:latest", "--oci-archive", str(again))
    assert again.read_bytes() == image_archives.oci.read_bytes()


def test_rootfs_has_busybox_applets_and_the_test_users(image_archives):
    with tarfile.open(image_archives.rootfs) as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd").read().decode()
    assert {"bin/busybox", "bin/sh", "usr/bin/id", "etc/rootless-test-image"} <= names
    assert [line.split(":")[:4] for line in passwd.splitlines()] == [
        ["root", "x", "0", "0"], ["user", "x", "1000", "1000"],
        ["nobody", "x", "65534", "65534"]]


def test_rootfs_entries_belong_to_root_except_the_users_home(image_archives):
    with tarfile.open(image_archives.rootfs) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert {name for name, owner in owners.items() if owner != (0, 0)} == {"home/user"}
