"""`rootless save` / `rootless image save`, as `docker save` and `podman save` behave:
docker-archive (default), oci-archive and oci-dir; several images per archive; what it
writes loads back here and in podman and skopeo, and what podman saves loads here.

Every bad-input case checks that nothing was left behind: the target appears whole or
not at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import MARKER, MARKER_PATH, PtySession, assert_error, is_root, ok, wait_for

FORMATS = ["docker-archive", "oci-archive"]


def images(rootless, env: dict | None = None) -> set[tuple[str, str, str]]:
    """(repository, tag, full id) per row of `images --no-trunc`."""
    lines = ok(rootless("images", "--no-trunc", env=env)).splitlines()[1:]
    return {tuple(re.split(r"\s{2,}", line.strip())[:3]) for line in lines}


def image_id(rootless, name: str) -> str:
    return json.loads(ok(rootless("image", "inspect", name)))[0]["Id"]


def members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read()


def remove_all(rootless) -> None:
    ids = ok(rootless("images", "-q")).split()
    if ids:
        ok(rootless("rmi", "-f", *set(ids)))
    assert images(rootless) == set()


@pytest.fixture
def two_tags(rootless, busybox, load_variant) -> str:
    """busybox:latest and second:latest, one image (the same config, so the same id)."""
    load_variant("second")
    assert image_id(rootless, "second:latest") == image_id(rootless, busybox)
    return image_id(rootless, busybox)


@pytest.fixture
def other(rootless, busybox, load_variant) -> str:
    """other:latest, a second image on busybox's one layer (only its config differs)."""
    name = load_variant("other", "--env", "OTHER=1")
    assert image_id(rootless, name) != image_id(rootless, busybox)
    return name


# ---- round trips ----

@pytest.mark.parametrize("fmt", FORMATS)
def test_save_then_load_keeps_the_image_id_and_every_tag(rootless, two_tags, tmp_path, fmt):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", fmt, "-o", str(archive), "busybox", "second:latest"))
    before = images(rootless)
    remove_all(rootless)
    ok(rootless("load", "-i", str(archive)))
    assert images(rootless) == before
    assert {row[2] for row in before} == {two_tags}


def test_docker_archive_is_the_default_format(rootless, busybox, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), busybox))
    names = members(archive)
    assert "manifest.json" in names and "repositories" in names
    assert "index.json" not in names


def test_docker_archive_layers_are_uncompressed_and_named_by_diff_id(rootless, busybox,
                                                                     tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("image", "save", "-o", str(archive), busybox))
    [entry] = json.loads(read_member(archive, "manifest.json"))
    config = json.loads(read_member(archive, entry["Config"]))
    assert entry["Layers"] == [f"{d[7:]}.tar" for d in config["rootfs"]["diff_ids"]]
    assert entry["RepoTags"] == ["docker.io/library/busybox:latest"]
    layer = read_member(archive, entry["Layers"][0])
    assert layer[257:262] == b"ustar"  # a plain tar, not gzip


