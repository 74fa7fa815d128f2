"""Fakeroot with one mapped id (issue 9): without subordinate ids a container's chown,
mknod of devices and set*id calls succeed, as a package manager needs, and the owners
and devices they make are recorded in the container's layer (commit and save write them
into the tar's headers); get*id answer what set*id set, and a process that dropped root
cannot take it back. The container's monitor answers them through seccomp user
notification; where the kernel has none (a kernel floor below 5.5) they are faked.

A static probe (tests/fakeroot_probe.c) is bound into busybox for the calls busybox
cannot make (setresuid, getresuid, getgroups...): it runs its arguments as steps and
prints what each returned, so every answer comes from the container's own program."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import ok

pytestmark = [pytest.mark.container, pytest.mark.needs_single_id]

PROBE_SOURCE = Path(__file__).with_name("fakeroot_probe.c")


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fakeroot-probe") / "probe"
    built = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_SOURCE),
                            "-lpthread"], capture_output=True, text=True)
    if built.returncode:
        pytest.fail(f"building the probe failed (gcc, libc6-dev):\n{built.stderr}")
    return out


@pytest.fixture(autouse=True)
def notification(rootless, request):
    """These tests are about the monitor's answers: a kernel floor below 5.5 (scripts/test
    --kernel-floor) has none; test_fallback_* covers it."""
    floor = rootless.env.get("ROOTLESS_KERNEL_FLOOR", "")
    if request.node.name.startswith("test_fallback"):
        return
    if floor and tuple(int(x) for x in floor.split(".")) < (5, 5):
        pytest.skip(f"kernel floor {floor}: no seccomp user notification (Linux 5.5)")


@pytest.fixture
def probe(rootless, busybox, probe_binary):
    """probe(*steps, options=(), command=None) -> the probe's output lines (`command`:
    run that in the container instead of /probe STEPS)."""

    def run(*steps: str, options: tuple[str, ...] = (),
            command: tuple[str, ...] | None = None) -> list[str]:
        result = rootless("run", "--rm", "-v", f"{probe_binary}:/probe:ro", *options,
                          busybox, *(command or ("/probe", *steps)))
        return ok(result).splitlines()

    return run


def layer_headers(rootless, container: str, tmp_path: Path) -> dict[str, tarfile.TarInfo]:
    """The tar headers of the layer `commit` makes of `container`, as `save` writes it."""
    image = f"committed-{container}"
    ok(rootless("commit", container, image, timeout=300))
    archive = tmp_path / f"{container}.tar"
    ok(rootless("save", "-o", str(archive), image, timeout=300))
    with tarfile.open(archive) as outer:
        [entry] = json.load(outer.extractfile("manifest.json"))
        with tarfile.open(fileobj=outer.extractfile(entry["Layers"][-1])) as layer:
            return {info.name.rstrip("/"): info for info in layer}


def owner(info: tarfile.TarInfo) -> tuple[int, int, int]:
    return info.uid, info.gid, info.mode


@pytest.fixture
def groups(probe) -> str:
    """The supplementary groups the container starts with, as getgroups shows them
    (this user's own, mapped or the overflow id): "0 65534" for rl-nosub."""
    [line] = probe("ids")
    return line.split(" / ")[2]


# ---- files ----

def test_chown_lchown_and_fchownat_succeed_and_commit_writes_their_owners(
        rootless, busybox, probe_binary, tmp_path):
    script = ("touch /f /g /h && chmod 4755 /f && chown 42:43 /f && ln -s /f /link && "
              "chown -h 7:8 /link && /probe fchown /g 1000 1001 fchownat-empty /h 5 6")
    out = ok(rootless("run", "--name", "ctr", "-v", f"{probe_binary}:/probe:ro", busybox,
                      "sh", "-c", script))
    assert out.split() == ["fchown", "ok", "fchownat-empty", "ok"]
    headers = layer_headers(rootless, "ctr", tmp_path)
    assert owner(headers["f"]) == (42, 43, 0o755)  # chown(2) cleared the setuid bit
    assert (owner(headers["link"]), headers["link"].linkname) == ((7, 8, 0o777), "/f")
    assert owner(headers["g"])[:2] == (1000, 1001)
    assert owner(headers["h"])[:2] == (5, 6)


def test_chmod_after_chown_keeps_both_in_the_layer(rootless, busybox, tmp_path):
    ok(rootless("run", "--name", "ctr", busybox, "sh", "-c",
                "mkdir /d && chown 0:101 /d && chmod 1730 /d && touch /x && "
                "chown 0:42 /x && chmod 2755 /x"))
    headers = layer_headers(rootless, "ctr", tmp_path)
    assert owner(headers["d"]) == (0, 101, 0o1730)
    assert owner(headers["x"]) == (0, 42, 0o2755)


def test_mknod_of_a_char_device_becomes_a_device_node_in_the_layer(rootless, busybox,
                                                                    tmp_path):
    out = ok(rootless("run", "--name", "ctr", busybox, "sh", "-c",
                      "mknod /null2 c 1 3 && chown 0:5 /null2 && echo made"))
    assert out == "made\n"
    info = layer_headers(rootless, "ctr", tmp_path)["null2"]
    assert (info.ischr(), info.devmajor, info.devminor, info.gid) == (True, 1, 3, 5)


def test_a_chown_through_symlinks_out_of_the_root_never_reaches_the_host(
        rootless, busybox, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("host")
    before = os.stat(canary)
    script = (f"ln -s / /up && ln -s ../../../../../../../.. /dots && ln -s {canary} /abs"
              " && chown 42:42 /up/ /dots/ && echo inside-ok; chown 42:42 /abs; echo abs=$?")
    out = ok(rootless("run", "--rm", busybox, "sh", "-c", script))
    assert "inside-ok" in out and "abs=1" in out  # /abs names nothing in the container
    after = os.stat(canary)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                           before.st_mode)
    assert os.listxattr(canary) == [] and os.listxattr(tmp_path) == []


def test_a_chown_on_a_volume_succeeds_and_records_nothing_on_the_host(rootless, busybox,
                                                                      tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "file").write_text("x")
    out = ok(rootless("run", "--rm", "-v", f"{volume}:/vol", busybox, "sh", "-c",
                      "chown 42:42 /vol/file && echo ok"))
    assert out == "ok\n"
    assert os.listxattr(volume / "file") == []
    assert os.stat(volume / "file").st_uid == os.getuid()


# ---- credentials ----

def test_setresuid_then_getresuid_answers_it_and_root_cannot_come_back(probe, groups):
    assert probe("setresgid", "42", "42", "42", "setresuid", "42", "42", "42", "ids",
                 "setuid", "0", "seteuid", "0", "setgid", "0") == [
        "setresgid ok", "setresuid ok", f"ids 42 42 42 / 42 42 42 / {groups}",
        "setuid EPERM", "seteuid EPERM", "setgid EPERM"]


def test_a_temporary_seteuid_can_return_to_root(probe):
    assert probe("seteuid", "42", "getuid", "seteuid", "0", "getuid") == [
        "seteuid ok", "getuid 0 42 0 0", "seteuid ok", "getuid 0 0 0 0"]


def test_setgroups_then_getgroups(probe):
    assert probe("setgroups", "42", "7", ".", "ids", "getgroups-short") == [
        "setgroups ok", "ids 0 0 0 / 0 0 0 / 7 42", "getgroups-short EINVAL"]


def test_faked_ids_pass_to_children_and_threads_and_across_exec(probe, groups):
    assert probe("setresuid", "42", "42", "42", "fork", "thread", "ids", "exec", "ids") == [
        "setresuid ok", f"ids 42 42 42 / 0 0 0 / {groups}",
        f"ids 42 42 42 / 0 0 0 / {groups}"]


def test_without_set_calls_the_kernels_ids_stand(probe, groups):
    assert probe("ids") == [f"ids 0 0 0 / 0 0 0 / {groups}"]


def test_unconfined_has_no_fakeroot_as_in_podman(probe):
    assert probe("setresuid", "42", "42", "42",
                 options=("--security-opt", "seccomp=unconfined")) == ["setresuid EINVAL"]


def test_rootless_fakeroot_notify_puts_it_back_for_privileged(rootless, busybox,
                                                               probe_binary, groups):
    env = {**rootless.env, "ROOTLESS_FAKEROOT": "notify"}
    out = ok(rootless("run", "--rm", "--privileged", "-v", f"{probe_binary}:/probe:ro",
                      busybox, "/probe", "setresuid", "42", "42", "42", "ids", env=env))
    assert out.splitlines() == ["setresuid ok", f"ids 42 42 42 / 0 0 0 / {groups}"]


def test_an_exec_d_process_gets_the_fakeroot_too(rootless, busybox, probe_binary, groups):
    ok(rootless("run", "-d", "--name", "ctr", "-v", f"{probe_binary}:/probe:ro", busybox,
                "sleep", "60"))
    out = ok(rootless("exec", "ctr", "/probe", "setresuid", "42", "42", "42", "ids",
                      "setuid", "0"))
    assert out.splitlines() == ["setresuid ok", f"ids 42 42 42 / 0 0 0 / {groups}",
                                "setuid EPERM"]


def test_a_restarted_container_keeps_its_fakeroot(rootless, busybox):
    script = ("if [ -e /ran ]; then chown 7:7 /ran && echo second-ok; "
              "else touch /ran && chown 6:6 /ran && echo first-ok; exit 1; fi")
    ok(rootless("run", "-d", "--name", "ctr", "--restart", "on-failure:1", busybox,
                "sh", "-c", script))
    ok(rootless("wait", "ctr", timeout=60))
    assert ok(rootless("logs", "ctr")).split() == ["first-ok", "second-ok"]


# ---- --security-opt fakeroot-stat ----

STAT_OPTS = ("--security-opt", "fakeroot-stat")


def test_fakeroot_stat_shows_what_chown_and_chmod_set(probe):
    setup = ("sh", "-c", "touch /f && chown 42:43 /f && chmod 4750 /f && exec /probe stats /f")
    lines = probe(options=STAT_OPTS, command=setup)
    assert lines == ["stats " + " ".join(["42:43:104750:0,0"] * 5)]


def test_without_fakeroot_stat_the_kernel_shows_the_mapped_id(probe):
    setup = ("sh", "-c", "touch /f && chown 42:43 /f && exec /probe stats /f")
    [line] = probe(command=setup)
    assert line.split()[1].startswith("0:0:")


def test_fakeroot_stat_shows_a_recorded_device_as_a_device(probe):
    setup = ("sh", "-c", "mknod /d c 1 3 && exec /probe stats /d")
    lines = probe(options=STAT_OPTS, command=setup)
    assert lines == ["stats " + " ".join(["0:0:20644:1,3"] * 5)]


def test_fakeroot_stat_shows_the_images_recorded_owners(rootless, busybox):
    out = ok(rootless("run", "--rm", *STAT_OPTS, busybox, "stat", "-c", "%u:%g", "/home/user"))
    assert out == "1000:1000\n"


def test_fakeroot_stat_reaches_exec_d_processes(rootless, busybox):
    ok(rootless("run", "-d", "--name", "st", *STAT_OPTS, busybox, "sleep", "60"))
    ok(rootless("exec", "st", "sh", "-c", "touch /g && chown 7:8 /g"))
    assert ok(rootless("exec", "st", "stat", "-c", "%u:%g", "/g")) == "7:8\n"


def test_fakeroot_stat_takes_only_true_or_false(rootless, busybox):
    result = rootless("run", "--rm", "--security-opt", "fakeroot-stat=maybe", busybox, "true")
    assert result.returncode == 125 and "unsupported --security-opt" in result.stderr


def test_system_info_says_the_fakeroot_answers_by_notification(rootless):
    out = ok(rootless("system", "info"))
    assert "mode: seccomp user notification" in out


# ---- without user notification ----

def test_fallback_under_a_4_18_kernel_floor_fakes_success_and_records_nothing(
        rootless, busybox, probe_binary, tmp_path, groups):
    env = {**rootless.env, "ROOTLESS_KERNEL_FLOOR": "4.18", "ROOTLESS_ROOTFS": "copy"}
    out = ok(rootless("run", "--name", "ctr", "-v", f"{probe_binary}:/probe:ro", busybox,
                      "sh", "-c", "touch /f && chown 42:43 /f && echo chown-ok && "
                      "/probe setresuid 42 42 42 ids", env=env))
    assert out.splitlines() == ["chown-ok", "setresuid ok", f"ids 0 0 0 / 0 0 0 / {groups}"]
    assert owner(layer_headers(rootless, "ctr", tmp_path)["f"])[:2] == (0, 0)
    info = ok(rootless("system", "info", env=env))
    assert "mode: errno-0 faking" in info and "kernel floor below 5.5" in info


# ---- the acceptance: apt in Debian ----

def _mirror_reachable() -> bool:
    try:
        socket.create_connection(("deb.debian.org", 80), timeout=10).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("overlay", ["kernel", "fuse"])
def test_apt_installs_cron_and_commit_keeps_its_owners(rootless, debian, tmp_path, overlay):
    """The issue's acceptance, on either overlay (ROOTLESS_OVERLAY): the kernel's, whose
    files all show the one mapped id, and ours, which shows the records."""
    if not _mirror_reachable():
        pytest.skip("deb.debian.org:80 is not reachable from this host")
    rootless.env["ROOTLESS_OVERLAY"] = overlay
    result = rootless("run", "--name", "ctr", "--network", "host", debian, "sh", "-c",
                      "apt-get update && apt-get install -y --no-install-recommends cron",
                      timeout=900)
    ok(result)
    assert "seteuid" not in result.stderr and "setgroups" not in result.stderr
    headers = layer_headers(rootless, "ctr", tmp_path)
    group = _group_id(rootless, "ctr", "crontab")
    assert owner(headers["usr/bin/crontab"]) == (0, group, 0o2755)
    assert owner(headers["var/spool/cron/crontabs"]) == (0, group, 0o1730)


def _group_id(rootless, container: str, name: str) -> int:
    out = ok(rootless("run", "--rm", f"committed-{container}", "getent", "group", name))
    return int(out.split(":")[2])


def test_run_does_not_load_the_fakeroot_its_monitor_serves(rootless, busybox):
    """`rootless run`'s own start-up stays as it was: the handler is the monitor's."""
    import sys

    from helpers import ROOTLESS_BIN

    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOTLESS_BIN), "run",
                             "--rm", busybox, "true"], env=rootless.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:")}
    assert "rootless.engine.run" in loaded  # the check itself sees imports
    assert not loaded & {"rootless.runtime.fakeroot", "rootless.runtime.fakeroot_files",
                         "rootless.kernel.notify", "rootless.runtime.seccomp_fakeroot"}
