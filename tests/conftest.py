"""Fixtures for the spec tests: a fresh store per test, the real `rootless` command, and
the busybox image built once per session by scripts/make-image.

Fixtures
  rootless_env   dict: the environment every `rootless` call gets (ROOTLESS_ROOT is this
                 test's own store, XDG_RUNTIME_DIR the caller's or a fresh 0700 dir)
  store          Path of this test's store (ROOTLESS_ROOT; not created in advance)
  rootless       helpers.Rootless: rootless(*args, input=None, timeout=60, check=False)
                 -> CompletedProcess with text stdout/stderr; rootless.popen(*args) -> Popen
  image_archives ImageArchives(oci, docker, rootfs): busybox:latest as an OCI archive, a
                 docker-archive and a plain rootfs tar (session-scoped, built once)
  image_variant  make(name, *make_image_args) -> Path of an OCI archive of a variant image
                 tagged NAME:latest (session-scoped, cached by arguments)
  busybox        "busybox:latest", loaded into this test's store
  load_variant   load(name, *make_image_args) -> "NAME:latest", built and loaded here
  sh             sh(script, *run_options, input=None, timeout=60) -> CompletedProcess of
                 `rootless run --rm OPTIONS busybox:latest sh -c SCRIPT`

Markers
  container      the test runs containers: skipped when run as root (rootless is for
                 unprivileged users; scripts/test runs the suite as two test users)
  needs_subids   only meaningful with a subordinate id range (rl-sub)
  needs_single_id only meaningful without one (rl-nosub)

Option
  --kernel-floor X.Y  every `rootless` call gets ROOTLESS_KERNEL_FLOOR=X.Y (the kernel
                 calls newer than X.Y fail as on that kernel, kernel/floor.py): scripts/test
                 runs a chosen set of tests again under RHEL 8's, RHEL 9's and Debian 12's
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import ROOTLESS_BIN, Rootless, has_subids, is_root, make_image, ok


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kernel-floor", default="", metavar="X.Y",
                     help="run rootless as on Linux X.Y (ROOTLESS_KERNEL_FLOOR)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: runs containers (skipped as root)")
    config.addinivalue_line("markers", "needs_subids: needs a subordinate id range")
    config.addinivalue_line("markers", "needs_single_id: needs a user without subids")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    subids = has_subids()
    skips = {
        "container": (is_root(), "rootless is for unprivileged users: run scripts/test "
                                  "(as root it runs the suite as the test users)"),
        "needs_subids": (not subids, "this user has no subordinate id range"),
        "needs_single_id": (subids, "this user has a subordinate id range"),
    }
    for item in items:
        for marker, (skip, reason) in skips.items():
            if skip and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config: pytest.Config) -> list[str]:
    mode = "subordinate ids" if has_subids() else "no subordinate ids (single-id mode)"
    floor = config.getoption("--kernel-floor")
    mode += f", kernel floor {floor}" if floor else ""
    return [f"rootless: uid {os.getuid()}, {mode}, command {ROOTLESS_BIN}"]


# ---- a fresh store per test ----

@pytest.fixture
def rootless_env(tmp_path: Path, pytestconfig: pytest.Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOTLESS_")}
    if pytestconfig.getoption("--kernel-floor"):
        env["ROOTLESS_KERNEL_FLOOR"] = pytestconfig.getoption("--kernel-floor")
    env["ROOTLESS_ROOT"] = str(tmp_path / "store")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")  # never the user's real store
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir or not os.access(runtime_dir, os.W_OK):
        runtime_dir = tempfile.mkdtemp(prefix="xdg-run-", dir=tmp_path)
        os.chmod(runtime_dir, 0o700)
    env["XDG_RUNTIME_DIR"] = runtime_dir
    return env


@pytest.fixture
def store(rootless_env: dict[str, str]) -> Path:
    return Path(rootless_env["ROOTLESS_ROOT"])


@pytest.fixture
def rootless(rootless_env: dict[str, str]):
    if not ROOTLESS_BIN.exists():
        pytest.fail(f"no rootless console script at {ROOTLESS_BIN} (run scripts/setup)")
    runner = Rootless(rootless_env)
    yield runner
    runner.kill_leftovers()
    remove_containers(runner, Path(rootless_env["ROOTLESS_ROOT"]))


def remove_containers(runner: Rootless, store: Path) -> None:
    """Best effort: containers a test left behind are removed through rootless itself,
    since with subordinate ids their files belong to ids the user can delete only from
    inside a user namespace."""
    containers = store / "containers"
    if containers.is_dir() and any(containers.iterdir()):
        ids = runner("ps", "-a", "-q", "--no-trunc").stdout.split()
        if ids:
            runner("rm", "-f", *ids)


# ---- images ----

class ImageArchives(NamedTuple):
    oci: Path  # OCI image layout tar, ref.name busybox:latest
    docker: Path  # docker save format, RepoTags busybox:latest
    rootfs: Path  # plain rootfs tar, for `image import`


@pytest.fixture(scope="session")
def image_archives(tmp_path_factory: pytest.TempPathFactory) -> ImageArchives:
    d = tmp_path_factory.mktemp("images")
    archives = ImageArchives(d / "busybox.oci.tar", d / "busybox.docker.tar",
                             d / "busybox-rootfs.tar")
    make_image("--tag", "busybox:latest", "--oci-archive", str(archives.oci),
               "--docker-archive", str(archives.docker), "--rootfs-tar", str(archives.rootfs))
    return archives


@pytest.fixture(scope="session")
def image_variant(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("variants")
    built: dict[tuple[str, ...], Path] = {}

    def make(name: str, *args: str) -> Path:
        key = (name, *args)
        if key not in built:
            path = d / f"{name}-{len(built)}.oci.tar"
            make_image("--tag", f"{name}:latest", "--oci-archive", str(path), *args)
            built[key] = path
        return built[key]

    return make


@pytest.fixture
def busybox(rootless: Rootless, image_archives: ImageArchives) -> str:
    ok(rootless("image", "load", "-i", str(image_archives.oci)))
    return "busybox:latest"


@pytest.fixture
def load_variant(rootless: Rootless, image_variant):
    def load(name: str, *args: str) -> str:
        ok(rootless("image", "load", "-i", str(image_variant(name, *args))))
        return f"{name}:latest"

    return load


DEBIAN_FIXTURE = Path(os.environ.get("ROOTLESS_DEBIAN_FIXTURE",
                                     "/var/tmp/rootless-fixtures/debian-bookworm.tar"))


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """A Debian bookworm minbase rootfs tar with its true numeric owners (`_apt` 42,
    group `shadow` 42, setgid chage), made by scripts/test with mmdebstrap."""
    if not DEBIAN_FIXTURE.is_file():
        pytest.skip(f"no Debian fixture at {DEBIAN_FIXTURE}: scripts/test makes it with "
                    "mmdebstrap, which needs the Debian mirror")
    return DEBIAN_FIXTURE


@pytest.fixture
def debian(rootless: Rootless, debian_tar: Path) -> str:
    """The Debian fixture imported into this test's store as debian:bookworm."""
    ok(rootless("import", str(debian_tar), "debian:bookworm", timeout=300))
    return "debian:bookworm"


@pytest.fixture
def sh(rootless: Rootless, busybox: str):
    def run_sh(script: str, *options: str, input: str | bytes | None = None,
               timeout: float = 60):
        return rootless("run", "--rm", *options, busybox, "sh", "-c", script, input=input,
                        timeout=timeout)

    return run_sh


@pytest.fixture
def fake():
    """A small HTTP server playing a registry that misbehaves on purpose
    (registry_server.FakeServer): routes are set by each test."""
    from registry_server import FakeServer

    server = FakeServer()
    yield server
    server.stop()
