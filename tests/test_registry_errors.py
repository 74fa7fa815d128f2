"""A broken or hostile registry gets a one-line error and leaves the store as it was:
served by small HTTP servers that do what a real registry never does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
from helpers import assert_error, ok
from registry_server import (
    FakeServer,
    SilentServer,
    TinyImage,
    isolate_registry_client,
    reply,
    sha,
    stalling_blob,
)


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path, "3")


@pytest.fixture
def tiny():
    return TinyImage()


def store_is_clean(reg, store) -> None:
    """No image, and no layer or blob that anything could mistake for one."""
    assert ok(reg("images", "-q")) == ""
    layers = store / "layers"
    assert not layers.exists() or not [p for p in layers.iterdir()]
    tmp = store / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


def test_a_good_image_from_the_fake_server_pulls(reg, fake, tiny):
    """The control for the tests below: the same server, nothing broken."""
    tiny.serve(fake)
    out = ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert "Downloaded newer image" in out


def test_manifest_digest_mismatch(reg, fake, tiny, store):
    tiny.serve(fake)
    fake.routes["/v2/tiny/manifests/1"] = lambda h: reply(
        h, 200, tiny.manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                "Docker-Content-Digest": "sha256:" + "0" * 64})
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "manifest", "corrupt or tampered")
    store_is_clean(reg, store)


def test_manifest_by_digest_must_hash_to_that_digest(reg, fake, tiny, store):
    tiny.serve(fake)
    wrong = "sha256:" + "1" * 64
    fake.routes[f"/v2/tiny/manifests/{wrong}"] = fake.routes["/v2/tiny/manifests/1"]
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny@{wrong}"), 1,
                 "hashes to", wrong)
    store_is_clean(reg, store)


def test_blob_digest_mismatch(reg, fake, tiny, store):
    evil = bytearray(tiny.layer)
    evil[-9] ^= 0xFF  # same size, other content
    tiny.serve(fake, blobs={sha(tiny.layer): bytes(evil)})
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 sha(tiny.layer), "does not match its digest")
    store_is_clean(reg, store)
    assert not (store / "blobs" / "sha256" / sha(tiny.layer)[7:]).exists()


def test_truncated_blob(reg, fake, tiny, store):
    tiny.serve(fake)
    fake.routes[f"/v2/tiny/blobs/{sha(tiny.layer)}"] = lambda h: reply(
        h, 200, tiny.layer[:20], length=len(tiny.layer))
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1, "truncated")
    store_is_clean(reg, store)


def test_short_blob_with_a_matching_length_header(reg, fake, tiny, store):
    tiny.serve(fake, blobs={sha(tiny.layer): tiny.layer[:20]})
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1, "truncated")
    store_is_clean(reg, store)


def test_manifest_over_4_mib_is_refused(reg, fake, tiny, store):
    data = dict(tiny.manifest_data, annotations={"padding": "x" * (4 << 20)})
    tiny.serve(fake, manifest=json.dumps(data).encode())
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "larger than 4 MiB")
    store_is_clean(reg, store)


def test_unknown_manifest_media_type_is_refused(reg, fake, tiny, store):
    tiny.serve(fake, media_type="application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "unsupported media type")
    store_is_clean(reg, store)


def test_unknown_layer_media_type_is_refused(reg, fake, tiny, store):
    data = json.loads(tiny.manifest)
    data["layers"][0]["mediaType"] = "application/x-strange"
    tiny.serve(fake, manifest=json.dumps(data).encode())
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "unsupported layer media type")
    store_is_clean(reg, store)


def test_a_registry_that_stops_answering_times_out(reg, store):
    silent = SilentServer()
    try:
        result = reg("pull", "--tls-verify=false", f"{silent.host}/tiny:1", timeout=40)
    finally:
        silent.stop()
    assert_error(result, 1, "no answer within 3 s")
    store_is_clean(reg, store)


def test_a_blob_that_stalls_times_out(reg, fake, tiny, store):
    tiny.serve(fake)
    fake.routes[f"/v2/tiny/blobs/{sha(tiny.layer)}"] = stalling_blob(tiny.layer, 8)
    result = reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1", timeout=40)
    assert_error(result, 1, "stopped sending")
    store_is_clean(reg, store)


def test_a_platform_is_chosen_from_a_manifest_list(reg, fake, tiny):
    tiny.serve(fake)
    other = TinyImage(b"the arm64 one\n")
    other.serve(fake, tag="arm-only")
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": sha(other.manifest), "size": len(other.manifest),
                             "platform": {"os": "linux", "architecture": "arm64"}},
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": sha(tiny.manifest), "size": len(tiny.manifest),
                             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    fake.routes["/v2/tiny/manifests/multi"] = lambda h: reply(
        h, 200, index, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
    fake.routes[f"/v2/tiny/manifests/{sha(other.manifest)}"] = lambda h: reply(
        h, 200, other.manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    for data in (other.config, other.layer):
        fake.routes[f"/v2/tiny/blobs/{sha(data)}"] = lambda h, d=data: reply(h, 200, d)
    out = ok(reg("pull", "--platform", "linux/arm64", "--tls-verify=false",
                 f"{fake.host}/tiny:multi"))
    assert f"Digest: {sha(other.manifest)}" in out
    assert_error(reg("pull", "--platform", "linux/s390x", "--tls-verify=false",
                     f"{fake.host}/tiny:multi"), 1, "no image for linux/s390x",
                 "linux/amd64", "linux/arm64")


def test_redirect_to_blob_storage_gets_no_authorization(reg, fake, tiny):
    """must not: send the registry's credentials to the host a redirect points at."""
    storage = FakeServer()
    try:
        tiny.serve(fake)
        expected = "Basic " + __import__("base64").b64encode(b"u:p").decode()

        def guarded(route):
            def handle(h):
                if h.headers.get("Authorization") != expected:
                    return reply(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="x"'})
                return route(h)
            return handle

        for path in list(fake.routes):
            fake.routes[path] = guarded(fake.routes[path])
        layer_path = f"/v2/tiny/blobs/{sha(tiny.layer)}"
        fake.routes[layer_path] = guarded(lambda h: reply(
            h, 307, b"", {"Location": f"http://{storage.host}/bucket/layer"}))
        storage.routes["/bucket/layer"] = lambda h: reply(h, 200, tiny.layer)
        os.makedirs(reg.env["DOCKER_CONFIG"])
        with open(os.path.join(reg.env["DOCKER_CONFIG"], "config.json"), "w") as f:
            json.dump({"auths": {fake.host: {"auth": expected[6:]}}}, f)
        ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
        got = [headers for method, path, headers in storage.seen if path == "/bucket/layer"]
        assert got and all("Authorization" not in h for h in got)
        assert any(h.get("Authorization") == expected for _, p, h in fake.seen
                   if p == layer_path)
    finally:
        storage.stop()


def test_search_prints_docker_columns_and_filters_by_stars(reg, fake):
    results = [{"name": "alpha", "description": "A" * 60, "star_count": 12,
                "is_official": True, "is_automated": False},
               {"name": "beta", "description": "short", "star_count": 3,
                "is_official": False, "is_automated": False}]
    fake.routes["/v1/search"] = lambda h: reply(
        h, 200, json.dumps({"num_results": 2, "query": "a", "results": results}).encode(),
        {"Content-Type": "application/json"})
    out = ok(reg("search", "--tls-verify=false", f"{fake.host}/a"))
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert lines[1].split()[0] == "alpha" and "A" * 44 + "…" in lines[1]
    assert "[OK]" in lines[1] and len(lines) == 3
    out = ok(reg("search", "--tls-verify=false", "--filter", "stars=10", "--no-trunc",
                 f"{fake.host}/a"))
    assert "A" * 60 in out and "beta" not in out
    out = ok(reg("search", "--tls-verify=false", "--limit", "1", f"{fake.host}/a"))
    assert len(out.splitlines()) == 2
    query = next(p for m, p, h in fake.seen if p.startswith("/v1/search"))
    assert "q=a" in query


def test_search_on_a_registry_without_the_api_says_so(reg, fake):
    assert_error(reg("search", "--tls-verify=false", f"{fake.host}/a"), 1,
                 "does not support search")


def test_search_bad_filter_is_refused(reg):
    assert_error(reg("search", "--filter", "colour=red", "x"), 125, "invalid filter")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_gzip_zstd_and_uncompressed_layers_pull(reg, fake, compression):
    if compression == "zstd" and not shutil.which("zstd"):
        pytest.skip("no zstd program")
    image = TinyImage(f"{compression} layer\n".encode(), compression)
    image.serve(fake, repo=f"c-{compression}")
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/c-{compression}:1"))
    assert ok(reg("images", "-q"))


def test_a_killed_pull_leaves_the_store_consistent_and_the_next_pull_completes(
        reg, fake, tiny, store):
    tiny.serve(fake)
    layer_path = f"/v2/tiny/blobs/{sha(tiny.layer)}"
    good = fake.routes[layer_path]
    started = threading.Event()
    fake.routes[layer_path] = stalling_blob(tiny.layer, 5, started)
    proc = reg.popen("pull", "--tls-verify=false", f"{fake.host}/tiny:1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert started.wait(30)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ok(reg("images", "-q")) == ""
    assert not (store / "blobs" / "sha256" / sha(tiny.layer)[7:]).exists()
    fake.routes[layer_path] = good
    out = ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert "Downloaded newer image" in out
    assert ok(reg("images", "-q")).strip()
