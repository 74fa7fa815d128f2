"""User and group values never become root by accident (issue 7).

`-u`, the image's User and `--group-add`: a number is an id, never a name; ids that are
-1 to the kernel, negative, 2^32 or more, or not plain decimal are refused with one line
and exit 125, before anything runs; so are ids the container's id mapping cannot hold.
The image's /etc/passwd and /etc/group are read as the container sees them (whiteouts,
opaque directories and symlinks resolved in the image's merged layers), and only when
they are small regular files: a FIFO, a device, a socket or a link out of the image
never hangs `run` nor reaches the host. Supplementary groups: with subordinate ids the
user's own groups are dropped by default (so "other" permission bits apply, as in
podman), and kept with `--group-add keep-groups`.

Hostile images are built here: busybox's layer with layers of the test's own on top.
"""

from __future__ import annotations

import grp
import os
import socket
import stat
from pathlib import Path

import pytest
from helpers import USER_UID, USERS_GID, assert_error, has_subids, ok
from test_image_load import Image, oci_archive
from test_layer_unpack import entry, tar_bytes

pytestmark = pytest.mark.container

PATH = ("-e", "PATH=/usr/sbin:/usr/bin:/sbin:/bin")  # the test images' config has /bin
ROOT_LINE = "root:x:0:0:root:/root:/bin/sh\n"
TEST_GROUP = "rl-testgrp"  # scripts/test makes both test users members


@pytest.fixture
def stacked(rootless, image_archives, tmp_path):
    """load(name, *layer_tars) -> "NAME:latest": busybox's layer with these on top."""
    base = image_archives.rootfs.read_bytes()

    def load(name: str, *layers: bytes) -> str:
        image = Image([base, *layers])
        archive = oci_archive(tmp_path / f"{name}.oci.tar",
                              [(image, {"org.opencontainers.image.ref.name": f"{name}:latest"})])
        ok(rootless("load", "-i", str(archive)))
        return f"{name}:latest"

    return load


def etc_layer(*entries) -> bytes:
    return tar_bytes(entry("etc", "dir"), *entries)


def text_file(name: str, text: str):
    return entry(name, data=text.encode())


def run(rootless, image: str, *args: str, options=(), **kw):
    return rootless("run", "--rm", *PATH, *options, image, *args, **kw)


# ---- numbers are ids, never names ----

def test_numeric_user_is_a_uid_never_a_user_named_so(rootless, stacked):
    image = stacked("named1000", etc_layer(text_file("etc/passwd", (
        ROOT_LINE + "1000:x:0:0:impostor:/root:/bin/sh\n"
        "user:x:1000:1000:user:/home/user:/bin/sh\n"))))
    out = ok(run(rootless, image, "sh", "-c", 'id -u; id -g; echo "$HOME"',
                 options=("-u", "1000")))
    assert out.split() == ["1000", "1000", "/home/user"]


@pytest.mark.needs_subids
def test_numeric_group_is_a_gid_never_a_group_named_so(rootless, stacked):
    image = stacked("group4242", etc_layer(text_file(
        "etc/group", "root:x:0:\n4242:x:0:\nusers:x:100:\n")))
    out = ok(run(rootless, image, "id", "-G", options=("-u", "1000", "--group-add", "4242")))
    assert out.split() == ["1000", "4242"]


@pytest.mark.parametrize("value", ["4294967295", "4294967296", "99999999999999999999",
                                   "-1", "-5", "+1", " 1", "0x10", "1e3", "1_000",
                                   "\u0661", "\uff11"])
def test_user_that_is_no_id_nor_name_is_refused(rootless, busybox, value):
    result = rootless("run", "--rm", "-u", value, busybox, "echo", "ran")
    assert_error(result, 125, "invalid user", value.strip())
    assert result.stdout == ""


@pytest.mark.parametrize("value", ["4294967295", "-1", "+0", "0x0"])
def test_group_that_is_no_id_nor_name_is_refused(rootless, busybox, value):
    for option in (("-u", f"0:{value}"), ("--group-add", value)):
        result = rootless("run", "--rm", *option, busybox, "echo", "ran")
        assert_error(result, 125, "invalid group", value)
        assert result.stdout == ""


def test_image_user_minus_one_is_refused(rootless, load_variant):
    image = load_variant("userminus1", "--user", "4294967295")
    result = rootless("run", "--rm", image, "echo", "ran")
    assert_error(result, 125, "invalid user id 4294967295")
    assert result.stdout == ""


