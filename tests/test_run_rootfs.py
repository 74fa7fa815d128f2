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
