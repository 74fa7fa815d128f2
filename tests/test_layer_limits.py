"""Layers cannot exhaust the disk: what a layer writes is bounded, counted as written.

- ROOTLESS_LAYER_LIMIT bounds the data bytes one layer writes when unpacked; unset, the
  bound is the free space of the store's filesystem less a reserve. Past it the layer is
  refused with one line naming the layer and the limit, and leaves nothing behind.
- Sparse tar members (GNU 'S', PAX sparse 0.0, 0.1, 1.0) are written as holes: a 1.5 KB
  tar declaring 16 GiB writes a few blocks, and only its data bytes count.
- A blob longer than its manifest declares is refused as soon as it is longer.

Every hostile tar here is built in code; the gzip bombs are gzip members of 16 MiB of
zeros repeated (about 16 KB each), so 5 GiB of tar costs 5 MB to build and to serve.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import ROOTLESS_BIN, assert_error, ok
from registry_server import TinyImage, isolate_registry_client, reply

BLOCK = 512
END = bytes(2 * BLOCK)
GIB = 1 << 30
SPARSE_SIZE = 16 * GIB
# (offset, data) of the sparse file's data segments: its start, its middle, its end
SEGMENTS = [(0, b"head"), (8 * GIB, b"middle"), (SPARSE_SIZE - 5, b"tail\n")]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# how long a command may run away (writing gigabytes) before the test fails: a bound,
# not a timing; 16 GiB written densely takes far longer than SPARSE_RUNAWAY here, the
# few blocks of its holes well under a second
NO_RUNAWAY = 60
SPARSE_RUNAWAY = 20


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- sparse tars, by hand (tarfile cannot write sparse members) ----

def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def _octal(value: int) -> bytes:
    """A 12-byte numeric field: NUL-terminated octal, or 12 digits when it needs them."""
    return b"%011o\0" % value if value < 8 ** 11 else b"%012o" % value


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE,
            fmt: int = tarfile.USTAR_FORMAT) -> bytearray:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, 0o644, 1700000000
    return bytearray(info.tobuf(fmt))


def _checksummed(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _pax_records(pairs) -> bytes:
    """PAX records "LEN KEY=VALUE\\n", LEN counting itself; keys may repeat (0.0)."""
    out = b""
    for key, value in pairs:
        record = f" {key}={value}\n".encode()
        length = len(record) + 1
        while len(str(length)) + len(record) != length:
            length = len(str(length)) + len(record)
        out += str(length).encode() + record
    return out


def _pax_member(pairs, name: str, stored: bytes) -> bytes:
    records = _pax_records(pairs)
    return (bytes(_header(f"PaxHeaders/{name}", len(records), tarfile.XHDTYPE))
            + _pad(records) + bytes(_header(name, len(stored))) + _pad(stored))


def gnu_sparse(name: str, size: int, segments) -> bytes:
    """Old GNU type 'S': up to four (offset, length) pairs in the header, the real size
    at byte 483, then the data segments one after the other."""
    data = b"".join(d for _, d in segments)
    header = _header(name, len(data), tarfile.GNUTYPE_SPARSE, tarfile.GNU_FORMAT)
    for i, (offset, chunk) in enumerate(segments):
        header[386 + 24 * i:398 + 24 * i] = _octal(offset)
        header[398 + 24 * i:410 + 24 * i] = _octal(len(chunk))
    header[483:495] = _octal(size)
    return _checksummed(header) + _pad(data)


def pax00_sparse(name: str, size: int, segments) -> bytes:
    pairs = [("GNU.sparse.size", size), ("GNU.sparse.numblocks", len(segments))]
    for offset, chunk in segments:
        pairs += [("GNU.sparse.offset", offset), ("GNU.sparse.numbytes", len(chunk))]
    return _pax_member(pairs, name, b"".join(d for _, d in segments))


def pax01_sparse(name: str, size: int, segments) -> bytes:
    spans = ",".join(f"{offset},{len(chunk)}" for offset, chunk in segments)
    pairs = [("GNU.sparse.size", size), ("GNU.sparse.numblocks", len(segments)),
             ("GNU.sparse.name", name), ("GNU.sparse.map", spans)]
    return _pax_member(pairs, f"GNUSparseFile.0/{name}", b"".join(d for _, d in segments))


def pax10_sparse(name: str, size: int, segments) -> bytes:
    """PAX sparse 1.0: the map is text at the start of the data, padded to a block."""
    lines = [len(segments)] + [n for offset, chunk in segments for n in (offset, len(chunk))]
    stored = _pad("".join(f"{n}\n" for n in lines).encode())
    stored += b"".join(d for _, d in segments)
    pairs = [("GNU.sparse.major", 1), ("GNU.sparse.minor", 0), ("GNU.sparse.name", name),
             ("GNU.sparse.realsize", size)]
    return _pax_member(pairs, f"GNUSparseFile.0/{name}", stored)


SPARSE_FORMATS = {"gnu": gnu_sparse, "pax-0.0": pax00_sparse, "pax-0.1": pax01_sparse,
                  "pax-1.0": pax10_sparse}


def sparse_tar(fmt: str, segments=SEGMENTS, size: int = SPARSE_SIZE) -> bytes:
    return SPARSE_FORMATS[fmt]("big", size, segments) + END


# ---- gzip bombs and image archives ----

def gzip_bomb(path: Path, size: int) -> Path:
    """A gzip'd tar of one file of `size` zero bytes (a multiple of 16 MiB): gzip
    members of 16 MiB of zeros, one after another (a valid multi-member gzip)."""
    chunk = 16 << 20
    zeros = gzip.compress(bytes(chunk), compresslevel=9, mtime=0)
    info = tarfile.TarInfo("zeros")
    info.size, info.mode = size, 0o644
    with open(path, "wb") as out:
        out.write(gzip.compress(info.tobuf(tarfile.PAX_FORMAT), mtime=0))
        for _ in range(size // chunk):
            out.write(zeros)
        out.write(gzip.compress(END, mtime=0))
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def image_blobs(layers: list[bytes], declared: list[int] | None = None,
                diff_ids: list[str] | None = None) -> tuple[bytes, bytes]:
    """(config, manifest) of an image of gzip `layers` (sizes as `declared`, or their
    own). Without `diff_ids` they are made up: what most tests here test fails before
    they are checked, and a bomb's would cost hashing gigabytes."""
    diff_ids = diff_ids or ["sha256:" + f"{i + 1:064x}" for i in range(len(layers))]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    sizes = declared or [len(layer) for layer in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha(layer), "size": size}
                   for layer, size in zip(layers, sizes)]}).encode()
    return config, manifest