@pytest.mark.parametrize("uid", ["4294967295", "4294967296", "-1", "+0", "0x0", ""])
def test_passwd_line_with_an_invalid_uid_is_refused(rootless, stacked, uid):
    image = stacked("baduid", etc_layer(text_file(
        "etc/passwd", ROOT_LINE + f"evil:x:{uid}:0::/:/bin/sh\n")))
    result = run(rootless, image, "echo", "ran", options=("-u", "evil"))
    assert_error(result, 125, "/etc/passwd", "'evil'", "invalid uid")
    assert result.stdout == ""


@pytest.mark.parametrize("user", ["user", "0:evil"], ids=["member", "primary"])
def test_group_line_with_an_invalid_gid_is_refused(rootless, stacked, user):
    image = stacked("badgid", etc_layer(text_file(
        "etc/group", "root:x:0:\nusers:x:100:user\nevil:x:4294967295:user\n")))
    result = run(rootless, image, "echo", "ran", options=("-u", user))
    assert_error(result, 125, "/etc/group", "'evil'", "invalid gid")
    assert result.stdout == ""


@pytest.mark.needs_subids
@pytest.mark.parametrize("option, what", [(("-u", "70000"), "uid 70000"),
                                          (("-u", "0:70000"), "gid 70000"),
                                          (("--group-add", "70000"), "gid 70000")])
def test_id_outside_the_subordinate_range_is_refused_by_name(rootless, busybox, option,
                                                            what):
    result = rootless("run", "--rm", *option, busybox, "echo", "ran")
    assert_error(result, 125, what, "not mapped", "/etc/sub")
    assert result.stdout == ""


# ---- the image's /etc/passwd, as the container sees it ----

def test_passwd_that_is_a_fifo_is_refused_without_hanging(rootless, stacked):
    image = stacked("fifopasswd", etc_layer(entry("etc/passwd", "fifo")))
    result = run(rootless, image, "echo", "ran", timeout=30)
    assert_error(result, 125, "/etc/passwd", "fifo")


def test_passwd_that_is_a_device_is_refused(rootless, stacked):
    image = stacked("devpasswd", etc_layer(entry("etc/passwd", "char", major=1, minor=3)))
    result = run(rootless, image, "echo", "ran", timeout=30)
    assert_error(result, 125, "/etc/passwd", "character device")


def test_passwd_that_is_a_socket_is_refused(rootless, stacked, store):
    marker = "sockuser:x:0:0::/:/bin/sh\n"
    image = stacked("sockpasswd", etc_layer(text_file("etc/passwd", marker)))
    (path,) = [p for p in (store / "layers").glob("*/etc/passwd") if p.is_file()
               and p.read_text() == marker]
    path.unlink()
    etc = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(f"/proc/self/fd/{etc}/passwd")  # a short name: sun_path holds 108 bytes
        os.close(etc)
        result = run(rootless, image, "echo", "ran", timeout=30)
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert_error(result, 125, "/etc/passwd", "socket")


def test_passwd_over_the_size_limit_is_refused(rootless, stacked):
    big = ROOT_LINE + "#" * 79 + "\n"
    image = stacked("bigpasswd", etc_layer(text_file("etc/passwd", big * (5 << 20 >> 7))))
    result = run(rootless, image, "echo", "ran")
    assert_error(result, 125, "/etc/passwd", "larger than 4 MiB")


def test_passwd_symlink_out_of_the_image_never_reads_the_host(rootless, stacked, tmp_path):
    host = tmp_path / "host-passwd"
    host.write_text(ROOT_LINE + "hostmark:x:0:0::/:/bin/sh\n")
    image = stacked(
        "linkpasswd",
        tar_bytes(text_file(str(host).lstrip("/"),  # the same path, inside the image
                            ROOT_LINE + "imagemark:x:4242:4242::/:/bin/sh\n")),
        etc_layer(entry("etc/passwd", "symlink", link=str(host))))
    result = run(rootless, image, "echo", "ran", options=("-u", "hostmark"))
    assert_error(result, 125, "unable to find user hostmark")
    out = ok(run(rootless, image, "id", "-u", options=("-u", "imagemark")))
    assert out == "4242\n"  # the link, followed in the image across its layers


