"""The fakeroot's seccomp rules and where the plan loads them (runtime/seccomp_fakeroot.py,
runtime/plan.py): which calls reach the monitor, which are faked, and that the
runtime's own set-up calls are never trapped. Programs run in test_seccomp_compile's
classic-BPF interpreter."""

import errno
import os

import pytest
from test_seccomp_compile import AUDIT_ARCH_I386, ALLOW, errno_of, run_bpf

from rootless.engine.seccomp import BUILTIN, profile_load, profile_to_oci
from rootless.engine.spec import (ProcessConfig, RootfsConfig, SecurityConfig, SpecOptions,
                                  build_spec)
from rootless.runtime import plan as p
from rootless.runtime import seccomp
from rootless.runtime.caps import DOCKER_DEFAULT
from rootless.runtime.fakeroot import SYSCALLS, AUDIT_ARCH_X86_64
from rootless.runtime.seccomp_fakeroot import NOTIFIED, fakeroot_mode, with_fakeroot

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="syscall numbers below are x86-64's")
NOTIFY = 0x7FC00000
X86 = SYSCALLS[AUDIT_ARCH_X86_64]


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for name in ("ROOTLESS_FAKEROOT", "ROOTLESS_KERNEL_FLOOR"):
        monkeypatch.delenv(name, raising=False)


def docker_section():
    return profile_to_oci(profile_load(BUILTIN), DOCKER_DEFAULT)


def program(section):
    return seccomp.program_for(section)[0]


@pytest.mark.parametrize("name", ["chown", "fchownat", "mknodat", "fchmod", "setresuid",
                                  "setgroups", "getuid", "getgroups"])
def test_notify_mode_sends_the_fakeroots_calls_to_the_listener(name):
    assert run_bpf(program(with_fakeroot(docker_section(), "notify")), X86[name]) == NOTIFY


def test_notify_mode_leaves_other_calls_as_the_profile_has_them():
    code = program(with_fakeroot(docker_section(), "notify"))
    assert run_bpf(code, 0) == ALLOW  # read
    assert errno_of(run_bpf(code, 165)) == errno.EPERM  # mount


def test_i386_32_bit_id_calls_are_notified_too():
    code = program(with_fakeroot(docker_section(), "notify"))
    assert run_bpf(code, 208, arch=AUDIT_ARCH_I386) == NOTIFY  # setresuid32


def test_a_profile_that_denies_chown_keeps_denying_it():
    section = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chown"], "action": "SCMP_ACT_ERRNO"}]}
    code = program(with_fakeroot(section, "notify"))
    assert errno_of(run_bpf(code, X86["chown"])) == errno.EPERM
    assert run_bpf(code, X86["lchown"]) == NOTIFY  # the default lets it through: ours


def test_unconfined_gets_only_the_fakeroots_rules():
    code = program(with_fakeroot(None, "notify"))
    assert run_bpf(code, X86["setuid"]) == NOTIFY
    assert run_bpf(code, 165) == ALLOW  # mount: the kernel decides, as unconfined


@pytest.mark.parametrize("name", ["chown", "setresuid", "setgroups"])
def test_errno_mode_fakes_success(name):
    assert errno_of(run_bpf(program(with_fakeroot(docker_section(), "errno")),
                            X86[name])) == 0


def test_errno_mode_leaves_the_get_calls_to_the_kernel():
    assert run_bpf(program(with_fakeroot(docker_section(), "errno")), X86["getuid"]) == ALLOW


def test_errno_mode_fakes_mknod_of_devices_only():
    code = program(with_fakeroot(docker_section(), "errno"))
    assert errno_of(run_bpf(code, X86["mknod"], args=(0, 0o20644, 0x103))) == 0
    assert run_bpf(code, X86["mknod"], args=(0, 0o10644, 0)) == ALLOW  # a fifo
    assert errno_of(run_bpf(code, X86["mknodat"], args=(0, 0, 0o60600, 0))) == 0


