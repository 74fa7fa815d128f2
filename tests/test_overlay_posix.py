"""POSIX behaviour of our FUSE overlay (fs/fuse_*.py), side by side with the kernel's.

One container per overlay runs SCRIPT, which prints one line per check ("NAME RESULT");
each test below asserts one of them, against both overlays (ROOTLESS_OVERLAY=fuse|kernel)
so the two behave alike, and a last test asserts that they agree on every line. The
checks are pjdfstest's kinds (chmod, chown, link, rename, unlink, mkdir, symlink,
truncate) and the overlay's own: copy-up, a whiteout over an image file, an opaque
directory after rmdir+mkdir, rename of an image directory, a hardlink after copy-up,
xattrs, O_APPEND, mmap, sparse and large files, statfs, fsync. A static probe
(tests/fs_probe.c) makes the calls busybox has no applet for and prints the errno's
name, so a refusal is asserted by its reason.

Then, as `-u 1000`: the FUSE overlay enforces the recorded owners in single-id mode,
where the kernel overlay shows every file as the one mapped id's (a container user
could write root's files); with a subordinate range both overlays enforce them. And a
container's upper/ written by the FUSE overlay reads, for diff and commit, exactly as
the kernel overlay's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from helpers import Rootless, children_of, has_subids, ok, wait_for

pytestmark = pytest.mark.container

HERE = Path(__file__).parent
OVERLAYS = ("fuse", "kernel")
FS_TYPE = {"fuse": "fuse", "kernel": "overlay"}
DEBIAN_TAR = Path(os.environ.get("ROOTLESS_DEBIAN_FIXTURE",
                                  "/var/tmp/rootless-fixtures/debian-bookworm.tar"))

SCRIPT = r"""
P=/probe/fs_probe
r() { echo "$1 $2"; }
gone() { [ -e "$1" ] && echo left || echo gone; }
r root_fs "$(awk '$2 == "/" {t = $3} END {print t}' /proc/mounts)"
r dot_entries "$(ls -a / | head -2 | tr '\n' ' ')"
touch /f1; chmod 0640 /f1; r chmod "$(stat -c %a /f1)"
chmod 4755 /f1; r chmod_setuid "$(stat -c %a /f1)"
O=/etc/os-release
chmod 600 $O; r chmod_copies_up "$(stat -c %a $O) $(grep -c ID= $O)"
touch /f2; chmod 4755 /f2; chown 0:0 /f2; r chown_clears_setuid "$(stat -c %a /f2)"
r chown_other "$($P chown /f1 1000 1000) $(stat -c %u:%g /f1)"
echo a > /l1; ln /l1 /l2; echo b >> /l2
same() { [ "$(stat -c %i "$1")" = "$(stat -c %i "$2")" ] && echo same; }
r link "$(stat -c %h /l1) $(tr '\n' ' ' < /l1)$(same /l1 /l2)"
ln $O /os2; echo x >> /os2
r link_after_copy_up "$(stat -c %h $O) $(tail -1 $O)"
echo 1 > /r1; echo 2 > /r2; r rename_over "$($P rename /r1 /r2) $(cat /r2) $(gone /r1)"
G=/etc/group
r rename_image_file "$($P rename $G ${G}2) $(gone $G) $(grep -c root ${G}2)"
r rename_image_dir "$($P rename /usr/sbin /usr/sbin2) $(gone /usr/sbin2)"
mv /home /home2; r mv_image_dir "$(ls /home2) $(gone /home)"
mkdir -p /d1/x; r rename_dir "$($P rename /d1 /d2) $(ls /d2) $(gone /d1)"
mkdir -p /d3/y /d4; r rename_dir_over_nonempty "$($P rename /d4 /d3)"
mkdir /d5; r rename_dir_over_empty "$($P rename /d4 /d5) $(gone /d4)"
M=/etc/rootless-test-image
r replace_open_image_file "$($P replace_open $M) $(cat $M)"
rm /etc/rootless-test-image
r whiteout "$(gone /etc/rootless-test-image) $(ls -a /etc | grep -c -e rootless-test -e '^\.wh')"
echo new > /etc/rootless-test-image; r recreate_over_whiteout "$(cat /etc/rootless-test-image)"
r unlink_dir "$($P unlink /d2)"
r unlink_missing "$($P unlink /nothing)"
mkdir /m1; r mkdir "$(stat -c %a /m1) $($P mkdir /m1)"
r rmdir_nonempty "$($P rmdir /d3)"
r rmdir "$($P rmdir /d5) $(gone /d5)"
rm -rf /home2/user; rmdir /home2; mkdir /home2; r opaque_after_rmdir_mkdir "$(ls -A /home2 | wc -l)"
ln -s /etc/passwd /s1; ln -s /nowhere /s2
r symlink "$(readlink /s1) $(head -c4 /s1) $(readlink /s2) $(stat -c %F /s2)"
echo hello > /t1; truncate -s 2 /t1; r truncate "$(cat /t1) $(stat -c %s /t1)"
truncate -s 100000 /t1; r truncate_grow "$(stat -c %s /t1) $(od -An -c -j1 -N2 /t1 | tr -d ' ')"
echo new > $O; r o_trunc_image_file "$(cat $O) $(stat -c %s $O)"
: > /ap; r o_append "$($P append /ap)"
W=/etc/passwd
echo extra >> $W; r o_append_image_file "$(tail -1 $W) $(grep -c root $W)"
r mmap "$($P mmap /mm)"
r sparse "$($P sparse /sp)"
dd if=/dev/zero of=/big bs=1M count=32 2>/dev/null
r large "$(stat -c %s /big) $(sha256sum < /big | cut -c1-16)"
r statfs "$($P statfs /)"
r fsync "$($P fsync /fs1) $(cat /fs1)"
touch /x1; r xattr_set "$($P setx /x1 user.test hello) $($P getx /x1 user.test)"
r xattr_list "$($P listx /x1)"
r xattr_remove "$($P rmx /x1 user.test) $($P getx /x1 user.test)"
echo w > /x2
r xattr_set_after_a_miss "$($P getx /x2 user.t) $($P setx /x2 user.t v) $($P getx /x2 user.t)"
B=/bin/busybox
r xattr_copies_up "$($P setx $B user.a b) $($P getx $B user.a) $($B true && echo runs)"
mkfifo /ff; r fifo "$(stat -c %F /ff)"
r mknod_device "$(mknod /dev0 c 1 3 2>/dev/null && stat -c '%F %t:%T' /dev0 || echo refused)"
echo open > /uo; exec 3</uo; rm /uo; r unlink_open_file "$(cat <&3) $(gone /uo)"; exec 3<&-
r exec_image_file "$(/bin/busybox echo runs)"
r dot_dot "$(cd /usr/bin && cd .. && pwd)"
"""

AS_USER = r"""
P=/probe/fs_probe
r() { echo "$1 $2"; }
r root_fs "$(awk '$2 == "/" {t = $3} END {print t}' /proc/mounts)"
r id "$(id -u):$(id -g)"
r write_root_file "$($P open /etc/passwd w)"
r truncate_root_file "$($P open /etc/passwd trunc)"
r read_root_file "$($P open /etc/passwd r)"
r list_root_dir "$($P open /root r)"
r search_root_dir "$($P open /root/x r)"
r create_in_root_dir "$($P open /etc/new create)"
r unlink_root_file "$($P unlink /etc/group)"
r rename_root_file "$($P rename /etc/passwd /home/user/p)"
r mkdir_in_root_dir "$($P mkdir /newdir)"
r chmod_root_file "$($P chmod /etc/passwd 666)"
r setxattr_root_file "$($P setx /etc/passwd user.x y)"
r create_in_own_dir "$($P open /home/user/mine create) $(stat -c %a /home/user/mine)"
r chmod_own_file "$($P chmod /home/user/mine 600) $(stat -c %a /home/user/mine)"
r create_in_tmp "$($P open /tmp/t create)"
r exec_root_file "$(/bin/busybox echo runs)"
"""

# what the container makes, for diff and commit (both overlays, same result)
CHANGES = r"""
set -e
echo new > /new; mkdir -p /dir/sub; echo x > /dir/sub/f
chmod 4750 /new; ln -s /new /link; ln /new /hard
echo more >> /etc/passwd; chmod 600 /etc/os-release
rm /etc/group; rm -rf /home/user; rmdir /home; mkdir /home; echo h > /home/h
mkfifo /fifo; touch /x; mv /x /y
awk '$2 == "/" {t = $3} END {print t}' /proc/mounts
"""


def parse(output: str) -> dict[str, str]:
    return {name: rest for name, _, rest in
            (line.partition(" ") for line in output.splitlines()) if name}


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fsprobe")
    built = subprocess.run(["gcc", "-static", "-O1", "-o", str(out / "fs_probe"),
                            str(HERE / "fs_probe.c")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"building the probe failed (gcc, libc6-dev):\n{built.stderr}")
    out.chmod(0o755)  # bound as /probe: `-u 1000` of a subordinate range must enter it
    return out


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, image_archives, pytestconfig):
    """One store for the module (as conftest's `rootless`, module-scoped), with busybox."""
    base = tmp_path_factory.mktemp("overlay-posix")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOTLESS_")}
    if pytestconfig.getoption("--kernel-floor", default=""):
        env["ROOTLESS_KERNEL_FLOOR"] = pytestconfig.getoption("--kernel-floor")
    env.update(ROOTLESS_ROOT=str(base / "store"), XDG_DATA_HOME=str(base / "xdg"))
    if not env.get("XDG_RUNTIME_DIR") or not os.access(env["XDG_RUNTIME_DIR"], os.W_OK):
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="xdg-run-", dir=base)
    runner = Rootless(env)
    ok(runner("image", "load", "-i", str(image_archives.oci)))
    yield runner
    runner.kill_leftovers()
    ids = runner("ps", "-a", "-q", "--no-trunc").stdout.split()
    if ids:
        runner("rm", "-f", *ids)


