"""`rootless image import | load | ls | rm`, as `docker image ...` behaves.

Errors of commands other than run/create exit 1 in Docker (its daemon's errors), and a
bad flag exits 125 everywhere.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from helpers import MARKER, MARKER_PATH, assert_error, make_image, ok

LS_HEADER = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]


def image_rows(rootless) -> list[list[str]]:
    """`image ls` as rows of columns (columns are separated by two or more spaces)."""
    lines = ok(rootless("image", "ls")).splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == LS_HEADER, lines[0]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


def repo_tags(rootless) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in image_rows(rootless)]


def oci_config_digest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{manifest_digest}"))
    return manifest["config"]["digest"].split(":")[1]


# ---- import ----

def test_import_of_a_rootfs_tar_prints_the_image_id(rootless, image_archives):
    out = ok(rootless("image", "import", str(image_archives.rootfs), "imported:1"))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out), out


def test_import_names_the_image(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "imported:1"))
    assert repo_tags(rootless) == [("imported", "1")]


def test_import_without_tag_means_latest(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "imported"))
    assert repo_tags(rootless) == [("imported", "latest")]


def test_import_without_name_gives_an_untagged_image(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs)))
    assert repo_tags(rootless) == [("<none>", "<none>")]


def test_import_from_stdin(rootless, image_archives):
    data = image_archives.rootfs.read_bytes()
    ok(rootless("image", "import", "-", "fromstdin:2", input=data))
    assert repo_tags(rootless) == [("fromstdin", "2")]


def test_import_of_a_missing_file_is_an_error(rootless, tmp_path):
    assert_error(rootless("image", "import", str(tmp_path / "nope.tar"), "x:1"), 1,
                 str(tmp_path / "nope.tar"))
    assert repo_tags(rootless) == []


def test_import_of_a_file_that_is_not_a_tar_is_an_error(rootless, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    assert_error(rootless("image", "import", str(junk), "x:1"), 1)
    assert repo_tags(rootless) == []


@pytest.mark.container
def test_imported_image_runs(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "imported:1"))
    assert ok(rootless("run", "--rm", "imported:1", "cat", MARKER_PATH)) == MARKER + "\n"


@pytest.mark.container
def test_imported_image_from_stdin_runs(rootless, image_archives):
    ok(rootless("image", "import", "-", "fromstdin:2",
                input=image_archives.rootfs.read_bytes()))
    assert ok(rootless("run", "--rm", "fromstdin:2", "cat", MARKER_PATH)) == MARKER + "\n"


# ---- load ----

@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_load_reports_the_loaded_image(rootless, image_archives, kind):
    out = ok(rootless("image", "load", "-i", str(getattr(image_archives, kind))))
    assert "Loaded image: busybox:latest" in out.splitlines()


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_load_adds_the_image(rootless, image_archives, kind):
    ok(rootless("image", "load", "-i", str(getattr(image_archives, kind))))
    assert repo_tags(rootless) == [("busybox", "latest")]


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_loaded_image_id_is_its_config_digest(rootless, image_archives, kind):
    ok(rootless("image", "load", "-i", str(getattr(image_archives, kind))))
    assert image_rows(rootless)[0][2] == oci_config_digest(image_archives.oci)[:12]


def test_loading_both_formats_of_one_image_gives_one_image(rootless, image_archives):
    ok(rootless("image", "load", "-i", str(image_archives.oci)))
    ok(rootless("image", "load", "-i", str(image_archives.docker)))
    assert repo_tags(rootless) == [("busybox", "latest")]


def test_loading_twice_gives_one_image(rootless, image_archives):
    ok(rootless("image", "load", "-i", str(image_archives.oci)))
    ok(rootless("image", "load", "-i", str(image_archives.oci)))
    assert len(image_rows(rootless)) == 1


def test_load_of_a_docker_archive_keeps_its_repo_tags(rootless, tmp_path):
    archive = tmp_path / "other.docker.tar"
    make_image("--tag", "example.org/team/tool:v2", "--docker-archive", str(archive))
    ok(rootless("image", "load", "-i", str(archive)))
    assert repo_tags(rootless) == [("example.org/team/tool", "v2")]


def test_load_of_a_missing_file_is_an_error(rootless, tmp_path):
    assert_error(rootless("image", "load", "-i", str(tmp_path / "nope.tar")), 1,
                 str(tmp_path / "nope.tar"))


def test_load_of_a_file_that_is_not_an_image_is_an_error(rootless, image_archives):
    # a rootfs tar has neither index.json nor manifest.json
    assert_error(rootless("image", "load", "-i", str(image_archives.rootfs)), 1)
    assert repo_tags(rootless) == []


def test_load_of_an_archive_with_a_corrupted_blob_is_refused(rootless, image_archives,
                                                             tmp_path):
    corrupt = tmp_path / "corrupt.oci.tar"
    _copy_tar_with_bad_layer(image_archives.oci, corrupt)
    assert_error(rootless("image", "load", "-i", str(corrupt)), 1)
    assert repo_tags(rootless) == []


def _copy_tar_with_bad_layer(src: Path, dest: Path) -> None:
    """The same OCI archive, with one byte of the (largest) layer blob changed."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        members = tin.getmembers()
        biggest = max(members, key=lambda m: m.size)
        for member in members:
            data = tin.extractfile(member).read() if member.isfile() else None
            if member is biggest:
                data = data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
            tout.addfile(member, None if data is None else io.BytesIO(data))


