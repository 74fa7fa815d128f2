"""The `rootless` command itself: help, version, system info, and choosing the store."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from helpers import assert_error, has_subids, ok


def test_help_lists_the_commands(rootless):
    out = ok(rootless("--help"))
    for command in ("run", "image", "version", "system"):
        assert command in out


def test_run_help_lists_the_run_options(rootless):
    out = ok(rootless("run", "--help"))
    for option in ("--rm", "--interactive", "--tty", "--name", "--env", "--env-file",
                   "--workdir", "--user", "--volume", "--hostname", "--network",
                   "--entrypoint", "--init"):
        assert option in out, option


def test_image_help_lists_the_image_commands(rootless):
    out = ok(rootless("image", "--help"))
    for command in ("import", "load", "ls", "rm"):
        assert command in out


def test_version_prints_the_package_version(rootless):
    assert version("rootless") in ok(rootless("version"))


def test_system_info_reports_the_id_map_mode(rootless):
    info = json.loads(ok(rootless("system", "info", "--format", "json")))
    assert info["id_map_mode"] == ("subids" if has_subids() else "single-id")


def test_system_info_says_which_rootfs_strategy_and_why(rootless):
    info = json.loads(ok(rootless("system", "info", "--format", "json")))
    assert info["rootfs"] and info["rootfs_reason"]


def test_system_info_text_names_the_kernel(rootless):
    import platform

    assert platform.release() in ok(rootless("system", "info"))


def test_unknown_option_of_a_command_exits_125(rootless):
    assert_error(rootless("image", "ls", "--no-such-option"), 125, "--no-such-option")


def test_store_is_where_rootless_root_points(rootless, store, image_archives, tmp_path):
    ok(rootless("image", "load", "-i", str(image_archives.oci)))
    assert store.is_dir()
    assert not (tmp_path / "xdg-data" / "rootless").exists()


def test_root_option_overrides_rootless_root(rootless, image_archives, tmp_path):
    other = tmp_path / "other-store"
    ok(rootless("--root", str(other), "image", "load", "-i", str(image_archives.oci)))
    assert "busybox" in ok(rootless("--root", str(other), "image", "ls"))
    assert "busybox" not in ok(rootless("image", "ls"))


def test_default_store_is_under_xdg_data_home(rootless, rootless_env, image_archives,
                                              tmp_path):
    env = {k: v for k, v in rootless_env.items() if k != "ROOTLESS_ROOT"}
    ok(rootless("image", "load", "-i", str(image_archives.oci), env=env))
    assert (tmp_path / "xdg-data" / "rootless").is_dir()


def test_unwritable_store_is_one_line_naming_it(rootless, rootless_env, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    env = {**rootless_env, "ROOTLESS_ROOT": str(locked / "store")}
    result = rootless("run", "--rm", "busybox", "true", env=env)
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and str(locked / "store") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["push"], ["image", "import"], ["tag"], ["history"],
                                     ["image", "inspect"], ["save"]])
def test_a_missing_required_argument_is_a_usage_error(rootless, command):
    result = rootless(*command)
    assert_error(result, 125)
    assert "internal error" not in result.stderr