def test_oci_archive_names_each_image_by_its_full_reference(rootless, busybox, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", "oci-archive", "-o", str(archive), busybox))
    index = json.loads(read_member(archive, "index.json"))
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == \
        "docker.io/library/busybox:latest"
    assert json.loads(read_member(archive, "oci-layout"))["imageLayoutVersion"] == "1.0.0"


def test_oci_archive_keeps_the_stored_manifest_byte_exact(rootless, busybox, tmp_path,
                                                         image_archives):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", "oci-archive", "-o", str(archive), busybox))
    saved = json.loads(read_member(archive, "index.json"))["manifests"][0]["digest"]
    original = json.loads(read_member(image_archives.oci, "index.json"))["manifests"][0]
    assert saved == original["digest"]


def test_oci_dir_is_a_layout_that_loads_back(rootless, busybox, tmp_path):
    layout = tmp_path / "layout"
    ok(rootless("save", "--format", "oci-dir", "-o", str(layout), busybox))
    assert (layout / "oci-layout").is_file() and (layout / "index.json").is_file()
    before = images(rootless)
    archive = tmp_path / "layout.tar"
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(layout / name, arcname=name)
    remove_all(rootless)
    ok(rootless("load", "-i", str(archive)))
    assert images(rootless) == before


def test_oci_dir_leaves_no_temporary_directory(rootless, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ok(rootless("save", "--format", "oci-dir", "-o", str(out / "layout"), busybox))
    assert os.listdir(out) == ["layout"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_several_images_in_one_archive_load_back(rootless, busybox, other, tmp_path, fmt):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", fmt, "-o", str(archive), busybox, other))
    before = images(rootless)
    assert len({row[2] for row in before}) == 2
    remove_all(rootless)
    out = ok(rootless("load", "-i", str(archive)))
    assert images(rootless) == before
    assert "Loaded image: busybox:latest" in out and "Loaded image: other:latest" in out


def test_docker_archive_writes_a_shared_layer_once(rootless, busybox, other, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), busybox, other))
    entries = json.loads(read_member(archive, "manifest.json"))
    assert len(entries) == 2 and entries[0]["Layers"] == entries[1]["Layers"]
    layers = [n for n in members(archive) if n.endswith(".tar") and "/" not in n]
    assert layers == entries[0]["Layers"]


def test_oci_archive_writes_a_shared_layer_once(rootless, busybox, other, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", "oci-archive", "-o", str(archive), busybox, other))
    names = members(archive)
    assert len(names) == len(set(names))
    # oci-layout, index.json, 2 directories; 2 manifests, 2 configs, 1 layer
    assert len([n for n in names if n.startswith("blobs/sha256/")]) == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_loaded_from_a_docker_archive_round_trips(rootless, image_archives, tmp_path,
                                                        fmt):
    """Its stored manifest is Docker schema 2 with uncompressed layers: written as is to
    a docker-archive, rewritten with OCI media types into an OCI archive."""
    ok(rootless("load", "-i", str(image_archives.docker)))
    before = images(rootless)
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", fmt, "-o", str(archive), "busybox"))
    remove_all(rootless)
    ok(rootless("load", "-i", str(archive)))
    assert images(rootless) == before


def test_oci_archive_of_a_docker_image_has_an_oci_manifest(rootless, image_archives,
                                                          tmp_path):
    ok(rootless("load", "-i", str(image_archives.docker)))
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", "oci-archive", "-o", str(archive), "busybox"))
    entry = json.loads(read_member(archive, "index.json"))["manifests"][0]
    manifest = json.loads(read_member(archive, f"blobs/sha256/{entry['digest'][7:]}"))
    assert manifest["mediaType"] == entry["mediaType"] == \
        "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["digest"] == image_id(rootless, "busybox")


def test_bare_repository_saves_every_tag_of_it(rootless, busybox, image_archives,
                                               tmp_path):
    """docker save's rule: REPO without a tag means all of REPO's tags."""
    ok(rootless("image", "import", str(image_archives.rootfs), "busybox:1"))
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), "busybox"))
    tags = sorted(t for e in json.loads(read_member(archive, "manifest.json"))
                  for t in e["RepoTags"])
    assert tags == ["docker.io/library/busybox:1", "docker.io/library/busybox:latest"]


def test_image_named_by_id_is_saved_untagged(rootless, busybox, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), image_id(rootless, busybox)[7:19]))
    [entry] = json.loads(read_member(archive, "manifest.json"))
    assert not entry["RepoTags"]
    assert "repositories" not in members(archive)


def test_image_named_by_tag_is_saved_with_that_tag_only(rootless, two_tags, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), "second:latest"))
    [entry] = json.loads(read_member(archive, "manifest.json"))
    assert entry["RepoTags"] == ["docker.io/library/second:latest"]


