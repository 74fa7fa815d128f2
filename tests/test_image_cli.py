"""`rootless image ...` and the docker shortcuts, through the real console script, with
the busybox archives scripts/make-image builds (conftest's image_archives).

As docker's CLI, a failing command that runs no container exits 1 (125 is for `run`
and for bad flags)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import assert_error, ok


def test_load_oci_archive_then_list(rootless, image_archives):
    assert ok(rootless("image", "load", "-i", str(image_archives.oci))) == \
        "Loaded image: busybox:latest\n"
    out = ok(rootless("image", "ls"))
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert row.split()[:2] == ["busybox", "latest"]
    assert len(row.split()[2]) == 12


def test_load_docker_archive_from_stdin(rootless, image_archives):
    out = ok(rootless("load", input=image_archives.docker.read_bytes()))
    assert out == "Loaded image: busybox:latest\n"
    assert ok(rootless("images", "-q")).strip() != ""


def test_oci_and_docker_archives_give_the_same_image(rootless, image_archives):
    ok(rootless("load", "-i", str(image_archives.oci)))
    first = ok(rootless("images", "-q", "--no-trunc"))
    ok(rootless("load", "-i", str(image_archives.docker)))
    assert ok(rootless("images", "-q", "--no-trunc")) == first
    assert first.startswith("sha256:")


def test_import_rootfs_tar(rootless, image_archives):
    image_id = ok(rootless("import", str(image_archives.rootfs), "mine:1")).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    [data] = json.loads(ok(rootless("image", "inspect", "mine:1")))
    assert data["Id"] == image_id
    assert data["RepoTags"] == ["mine:1"]
    assert data["Config"] == {}
    assert data["Comment"] == f"Imported from {image_archives.rootfs}"


def test_import_from_stdin_with_change(rootless, image_archives):
    out = ok(rootless("image", "import", "-c", "CMD [\"sh\"]", "-", "piped",
                      input=image_archives.rootfs.read_bytes()))
    [data] = json.loads(ok(rootless("image", "inspect", out.strip())))
    assert data["Config"]["Cmd"] == ["sh"]
    assert data["RepoTags"] == ["piped:latest"]


def test_rmi_untags_then_deletes_image_and_layer(rootless, busybox):
    image_id = ok(rootless("images", "-q", "--no-trunc")).strip()
    untagged, deleted, layer = ok(rootless("rmi", "busybox")).splitlines()
    assert untagged == "Untagged: busybox:latest"
    assert deleted == f"Deleted: {image_id}"
    assert layer.startswith("Deleted: sha256:")  # the one layer, by chain id, as docker
    assert ok(rootless("images", "-q")) == ""


def test_inspect_is_a_json_array(rootless, busybox):
    data = json.loads(ok(rootless("image", "inspect", "busybox")))
    assert isinstance(data, list) and data[0]["RepoTags"] == ["busybox:latest"]
    assert data[0]["Config"]["Cmd"] == ["sh"]


def test_unknown_image_error(rootless):
    assert_error(rootless("rmi", "nothere"), 1, "no such image: nothere")


def test_invalid_reference_error(rootless, image_archives):
    assert_error(rootless("import", str(image_archives.rootfs), "Bad:Name"), 1,
                 "invalid reference format")


def test_missing_archive_error(rootless, tmp_path):
    assert_error(rootless("load", "-i", str(tmp_path / "none.tar")), 1,
                 "no such file or directory")


def test_corrupt_archive_error(rootless, image_archives, tmp_path):
    broken = tmp_path / "broken.tar"
    data = image_archives.oci.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    assert_error(rootless("load", "-i", str(broken)), 1, "not a valid tar archive")
    assert ok(rootless("images", "-q")) == ""


def test_hostile_archive_error(rootless, tmp_path):
    from test_image_load import Image, docker_archive
    from test_layer_unpack import entry, tar_bytes

    evil = Image([tar_bytes(entry("a", "symlink", link="/"),
                            entry("h", "hardlink", link="a/etc/passwd"))])
    path = docker_archive(tmp_path / "evil.tar", [(evil, ["evil:1"])])
    assert_error(rootless("load", "-i", str(path)), 1, "hardlink", "refused")


def test_rm_of_image_used_by_container_conflicts(rootless, busybox, rootless_env):
    from rootless.store import Store

    store = Store.open(Path(rootless_env["ROOTLESS_ROOT"]))
    image_id = ok(rootless("images", "-q", "--no-trunc")).strip()
    with store.db:
        store.db.execute("INSERT INTO containers (id, name, image_id, state) VALUES "
                         "(?, 'c1', ?, 'exited')", ("c" * 64, image_id))
    assert_error(rootless("image", "rm", "busybox"), 1, "conflict: unable to remove "
                 'repository reference "busybox"', "container cccccccccccc")
    assert ok(rootless("image", "rm", "-f", "busybox")) == \
        f"Untagged: busybox:latest\nDeleted: {image_id}\n"
    # as docker: gone for every command; the stopped container keeps its layers
    assert ok(rootless("images", "-q", "--no-trunc")) == ""
    assert_error(rootless("image", "inspect", image_id), 1, "no such image")


def test_forced_rmi_keeps_a_stopped_containers_layers_until_it_is_removed(
        rootless, busybox, store, image_archives):
    ok(rootless("run", "--name", "keeper", busybox, "true"))
    ok(rootless("rmi", "-f", busybox))
    layers = [p for p in (store / "layers").iterdir() if p.is_dir()]
    assert layers and ok(rootless("images", "-q")) == ""
    # ps shows the image's short id once its name no longer means it, as docker
    shown = ok(rootless("ps", "-a", "--format", "{{.Image}}")).strip()
    assert len(shown) == 12 and all(c in "0123456789abcdef" for c in shown)
    ok(rootless("rm", "keeper"))
    assert not [p for p in (store / "layers").iterdir() if p.is_dir()]
    assert not list((store / "blobs" / "sha256").iterdir())


def test_loading_a_forced_removed_image_again_brings_it_back(
        rootless, busybox, image_archives):
    ok(rootless("run", "--name", "keeper", busybox, "true"))
    assert ok(rootless("ps", "-a", "--format", "{{.Image}}")) == "busybox:latest\n"
    ok(rootless("rmi", "-f", busybox))
    ok(rootless("load", "-i", str(image_archives.oci)))
    assert ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}")) == "busybox:latest\n"
    ok(rootless("rm", "keeper"))
    assert ok(rootless("run", "--rm", busybox, "true")) == ""


def test_help_lists_the_image_commands(rootless):
    out = ok(rootless("image", "--help"))
    for command in ("import", "load", "ls", "rm", "inspect"):
        assert command in out


@pytest.mark.skipif(not shutil.which("skopeo"), reason="no skopeo")
def test_skopeo_docker_archive_loads(rootless, image_archives, tmp_path):
    """Interop: skopeo turns our OCI archive into a docker-archive; that loads here."""
    out = tmp_path / "skopeo.docker.tar"
    result = subprocess.run(["skopeo", "copy", "--quiet",
                             f"oci-archive:{image_archives.oci}",
                             f"docker-archive:{out}:skopeo/busybox:copied"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"skopeo cannot run here: {result.stderr.strip()}")
    with tarfile.open(out) as tar:
        assert "manifest.json" in tar.getnames()
    assert ok(rootless("load", "-i", str(out))) == "Loaded image: skopeo/busybox:copied\n"
    [data] = json.loads(ok(rootless("image", "inspect", "skopeo/busybox:copied")))
    assert data["Config"]["Cmd"] == ["sh"]


@pytest.mark.skipif(not shutil.which("skopeo"), reason="no skopeo")
def test_skopeo_oci_archive_loads(rootless, image_archives, tmp_path):
    out = tmp_path / "skopeo.oci.tar"
    result = subprocess.run(["skopeo", "copy", "--quiet",
                             f"docker-archive:{image_archives.docker}",
                             f"oci-archive:{out}:example.com/bb:2"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"skopeo cannot run here: {result.stderr.strip()}")
    assert ok(rootless("load", "-i", str(out))) == "Loaded image: example.com/bb:2\n"