def run_script(runner: Rootless, probe_dir: Path, overlay: str, script: str,
               *options: str) -> dict[str, str]:
    env = {**runner.env, "ROOTLESS_OVERLAY": overlay}
    result = runner("run", "--rm", "-v", f"{probe_dir}:/probe:ro", *options,
                    "busybox:latest", "sh", "-c", script, env=env, timeout=240)
    out = ok(result)
    results = parse(out)
    # every check below is void unless this container's root is the overlay asked for
    assert results.get("root_fs") == FS_TYPE[overlay], out
    return results


@pytest.fixture(scope="module")
def runs(runner, probe_dir):
    """Each overlay's results, made once."""
    cache: dict[str, dict[str, str]] = {}

    def results(overlay: str) -> dict[str, str]:
        if overlay not in cache:
            cache[overlay] = run_script(runner, probe_dir, overlay, SCRIPT)
        return cache[overlay]

    return results


@pytest.fixture(params=OVERLAYS)
def posix(request, runs) -> dict[str, str]:
    return runs(request.param)


def test_readdir_lists_dot_and_dot_dot(posix):
    assert posix["dot_entries"] == ". .. "


def test_chmod_sets_the_permission_bits(posix):
    assert posix["chmod"] == "640"


def test_chmod_shows_a_setuid_bit(posix):
    assert posix["chmod_setuid"] == "4755"