def oci_archive(path: Path, layers: list[bytes], declared: list[int] | None = None,
                name: str = "bomb:1", diff_ids: list[str] | None = None) -> Path:
    config, manifest = image_blobs(layers, declared, diff_ids)
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", index)
        for blob in (config, manifest, *layers):
            _add(tar, f"blobs/sha256/{sha(blob)[7:]}", blob)
    return path


def layer_digest(path: Path) -> str:
    return sha(path.read_bytes())


def assert_store_clean(rootless, store: Path) -> None:
    """No image, no layer (whole or half), nothing in tmp/."""
    assert ok(rootless("images", "-q")) == ""
    for sub in ("tmp", "layers"):
        d = store / sub
        assert not d.exists() or not list(d.iterdir()), f"{sub}/: {list(d.iterdir())}"


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """5 MB of gzip that inflate to a 5 GiB tar."""
    return gzip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.tar.gz", 5 * GIB)


@pytest.fixture(scope="module")
def bomb_archive(tmp_path_factory, bomb) -> Path:
    return oci_archive(tmp_path_factory.mktemp("bomb-oci") / "bomb.oci.tar",
                       [bomb.read_bytes()])


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path, "30")


# ---- the limit ----

def test_a_gzip_bomb_layer_fails_at_the_layer_limit(rootless, bomb_archive, bomb):
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "8M"
    assert_error(rootless("load", "-i", str(bomb_archive), timeout=NO_RUNAWAY), 1,
                 f"layer {layer_digest(bomb)[:19]}", "more than 8 MiB",
                 "ROOTLESS_LAYER_LIMIT")


def test_gzip_bombs_unpacked_in_worker_processes_fail_at_the_layer_limit(
        rootless, store, tmp_path, bomb):
    other = gzip_bomb(tmp_path / "other.tar.gz", GIB)  # two layers: two workers
    archive = oci_archive(tmp_path / "two.oci.tar", [bomb.read_bytes(), other.read_bytes()])
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "8M"
    assert_error(rootless("load", "-i", str(archive), timeout=NO_RUNAWAY), 1,
                 "more than 8 MiB", "ROOTLESS_LAYER_LIMIT")
    assert_store_clean(rootless, store)


def test_a_gzip_bomb_past_the_limit_leaves_the_store_clean(rootless, store, bomb_archive):
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "8M"
    refused = rootless("load", "-i", str(bomb_archive), timeout=NO_RUNAWAY)
    assert refused.returncode == 1 and "ROOTLESS_LAYER_LIMIT" in refused.stderr, refused
    assert_store_clean(rootless, store)


