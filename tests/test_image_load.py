"""engine/images.py over the transports: load (OCI and docker archives), import,
resolve, list, inspect, remove. Archives are built here, in code; each bad-input case
checks that nothing was left half-written in the store."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from test_layer_unpack import entry, tar_bytes

from rootless.engine.images import (
    ConflictError,
    image_import,
    image_inspect,
    image_list,
    image_load,
    image_remove,
    image_resolve,
)
from rootless.errors import ImageError, NotFoundError
from rootless.image.manifest import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    host_platform,
)
from rootless.store import Store

# ---- building images and archives ----

def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_bytes(layers: list[bytes], cmd=("sh",), created="2024-01-01T00:00:00Z",
                 **extra) -> bytes:
    config = {"architecture": host_platform()["architecture"], "os": "linux",
              "created": created, "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
              **extra}
    return json.dumps(config).encode()


class Image:
    """An image as blobs: config, layers (plain tars; gzipped when `gzip_layers`)."""

    def __init__(self, layers: list[bytes], gzip_layers: bool = False, **config) -> None:
        self.layers = layers
        self.config = config_bytes(layers, **config)
        self.blobs = [gzip.compress(layer, mtime=0) if gzip_layers else layer
                      for layer in layers]
        layer_type = OCI_LAYER_GZIP if gzip_layers else OCI_LAYER
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": layer_type, "digest": sha(b), "size": len(b)}
                       for b in self.blobs]}).encode()

    @property
    def id(self) -> str:
        return sha(self.config)


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def oci_archive(path: Path, entries: list[tuple[Image, dict]], extra_blobs=(),
                index_entries: list[dict] | None = None) -> Path:
    """An OCI layout tar; each entry an image with the annotations of its index entry."""
    blobs: dict[str, bytes] = {}
    manifests = []
    for image, notes in entries:
        for data in (image.config, image.manifest, *image.blobs):
            blobs[sha(data)] = data
        manifests.append({"mediaType": OCI_MANIFEST, "digest": sha(image.manifest),
                          "size": len(image.manifest), "annotations": notes})
    for data in extra_blobs:
        blobs[sha(data)] = data
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": index_entries if index_entries is not None else manifests}
    with tarfile.open(path, "w") as tar:
        add_file(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add_file(tar, "index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            add_file(tar, f"blobs/sha256/{digest[7:]}", data)
    return path


def docker_archive(path: Path, entries: list[tuple[Image, list[str]]]) -> Path:
    """`docker save` format; a layer shared by images is stored once, linked after."""
    manifest, written = [], {}
    with tarfile.open(path, "w") as tar:
        for image, tags in entries:
            config_name = f"{image.id[7:]}.json"
            add_file(tar, config_name, image.config)
            layer_names = []
            for layer in image.layers:
                name = f"{sha(layer)[7:]}/layer.tar"
                if sha(layer) not in written:
                    written[sha(layer)] = name
                    add_file(tar, name, layer)
                layer_names.append(name)
            manifest.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
        add_file(tar, "manifest.json", json.dumps(manifest).encode())
    return path


LAYER1 = tar_bytes(entry("bin", "dir"), entry("bin/sh", data=b"#!fake", mode=0o755),
                   entry("etc", "dir"), entry("etc/os-release", data=b"ID=test\n"),
                   entry("etc/old", data=b"old"))
LAYER2 = tar_bytes(entry("etc", "dir"), entry("etc/.wh.old", data=b""),
                   entry("etc/new", data=b"new"))


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


def store_is_empty(store) -> bool:
    return (store.db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
            and store.db.execute("SELECT COUNT(*) FROM layers").fetchone()[0] == 0
            and os.listdir(store.layers_dir) == [] and os.listdir(store.tmp_dir) == [])


# ---- load: OCI ----

def test_load_oci_archive(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [(image, {"org.opencontainers.image.ref.name":
                                                     "busybox:latest"})])
    assert image_load(store, str(path)) == ["busybox:latest"]
    record = image_resolve(store, "busybox")
    assert record.id == image.id
    assert record.names == ["busybox:latest"]
    assert record.config["config"]["Cmd"] == ["sh"]
    assert (Path(record.layer_dirs[0]) / "etc/os-release").read_bytes() == b"ID=test\n"


def test_load_two_layers_lowest_first_with_whiteout(store, tmp_path):
    image = Image([LAYER1, LAYER2], gzip_layers=True)
    path = oci_archive(tmp_path / "a.tar", [(image, {"io.containerd.image.name":
                                                     "example.com/two:1"})])
    assert image_load(store, str(path)) == ["example.com/two:1"]
    lower, upper = map(Path, image_resolve(store, "example.com/two:1").layer_dirs)
    assert (lower / "etc/old").read_bytes() == b"old"
    st = os.lstat(upper / "etc/old")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (upper / "etc/new").read_bytes() == b"new"
    assert lower.parent == upper.parent == store.layers_dir


def test_load_same_image_twice_reuses_layers(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [(image, {"org.opencontainers.image.ref.name":
                                                     "a:1"})])
    image_load(store, str(path))
    inode = os.stat(image_resolve(store, "a:1").layer_dirs[0]).st_ino
    image_load(store, str(path))
    assert os.stat(image_resolve(store, "a:1").layer_dirs[0]).st_ino == inode
    assert len(os.listdir(store.layers_dir)) == 1


def test_index_entries_naming_one_image_give_it_both_names(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [
        (image, {"org.opencontainers.image.ref.name": "x:1"}),
        (image, {"org.opencontainers.image.ref.name": "x:2"})])
    assert image_load(store, str(path)) == ["x:1", "x:2"]
    assert image_resolve(store, "x:1").id == image_resolve(store, "x:2").id


def test_bare_tag_ref_name_loads_untagged(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [(image, {"org.opencontainers.image.ref.name":
                                                     "latest"})])
    assert image_load(store, str(path)) == [image.id]
    assert [(r.repository, r.tag) for r in image_list(store)] == [("<none>", "<none>")]


def test_multi_platform_index_picks_this_host(store, tmp_path):
    mine, other = Image([LAYER1]), Image([LAYER2], cmd=("other",))
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(other.manifest), "size": len(other.manifest),
         "platform": {"os": "linux", "architecture": "s390x-nope"}},
        {"mediaType": OCI_MANIFEST, "digest": sha(mine.manifest), "size": len(mine.manifest),
         "platform": host_platform()}]}).encode()
    blobs = [mine.config, mine.manifest, *mine.blobs, other.config, other.manifest,
             *other.blobs, inner]
    path = oci_archive(tmp_path / "a.tar", [], extra_blobs=blobs, index_entries=[
        {"mediaType": OCI_INDEX, "digest": sha(inner), "size": len(inner),
         "annotations": {"org.opencontainers.image.ref.name": "multi:1"}}])
    image_load(store, str(path))
    assert image_resolve(store, "multi:1").id == mine.id


def test_multi_platform_index_without_this_host_refused(store, tmp_path):
    other = Image([LAYER1])
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(other.manifest), "size": len(other.manifest),
         "platform": {"os": "windows", "architecture": "amd64"}}]}).encode()
    path = oci_archive(tmp_path / "a.tar", [], extra_blobs=[other.manifest, inner],
                       index_entries=[{"mediaType": OCI_INDEX, "digest": sha(inner),
                                       "size": len(inner)}])
    with pytest.raises(ImageError, match="no image for linux/"):
        image_load(store, str(path))


# ---- load: docker-archive ----

def test_load_docker_archive_with_several_images(store, tmp_path):
    one, two = Image([LAYER1]), Image([LAYER1, LAYER2], cmd=("two",))
    path = docker_archive(tmp_path / "d.tar", [(one, ["one:latest", "one:v1"]),
                                               (two, ["localhost:5000/two:2"])])
    assert image_load(store, str(path)) == ["one:latest", "one:v1", "localhost:5000/two:2"]
    assert image_resolve(store, "one:v1").id == one.id
    two_record = image_resolve(store, "localhost:5000/two:2")
    assert two_record.config["config"]["Cmd"] == ["two"]
    assert two_record.layer_dirs[0] == image_resolve(store, "one").layer_dirs[0]


def test_docker_archive_with_symlinked_layer(store, tmp_path):
    image = Image([LAYER1])
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tar:
        add_file(tar, "cfg.json", image.config)
        add_file(tar, "real/layer.tar", LAYER1)
        link = tarfile.TarInfo("shared/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../real/layer.tar"
        tar.addfile(link)
        add_file(tar, "manifest.json", json.dumps([{
            "Config": "cfg.json", "RepoTags": ["linked:1"],
            "Layers": ["shared/layer.tar"]}]).encode())
    image_load(store, str(path))
    assert image_resolve(store, "linked:1").id == image.id


def test_load_compressed_archive(store, tmp_path):
    image = Image([LAYER1])
    plain = docker_archive(tmp_path / "d.tar", [(image, ["gz:1"])])
    packed = tmp_path / "d.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert image_load(store, str(packed)) == ["gz:1"]
    assert os.listdir(store.tmp_dir) == []


# ---- load: bad input ----

def test_not_an_image_archive(store, tmp_path):
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        add_file(tar, "hello.txt", b"hi")
    with pytest.raises(ImageError, match="neither a docker-archive"):
        image_load(store, str(path))
    assert store_is_empty(store)


def test_not_a_tar_at_all(store, tmp_path):
    path = tmp_path / "x.tar"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(ImageError, match="not a valid tar archive"):
        image_load(store, str(path))


def test_missing_file(store, tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        image_load(store, str(tmp_path / "nope.tar"))


def test_tampered_layer_blob_refused(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [(image, {"org.opencontainers.image.ref.name":
                                                     "t:1"})])
    data = bytearray(path.read_bytes())
    at = data.find(b"#!fake")
    data[at:at + 6] = b"#!evil"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="does not match its digest"):
        image_load(store, str(path))
    assert store_is_empty(store)
    with pytest.raises(NotFoundError):
        image_resolve(store, "t:1")


def test_truncated_archive_refused(store, tmp_path):
    image = Image([tar_bytes(entry("big", data=os.urandom(200_000)))])
    path = docker_archive(tmp_path / "d.tar", [(image, ["trunc:1"])])
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError):
        image_load(store, str(path))
    assert store_is_empty(store)


def test_manifest_digest_mismatch_refused(store, tmp_path):
    image = Image([LAYER1])
    path = oci_archive(tmp_path / "a.tar", [(image, {})])
    data = path.read_bytes()
    forged = image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    assert len(forged) == len(image.manifest) + 1
    path.write_bytes(data.replace(image.manifest + b"\0", forged))  # same tar block size
    with pytest.raises(ImageError, match="does not match its digest"):
        image_load(store, str(path))
    assert store_is_empty(store)


def test_blob_missing_from_archive_refused(store, tmp_path):
    image = Image([LAYER1])
    wrong = {"mediaType": OCI_MANIFEST, "digest": sha(b"something else"),
             "size": len(image.manifest)}
    path = oci_archive(tmp_path / "a.tar", [(image, {})], index_entries=[wrong])
    with pytest.raises(ImageError, match="missing from the archive"):
        image_load(store, str(path))
    assert store_is_empty(store)


def test_config_diff_id_mismatch_refused(store, tmp_path):
    image = Image([LAYER1])
    bad_config = config_bytes([LAYER2])  # says the layer is LAYER2
    image.config = bad_config
    image.manifest = image.manifest.replace(
        sha(config_bytes([LAYER1])).encode(), sha(bad_config).encode()).replace(
        f'"size": {len(config_bytes([LAYER1]))}'.encode(), f'"size": {len(bad_config)}'.encode())
    path = oci_archive(tmp_path / "a.tar", [(image, {"org.opencontainers.image.ref.name":
                                                     "bad:1"})])
    with pytest.raises(ImageError, match="not what the image config says"):
        image_load(store, str(path))
    assert store_is_empty(store)


def test_hostile_layer_refused_and_store_unchanged(store, tmp_path):
    image = Image([tar_bytes(entry("../../escape", data=b"pwned"))])
    path = docker_archive(tmp_path / "d.tar", [(image, ["evil:1"])])
    with pytest.raises(ImageError, match="climbs above the layer root"):
        image_load(store, str(path))
    assert store_is_empty(store)
    assert not (tmp_path / "escape").exists()


def test_layer_and_config_count_mismatch_refused(store, tmp_path):
    image = Image([LAYER1])
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tar:
        add_file(tar, "c.json", image.config)
        add_file(tar, "l/layer.tar", LAYER1)
        add_file(tar, "manifest.json", json.dumps([{
            "Config": "c.json", "RepoTags": ["n:1"],
            "Layers": ["l/layer.tar", "l/layer.tar"]}]).encode())
    with pytest.raises(ImageError, match="lists 1 layers"):
        image_load(store, str(path))


# ---- import ----

def test_import_rootfs_tarball(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(LAYER1)
    image_id = image_import(store, str(rootfs), "imported:1")
    record = image_resolve(store, "imported:1")
    assert record.id == image_id
    config = record.config
    assert config["os"] == "linux"
    assert config["architecture"] == host_platform()["architecture"]
    assert "Cmd" not in config["config"] and "Env" not in config["config"]
    assert config["rootfs"]["diff_ids"] == [sha(LAYER1)]
    assert config["history"][0]["comment"] == f"Imported from {rootfs}"
    assert len(record.layer_dirs) == 1
    assert (Path(record.layer_dirs[0]) / "bin/sh").read_bytes() == b"#!fake"


def test_import_gzip_tarball_keeps_diff_id(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar.gz"
    rootfs.write_bytes(gzip.compress(LAYER1))
    image_import(store, str(rootfs), "gz:1")
    assert image_resolve(store, "gz:1").config["rootfs"]["diff_ids"] == [sha(LAYER1)]


def test_import_with_changes(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(LAYER1)
    image_import(store, str(rootfs), "changed", changes=[
        'CMD ["/bin/sh", "-c", "echo hi"]', "ENV A=1 B=2", "WORKDIR /srv",
        "USER 1000:1000", "EXPOSE 80", "LABEL k=v", "ENTRYPOINT run me"], message="msg")
    config = image_resolve(store, "changed:latest").config
    assert config["config"] == {
        "Cmd": ["/bin/sh", "-c", "echo hi"], "Env": ["A=1", "B=2"], "WorkingDir": "/srv",
        "User": "1000:1000", "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"},
        "Entrypoint": ["/bin/sh", "-c", "run me"]}
    assert config["history"][0]["comment"] == "msg"


def test_import_without_name_is_untagged(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(LAYER1)
    image_id = image_import(store, str(rootfs))
    assert image_resolve(store, image_id).names == []


def test_import_invalid_name_refused_before_reading(store, tmp_path):
    with pytest.raises(ImageError, match="invalid reference format"):
        image_import(store, str(tmp_path / "missing.tar"), "Bad:Name")


def test_import_hostile_tarball_refused(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes(entry("ok", data=b""), entry("h", "hardlink",
                                                              link="/etc/passwd")))
    with pytest.raises(ImageError, match="not in this layer"):
        image_import(store, str(rootfs), "evil")
    assert store_is_empty(store)


# ---- resolve ----

@pytest.fixture
def loaded(store, tmp_path):
    image = Image([LAYER1])
    path = docker_archive(tmp_path / "d.tar", [(image, ["busybox:latest", "busybox:1"])])
    image_load(store, str(path))
    return image


def test_resolve_by_id_forms(store, loaded):
    for name in (loaded.id, loaded.id[7:], loaded.id[7:19], loaded.id[:19]):
        assert image_resolve(store, name).id == loaded.id


def test_resolve_unknown_name(store, loaded):
    with pytest.raises(NotFoundError) as e:
        image_resolve(store, "nothere:1")
    assert str(e.value) == "no such image: nothere:1 (try: rootless pull nothere:1)"


def test_resolve_invalid_name(store):
    with pytest.raises(ImageError, match="invalid reference format"):
        image_resolve(store, "UPPER")


def test_resolve_ambiguous_prefix(store, tmp_path):
    images, seen = [], {}
    for i in range(64):
        image = Image([LAYER1], created=f"2024-01-01T00:00:{i:02d}Z")
        first = image.id[7]
        if first in seen:
            images = [seen[first], image]
            break
        seen[first] = image
    path = docker_archive(tmp_path / "d.tar", [(images[0], []), (images[1], [])])
    image_load(store, str(path))
    with pytest.raises(ImageError, match="ambiguous"):
        image_resolve(store, images[0].id[7])


def test_resolve_reports_a_missing_layer(store, loaded):
    for name in os.listdir(store.layers_dir):
        os.rename(store.layers_dir / name, store.tmp_dir / name)
    with pytest.raises(ImageError, match="missing from the store"):
        image_resolve(store, "busybox")


# ---- list and inspect ----

def test_list_one_row_per_tag(store, loaded):
    rows = image_list(store)
    assert sorted((r.repository, r.tag) for r in rows) == [("busybox", "1"),
                                                            ("busybox", "latest")]
    assert {r.id for r in rows} == {loaded.id}
    assert rows[0].size == len(b"#!fake") + len(b"ID=test\n") + len(b"old")


def test_list_filtered_by_reference(store, loaded):
    assert [r.tag for r in image_list(store, "busybox:1")] == ["1"]
    assert len(image_list(store, "busybox")) == 2
    assert image_list(store, "other") == []


def test_inspect(store, loaded):
    [data] = image_inspect(store, ["busybox:1"])
    assert data["Id"] == loaded.id
    assert data["RepoTags"] == ["busybox:1", "busybox:latest"]
    assert data["Config"]["Cmd"] == ["sh"]
    assert data["RootFS"]["Layers"] == [sha(LAYER1)]
    assert data["Os"] == "linux"


# ---- remove ----

def add_container(store, image_id: str, state: str = "exited", pid: int | None = None):
    cid = os.urandom(32).hex()
    with store.db:
        store.db.execute("INSERT INTO containers (id, name, image_id, image_name, state, pid)"
                         " VALUES (?,?,?,?,?,?)", (cid, f"c{cid[:6]}", image_id, "x", state,
                                                   pid))
    return cid


def test_rmi_of_one_of_two_tags_only_untags(store, loaded):
    assert image_remove(store, ["busybox:1"]) == ["Untagged: busybox:1"]
    assert image_resolve(store, "busybox").id == loaded.id


def test_rmi_of_last_tag_deletes_image_layers_and_blobs(store, loaded):
    image_remove(store, ["busybox:1"])
    lines = image_remove(store, ["busybox"])
    assert lines[:2] == ["Untagged: busybox:latest", f"Deleted: {loaded.id}"]
    assert store.db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
    assert store.db.execute("SELECT COUNT(*) FROM layers").fetchone()[0] == 0
    assert os.listdir(store.layers_dir) == []
    assert os.listdir(store.blobs_dir) == []


def test_rmi_by_id_removes_all_tags_of_one_repository(store, loaded):
    lines = image_remove(store, [loaded.id[7:19]])
    assert sorted(lines[:2]) == ["Untagged: busybox:1", "Untagged: busybox:latest"]
    assert f"Deleted: {loaded.id}" in lines


def test_rmi_keeps_layers_other_images_use(store, tmp_path):
    one, two = Image([LAYER1]), Image([LAYER1, LAYER2])
    image_load(store, str(docker_archive(tmp_path / "d.tar", [(one, ["one:1"]),
                                                                (two, ["two:1"])])))
    image_remove(store, ["two:1"])
    assert (Path(image_resolve(store, "one:1").layer_dirs[0]) / "etc/os-release").is_file()
    assert len(os.listdir(store.layers_dir)) == 1


def test_rmi_refuses_image_used_by_a_container(store, loaded):
    image_remove(store, ["busybox:1"])
    cid = add_container(store, loaded.id)
    with pytest.raises(ConflictError) as e:
        image_remove(store, ["busybox"])
    assert str(e.value) == ('conflict: unable to remove repository reference "busybox" '
                            f"(must force) - container {cid[:12]} is using its referenced "
                            f"image {loaded.id[7:19]}")
    assert image_resolve(store, "busybox").id == loaded.id


def test_rmi_force_with_stopped_container_untags_but_keeps_layers(store, loaded):
    add_container(store, loaded.id)
    lines = image_remove(store, ["busybox"], force=True)
    assert lines == ["Untagged: busybox:latest"]
    record = image_resolve(store, loaded.id)
    assert all(os.path.isdir(path) for path in record.layer_dirs)


def test_rmi_refuses_running_container_image_even_forced(store, loaded):
    add_container(store, loaded.id, "running", os.getpid())
    with pytest.raises(ConflictError, match="cannot be forced"):
        image_remove(store, [loaded.id], force=True)


def test_rmi_by_id_with_several_repositories_needs_force(store, tmp_path):
    image = Image([LAYER1])
    image_load(store, str(docker_archive(tmp_path / "d.tar", [(image, ["a:1", "b:1"])])))
    with pytest.raises(ConflictError, match="referenced in multiple repositories"):
        image_remove(store, [image.id])
    assert f"Deleted: {image.id}" in image_remove(store, [image.id], force=True)


def test_rmi_unknown(store):
    with pytest.raises(NotFoundError, match="no such image: ghost"):
        image_remove(store, ["ghost"])


# ---- concurrency ----

def test_concurrent_loads_of_one_archive(store, tmp_path):
    image = Image([tar_bytes(*[entry(f"f{i}", data=os.urandom(2000)) for i in range(300)])])
    path = docker_archive(tmp_path / "d.tar", [(image, ["conc:1"])])
    code = textwrap.dedent(f"""
        from rootless.store import Store
        from rootless.engine.images import image_load
        image_load(Store.open({str(store.root)!r}), {str(path)!r})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert image_resolve(store, "conc:1").id == image.id
    assert len(os.listdir(store.layers_dir)) == 1
    assert os.listdir(store.tmp_dir) == []


# ---- the store as a source ----

def test_store_to_store_copy_keeps_digests(store, tmp_path):
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.storage import StoreDestination, StoreSource

    image = Image([LAYER1, LAYER2], gzip_layers=True)
    image_load(store, str(oci_archive(tmp_path / "a.tar", [
        (image, {"org.opencontainers.image.ref.name": "src:1"})])))
    other = Store.open(tmp_path / "other")
    try:
        source = StoreSource(store, image.id)
        assert source.manifest()[0] == image.manifest
        assert copy_image(source, StoreDestination(other)) == image.id
        record = image_resolve(other, "src:1")
        assert (Path(record.layer_dirs[1]) / "etc/new").read_bytes() == b"new"
        assert sorted(os.listdir(other.blobs_dir)) == sorted(os.listdir(store.blobs_dir))
    finally:
        other.close()