def test_chmod_of_an_image_file_copies_it_up_with_its_data(posix):
    assert posix["chmod_copies_up"] == "600 1"


def test_chown_clears_the_setuid_bit(posix):
    assert posix["chown_clears_setuid"] == "755"


@pytest.mark.needs_subids
def test_chown_to_another_user_shows_the_new_owner(posix):
    assert posix["chown_other"] == "ok 1000:1000"


def test_hardlink_shares_data_link_count_and_inode(posix):
    assert posix["link"] == "2 a b same"


def test_hardlink_of_an_image_file_copies_it_up_first(posix):
    assert posix["link_after_copy_up"] == "2 x"


def test_rename_replaces_an_existing_file(posix):
    assert posix["rename_over"] == "ok 1 gone"


def test_close_of_an_image_file_replaced_while_open_succeeds(posix):
    assert posix["replace_open_image_file"] == "ok new"


def test_rename_of_an_image_file_leaves_a_whiteout(posix):
    assert posix["rename_image_file"] == "ok gone 1"


def test_rename_of_an_image_directory_is_refused_with_exdev(posix):
    assert posix["rename_image_dir"] == "EXDEV gone"


def test_mv_of_an_image_directory_copies_it(posix):
    assert posix["mv_image_dir"] == "user gone"


def test_rename_of_a_new_directory_moves_it(posix):
    assert posix["rename_dir"] == "ok x gone"


