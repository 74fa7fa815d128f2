"""pull and push against a real registry (Debian's docker-registry, open, plain HTTP on
127.0.0.1): round trips, blobs not fetched twice, digests kept, chunked uploads,
cross-repository mounts, --all-tags, and what must be refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import MARKER, MARKER_PATH, PtySession, assert_error, ok
from registry_server import RegistryServer, TinyImage, isolate_registry_client


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-open")).start()
    yield server
    server.stop()


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path, "10")


def pushed(reg, busybox, registry, name: str) -> str:
    ref = f"{registry.host}/{name}"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    return ref


def fresh_store(reg, tmp_path: Path, name: str) -> None:
    reg.env["ROOTLESS_ROOT"] = str(tmp_path / name)


def test_push_then_pull_into_an_empty_store_gives_the_same_image(reg, busybox, registry,
                                                                  tmp_path):
    image_id = ok(reg("image", "inspect", busybox))
    ref = pushed(reg, busybox, registry, "rt/busybox:1")
    fresh_store(reg, tmp_path, "store2")
    out = ok(reg("pull", "--tls-verify=false", ref))
    assert out.splitlines()[-1] == ref
    assert "Downloaded newer image" in out
    pulled = json.loads(ok(reg("image", "inspect", ref)))[0]
    assert pulled["Id"] == json.loads(image_id)[0]["Id"]


@pytest.mark.container
def test_a_pulled_image_runs(reg, busybox, registry, tmp_path):
    ref = pushed(reg, busybox, registry, "rt/run:1")
    fresh_store(reg, tmp_path, "store2")
    ok(reg("pull", "-q", "--tls-verify=false", ref))
    assert ok(reg("run", "--rm", ref, "cat", MARKER_PATH)).strip() == MARKER


def test_pull_again_fetches_nothing(reg, busybox, registry, tmp_path):
    ref = pushed(reg, busybox, registry, "rt/again:1")
    fresh_store(reg, tmp_path, "store2")
    ok(reg("pull", "--tls-verify=false", ref))
    out = ok(reg("pull", "--tls-verify=false", ref))
    assert "Image is up to date" in out and "Download complete" not in out
    assert "Already exists" in out


def test_pull_quiet_prints_only_the_reference(reg, busybox, registry, tmp_path):
    ref = pushed(reg, busybox, registry, "rt/quiet:1")
    fresh_store(reg, tmp_path, "store2")
    assert ok(reg("image", "pull", "-q", "--tls-verify=false", ref)) == ref + "\n"


def test_pull_by_digest(reg, busybox, registry, tmp_path):
    pushed(reg, busybox, registry, "rt/digest:1")
    _, headers, _ = registry.get("/v2/rt/digest/manifests/1", {
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    digest = headers["Docker-Content-Digest"]
    fresh_store(reg, tmp_path, "store2")
    by_digest = f"{registry.host}/rt/digest@{digest}"
    out = ok(reg("pull", "--tls-verify=false", by_digest))
    assert f"Digest: {digest}" in out
    ok(reg("image", "inspect", by_digest))


def test_push_reports_the_manifest_digest_and_repush_skips_layers(reg, busybox, registry):
    ref = pushed(reg, busybox, registry, "rt/twice:1")
    out = ok(reg("push", "--tls-verify=false", busybox, ref))
    assert "Layer already exists" in out and "Pushed" not in out
    _, headers, _ = registry.get("/v2/rt/twice/manifests/1", {
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert f"1: digest: {headers['Docker-Content-Digest']} size:" in out


def test_push_of_several_layers_reports_each_layer_and_round_trips(reg, registry, fake,
                                                                  tmp_path):
    """Layers go up several at once; docker's lines name layers, never the config."""
    image = TinyImage(layer_count=4)
    image.serve(fake)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    ref = f"{registry.host}/rt/layers:1"
    out = ok(reg("push", "--tls-verify=false", f"{fake.host}/tiny:1", ref))
    layers = [d["digest"][7:19] for d in image.manifest_data["layers"]]
    assert sorted(line.split(":")[0] for line in out.splitlines()
                  if line.endswith(": Pushed")) == sorted(layers)
    assert image.manifest_data["config"]["digest"][7:19] not in out
    fresh_store(reg, tmp_path, "store2")
    out = ok(reg("pull", "--tls-verify=false", ref))
    assert "Digest: sha256:" in out
    inspected = json.loads(ok(reg("image", "inspect", ref)))[0]
    assert inspected["Id"] == image.manifest_data["config"]["digest"]


def test_chunked_upload_gives_the_same_digests(reg, busybox, registry):
    monolithic = pushed(reg, busybox, registry, "rt/mono:1")
    reg.env["ROOTLESS_PUSH_CHUNK"] = "65536"
    ok(reg("push", "--tls-verify=false", busybox, f"{registry.host}/rt/chunked:1"))
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    one = registry.get("/v2/rt/mono/manifests/1", accept)
    two = registry.get("/v2/rt/chunked/manifests/1", accept)
    assert one[1]["Docker-Content-Digest"] == two[1]["Docker-Content-Digest"]
    assert "PATCH /v2/rt/chunked/blobs/uploads/" in registry.log()
    assert monolithic


