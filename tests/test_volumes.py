"""Volumes and the mount flags: `volume create|ls|inspect|rm|prune`, `run -v NAME:/p`,
anonymous volumes, `--mount` (bind, volume, tmpfs), `--tmpfs`, `--read-only`, and what
`ps -f volume=` and `inspect` say of them; through the real CLI, as both test users.
"""

from __future__ import annotations

import json
import os

import pytest
from helpers import assert_error, ok

pytestmark = pytest.mark.container


def volumes(rootless, *args: str) -> list[str]:
    return ok(rootless("volume", "ls", "-q", *args)).split()


# ---- volume create, ls, inspect ----

def test_create_prints_the_name_and_ls_lists_it(rootless):
    assert ok(rootless("volume", "create", "data1")) == "data1\n"
    out = ok(rootless("volume", "ls"))
    assert out.splitlines() == ["DRIVER    VOLUME NAME", "local     data1"]


def test_create_without_a_name_makes_a_random_64_hex_name(rootless):
    name = ok(rootless("volume", "create")).strip()
    assert len(name) == 64 and int(name, 16) >= 0
    assert volumes(rootless) == [name]


def test_create_refuses_a_name_outside_docker_rule(rootless):
    assert_error(rootless("volume", "create", "bad name!"), 125,
                 "includes invalid characters for a local volume name")
    assert volumes(rootless) == []


def test_create_refuses_another_driver(rootless):
    assert_error(rootless("volume", "create", "-d", "nfs", "data1"), 1,
                 'plugin "nfs" not found')


def test_inspect_prints_docker_volume_json(rootless, store):
    ok(rootless("volume", "create", "--label", "tier=db", "data1"))
    [obj] = json.loads(ok(rootless("volume", "inspect", "data1")))
    assert set(obj) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                        "Scope"}
    assert (obj["Name"], obj["Driver"], obj["Scope"]) == ("data1", "local", "local")
    assert obj["Labels"] == {"tier": "db"}
    assert obj["Mountpoint"] == str(store / "volumes" / "data1" / "_data")
    assert os.path.isdir(obj["Mountpoint"])


def test_inspect_format_and_missing_volume(rootless):
    ok(rootless("volume", "create", "data1"))
    assert ok(rootless("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data1")) == \
        "data1 local\n"
    assert_error(rootless("volume", "inspect", "nope"), 1, "no such volume: nope")


def test_ls_filters_name_label_and_dangling(rootless, busybox):
    ok(rootless("volume", "create", "--label", "tier=db", "dbdata"))
    ok(rootless("volume", "create", "webdata"))
    ok(rootless("run", "-v", "webdata:/w", busybox, "true"))
    assert volumes(rootless, "-f", "name=db") == ["dbdata"]
    assert volumes(rootless, "-f", "label=tier=db") == ["dbdata"]
    assert volumes(rootless, "-f", "dangling=true") == ["dbdata"]
    assert volumes(rootless, "-f", "dangling=false") == ["webdata"]
    assert_error(rootless("volume", "ls", "-f", "colour=red"), 1, "invalid filter 'colour'")


def test_ls_format_template(rootless):
    ok(rootless("volume", "create", "--label", "a=b", "data1"))
    assert ok(rootless("volume", "ls", "--format", "{{.Name}}:{{.Labels}}")) == "data1:a=b\n"


# ---- rm, prune ----

def test_rm_removes_the_volume_and_its_directory(rootless, store):
    ok(rootless("volume", "create", "data1"))
    assert ok(rootless("volume", "rm", "data1")) == "data1\n"
    assert volumes(rootless) == []
    assert not (store / "volumes" / "data1").exists()


def test_rm_refuses_a_volume_a_container_uses(rootless, busybox):
    ok(rootless("run", "--name", "user", "-v", "data1:/d", busybox, "true"))
    assert_error(rootless("volume", "rm", "data1"), 1, "remove data1: volume is in use")
    assert volumes(rootless) == ["data1"]
    ok(rootless("rm", "user"))
    ok(rootless("volume", "rm", "data1"))


def test_rm_of_a_missing_volume_fails_unless_forced(rootless):
    assert_error(rootless("volume", "rm", "nope"), 1, "no such volume: nope")
    assert ok(rootless("volume", "rm", "-f", "nope")) == ""


def test_prune_removes_unused_anonymous_volumes_only(rootless, busybox):
    ok(rootless("volume", "create", "named"))
    ok(rootless("run", "--name", "anon", "-v", "/d", busybox, "true"))
    ok(rootless("rm", "anon"))  # without -v: its anonymous volume stays
    [anonymous] = [v for v in volumes(rootless) if v != "named"]
    out = ok(rootless("volume", "prune", "-f"))
    assert out.startswith(f"Deleted Volumes:\n{anonymous}\n\nTotal reclaimed space:")
    assert volumes(rootless) == ["named"]