def test_rename_over_a_non_empty_directory_is_refused(posix):
    assert posix["rename_dir_over_nonempty"] == "ENOTEMPTY"


def test_rename_over_an_empty_directory_replaces_it(posix):
    assert posix["rename_dir_over_empty"] == "ok gone"


def test_unlink_of_an_image_file_hides_it(posix):
    assert posix["whiteout"] == "gone 0"


def test_a_file_made_over_a_whiteout_shows(posix):
    assert posix["recreate_over_whiteout"] == "new"


def test_unlink_of_a_directory_is_refused(posix):
    assert posix["unlink_dir"] == "EISDIR"


def test_unlink_of_a_missing_file_is_refused(posix):
    assert posix["unlink_missing"] == "ENOENT"


def test_mkdir_makes_a_directory_once(posix):
    assert posix["mkdir"] == "755 EEXIST"


def test_rmdir_of_a_non_empty_directory_is_refused(posix):
    assert posix["rmdir_nonempty"] == "ENOTEMPTY"


def test_rmdir_removes_an_empty_directory(posix):
    assert posix["rmdir"] == "ok gone"


def test_a_directory_remade_over_an_image_directory_is_opaque(posix):
    assert posix["opaque_after_rmdir_mkdir"] == "0"


def test_symlinks_keep_their_targets(posix):
    assert posix["symlink"] == "/etc/passwd root /nowhere symbolic link"


def test_truncate_shortens_a_file(posix):
    assert posix["truncate"] == "he 2"


def test_truncate_grows_a_file_with_zeros(posix):
    assert posix["truncate_grow"] == r"100000 e\0"


def test_o_trunc_of_an_image_file_copies_it_up_empty(posix):
    assert posix["o_trunc_image_file"] == "new 4"


def test_o_append_writes_at_the_end_for_every_descriptor(posix):
    assert posix["o_append"] == "ababab"


def test_o_append_to_an_image_file_keeps_its_data(posix):
    assert posix["o_append_image_file"] == "extra 1"


def test_shared_writable_mmap_reaches_the_file(posix):
    assert posix["mmap"] == "ok"


def test_sparse_file_stays_sparse(posix):
    assert posix["sparse"] == "size=1073741825 small=yes"


def test_large_file_reads_back_what_was_written(posix):
    zeros = "83ee47245398adee"  # sha256 of 32 MiB of zeros, its first 16 digits
    assert posix["large"] == f"33554432 {zeros}"


def test_statfs_reports_the_upper_filesystem(posix):
    assert posix["statfs"] == "ok"


def test_fsync_and_fdatasync_succeed(posix):
    assert posix["fsync"] == "ok synced"


def test_xattr_set_and_get(posix):
    assert posix["xattr_set"] == "ok hello"


def test_xattr_list_shows_the_users_own(posix):
    assert posix["xattr_list"] == "user.test ."


def test_xattr_remove(posix):
    assert posix["xattr_remove"] == "ok ENODATA"