def test_the_handlers_syscall_numbers_are_libseccomps():
    from rootless.runtime import libseccomp

    _, lib = libseccomp.load()
    arches = {AUDIT_ARCH_X86_64: "x86_64", AUDIT_ARCH_I386: "x86", 0xC00000B7: "aarch64"}
    for arch, table in SYSCALLS.items():
        token = lib.seccomp_arch_resolve_name(arches[arch].encode())
        for name, nr in table.items():
            names = (name + "32", name) if arch == AUDIT_ARCH_I386 else (name,)
            resolved = [lib.seccomp_syscall_resolve_name_arch(token, n.encode())
                        for n in names]
            assert nr in resolved, (arches[arch], name, nr, resolved)


def test_every_notified_name_has_a_handler():
    from rootless.runtime.fakeroot import HANDLERS

    assert {n.removesuffix("32") for n in NOTIFIED} <= set(HANDLERS)


# ---- the plan ----

def spec(no_new_privileges=False, security=None):
    if security is None:
        security = SecurityConfig(docker_section(), BUILTIN)
    return build_spec(SpecOptions(
        process=ProcessConfig(args=["sh"], env=[], no_new_privileges=no_new_privileges),
        rootfs=RootfsConfig(path="/c/rootfs"), hostname="h", security=security))


def names(plan):
    return [type(s).__name__ for s in plan.steps]


def test_the_fakeroots_filter_loads_after_the_runtimes_own_set_user():
    steps = names(p.build_plan(spec(), single_id=True, fakeroot="notify"))
    assert steps.index("SetUser") < steps.index("LoadSeccomp") \
        == steps.index("SetCapabilities") - 1


def test_with_no_new_privs_it_loads_last_before_exec():
    steps = names(p.build_plan(spec(True), single_id=True, fakeroot="notify"))
    assert steps[-3:] == ["NoNewPrivileges", "LoadSeccomp", "Exec"]


def test_notify_mode_asks_the_kernel_for_a_listener():
    (step,) = [s for s in p.build_plan(spec(), True, "notify").steps
               if isinstance(s, p.LoadSeccomp)]
    assert step.flags & seccomp.FLAG_NEW_LISTENER and step.fakeroot == "notify"


def test_an_unconfined_spec_gets_the_fakeroots_rules_alone_when_asked():
    plan = p.build_plan(spec(security=SecurityConfig()), True, "notify")
    assert "LoadSeccomp" in names(plan)


def test_exec_plans_get_the_same_fakeroot():
    s = spec()
    plan = p.build_exec_plan(s, {**s["process"], "args": ["id"]}, True, 7, 8, "notify")
    (step,) = [st for st in plan.steps if isinstance(st, p.LoadSeccomp)]
    assert step.fakeroot == "notify"


# ---- the mode ----

def test_subordinate_ids_need_no_fakeroot():
    assert fakeroot_mode(single_id=False, served=True)[0] == ""


def test_notification_where_a_monitor_answers():
    assert fakeroot_mode(single_id=True, served=True)[0] == "notify"


def test_errno_faking_where_nobody_answers():
    mode, why = fakeroot_mode(single_id=True, served=False)
    assert (mode, "no monitor" in why) == ("errno", True)


def test_errno_faking_below_a_kernel_floor_of_5_5(monkeypatch):
    monkeypatch.setenv("ROOTLESS_KERNEL_FLOOR", "4.18")
    mode, why = fakeroot_mode(single_id=True, served=True)
    assert (mode, "5.5" in why) == ("errno", True)


@pytest.mark.parametrize("value, mode", [("off", ""), ("errno", "errno")])
def test_rootless_fakeroot_forces_a_mode(monkeypatch, value, mode):
    monkeypatch.setenv("ROOTLESS_FAKEROOT", value)
    assert fakeroot_mode(single_id=True, served=True)[0] == mode


def test_no_filter_no_fakeroot_as_in_podman():
    mode, why = fakeroot_mode(single_id=True, served=True, unconfined=True)
    assert (mode, "podman" in why) == ("", True)


def test_rootless_fakeroot_notify_puts_it_back_without_a_filter(monkeypatch):
    monkeypatch.setenv("ROOTLESS_FAKEROOT", "notify")
    assert fakeroot_mode(single_id=True, served=True, unconfined=True)[0] == "notify"