def test_prune_all_removes_unused_named_volumes_but_not_used_ones(rootless, busybox):
    ok(rootless("volume", "create", "idle"))
    ok(rootless("run", "-v", "busy:/d", busybox, "true"))
    out = ok(rootless("volume", "prune", "-a", "-f"))
    assert "idle" in out and "busy" not in out
    assert volumes(rootless) == ["busy"]


def test_prune_asks_first_and_no_answer_is_no(rootless):
    ok(rootless("volume", "create", "idle"))
    result = rootless("volume", "prune", "-a", input="")
    assert_error(result, 1, "volume prune has been cancelled")
    assert "Are you sure you want to continue? [y/N]" in result.stdout
    assert volumes(rootless) == ["idle"]


# ---- run -v NAME ----

def test_new_volume_is_filled_from_the_image(rootless, busybox):
    out = ok(rootless("run", "--rm", "-v", "etcvol:/etc", busybox, "cat",
                      "/etc/rootless-test-image"))
    assert out == "rootless busybox test image\n"


def test_new_volume_at_bin_holds_the_image_programs(rootless, busybox):
    out = ok(rootless("run", "--rm", "-v", "binvol:/bin", busybox, "ls", "/bin"))
    assert "busybox" in out.split() and "sh" in out.split()


def test_volume_keeps_data_across_runs(rootless, busybox):
    ok(rootless("run", "--rm", "-v", "keep:/data", busybox, "sh", "-c",
                "echo kept > /data/file"))
    assert ok(rootless("run", "--rm", "-v", "keep:/data", busybox, "cat", "/data/file")) \
        == "kept\n"


def test_existing_volume_is_not_refilled(rootless, busybox):
    ok(rootless("run", "--rm", "-v", "etcvol:/etc", busybox, "rm",
                "/etc/rootless-test-image"))
    result = rootless("run", "--rm", "-v", "etcvol:/etc", busybox, "cat",
                      "/etc/rootless-test-image")
    assert result.returncode == 1 and "No such file" in result.stderr


def test_read_only_volume_refuses_writes(rootless, busybox):
    result = rootless("run", "--rm", "-v", "rovol:/data:ro", busybox, "touch", "/data/x")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr


def test_volume_with_image_symlink_to_etc_passwd_copies_the_link(rootless, load_variant,
                                                                   store):
    image = load_variant("linkvol", "--symlink", "/home/user/passwd=/etc/passwd")
    ok(rootless("run", "--rm", "-v", "links:/home/user", image, "true"))
    copied = store / "volumes" / "links" / "_data" / "passwd"
    assert os.readlink(copied) == "/etc/passwd"  # the link itself, never the host file


def test_volume_under_a_symlinked_mount_point_copies_inside_the_image(rootless,
                                                                      load_variant, store):
    image = load_variant("linkdir", "--symlink", "/data=/etc")
    ok(rootless("run", "--rm", "-v", "viaetc:/data", image, "true"))
    data = store / "volumes" / "viaetc" / "_data"
    assert (data / "rootless-test-image").read_text() == "rootless busybox test image\n"
    host_only = {n for n in os.listdir("/etc")} - {n for n in os.listdir(data)}
    assert "os-release" not in host_only and host_only  # the image's /etc, not the host's


def test_anonymous_volume_is_removed_with_rm_flag(rootless, busybox):
    ok(rootless("run", "--rm", "-v", "/scratch", busybox, "touch", "/scratch/x"))
    assert volumes(rootless) == []


def test_anonymous_volume_stays_without_rm_and_goes_with_rm_v(rootless, busybox):
    ok(rootless("run", "--name", "keeper", "-v", "/scratch", busybox, "true"))
    assert len(volumes(rootless)) == 1
    ok(rootless("rm", "-v", "keeper"))
    assert volumes(rootless) == []


def test_named_volume_stays_after_run_rm(rootless, busybox):
    ok(rootless("run", "--rm", "-v", "named:/d", busybox, "true"))
    assert volumes(rootless) == ["named"]


def test_bad_volume_name_is_refused_before_any_container(rootless, busybox):
    assert_error(rootless("run", "--rm", "-v", "b@d:/d", busybox, "true"), 125,
                 "includes invalid characters")
    assert ok(rootless("ps", "-a", "-q")) == ""


# ---- ps -f volume=, inspect Mounts ----

