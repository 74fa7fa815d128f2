"""Where the plan loads the seccomp filter (runc's two places) and what the spec carries."""

import pytest

from rootless.engine.seccomp import BUILTIN, profile_load, profile_to_oci
from rootless.engine.spec import (ProcessConfig, RootfsConfig, SecurityConfig, SpecOptions,
                                  build_spec)
from rootless.errors import RuntimeSetupError
from rootless.kernel.recording import RecordingSyscalls
from rootless.runtime import plan as p
from rootless.runtime.caps import DOCKER_DEFAULT
from rootless.runtime.executor import Executor


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))


def spec(no_new_privileges=False, security=None):
    if security is None:
        section = profile_to_oci(profile_load(BUILTIN), DOCKER_DEFAULT)
        security = SecurityConfig(section, BUILTIN)
    return build_spec(SpecOptions(
        process=ProcessConfig(args=["sh"], env=[], no_new_privileges=no_new_privileges),
        rootfs=RootfsConfig(path="/c/rootfs"), hostname="h", security=security))


def names(plan):
    return [type(s).__name__ for s in plan.steps]


def test_without_no_new_privs_the_filter_loads_before_the_user_changes():
    steps = names(p.build_plan(spec(), single_id=True))
    assert steps.index("DropBoundingCapabilities") < steps.index("LoadSeccomp") \
        == steps.index("SetUser") - 1


def test_with_no_new_privs_the_filter_loads_last_before_exec():
    steps = names(p.build_plan(spec(no_new_privileges=True), single_id=True))
    assert steps[-3:] == ["NoNewPrivileges", "LoadSeccomp", "Exec"]


def test_no_section_no_filter():
    assert "LoadSeccomp" not in names(p.build_plan(spec(security=SecurityConfig()), True))


def test_privileged_spec_has_no_section_and_no_masked_paths():
    linux = spec(security=SecurityConfig(privileged=True))["linux"]
    assert "seccomp" not in linux
    assert (linux["maskedPaths"], linux["readonlyPaths"]) == ([], [])


def test_plan_prints_the_filter_by_size_and_digest():
    (step,) = [s for s in p.build_plan(spec(), True).steps if isinstance(s, p.LoadSeccomp)]
    assert repr(step) == (f"LoadSeccomp({len(step.program) // 8} instructions, flags=0, "
                          f"digest={step.digest[:12]})")


def test_notify_rules_are_refused_until_a_listener_serves_them():
    section = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chown"], "action": "SCMP_ACT_NOTIFY"}]}
    with pytest.raises(RuntimeSetupError, match="SCMP_ACT_NOTIFY rules are not supported"):
        p.build_plan(spec(security=SecurityConfig(section, "x")), True)


def test_executor_installs_the_program_with_its_flags():
    sys = RecordingSyscalls()
    Executor(sys).run((p.LoadSeccomp(b"\x06\0\0\0\0\0\xff\x7f", 2, "d"),))
    assert sys.calls == [("seccomp_set_filter", 2, 8)]
