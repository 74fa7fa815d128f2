"""Every container runs under docker's default seccomp profile (issue 7): the calls a
hostile image could use against the host kernel fail with EPERM, clone3 and syscalls newer
than the profile with ENOSYS (so libcs fall back), ordinary programs work;
`--security-opt seccomp=unconfined|PROFILE.json` and `--privileged` behave as docker's.

A static probe (tests/seccomp_probe.c, built once per session) is bound into busybox and
makes the calls; it reports its own seccomp mode first, so every answer below is known to
come from a container under the filter (or not), never from a run that broke."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import assert_error, ok, proc_status_field

pytestmark = pytest.mark.container

PROBE_SOURCE = Path(__file__).with_name("seccomp_probe.c")
FILTERED, UNFILTERED = "2", "0"  # prctl(PR_GET_SECCOMP) and /proc/PID/status Seccomp:

# moby profiles/seccomp/default.json leaves these out for docker's default capabilities;
# the probe's arguments make an unfiltered kernel answer something other than EPERM
REFUSED = ["unshare_user", "mount", "keyctl", "add_key", "bpf", "perf_event_open",
           "userfaultfd", "kexec_load", "open_by_handle_at", "socket_vsock", "socket_alg",
           "personality"]
WORKING = ["pthread", "posix_spawn", "socket_inet", "ptrace_child"]


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seccomp-probe") / "probe"
    built = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_SOURCE),
                            "-lpthread"], capture_output=True, text=True)
    if built.returncode:
        pytest.fail(f"building the probe failed (gcc, libc6-dev):\n{built.stderr}")
    return out


@pytest.fixture
def probe(rootless, busybox, probe_binary):
    """probe(*checks, options=()) -> {"seccomp": mode, check: "ok" | errno name, ...}"""

    def run(*checks: str, options: tuple[str, ...] = ()) -> dict[str, str]:
        result = rootless("run", "--rm", "-v", f"{probe_binary}:/probe:ro", *options, busybox,
                          "/probe", "seccomp", *checks)
        return dict(line.split(" ", 1) for line in ok(result).splitlines())

    return run


def seccomp_mode(sh, *options: str) -> str:
    return proc_status_field(ok(sh("cat /proc/self/status", *options)), "Seccomp")


def write_profile(tmp_path: Path, profile: dict | str) -> str:
    path = tmp_path / "profile.json"
    path.write_text(profile if isinstance(profile, str) else json.dumps(profile))
    return str(path)


# ---- the default profile ----

@pytest.mark.parametrize("options", [(), ("--security-opt", "seccomp=builtin")])
def test_container_runs_under_a_seccomp_filter(sh, options):
    assert seccomp_mode(sh, *options) == FILTERED


def test_non_root_user_runs_under_the_filter(sh):
    assert seccomp_mode(sh, "-u", "1000") == FILTERED


def test_init_of_the_container_runs_under_the_filter_too(sh):
    # --init: pid 1 stays above the command and must not be a way around the filter
    out = ok(sh("grep Seccomp: /proc/1/status /proc/self/status", "--init"))
    assert [line.split()[-1] for line in out.splitlines()] == [FILTERED, FILTERED]


def test_no_new_privileges_keeps_the_filter(sh):
    status = ok(sh("cat /proc/self/status", "--security-opt", "no-new-privileges"))
    assert (proc_status_field(status, "Seccomp"), proc_status_field(status, "NoNewPrivs")) \
        == (FILTERED, "1")


@pytest.mark.parametrize("check", REFUSED)
def test_call_is_refused_with_eperm(probe, check):
    assert probe(check) == {"seccomp": FILTERED, check: "EPERM"}


def test_clone3_fails_with_enosys_so_libc_falls_back_to_clone(probe):
    assert probe("clone3") == {"seccomp": FILTERED, "clone3": "ENOSYS"}


def test_syscall_newer_than_the_profile_fails_with_enosys_not_eperm(probe):
    assert probe("nr1000") == {"seccomp": FILTERED, "nr1000": "ENOSYS"}


@pytest.mark.parametrize("check", WORKING)
def test_ordinary_program_works_under_the_filter(probe, check):
    assert probe(check) == {"seccomp": FILTERED, check: "ok"}


def test_refused_calls_still_refused_with_no_new_privileges(probe):
    answers = probe("mount", "clone3", options=("--security-opt", "no-new-privileges"))
    assert answers == {"seccomp": FILTERED, "mount": "EPERM", "clone3": "ENOSYS"}


# ---- seccomp=unconfined ----

def test_unconfined_container_has_no_filter(sh):
    assert seccomp_mode(sh, "--security-opt", "seccomp=unconfined") == UNFILTERED


def test_unconfined_lets_the_refused_calls_reach_the_kernel(probe):
    checks = ["unshare_user", "mount", "keyctl", "personality", "clone3"]
    answers = probe(*checks, options=("--security-opt", "seccomp=unconfined"))
    assert answers == {"seccomp": UNFILTERED, "unshare_user": "ok", "mount": "EFAULT",
                       "keyctl": "EOPNOTSUPP", "personality": "ok", "clone3": "EINVAL"}


def test_old_colon_spelling_is_accepted(sh):
    assert seccomp_mode(sh, "--security-opt", "seccomp:unconfined") == UNFILTERED


# ---- seccomp=PROFILE.json ----

def test_custom_profile_denying_mkdir_refuses_it_and_nothing_else(sh, tmp_path):
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
    result = sh("mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && echo touched",
                "--security-opt", f"seccomp={path}")
    assert ok(result).split() == ["mkdir=1", "touched"]
    assert "Operation not permitted" in result.stderr


def test_custom_profile_errno_ret_is_the_error(sh, tmp_path):
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})
    result = sh("mkdir /tmp/d", "--security-opt", f"seccomp={path}")
    assert result.returncode == 1 and "Permission denied" in result.stderr


def test_custom_profile_is_a_filter(sh, tmp_path):
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ALLOW"})
    assert seccomp_mode(sh, "--security-opt", f"seccomp={path}") == FILTERED


@pytest.mark.parametrize("content, words", [
    (None, ["opening seccomp profile", "no such file or directory"]),
    ("{not json", ["decoding seccomp profile", "failed"]),
    ({"defaultAction": "SCMP_ACT_MAYBE"}, ["invalid seccomp profile", "SCMP_ACT_MAYBE"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]},
     ["invalid seccomp profile", "argument index 9"]),
])
def test_bad_profile_is_one_line_exit_125_and_no_container(rootless, busybox, tmp_path,
                                                           content, words):
    path = str(tmp_path / "missing.json") if content is None else write_profile(tmp_path,
                                                                                 content)
    result = rootless("run", "--rm", "--security-opt", f"seccomp={path}", busybox, "true")
    assert_error(result, 125, path, *words)
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_directory_as_profile_is_refused(rootless, busybox, tmp_path):
    result = rootless("run", "--security-opt", f"seccomp={tmp_path}", busybox, "true")
    assert_error(result, 125, str(tmp_path), "not a regular file")
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_no_new_privileges_false_keeps_privileges_and_the_filter(sh):
    status = ok(sh("cat /proc/self/status", "--security-opt", "no-new-privileges=false"))
    assert (proc_status_field(status, "Seccomp"), proc_status_field(status, "NoNewPrivs")) \
        == (FILTERED, "0")


# ---- --privileged ----

def all_capabilities() -> int:
    known = 41  # CAP_CHECKPOINT_RESTORE (40) is the newest rootless names
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return (1 << min(last + 1, known)) - 1


def test_privileged_container_has_no_filter(sh):
    assert seccomp_mode(sh, "--privileged") == UNFILTERED


def test_privileged_container_has_every_capability(sh):
    status = ok(sh("cat /proc/self/status", "--privileged"))
    assert int(proc_status_field(status, "CapEff"), 16) == all_capabilities()
    assert int(proc_status_field(status, "CapBnd"), 16) == all_capabilities()


def test_privileged_container_masks_no_proc_paths(sh):
    def mount_points(*options: str) -> set[str]:
        mountinfo = ok(sh("cat /proc/self/mountinfo", *options))
        return {line.split()[4] for line in mountinfo.splitlines()}

    assert {"/proc/sys", "/proc/irq"} <= mount_points()  # masked or read-only by default
    assert not mount_points("--privileged") & {
        "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sys", "/proc/irq",
        "/proc/sysrq-trigger", "/proc/bus", "/proc/acpi"}


def test_privileged_container_can_mount_in_its_own_namespaces(sh):
    assert ok(sh("mount -t tmpfs none /tmp && echo mounted", "--privileged")) == "mounted\n"


# ---- recorded for inspect, reported by system info ----

def container_config(rootless, store: Path) -> dict:
    (cid,) = ok(rootless("ps", "-a", "-q", "--no-trunc")).split()
    return json.loads((store / "containers" / cid / "config.json").read_text())


def test_security_options_are_recorded_in_the_container_config(rootless, busybox, store):
    ok(rootless("run", "--security-opt", "seccomp=unconfined", "--security-opt",
                "no-new-privileges", busybox, "true"))
    config = container_config(rootless, store)
    notes = config["annotations"]
    assert json.loads(notes["run.rootless.security-opt"]) == ["seccomp=unconfined",
                                                              "no-new-privileges"]
    assert (notes["run.rootless.seccomp"], notes["run.rootless.privileged"]) == \
        ("unconfined", "false")
    assert "seccomp" not in config["linux"]


def test_default_profile_is_in_the_container_config(rootless, busybox, store):
    ok(rootless("run", busybox, "true"))
    config = container_config(rootless, store)
    assert config["annotations"]["run.rootless.seccomp"] == "builtin"
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


def test_privileged_is_recorded_in_the_container_config(rootless, busybox, store):
    ok(rootless("run", "--privileged", busybox, "true"))
    notes = container_config(rootless, store)["annotations"]
    assert (notes["run.rootless.privileged"], notes["run.rootless.seccomp"]) == \
        ("true", "unconfined")


def test_system_info_reports_seccomp(rootless):
    info = json.loads(ok(rootless("system", "info", "--format", "json")))["seccomp"]
    assert info["enabled"] == "yes"
    assert info["profile"].startswith("builtin (docker's default")
    assert info["libseccomp"].split(".")[0] == "2"
    assert info["user_notification"] == "available"