def test_save_to_stdout_pipes_into_load(rootless, busybox, tmp_path):
    """`rootless save IMAGE | rootless load`, into another store."""
    other = dict(rootless.env, ROOTLESS_ROOT=str(tmp_path / "other-store"))
    saver = rootless.popen("save", busybox, stdin=subprocess.DEVNULL)
    loader = rootless.popen("load", stdin=saver.stdout, env=other)
    saver.stdout.close()
    out, err = loader.communicate(timeout=60)
    assert saver.wait(timeout=60) == 0, saver.stderr.read()
    assert loader.returncode == 0, err
    assert b"Loaded image: busybox:latest" in out
    assert images(rootless, env=other) == images(rootless)


# ---- bad input: one line, exit 1 (a bad format: 125, as a bad flag), nothing left ----

def test_unknown_image_is_an_error_and_writes_nothing(rootless, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_error(rootless("save", "-o", str(out / "x.tar"), busybox, "nosuch:1"), 1,
                 "nosuch:1")
    assert os.listdir(out) == []


def test_save_refuses_to_write_to_a_terminal(rootless, busybox):
    term = PtySession(rootless, "save", busybox)
    assert term.wait() == 1
    lines = term.text().strip().splitlines()
    assert lines == [("Error: cowardly refusing to save to a terminal. Use the -o flag or "
                      "redirect")]


@pytest.mark.skipif(is_root(), reason="root may write any directory")
def test_unwritable_directory_is_an_error(rootless, busybox, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_error(rootless("save", "-o", str(locked / "x.tar"), busybox), 1,
                     str(locked / "x.tar"), "permission denied")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


def test_missing_directory_is_an_error(rootless, busybox, tmp_path):
    assert_error(rootless("save", "-o", str(tmp_path / "nodir" / "x.tar"), busybox), 1,
                 "no such directory")
    assert not (tmp_path / "nodir").exists()


def test_output_that_is_a_directory_is_an_error(rootless, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_error(rootless("save", "-o", str(out), busybox), 1, str(out), "directory")
    assert os.listdir(out) == []


def test_unknown_format_is_an_error(rootless, busybox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_error(rootless("save", "--format", "docker-dir", "-o", str(out / "x"), busybox),
                 125, "docker-dir")
    assert os.listdir(out) == []


def test_oci_dir_refuses_a_directory_that_is_not_empty(rootless, busybox, tmp_path):
    out = tmp_path / "layout"
    out.mkdir()
    (out / "keep").write_text("mine")
    assert_error(rootless("save", "--format", "oci-dir", "-o", str(out), busybox), 1,
                 "not empty")
    assert os.listdir(out) == ["keep"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".layout")]


@pytest.mark.parametrize("fmt", FORMATS + ["oci-dir"])
def test_a_corrupt_blob_fails_the_save_and_leaves_nothing(rootless, busybox, store,
                                                         tmp_path, fmt):
    """The must-not beside the round trip: a blob that no longer matches its digest is
    not written out, and the half-made archive is removed."""
    layer = max((store / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer.chmod(0o644)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    result = rootless("save", "--format", fmt, "-o", str(out / "x"), busybox)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert os.listdir(out) == []


@pytest.mark.parametrize("fmt", FORMATS + ["oci-dir"])
def test_a_save_stopped_midway_leaves_nothing(rootless, busybox, store, tmp_path, fmt):
    """SIGTERM while the archive is half-written: the temporary target is removed. The
    layer blob is swapped for a FIFO nobody writes, so the save waits midway."""
    layer = max((store / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer.unlink()
    os.mkfifo(layer)
    out = tmp_path / "out"
    out.mkdir()
    proc = rootless.popen("save", "--format", fmt, "-o", str(out / "x"), busybox)
    wait_for(lambda: os.listdir(out))  # the temporary target exists
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"Traceback" not in err, err
    assert os.listdir(out) == []


def test_existing_target_is_kept_when_a_save_fails(rootless, busybox, tmp_path):
    target = tmp_path / "x.tar"
    target.write_text("previous")
    assert_error(rootless("save", "-o", str(target), "nosuch:1"), 1)
    assert target.read_text() == "previous"


def test_multi_image_archive_flag_is_accepted(rootless, busybox, other, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-m", "-o", str(archive), busybox, other))
    assert len(json.loads(read_member(archive, "manifest.json"))) == 2


# ---- interop: podman and skopeo read what we write; we read what podman writes ----

@pytest.fixture
def podman(rootless, tmp_path):
    """podman with its own storage in this test's directory (vfs, as
    test_registry_interop sets it up); skips where podman cannot run as this user."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    home = tmp_path / "podman-home"
    (home / ".config/containers").mkdir(parents=True)
    (home / ".config/containers/storage.conf").write_text(
        '[storage]\ndriver = "vfs"\n[storage.options]\n'
        '[storage.options.vfs]\nignore_chown_errors = "true"\n')
    env = {k: v for k, v in rootless.env.items() if not k.startswith("ROOTLESS_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"))

    def run(*args: str) -> str:
        proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                              timeout=180, check=False)
        text = proc.stdout + proc.stderr
        if proc.returncode != 0 and ("newuidmap" in text or "insufficient UIDs" in text):
            pytest.skip(f"podman cannot run as this user here: {text.strip()[:200]}")
        assert proc.returncode == 0, f"podman {' '.join(args)}: {text}"
        return proc.stdout

    run.env = env
    yield run
    subprocess.run(["podman", "system", "reset", "-f"], env=env, capture_output=True,
                   timeout=120, check=False)


def skopeo(*args: str, env: dict) -> str:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    proc = subprocess.run(["skopeo", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.mark.container
@pytest.mark.parametrize("fmt", FORMATS)
def test_podman_loads_and_runs_what_rootless_saved(rootless, busybox, podman, tmp_path, fmt):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", fmt, "-o", str(archive), busybox))
    out = podman("load", "-i", str(archive))
    assert "docker.io/library/busybox:latest" in out
    assert podman("image", "inspect", "--format", "{{.Id}}", "busybox:latest").strip() == \
        image_id(rootless, busybox)[7:]
    assert podman("run", "--rm", "--network", "none", "busybox:latest",
                  "cat", MARKER_PATH).strip() == MARKER


def test_skopeo_reads_a_saved_docker_archive(rootless, busybox, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "-o", str(archive), busybox))
    data = json.loads(skopeo("inspect", "--raw", f"docker-archive:{archive}",
                             env=rootless.env))
    assert data["config"]["digest"] == image_id(rootless, busybox)
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{archive}",
                               env=rootless.env))
    assert config["config"]["Cmd"] == ["sh"]


def test_skopeo_reads_a_saved_oci_archive_by_name(rootless, busybox, tmp_path):
    archive = tmp_path / "out.tar"
    ok(rootless("save", "--format", "oci-archive", "-o", str(archive), busybox))
    data = json.loads(skopeo("inspect", "--raw",
                             f"oci-archive:{archive}:docker.io/library/busybox:latest",
                             env=rootless.env))
    assert data["config"]["digest"] == image_id(rootless, busybox)


def test_skopeo_reads_a_saved_oci_dir(rootless, busybox, tmp_path):
    layout = tmp_path / "layout"
    ok(rootless("save", "--format", "oci-dir", "-o", str(layout), busybox))
    data = json.loads(skopeo("inspect", "--raw",
                             f"oci:{layout}:docker.io/library/busybox:latest",
                             env=rootless.env))
    assert data["config"]["digest"] == image_id(rootless, busybox)


@pytest.mark.container
@pytest.mark.parametrize("fmt", FORMATS)
def test_rootless_loads_and_runs_what_podman_saved(rootless, podman, image_archives,
                                                   tmp_path, fmt):
    podman("load", "-i", str(image_archives.oci))
    archive = tmp_path / "podman.tar"
    podman("save", "--format", fmt, "-o", str(archive), "busybox:latest")
    out = ok(rootless("load", "-i", str(archive)))
    # podman calls the image loaded from an archive naming it "busybox:latest"
    # localhost/busybox:latest, and saves it so
    assert out == "Loaded image: localhost/busybox:latest\n"
    assert ok(rootless("run", "--rm", "localhost/busybox:latest", "cat", MARKER_PATH)) == \
        MARKER + "\n"