def test_xattr_set_after_a_lookup_that_found_none_shows(posix):
    # the FUSE server answers absent names from the names it last read (the kernel
    # asks for security.capability at every write): a set must make it read again
    assert posix["xattr_set_after_a_miss"] == "ENODATA ok v"


def test_xattr_on_an_image_file_copies_it_up(posix):
    assert posix["xattr_copies_up"] == "ok b runs"


def test_mkfifo_makes_a_fifo(posix):
    assert posix["fifo"] == "fifo"


def test_an_unlinked_open_file_stays_readable(posix):
    assert posix["unlink_open_file"] == "open gone"


def test_image_programs_run(posix):
    assert posix["exec_image_file"] == "runs"


def test_dot_dot_leads_to_the_parent(posix):
    assert posix["dot_dot"] == "/usr"


# where they differ by design: the FUSE overlay shows a device node the fakeroot
# recorded (single-id mode), the kernel's the empty file standing for it
SHOWN_ONLY_BY_FUSE = {"root_fs", "mknod_device"}


def test_fuse_and_kernel_overlays_agree_on_every_check(runs):
    fuse, kernel = runs("fuse"), runs("kernel")
    differ = {name: (fuse.get(name), kernel.get(name)) for name in set(fuse) | set(kernel)
              if name not in SHOWN_ONLY_BY_FUSE and fuse.get(name) != kernel.get(name)}
    assert not differ, f"(fuse, kernel) differ: {differ}"


@pytest.mark.needs_single_id
def test_fuse_overlay_shows_a_device_node_the_fakeroot_recorded(runs):
    assert runs("fuse")["mknod_device"] == "character special file 1:3"


@pytest.mark.needs_subids
def test_device_nodes_are_refused_with_a_subordinate_range(posix):
    assert posix["mknod_device"] == "refused"


# ---- permissions from the recorded owners, as -u 1000 ----

def user_overlays():
    """With a subordinate range both overlays show true owners; in single-id mode only
    the FUSE overlay enforces them (the kernel's shows every file as the user's)."""
    return OVERLAYS if has_subids() else ("fuse",)


@pytest.fixture(scope="module")
def user_runs(runner, probe_dir):
    cache: dict[str, dict[str, str]] = {}

    def results(overlay: str) -> dict[str, str]:
        if overlay not in cache:
            cache[overlay] = run_script(runner, probe_dir, overlay, AS_USER, "-u", "1000")
        return cache[overlay]

    return results


@pytest.fixture(params=user_overlays())
def as_user(request, user_runs) -> dict[str, str]:
    results = user_runs(request.param)
    assert results["id"] == "1000:1000"
    return results


@pytest.mark.parametrize("check", ["write_root_file", "truncate_root_file",
                                   "list_root_dir", "search_root_dir",
                                   "create_in_root_dir", "unlink_root_file",
                                   "rename_root_file", "mkdir_in_root_dir",
                                   "setxattr_root_file"])
def test_user_may_not_change_or_enter_roots_files(as_user, check):
    assert as_user[check] == "EACCES"


def test_user_may_not_chmod_roots_file(as_user):
    assert as_user["chmod_root_file"] == "EPERM"


def test_user_may_read_roots_world_readable_file(as_user):
    assert as_user["read_root_file"] == "ok"


def test_user_may_create_in_own_directory(as_user):
    assert as_user["create_in_own_dir"] == "ok 644"


def test_user_may_chmod_own_file(as_user):
    assert as_user["chmod_own_file"] == "ok 600"


def test_user_may_create_in_the_sticky_tmp(as_user):
    assert as_user["create_in_tmp"] == "ok"


def test_user_may_run_roots_programs(as_user):
    assert as_user["exec_root_file"] == "runs"


# ---- which overlay a container gets ----

@pytest.mark.needs_single_id
def test_single_id_user_1000_gets_the_fuse_overlay_and_cannot_write_roots_files(
        runner, probe_dir):
    env = {k: v for k, v in runner.env.items() if k != "ROOTLESS_OVERLAY"}
    out = ok(runner("run", "--rm", "-u", "1000", "-v", f"{probe_dir}:/probe:ro",
                    "busybox:latest", "sh", "-c",
                    "awk '$2 == \"/\" {t = $3} END {print t}' /proc/mounts; "
                    "/probe/fs_probe open /etc/passwd w", env=env))
    assert out.split() == ["fuse", "EACCES"]


