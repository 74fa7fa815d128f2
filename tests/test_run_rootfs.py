"""How the root filesystem is made: kernel overlayfs, or the copy fallback for kernels
and filesystems that refuse it (forced here with ROOTLESS_ROOTFS=copy)."""

import pytest
from helpers import MARKER, MARKER_PATH, ok

pytestmark = pytest.mark.container


@pytest.fixture
def copy_env(rootless):
    return {**rootless.env, "ROOTLESS_ROOTFS": "copy"}


def test_copy_fallback_runs_the_image(rootless, busybox, copy_env):
    assert MARKER in ok(rootless("run", "--rm", busybox, "cat", MARKER_PATH, env=copy_env))


def test_copy_fallback_writes_do_not_reach_the_next_container(rootless, busybox, copy_env):
    ok(rootless("run", "--rm", busybox, "sh", "-c", "echo x > /etc/written", env=copy_env))
    result = rootless("run", "--rm", busybox, "cat", "/etc/written", env=copy_env)
    assert result.returncode == 1


def test_copy_fallback_container_is_removed_with_rm(rootless, busybox, copy_env, store):
    ok(rootless("run", "--rm", busybox, "true", env=copy_env))
    assert list((store / "containers").iterdir()) == []


def test_system_info_says_overlay_and_why(rootless):
    out = ok(rootless("system", "info"))
    assert "rootfs: overlay" in out
    assert "rootfs_reason: kernel overlayfs mounts in a user namespace" in out


def test_system_info_says_when_the_copy_is_forced(rootless, copy_env):
    out = ok(rootless("system", "info", env=copy_env))
    assert "rootfs: copy" in out and "ROOTLESS_ROOTFS" in out


@pytest.mark.parametrize("strategy", ["overlay", "copy"])
def test_an_image_of_a_hundred_layers_runs_with_every_layer_visible(
        rootless, image_archives, tmp_path, strategy):
    """Past the page-size limit of mount(2)'s overlay options (~37 layers under a
    home-directory store): the overlay is built layer by layer with fsconfig."""
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    rootless.env["ROOTLESS_ROOTFS"] = strategy
    layers = [image_archives.rootfs.read_bytes()]
    layers += [tar_bytes(entry(f"layer{i}", data=f"{i}\n".encode())) for i in range(99)]
    path = oci_archive(tmp_path / "many.tar",
                       [(Image(layers), {"org.opencontainers.image.ref.name": "many:1"})])
    ok(rootless("load", "-i", str(path)))
    out = ok(rootless("run", "--rm", "many:1", "sh", "-c", "cat /layer0 /layer98; ls / | wc -l"))
    lines = out.split()
    assert lines[:2] == ["0", "98"] and int(lines[2]) >= 99


CONTAINER_MOUNT_POINTS = {"/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}


def test_no_mount_of_the_host_remains_in_the_container(rootless, busybox):
    """pivot_root, then the old root detached (runtime/executor.py): none of the
    host's mounts is left in the container's mount table, and its root is mounted
    once."""
    with open("/proc/self/mountinfo") as f:
        host = {line.split()[4] for line in f} - CONTAINER_MOUNT_POINTS
    assert host, "the host has no mount of its own to look for"
    inside = [line.split()[4] for line in ok(rootless(
        "run", "--rm", "--network", "none", busybox, "cat", "/proc/self/mountinfo"
    )).splitlines()]
    assert inside.count("/") == 1, inside
    assert not host & set(inside), host & set(inside)
