"""Docker's seccomp profile format -> the OCI `linux.seccomp` of one container (moby's
setupSeccomp): architectures from archMap, rules chosen by capability, arch and kernel."""

import json

import pytest

from rootless.engine.seccomp import (BUILTIN, UNCONFINED, ProfileError, profile_check,
                                     profile_load, profile_to_oci)
from rootless.runtime.caps import DOCKER_DEFAULT

CLONE_NAMESPACE_MASK = 2114060288  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


@pytest.fixture(scope="module")
def default():
    return profile_load(BUILTIN)


def allowed(section):
    return {n for r in section["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def rules_for(section, name):
    return [r for r in section["syscalls"] if name in r["names"]]


def oci(profile, caps=DOCKER_DEFAULT, machine="x86_64", release="6.8.0"):
    return profile_to_oci(profile, caps, machine=machine, release=release)


# ---- the default profile ----

def test_default_profile_passes_the_checks_user_profiles_get(default):
    profile_check(default, "builtin")


def test_default_profile_is_docker_s_unedited(default):
    import hashlib

    from rootless.engine.seccomp import DEFAULT_PROFILE
    with open(DEFAULT_PROFILE, "rb") as f:  # moby/profiles cd3bed8 seccomp/default.json
        assert hashlib.sha256(f.read()).hexdigest() == \
            "536529b665dd0972c37bfb569f5d4ac8a53592e7b00752bc39ff063ca9864c74"


def test_default_profile_denies_with_eperm_by_default(default):
    section = oci(default)
    assert (section["defaultAction"], section["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)


def test_default_profile_on_amd64_filters_x86_64_x86_and_x32(default):
    assert oci(default)["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                             "SCMP_ARCH_X32"]


def test_default_profile_on_arm64_filters_aarch64_and_arm(default):
    assert oci(default, machine="aarch64")["architectures"] == ["SCMP_ARCH_AARCH64",
                                                                "SCMP_ARCH_ARM"]


def test_default_capabilities_do_not_allow_namespace_or_mount_calls(default):
    names = allowed(oci(default))
    assert not names & {"mount", "umount2", "unshare", "setns", "bpf", "perf_event_open",
                        "open_by_handle_at", "kexec_load", "keyctl", "add_key",
                        "userfaultfd", "clone", "clone3"}
    assert {"read", "execve", "execveat", "fork", "chroot"} <= names


def test_without_cap_sys_admin_clone_may_not_create_namespaces(default):
    (rule,) = rules_for(oci(default), "clone")
    assert rule["args"] == [{"index": 0, "value": CLONE_NAMESPACE_MASK,
                             "op": "SCMP_CMP_MASKED_EQ"}]


def test_without_cap_sys_admin_clone3_answers_enosys(default):
    (rule,) = rules_for(oci(default), "clone3")
    assert (rule["action"], rule["errnoRet"]) == ("SCMP_ACT_ERRNO", 38)


def test_cap_sys_admin_includes_mount_and_excludes_the_clone_rules(default):
    section = oci(default, caps=DOCKER_DEFAULT + ("CAP_SYS_ADMIN",))
    assert {"mount", "unshare", "setns", "clone", "clone3"} <= allowed(section)
    assert all(not r.get("args") for r in rules_for(section, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(section, "clone3"))


def test_cap_dac_read_search_includes_open_by_handle_at(default):
    assert "open_by_handle_at" not in allowed(oci(default))
    assert "open_by_handle_at" in allowed(oci(default, caps=("CAP_DAC_READ_SEARCH",)))


def test_socket_rules_refuse_af_alg_and_af_vsock(default):
    conditions = [r["args"][0] for r in rules_for(oci(default), "socket")]
    assert {"index": 0, "value": 40, "op": "SCMP_CMP_GT"} in conditions
    assert not any(c["value"] == 40 and c["op"] == "SCMP_CMP_EQ" for c in conditions)


def test_personality_is_allowed_only_for_docker_s_values(default):
    values = {r["args"][0]["value"] for r in rules_for(oci(default), "personality")}
    assert values == {0, 8, 0x20000, 0x20008, 0xFFFFFFFF}


def test_arch_rules_follow_the_machine(default):
    assert "arch_prctl" in allowed(oci(default))
    assert "arch_prctl" not in allowed(oci(default, machine="aarch64"))
    assert "set_tls" in allowed(oci(default, machine="aarch64"))


def test_s390_gets_its_own_clone_rule(default):
    (amd64,) = rules_for(oci(default), "clone")
    (s390x,) = rules_for(oci(default, machine="s390x"), "clone")
    assert (amd64["args"][0]["index"], s390x["args"][0]["index"]) == (0, 1)


def test_min_kernel_rules_need_that_kernel(default):
    assert "ptrace" in allowed(oci(default, release="4.18.0-553.el8.x86_64"))
    assert "ptrace" not in allowed(oci(default, release="4.4.0-210-generic"))


# ---- user profiles ----

def write(tmp_path, profile) -> str:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile) if not isinstance(profile, str) else profile)
    return str(path)


def test_unconfined_is_no_section():
    assert oci(profile_load(UNCONFINED)) is None


def test_a_profile_without_default_action_or_rules_is_no_section(tmp_path):
    assert oci(profile_load(write(tmp_path, {}))) is None


def test_old_name_field_becomes_names(tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"}]}
    (rule,) = oci(profile_load(write(tmp_path, profile)))["syscalls"]
    assert rule == {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}


def test_architectures_are_kept_as_given(tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}
    assert oci(profile_load(write(tmp_path, profile)))["architectures"] == ["SCMP_ARCH_X86_64"]


def test_excluded_capability_drops_the_rule(tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_FOWNER"]}}]}
    loaded = profile_load(write(tmp_path, profile))
    assert oci(loaded, caps=("CAP_FOWNER",))["syscalls"] == []
    assert len(oci(loaded, caps=())["syscalls"]) == 1


@pytest.mark.parametrize("profile, message", [
    ("{not json", "decoding seccomp profile"),
    ("[]", "not a JSON object"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "argument index 6 of read"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IS"}]}]},
     "unknown operator 'SCMP_CMP_IS' for read"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]},
     "needs names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "name": "write",
      "action": "SCMP_ACT_ERRNO"}]}, "both 'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "five"}}]}, "invalid kernel version"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}, "errnoRet 70000"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "cannot be the default action"),
    # wrong types anywhere are refused the same way, never a traceback
    ({"defaultAction": []}, "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": [{}]}, "unknown flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}, "syscalls must be a list"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read",
      "action": "SCMP_ACT_ERRNO"}]}, "names must be a list"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": []}]}]}, "unknown operator"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
      "action": "SCMP_ACT_ERRNO", "includes": "all"}]}, "includes must be an object"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [1]}, "needs an architecture"),
])
def test_invalid_profile_is_refused_naming_the_cause(tmp_path, profile, message):
    path = write(tmp_path, profile)
    with pytest.raises(ProfileError, match=message) as e:
        profile_load(path)
    assert path in str(e.value) and "\n" not in str(e.value)


def test_missing_profile_file_is_refused(tmp_path):
    with pytest.raises(ProfileError, match=r"opening seccomp profile \(.*nope.json\) failed: "
                                           "no such file or directory"):
        profile_load(str(tmp_path / "nope.json"))


def test_a_fifo_as_profile_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ProfileError, match="not a regular file"):
        profile_load(str(tmp_path / "fifo"))