def test_an_imported_gzip_bomb_fails_at_the_layer_limit(rootless, store, tmp_path):
    small = gzip_bomb(tmp_path / "bomb.tar.gz", GIB)  # import hashes it all first
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "8M"
    assert_error(rootless("import", str(small), "bomb:1", timeout=NO_RUNAWAY), 1,
                 "more than 8 MiB", "ROOTLESS_LAYER_LIMIT")
    assert_store_clean(rootless, store)


def test_a_pulled_gzip_bomb_fails_at_the_layer_limit(reg, fake, store, bomb):
    blob = bomb.read_bytes()
    image = TinyImage()
    image.layers = [blob]
    image.manifest_data["layers"][0].update(digest=sha(blob), size=len(blob))
    image.manifest = json.dumps(image.manifest_data).encode()
    image.serve(fake)
    reg.env["ROOTLESS_LAYER_LIMIT"] = "8M"
    assert_error(reg("pull", "-q", "--tls-verify=false", f"{fake.host}/tiny:1",
                     timeout=NO_RUNAWAY), 1,
                 f"layer {sha(blob)[:19]}", "more than 8 MiB", "ROOTLESS_LAYER_LIMIT")
    assert_store_clean(reg, store)


def test_the_limit_is_on_data_bytes_a_layer_at_it_loads_and_one_byte_more_does_not(
        rootless, store, tmp_path):
    limit = 1 << 20
    at = TinyImage.tar_of({"a": bytes(limit // 2), "b": bytes(limit // 2)})
    over = TinyImage.tar_of({"a": bytes(limit // 2), "b": bytes(limit // 2 + 1)})
    rootless.env["ROOTLESS_LAYER_LIMIT"] = str(limit)
    ok(rootless("load", "-i", str(oci_archive(tmp_path / "at.tar", [gzip.compress(at)],
                                              name="at:1", diff_ids=[sha(at)]))))
    assert_error(rootless("load", "-i", str(oci_archive(
        tmp_path / "over.tar", [gzip.compress(over)], name="over:1"))), 1,
        "more than 1 MiB", "ROOTLESS_LAYER_LIMIT")


def test_a_bad_layer_limit_is_refused_before_any_work(rootless, store, tmp_path):
    archive = oci_archive(tmp_path / "small.tar", [gzip.compress(TinyImage().tar)])
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "lots"
    assert_error(rootless("load", "-i", str(archive)), 125,
                 "invalid ROOTLESS_LAYER_LIMIT 'lots'")
    assert_store_clean(rootless, store)


def test_without_a_limit_a_layer_is_bounded_by_free_space_less_a_reserve(
        rootless, bomb_archive, tmp_path):
    """The store on a 64 MiB tmpfs (mounted in a user and mount namespace of the test's
    own): the bomb stops at its free space less the reserve, not at ENOSPC."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare program")
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=64m rl-test {small} || exit 99; "
              f"ROOTLESS_ROOT={small}/store exec \"$0\" load -i \"$1\"")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(ROOTLESS_BIN),
                           str(bomb_archive)],
                          env={**rootless.env, "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, timeout=NO_RUNAWAY)
    if done.returncode == 99 or done.stderr.startswith("unshare:"):
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr}")
    assert_error(done, 1, "what the store's filesystem has free beyond its 3.2 MiB reserve")


# ---- sparse members ----

def _layer_file(store: Path, name: str) -> Path:
    found = [layer / name for layer in (store / "layers").iterdir()
             if (layer / name).exists()]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_a_sparse_file_of_16_gib_unpacks_as_holes(rootless, store, tmp_path, fmt):
    tar = tmp_path / "sparse.tar"
    tar.write_bytes(sparse_tar(fmt))
    assert tar.stat().st_size < 8 * BLOCK
    ok(rootless("import", str(tar), "sparse:1", timeout=SPARSE_RUNAWAY))
    big = _layer_file(store, "big")
    assert big.stat().st_size == SPARSE_SIZE
    assert big.stat().st_blocks * 512 <= 1 << 20  # three data blocks, not 16 GiB
    with open(big, "rb") as f:
        for offset, data in SEGMENTS:
            assert os.pread(f.fileno(), len(data), offset) == data
        assert os.pread(f.fileno(), 8, 4 * GIB) == bytes(8)


@pytest.mark.parametrize("fmt", ["gnu", "pax-1.0"])
def test_only_the_data_of_a_sparse_file_counts_against_the_limit(rootless, tmp_path, fmt):
    tar = tmp_path / "sparse.tar"
    tar.write_bytes(sparse_tar(fmt))
    rootless.env["ROOTLESS_LAYER_LIMIT"] = "1M"
    ok(rootless("import", str(tar), "sparse:1", timeout=SPARSE_RUNAWAY))


@pytest.mark.container
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_a_container_sees_the_sparse_file_at_its_declared_size(rootless, image_archives,
                                                               tmp_path, fmt):
    with tarfile.open(image_archives.rootfs) as rootfs:
        rootfs.getmembers()
        end = rootfs.offset  # where its end-of-archive blocks begin
    tar = tmp_path / "rootfs-and-sparse.tar"
    tar.write_bytes(image_archives.rootfs.read_bytes()[:end] + sparse_tar(fmt))
    ok(rootless("import", str(tar), "sparse:1", timeout=SPARSE_RUNAWAY))
    out = ok(rootless("run", "--rm", "sparse:1", "sh", "-c",
                      f"stat -c %s /big; dd if=/big bs=1 skip={SPARSE_SIZE - 5} count=5 "
                      "2>/dev/null; dd if=/big bs=1 count=4 2>/dev/null"))
    assert out == f"{SPARSE_SIZE}\ntail\nhead"


@pytest.mark.parametrize("segments,reason", [
    ([(8 * GIB, b"middle"), (0, b"head")], "out of order or overlapping"),
    ([(0, b"head"), (2, b"overlap")], "out of order or overlapping"),
    ([(SPARSE_SIZE - 2, b"beyond")], "outside its size"),
])
def test_a_sparse_map_that_is_not_in_order_inside_the_file_is_refused(
        rootless, store, tmp_path, segments, reason):
    tar = tmp_path / "sparse.tar"
    tar.write_bytes(sparse_tar("pax-0.1", segments))
    assert_error(rootless("import", str(tar), "sparse:1", timeout=SPARSE_RUNAWAY), 1,
                 "sparse entry 'big'", reason, "refused")
    assert_store_clean(rootless, store)


def test_a_pax_header_larger_than_1_mib_is_refused_before_it_is_read(rootless, store,
                                                                     tmp_path):
    header = bytes(_header("PaxHeaders/x", 2 * GIB, tarfile.XHDTYPE, tarfile.GNU_FORMAT))
    layer = tmp_path / "pax.tar.gz"
    with open(layer, "wb") as out:  # 2 GiB of zeros as the header's "records"
        out.write(gzip.compress(header, mtime=0))
        zeros = gzip.compress(bytes(16 << 20), mtime=0)
        for _ in range(2 * GIB // (16 << 20)):
            out.write(zeros)
        out.write(gzip.compress(END, mtime=0))
    archive = oci_archive(tmp_path / "pax.oci.tar", [layer.read_bytes()])
    assert_error(rootless("load", "-i", str(archive), timeout=NO_RUNAWAY), 1,
                 "not a valid tar archive", "pax header of 2147483648 bytes")
    assert_store_clean(rootless, store)


# ---- declared sizes ----

def test_a_loaded_blob_larger_than_its_manifest_declares_is_refused(rootless, store,
                                                                    tmp_path):
    layer = gzip.compress(TinyImage.tar_of({"x": os.urandom(1 << 20)}))
    archive = oci_archive(tmp_path / "long.tar", [layer], declared=[1000])
    assert_error(rootless("load", "-i", str(archive)), 1,
                 f"blob {sha(layer)}", "larger than the 1000 bytes its manifest declares")
    assert_store_clean(rootless, store)


def test_a_pulled_blob_longer_than_its_manifest_declares_is_cut_off(reg, fake, store):
    image = TinyImage()
    declared = len(image.layer)

    def endless(handler) -> None:  # far more than declared (64 MiB, not forever: the
        handler.send_response(200)  # old code read it all)
        handler.send_header("Content-Length", str(64 << 20))
        handler.end_headers()
        try:
            for _ in range(64):
                handler.wfile.write(bytes(1 << 20))
        except OSError:
            pass  # the client hung up: what it should do

    image.serve(fake)
    fake.routes[f"/v2/tiny/blobs/{sha(image.layer)}"] = endless
    assert_error(reg("pull", "-q", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 f"larger than the {declared} bytes its manifest declares")
    assert_store_clean(reg, store)


def test_a_config_declared_larger_than_4_mib_is_refused_before_it_is_fetched(
        reg, fake, store):
    image = TinyImage()
    image.manifest_data["config"]["size"] = 5 * GIB
    image.manifest = json.dumps(image.manifest_data).encode()
    image.serve(fake)
    config_path = f"/v2/tiny/blobs/{sha(image.config)}"
    fake.routes[config_path] = lambda h: reply(h, 200, image.config)
    assert_error(reg("pull", "-q", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "config is declared larger than 4 MiB")
    assert not any(seen.split("?")[0] == config_path for _, seen, _ in fake.seen)