@pytest.mark.needs_single_id
def test_root_busybox_keeps_the_kernel_overlay(runner):
    out = ok(runner("run", "--rm", "busybox:latest", "sh", "-c",
                    "awk '$2 == \"/\" {t = $3} END {print t}' /proc/mounts"))
    assert out.split() == ["overlay"]


@pytest.mark.needs_single_id
def test_image_with_setuid_programs_gets_the_fuse_overlay_showing_them(runner):
    if not DEBIAN_TAR.is_file():
        pytest.skip(f"no Debian fixture at {DEBIAN_TAR} (scripts/test makes it)")
    ok(runner("import", str(DEBIAN_TAR), "debian:bookworm", timeout=240))
    out = ok(runner("run", "--rm", "debian:bookworm", "sh", "-c",
                    "awk '$2 == \"/\" {t = $3} END {print t}' /proc/mounts; "
                    "stat -c '%A %n' /usr/bin/passwd /usr/bin/chage /etc/shadow"))
    assert out.splitlines() == ["fuse", "-rwsr-xr-x /usr/bin/passwd",
                                "-rwxr-sr-x /usr/bin/chage", "-rw-r----- /etc/shadow"]


def test_storage_opt_overlay_chooses_the_overlay(runner):
    for choice, fs in (("fuse", "fuse"), ("kernel", "overlay")):
        out = ok(runner("--storage-opt", f"overlay={choice}", "run", "--rm",
                        "busybox:latest", "sh", "-c",
                        "awk '$2 == \"/\" {t = $3} END {print t}' /proc/mounts"))
        assert out.split() == [fs]


def test_storage_opt_overlay_refuses_an_unknown_value(runner):
    result = runner("--storage-opt", "overlay=zfs", "run", "--rm", "busybox:latest", "true")
    assert result.returncode == 125
    assert "storage option overlay: invalid value 'zfs' (want fuse or kernel)" in \
        result.stderr


def test_system_info_says_which_overlay_and_why(runner):
    env = {**runner.env, "ROOTLESS_OVERLAY": "fuse"}
    info = json.loads(ok(runner("system", "info", "--format", "json", env=env)))
    assert (info["rootfs"], info["rootfs_reason"]) == ("fuse", "set by ROOTLESS_OVERLAY=fuse")
    assert info["fuse_overlay"].startswith("available")


# ---- large reads, answered from a mapping of the file (fs/fuse_io.py) ----

def test_reader_of_an_image_file_reads_the_write_that_copied_it_up(runner, probe_dir):
    """The reader's descriptor gets the upper copy at the copy-up, and its next large
    reads (the cache dropped: the server answers them) must be the copy's bytes. The
    probe is the command itself: nothing runs the busybox it writes into."""
    env = {**runner.env, "ROOTLESS_OVERLAY": "fuse"}
    out = ok(runner("run", "--rm", "-v", f"{probe_dir}:/probe:ro", "busybox:latest",
                    "/probe/fs_probe", "cold", "/bin/busybox", env=env))
    assert out.split() == ["new"]


# ---- the server: its own process, which ends with the container ----

def fuse_server_of(runner: Rootless, name: str) -> tuple[int, int]:
    """(the container's init, its FUSE server): the server is the other child of the
    init's parent, the container's monitor (besides the network's helper, pasta or
    slirp4netns, on the default network)."""
    init = int(ok(runner("inspect", "-f", "{{.State.Pid}}", name)).strip())
    monitor = int(Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1])
    servers = [pid for pid in children_of(monitor) if pid != init and
               not _comm(pid).startswith(("pasta", "passt", "slirp4netns"))]
    assert len(servers) == 1, (init, monitor, servers)
    return init, servers[0]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.fixture