def test_whiteout_in_an_upper_layer_hides_the_lower_passwd(rootless, stacked):
    image = stacked("whiteoutpasswd", etc_layer(entry("etc/.wh.passwd")))
    result = run(rootless, image, "echo", "ran", options=("-u", "user"))
    assert_error(result, 125, "unable to find user user")
    assert "No such file" in run(rootless, image, "cat", "/etc/passwd").stderr


def test_opaque_etc_in_an_upper_layer_hides_the_lower_passwd(rootless, stacked):
    image = stacked("opaqueetc", etc_layer(entry("etc/.wh..wh..opq"),
                                           text_file("etc/group", "root:x:0:\n")))
    result = run(rootless, image, "echo", "ran", options=("-u", "user"))
    assert_error(result, 125, "unable to find user user")
    assert "No such file" in run(rootless, image, "cat", "/etc/passwd").stderr


def test_run_resolves_through_a_symlinked_etc_without_openat2(rootless, stacked,
                                                              rootless_env):
    """The whole run path under the O_NOFOLLOW walk (as on Linux < 5.6): the user lookup
    and every mount point follow /etc -> /private/etc inside the image."""
    image = stacked(
        "linkedetc",
        tar_bytes(entry("private", "dir"), entry("private/etc", "dir"),
                  text_file("private/etc/passwd", ROOT_LINE + "walker:x:4343:0::/:/bin/sh\n")),
        tar_bytes(entry("etc", "symlink", link="/private/etc")))
    env = {**rootless_env, "ROOTLESS_NO_OPENAT2": "1"}
    out = ok(rootless("run", "--rm", *PATH, "-u", "walker", "--hostname", "walkhost", image,
                      "sh", "-c", "id -u; cat /private/etc/hostname", env=env))
    assert out.split() == ["4343", "walkhost"]


# ---- supplementary groups ----

@pytest.fixture
def group_only_file(tmp_path) -> Path:
    """A directory holding `secret`, mode 0604, of a group the test user belongs to: the
    group's own bits deny it what "other" may do."""
    try:
        gid = grp.getgrnam(TEST_GROUP).gr_gid
    except KeyError:
        pytest.skip(f"no group {TEST_GROUP} (scripts/test makes it)")
    if gid not in os.getgroups():
        pytest.skip(f"this user is not in {TEST_GROUP} (scripts/test adds it)")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    secret = shared / "secret"
    secret.write_text("group may not read\n")
    os.chown(secret, -1, gid)
    secret.chmod(0o604)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o604
    return shared


@pytest.mark.needs_subids
def test_keep_groups_keeps_the_users_groups_which_the_default_drops(sh, group_only_file):
    mount = ("-v", f"{group_only_file}:/data", "-u", str(USER_UID))
    # the default: setgroups([]) drops the host groups, so "other" may read (podman's)
    assert ok(sh("cat /data/secret", *mount)) == "group may not read\n"
    result = sh("cat /data/secret", *mount, "--group-add", "keep-groups")
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


def test_keep_groups_denies_setgroups_in_the_container(sh):
    assert ok(sh("cat /proc/self/setgroups", "--group-add", "keep-groups")) == "deny\n"
    # without it, only single-id mode denies it (an unprivileged gid map needs that)
    assert ok(sh("cat /proc/self/setgroups")) == ("allow\n" if has_subids() else "deny\n")


@pytest.mark.needs_single_id
def test_keep_groups_changes_nothing_in_single_id_mode(sh):
    probe = "id -G; cat /proc/self/setgroups"
    assert ok(sh(probe, "--group-add", "keep-groups")) == ok(sh(probe))


def test_keep_groups_cannot_be_combined_with_other_groups(rootless, busybox):
    result = rootless("run", "--rm", "--group-add", "keep-groups", "--group-add", "users",
                      busybox, "echo", "ran")
    assert_error(result, 125, "keep-groups", "cannot be combined")


@pytest.mark.needs_subids
def test_group_add_adds_groups_by_name_and_number(sh):
    out = ok(sh("id -G", "-u", "nobody", "--group-add", "users", "--group-add", "4242"))
    assert out.split()[1:] == [str(USERS_GID), "4242"]


def test_group_add_of_an_unknown_name_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "--group-add", "nosuchgroup", busybox, "echo", "ran")
    assert_error(result, 125, "unable to find group nosuchgroup")


@pytest.mark.needs_single_id
def test_group_add_needs_subordinate_ids(rootless, busybox):
    result = rootless("run", "--rm", "--group-add", "users", busybox, "echo", "ran")
    assert_error(result, 125, "--group-add users", "single-id")