def test_push_mounts_blobs_from_another_repository_of_the_same_registry(reg, busybox,
                                                                        registry, tmp_path):
    source = pushed(reg, busybox, registry, "rt/mount-src:1")
    fresh_store(reg, tmp_path, "store2")
    ok(reg("pull", "--tls-verify=false", source))
    out = ok(reg("push", "--tls-verify=false", source, f"{registry.host}/rt/mount-dst:1"))
    assert "Mounted from rt/mount-src" in out
    log = registry.log()
    mounts = re.findall(r'POST /v2/rt/mount-dst/blobs/uploads/\?mount=sha256%3A[0-9a-f]+'
                        r'&from=rt%2Fmount-src HTTP/1.1" 201', log)
    assert len(mounts) == 2  # config and layer
    assert "PATCH /v2/rt/mount-dst/" not in log
    assert "PUT /v2/rt/mount-dst/blobs/" not in log


def test_pull_all_tags(reg, busybox, registry, tmp_path):
    for tag in ("a", "b"):
        pushed(reg, busybox, registry, f"rt/all:{tag}")
    fresh_store(reg, tmp_path, "store2")
    out = ok(reg("pull", "-a", "--tls-verify=false", f"{registry.host}/rt/all"))
    assert f"{registry.host}/rt/all:a" in out and f"{registry.host}/rt/all:b" in out
    listed = ok(reg("images"))
    assert " a " in listed and " b " in listed


def test_all_tags_with_a_tag_is_refused(reg, registry):
    assert_error(reg("pull", "-a", f"{registry.host}/rt/all:a"), 125, "all-tags")


def test_plain_http_is_refused_without_tls_verify_false(reg, busybox, registry):
    """must not: fall back to plain HTTP for a registry nobody marked insecure."""
    result = reg("push", busybox, f"{registry.host}/rt/plain:1")
    assert_error(result, 1, "--tls-verify=false")
    assert "/v2/rt/plain/" not in registry.log()


def test_registries_conf_insecure_allows_plain_http(reg, busybox, registry, tmp_path):
    Path(reg.env["ROOTLESS_REGISTRIES_CONF"]).write_text(
        json.dumps({"insecure": [registry.host]}))
    ok(reg("push", busybox, f"{registry.host}/rt/conf:1"))


def test_pull_of_a_missing_tag_fails_and_leaves_no_image(reg, registry):
    result = reg("pull", "--tls-verify=false", f"{registry.host}/rt/nothing:1")
    assert_error(result, 1, "manifest")
    assert ok(reg("images", "-q")) == ""


@pytest.mark.parametrize("name", ["Busybox", "a b", "x@sha256:12", "x:"])
def test_invalid_reference_is_refused(reg, name):
    assert_error(reg("pull", name), 1, "invalid reference format")


def test_bad_platform_is_refused(reg, registry):
    assert_error(reg("pull", "--platform", "linux", f"{registry.host}/x:1"), 125,
                 "invalid platform")


def test_bad_flag_exits_125(reg):
    assert reg("pull", "--no-such-flag", "x").returncode == 125


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-tls"), "tls").start()
    yield server
    server.stop()


def test_https_with_an_unknown_certificate_is_refused(reg, busybox, tls_registry):
    """must not: trust a certificate no CA in the trust store signed."""
    assert_error(reg("push", busybox, f"{tls_registry.host}/tls/x:1"), 1, "TLS failed",
                 "--tls-verify=false")
    assert not (tls_registry.workdir / "data/docker/registry/v2/repositories/tls").exists()


def test_https_verified_against_the_trusted_ca_bundle(reg, busybox, tls_registry, tmp_path):
    reg.env["REQUESTS_CA_BUNDLE"] = str(tls_registry.cert)  # the trust store to use
    ref = f"{tls_registry.host}/tls/verified:1"
    ok(reg("push", busybox, ref))
    fresh_store(reg, tmp_path, "store2")
    assert ok(reg("pull", "-q", ref)).strip() == ref


def test_https_without_verification_when_asked(reg, busybox, tls_registry):
    ok(reg("push", "--tls-verify=false", busybox, f"{tls_registry.host}/tls/unverified:1"))


def test_a_bare_tls_verify_means_true_and_keeps_the_image_name(reg, busybox, registry):
    """podman's boolean flag: `--tls-verify NAME` must not take NAME as its value."""
    ref = f"{registry.host}/rt/bare:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    assert_error(reg("pull", "--tls-verify", ref), 1, "TLS failed")
    assert_error(reg("image", "pull", "--tls-verify", ref), 1, "TLS failed")


def test_push_on_a_terminal_draws_a_bar_per_layer(reg, busybox, registry):
    session = PtySession(reg, "push", "--tls-verify=false", busybox,
                         f"{registry.host}/rt/tty:1")
    assert session.wait() == 0
    text = session.text()
    assert "Pushing [" in text and "Pushed" in text
    assert "digest: sha256:" in text


def test_pull_prints_dockers_lines(reg, busybox, registry, tmp_path):
    ref = pushed(reg, busybox, registry, "rt/words")  # no tag: latest
    fresh_store(reg, tmp_path, "store2")
    lines = ok(reg("pull", "--tls-verify=false", ref)).splitlines()
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from rt/words"]
    assert lines[-1] == f"{ref}:latest"
    assert lines[-2] == f"Status: Downloaded newer image for {ref}:latest"
    assert lines[-3].startswith("Digest: sha256:")