def fuse_container(runner):
    env = {**runner.env, "ROOTLESS_OVERLAY": "fuse"}
    name = f"server-{os.getpid()}"
    ok(runner("run", "-d", "--name", name, "busybox:latest", "sleep", "1000", env=env))
    yield name
    runner("rm", "-f", name)


def nspids(pid: int) -> list[str]:
    """The process's pid in each pid namespace it is in, outermost first."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:"))


def test_the_server_is_outside_the_containers_pid_namespace(runner, fuse_container):
    init, server = fuse_server_of(runner, fuse_container)
    assert nspids(init)[-1] == "1"  # the container's pid 1 ...
    assert len(nspids(server)) == 1  # ... and the server in none but the host's


def test_no_container_process_may_read_the_servers_memory(runner, fuse_container):
    _, server = fuse_server_of(runner, fuse_container)
    status = Path(f"/proc/{server}/status").read_text()
    # not dumpable: /proc/PID/mem and ptrace need CAP_SYS_PTRACE over the initial user
    # namespace, which no container process has (ptrace(2), access mode checking)
    with pytest.raises(PermissionError):
        Path(f"/proc/{server}/mem").open("rb").close()
    assert "TracerPid:\t0" in status


def test_the_server_ends_with_its_container(runner, fuse_container):
    _, server = fuse_server_of(runner, fuse_container)
    ok(runner("rm", "-f", fuse_container))
    wait_for(lambda: not Path(f"/proc/{server}").exists() or
             Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_a_dead_server_fails_the_filesystem_instead_of_hanging_it(runner, fuse_container):
    _, server = fuse_server_of(runner, fuse_container)
    os.kill(server, 9)
    result = runner("exec", fuse_container, "cat", "/etc/passwd", timeout=30)
    assert result.returncode != 0
    assert "transport endpoint is not connected" in result.stderr.lower(), result.stderr
    ok(runner("rm", "-f", fuse_container, timeout=30))


# ---- diff and commit read the FUSE overlay's upper/ as the kernel's ----

def layer_entries(runner: Rootless, image: str, tmp: Path) -> list[tuple]:
    """The entries of the image's top layer as `save` writes them: name, type, mode,
    owner, link target, size of files (times differ between two runs)."""
    archive = tmp / f"{image.replace(':', '_')}.tar"
    ok(runner("save", "-o", str(archive), image))
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layer = outer.extractfile(manifest[0]["Layers"][-1])
        with tarfile.open(fileobj=layer) as tar:
            return sorted((m.name, m.type, m.mode, m.uid, m.gid, m.linkname,
                           m.size if m.isreg() else 0) for m in tar)


@pytest.fixture(scope="module")
def committed(runner, tmp_path_factory):
    """For each overlay: the container's `diff` and its committed layer's entries."""
    tmp = tmp_path_factory.mktemp("commits")
    out = {}
    for overlay in OVERLAYS:
        env = {**runner.env, "ROOTLESS_OVERLAY": overlay}
        name = f"changes-{overlay}"
        fs = ok(runner("run", "--name", name, "busybox:latest", "sh", "-c", CHANGES,
                       env=env))
        assert fs.split() == [FS_TYPE[overlay]]  # else the comparison proves nothing
        diff = ok(runner("diff", name))
        ok(runner("commit", name, f"committed:{overlay}"))
        out[overlay] = (diff, layer_entries(runner, f"committed:{overlay}", tmp))
        ok(runner("rm", name))
    return out


def test_diff_of_a_fuse_overlay_container_equals_the_kernel_overlays(committed):
    assert committed["fuse"][0] == committed["kernel"][0]
    assert "D /etc/group" in committed["fuse"][0].splitlines()


def test_commit_of_a_fuse_overlay_container_equals_the_kernel_overlays(committed):
    assert committed["fuse"][1] == committed["kernel"][1]
    names = [entry[0] for entry in committed["fuse"][1]]
    assert "etc/.wh.group" in names and "home/.wh..wh..opq" in names