def test_ps_filter_volume_matches_the_volume_name(rootless, busybox):
    ok(rootless("run", "--name", "user", "-v", "shared:/d", busybox, "true"))
    ok(rootless("run", "--name", "other", busybox, "true"))
    assert ok(rootless("ps", "-a", "-f", "volume=shared", "--format", "{{.Names}}")) == \
        "user\n"


def test_inspect_shows_a_volume_mount(rootless, busybox, store):
    ok(rootless("run", "--name", "user", "-v", "shared:/d:ro", busybox, "true"))
    [obj] = json.loads(ok(rootless("inspect", "user")))
    [mount] = obj["Mounts"]
    assert mount["Type"] == "volume" and mount["Name"] == "shared"
    assert mount["Source"] == str(store / "volumes" / "shared" / "_data")
    assert (mount["Destination"], mount["Driver"], mount["RW"]) == ("/d", "local", False)


# ---- --mount ----

def test_mount_bind_readonly(rootless, busybox, tmp_path):
    (tmp_path / "in").write_text("host\n")
    out = ok(rootless("run", "--rm", "--mount",
                      f"type=bind,source={tmp_path},target=/h,readonly", busybox, "sh",
                      "-c", "cat /h/in; touch /h/x 2>&1; true"))
    assert out.startswith("host\n") and "Read-only file system" in out
    assert not (tmp_path / "x").exists()


def test_mount_volume_by_name(rootless, busybox):
    ok(rootless("run", "--rm", "--mount", "type=volume,src=mv,dst=/m", busybox, "sh", "-c",
                "echo hi > /m/f"))
    assert ok(rootless("run", "--rm", "--mount", "source=mv,target=/m", busybox, "cat",
                       "/m/f")) == "hi\n"


def test_mount_tmpfs_with_size_and_mode(rootless, busybox):
    out = ok(rootless("run", "--rm", "--mount",
                      "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", busybox, "sh",
                      "-c", "stat -c %a /t; grep ' /t ' /proc/mounts"))
    mode, line = out.splitlines()
    assert mode == "1770"
    assert line.split()[2] == "tmpfs" and "size=1024k" in line


@pytest.mark.parametrize("value, words", [
    ("type=nfs,target=/x", 'invalid mount config for type "nfs": mount type unknown'),
    ("type=bind,source=/tmp", "target is required"),
    ("type=bind,target=/x", "field Source must not be empty"),
    ("type=tmpfs,source=/tmp,target=/x", "field Source must not be specified"),
    ("type=bind,source=/tmp,target=/x,colour=red", "unexpected key 'colour'"),
    ("type=bind,source=/tmp,target=/x,tmpfs-size=1m",
     "cannot mix 'tmpfs-*' options with mount type 'bind'"),
    ("type=bind,source=/no/such/dir,target=/x", "bind source path does not exist"),
    ("type=tmpfs,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
])
def test_mount_bad_values_are_refused(rootless, busybox, value, words):
    assert_error(rootless("run", "--rm", "--mount", value, busybox, "true"), 125, words)
    assert ok(rootless("ps", "-a", "-q")) == ""


# ---- --tmpfs, --read-only ----

def test_tmpfs_flag_mounts_a_tmpfs_with_its_size(rootless, busybox):
    out = ok(rootless("run", "--rm", "--tmpfs", "/scratch:size=2m", busybox, "grep",
                      " /scratch ", "/proc/mounts"))
    assert out.split()[2] == "tmpfs" and "size=2048k" in out and "noexec" in out


def test_tmpfs_flag_refuses_an_unknown_option(rootless, busybox):
    assert_error(rootless("run", "--rm", "--tmpfs", "/t:colour=red", busybox, "true"), 125,
                 "invalid tmpfs option 'colour=red'")


def test_read_only_refuses_writes_to_the_root(rootless, busybox):
    result = rootless("run", "--rm", "--read-only", busybox, "touch", "/file")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr


def test_read_only_keeps_tmpfs_dev_shm_and_volumes_writable(rootless, busybox):
    ok(rootless("run", "--rm", "--read-only", "--tmpfs", "/tmp", "-v", "rw:/data", busybox,
                "sh", "-c", "touch /tmp/a /dev/shm/b /data/c /dev/d"))


@pytest.mark.needs_subids
def test_rm_of_a_volume_holding_files_of_subordinate_ids(rootless, busybox, store):
    ok(rootless("run", "--rm", "-v", "shared:/d", busybox, "chmod", "777", "/d"))
    ok(rootless("run", "--rm", "-u", "1000", "-v", "shared:/d", busybox, "touch", "/d/f"))
    assert (store / "volumes" / "shared" / "_data" / "f").stat().st_uid != os.getuid()
    assert ok(rootless("volume", "rm", "shared")) == "shared\n"
    assert not (store / "volumes" / "shared").exists()
