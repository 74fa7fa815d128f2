"""`rootless run` options: -e, --env-file, -w, -u, --entrypoint, -v, --network."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers import (
    IMAGE_PATH_ENV,
    NOBODY_ID,
    USER_GID,
    USER_UID,
    USERS_GID,
    assert_error,
    ok,
    subordinate_start,
)

pytestmark = pytest.mark.container


def env_of(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


# ---- environment ----

def test_default_environment_has_path_home_and_hostname(sh):
    env = env_of(ok(sh("env", "--hostname", "h1")))
    assert f"PATH={env['PATH']}" == IMAGE_PATH_ENV
    assert env["HOME"] == "/root"
    assert env["HOSTNAME"] == "h1"


def test_host_environment_does_not_leak_into_the_container(rootless, busybox, rootless_env):
    env = {**rootless_env, "HOST_ONLY_SECRET": "s3cret"}
    out = ok(rootless("run", "--rm", busybox, "env", env=env))
    assert "HOST_ONLY_SECRET" not in out and "s3cret" not in out


def test_env_option_sets_a_variable(sh):
    assert ok(sh('echo "$FOO"', "-e", "FOO=bar baz")) == "bar baz\n"


def test_env_option_without_value_copies_the_callers(rootless, busybox, rootless_env):
    env = {**rootless_env, "FROM_HOST": "yes"}
    out = rootless("run", "--rm", "-e", "FROM_HOST", busybox, "sh", "-c", 'echo "$FROM_HOST"',
                   env=env)
    assert ok(out) == "yes\n"


def test_env_option_without_value_unset_in_caller_sets_nothing(sh):
    assert "NOT_SET_ANYWHERE" not in ok(sh("env", "-e", "NOT_SET_ANYWHERE"))


def test_image_env_is_set_and_env_option_overrides_it(rootless, load_variant):
    image = load_variant("withenv", "--env", "GREETING=hello", "--env", "OTHER=kept")
    assert ok(rootless("run", "--rm", image, "sh", "-c", 'echo "$GREETING $OTHER"')) == \
        "hello kept\n"
    assert ok(rootless("run", "--rm", "-e", "GREETING=bye", image, "sh", "-c",
                       'echo "$GREETING $OTHER"')) == "bye kept\n"


def test_env_file_that_is_a_fifo_is_refused_without_hanging(rootless, busybox, tmp_path):
    import os

    from helpers import assert_error

    fifo = tmp_path / "env"
    os.mkfifo(fifo)
    result = rootless("run", "--rm", "--env-file", str(fifo), busybox, "true", timeout=20)
    assert_error(result, 125, str(fifo), "not a regular file")


def test_env_file_sets_variables(sh, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("A=1\n# a comment\n\nB=two words\nC='quoted'\n")
    out = env_of(ok(sh("env", "--env-file", str(env_file))))
    assert (out["A"], out["B"], out["C"]) == ("1", "two words", "'quoted'")


def test_env_option_overrides_env_file(sh, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("A=from-file\n")
    assert ok(sh('echo "$A"', "--env-file", str(env_file), "-e", "A=from-flag")) == \
        "from-flag\n"


def test_missing_env_file_is_an_error(rootless, busybox, tmp_path):
    result = rootless("run", "--rm", "--env-file", str(tmp_path / "nope"), busybox, "true")
    assert_error(result, 125, str(tmp_path / "nope"))


# ---- working directory ----

def test_default_working_directory_is_root(sh):
    assert ok(sh("pwd")) == "/\n"


def test_workdir_option_sets_the_working_directory(sh):
    assert ok(sh("pwd; readlink /proc/self/cwd", "-w", "/tmp")) == "/tmp\n/tmp\n"


def test_workdir_that_does_not_exist_is_created(sh):
    assert ok(sh("pwd", "-w", "/made/by/workdir")) == "/made/by/workdir\n"


def test_relative_workdir_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "-w", "tmp", busybox, "echo", "ran")
    assert_error(result, 125, "tmp")
    assert result.stdout == ""


def test_image_workdir_is_used_and_workdir_option_overrides_it(rootless, load_variant):
    image = load_variant("withworkdir", "--workdir", "/var/tmp")
    assert ok(rootless("run", "--rm", image, "pwd")) == "/var/tmp\n"
    assert ok(rootless("run", "--rm", "-w", "/tmp", image, "pwd")) == "/tmp\n"


# ---- user ----

@pytest.mark.parametrize("user, expected", [
    ("1000", f"{USER_UID} {USER_GID}"),  # gid from the image's /etc/passwd
    ("1000:100", f"{USER_UID} {USERS_GID}"),
    ("4321", "4321 0"),  # a uid without a passwd entry gets gid 0, as in Docker
    ("4321:4321", "4321 4321"),
    ("nobody", f"{NOBODY_ID} {NOBODY_ID}"),
    ("user", f"{USER_UID} {USER_GID}"),
    ("user:users", f"{USER_UID} {USERS_GID}"),
    ("root", "0 0"),
])
def test_user_option_sets_uid_and_gid(sh, user, expected):
    assert ok(sh('echo "$(id -u) $(id -g)"', "-u", user)) == expected + "\n"


def test_user_by_name_gets_its_home(sh):
    assert ok(sh('echo "$HOME"', "-u", "user")) == "/home/user\n"


@pytest.mark.needs_subids
def test_user_by_name_gets_its_supplementary_groups(sh):
    assert sorted(ok(sh("id -G", "-u", "user")).split()) == sorted([str(USER_GID),
                                                                     str(USERS_GID)])


def test_unknown_user_name_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "-u", "nosuchuser", busybox, "echo", "ran")
    assert_error(result, 125, "nosuchuser")
    assert result.stdout == ""


def test_unknown_group_name_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "-u", "root:nosuchgroup", busybox, "echo", "ran")
    assert_error(result, 125, "nosuchgroup")
    assert result.stdout == ""


def test_image_user_is_used_and_user_option_overrides_it(rootless, load_variant):
    image = load_variant("withuser", "--user", "nobody")
    assert ok(rootless("run", "--rm", image, "id", "-u")) == f"{NOBODY_ID}\n"
    assert ok(rootless("run", "--rm", "-u", "0", image, "id", "-u")) == "0\n"


@pytest.mark.needs_subids
def test_non_root_user_cannot_write_where_only_root_may(sh):
    result = sh("touch /root/x", "-u", "1000")
    assert result.returncode == 1
    assert "Permission denied" in result.stderr


# ---- entrypoint and command ----

def test_image_cmd_runs_when_no_command_is_given(rootless, busybox):
    # the busybox image's Cmd is ["sh"], which reads its commands from stdin
    assert ok(rootless("run", "--rm", "-i", busybox, input="echo from-cmd\n")) == "from-cmd\n"


def test_entrypoint_option_replaces_the_command(rootless, busybox):
    assert ok(rootless("run", "--rm", "--entrypoint", "/bin/echo", busybox, "hello")) == \
        "hello\n"


def test_entrypoint_option_drops_the_image_cmd(rootless, busybox):
    assert ok(rootless("run", "--rm", "--entrypoint", "/bin/echo", busybox)) == "\n"


def test_image_entrypoint_gets_the_cmd_as_arguments(rootless, load_variant):
    image = load_variant("withentry", "--entrypoint", '["/bin/echo", "entry"]',
                         "--cmd", '["default-cmd"]')
    assert ok(rootless("run", "--rm", image)) == "entry default-cmd\n"
    assert ok(rootless("run", "--rm", image, "given")) == "entry given\n"


def test_empty_entrypoint_option_resets_the_image_entrypoint(rootless, load_variant):
    image = load_variant("withentry", "--entrypoint", '["/bin/echo", "entry"]',
                         "--cmd", '["default-cmd"]')
    assert ok(rootless("run", "--rm", "--entrypoint=", image, "echo", "plain")) == "plain\n"


def test_arguments_after_the_image_belong_to_the_command(rootless, busybox):
    assert ok(rootless("run", "--rm", busybox, "echo", "--rm", "-it", "a  b")) == \
        "--rm -it a  b\n"


# ---- bind mounts ----

def test_bind_mount_shows_host_files_in_the_container(sh, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in").write_text("from host\n")
    assert ok(sh("cat /data/in", "-v", f"{tmp_path}/data:/data")) == "from host\n"


def test_bind_mount_read_write_shows_container_writes_on_the_host(sh, tmp_path):
    (tmp_path / "data").mkdir()
    ok(sh("echo from container > /data/out", "-v", f"{tmp_path}/data:/data"))
    out = tmp_path / "data" / "out"
    assert out.read_text() == "from container\n"
    assert (out.stat().st_uid, out.stat().st_gid) == (os.getuid(), os.getgid())


def test_bind_mount_read_only_refuses_writes(sh, tmp_path):
    (tmp_path / "data").mkdir()
    result = sh("echo x > /data/out", "-v", f"{tmp_path}/data:/data:ro")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not (tmp_path / "data" / "out").exists()


def test_bind_mount_read_only_cannot_be_remounted_read_write(sh, tmp_path):
    (tmp_path / "data").mkdir()
    result = sh("mount -o remount,rw /data && touch /data/out",
                "-v", f"{tmp_path}/data:/data:ro")
    assert result.returncode != 0
    assert not (tmp_path / "data" / "out").exists()


def test_bind_mount_of_a_single_file(sh, tmp_path):
    (tmp_path / "motd").write_text("hello file\n")
    assert ok(sh("cat /etc/motd", "-v", f"{tmp_path}/motd:/etc/motd:ro")) == "hello file\n"


def test_bind_mount_target_is_created_in_the_container_only(sh, tmp_path):
    (tmp_path / "data").mkdir()
    ok(sh("test -d /new/mount/point", "-v", f"{tmp_path}/data:/new/mount/point"))
    assert ok(sh("test -e /new || echo absent")) == "absent\n"


@pytest.mark.needs_single_id
def test_without_subids_files_of_a_non_root_user_belong_to_the_host_user(sh, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ok(sh("touch /data/by-1000", "-u", "1000", "-v", f"{data}:/data"))
    assert (data / "by-1000").stat().st_uid == os.getuid()


@pytest.mark.needs_subids
def test_with_subids_files_of_a_non_root_user_belong_to_a_subordinate_id(sh, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    ok(sh("touch /data/by-1000", "-u", "1000", "-v", f"{data}:/data"))
    start = subordinate_start("/etc/subuid")
    assert (data / "by-1000").stat().st_uid == start + USER_UID - 1


# ---- network ----

def interfaces(proc_net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:]}


def test_network_none_has_only_loopback(sh):
    assert interfaces(ok(sh("cat /proc/net/dev", "--network", "none"))) == {"lo"}


def test_network_none_loopback_is_up(sh):
    out = ok(sh("ip link show lo", "--network", "none"))
    flags = re.search(r"<([^>]*)>", out)
    assert flags and "UP" in flags.group(1).split(","), out


def test_network_none_sees_none_of_the_host_interfaces(sh):
    host = interfaces(Path("/proc/net/dev").read_text()) - {"lo"}
    inside = interfaces(ok(sh("cat /proc/net/dev", "--network", "none")))
    assert not host & inside


def test_network_host_sees_the_host_interfaces(sh):
    host = interfaces(Path("/proc/net/dev").read_text())
    assert interfaces(ok(sh("cat /proc/net/dev", "--network", "host"))) == host


def test_unknown_network_mode_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "--network", "nosuchnet", busybox, "echo", "ran")
    assert_error(result, 125, "nosuchnet")
    assert result.stdout == ""


# ---- --ulimit ----

def test_ulimit_sets_soft_and_hard_limits(sh):
    assert sh("ulimit -Sn; ulimit -Hn", "--ulimit", "nofile=100:200").stdout.split() == [
        "100", "200"]


def test_ulimit_with_one_number_sets_both(sh):
    assert sh("ulimit -Sn; ulimit -Hn", "--ulimit", "nofile=300").stdout.split() == [
        "300", "300"]


def test_ulimit_of_an_unknown_resource_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "--ulimit", "nofiles=1", busybox, "true")
    assert result.returncode == 125 and "invalid ulimit type: nofiles" in result.stderr


def test_ulimit_above_the_users_hard_limit_is_refused(rootless, busybox):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this user's nofile hard limit is unlimited")
    result = rootless("run", "--rm", "--ulimit", f"nofile={hard + 1}", busybox, "true")
    assert result.returncode == 125 and "RLIMIT_NOFILE" in result.stderr