@pytest.mark.container
@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_loaded_image_runs_with_its_config(rootless, image_archives, kind):
    ok(rootless("image", "load", "-i", str(getattr(image_archives, kind))))
    # Cmd ["sh"] reads the script from stdin; PATH comes from the image's Env
    out = ok(rootless("run", "--rm", "-i", "busybox:latest",
                      input=f'cat {MARKER_PATH}; echo "$PATH"\n'))
    assert out.splitlines() == [MARKER,
                                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


# ---- ls ----

def test_ls_of_an_empty_store_shows_only_the_header(rootless):
    assert image_rows(rootless) == []


def test_ls_shows_docker_columns(rootless, busybox):
    [row] = image_rows(rootless)
    repository, tag, image_id, created, size = row
    assert (repository, tag) == ("busybox", "latest")
    assert re.fullmatch(r"[0-9a-f]{12}", image_id)
    assert created.endswith(" ago"), created
    assert re.fullmatch(r"\d+(\.\d+)?(B|kB|MB|GB)", size), size


def test_ls_size_is_the_unpacked_size(rootless, busybox, image_archives):
    size = image_rows(rootless)[0][4]
    assert size.endswith("MB"), size
    with tarfile.open(image_archives.rootfs) as tar:
        content = sum(m.size for m in tar.getmembers())
    assert abs(float(size[:-2]) * 1e6 - content) < 0.1e6, (size, content)


def test_ls_lists_each_tag(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "one:a"))
    ok(rootless("image", "import", str(image_archives.rootfs), "two:b"))
    assert sorted(repo_tags(rootless)) == [("one", "a"), ("two", "b")]


# ---- rm ----

def test_rm_untags_and_deletes_the_image(rootless, busybox, image_archives):
    out = ok(rootless("image", "rm", "busybox:latest"))
    assert "Untagged: busybox:latest" in out.splitlines()
    assert f"Deleted: sha256:{oci_config_digest(image_archives.oci)}" in out.splitlines()
    assert repo_tags(rootless) == []


def test_rm_accepts_a_name_without_tag(rootless, busybox):
    ok(rootless("image", "rm", "busybox"))
    assert repo_tags(rootless) == []


def test_rm_of_one_tag_keeps_the_other(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "one:a"))
    ok(rootless("image", "import", str(image_archives.rootfs), "two:b"))
    ok(rootless("image", "rm", "one:a"))
    assert repo_tags(rootless) == [("two", "b")]


def test_rm_of_an_unknown_image_is_an_error(rootless, busybox):
    assert_error(rootless("image", "rm", "no-such-image:1"), 1, "no-such-image")
    assert repo_tags(rootless) == [("busybox", "latest")]


@pytest.mark.container
def test_rm_of_an_image_used_by_a_container_is_refused(rootless, busybox):
    ok(rootless("run", busybox, "true"))
    assert_error(rootless("image", "rm", "busybox:latest"), 1, "busybox")
    assert repo_tags(rootless) == [("busybox", "latest")]
    ok(rootless("run", "--rm", busybox, "true"))


@pytest.mark.container
def test_removed_image_no_longer_runs(rootless, busybox):
    ok(rootless("image", "rm", "busybox:latest"))
    assert_error(rootless("run", "--rm", "--pull", "never", "busybox:latest", "true"), 125,
                 "busybox")


def test_rm_leaves_no_layer_files_behind(rootless, busybox, store):
    ok(rootless("image", "rm", "busybox:latest"))
    left = [p for p in store.rglob("*") if p.is_file() and p.name == "busybox"]
    assert left == []
