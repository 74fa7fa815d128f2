"""The runtime's plan: what an OCI spec turns into, step by step (no kernel involved)."""

import json

from rootless.engine.spec import ProcessConfig, RootfsConfig, SpecOptions, build_spec
from rootless.kernel import constants as k
from rootless.kernel.recording import RecordingSyscalls
from rootless.runtime import plan as p
from rootless.runtime.executor import Executor


def spec(**kw):
    opts = SpecOptions(
        process=ProcessConfig(args=["sh"], env=["PATH=/bin"]),
        rootfs=RootfsConfig(path="/c/rootfs", lower=["/l/base", "/l/top"], upper="/c/up",
                            work="/c/work"),
        hostname="abc", **kw)
    return build_spec(opts)


def steps_of(kind, plan):
    return [s for s in plan.steps if isinstance(s, kind)]


def test_overlay_lowerdirs_are_listed_topmost_first():
    plan = p.build_plan(spec(), single_id=True)
    (overlay,) = steps_of(p.MountOverlay, plan)
    assert overlay.lower == ("/l/top", "/l/base")


def test_pivot_comes_after_every_rootfs_mount_and_before_masking():
    names = [type(s).__name__ for s in p.build_plan(spec(), single_id=True).steps]
    pivot = names.index("PivotRoot")
    assert max(i for i, n in enumerate(names) if n in ("MountFilesystem", "BindDevice")) < pivot
    assert min(i for i, n in enumerate(names) if n == "MaskPath") > pivot


def test_exec_is_the_last_step_and_user_is_set_before_capabilities():
    names = [type(s).__name__ for s in p.build_plan(spec(), single_id=True).steps]
    assert names[-1] == "Exec"
    assert names.index("DropBoundingCapabilities") < names.index("SetUser") < names.index(
        "SetCapabilities")


def test_host_network_binds_the_host_sys_instead_of_mounting_sysfs():
    plan = p.build_plan(spec(network="host"), single_id=True)
    assert steps_of(p.BindHostSys, plan)
    assert not [s for s in steps_of(p.MountFilesystem, plan) if s.fstype == "sysfs"]
    assert not plan.namespaces & k.CLONE_NEWNET


def test_network_none_gets_its_own_namespace_with_loopback_up():
    plan = p.build_plan(spec(network="none"), single_id=True)
    assert plan.namespaces & k.CLONE_NEWNET
    assert steps_of(p.LoopbackUp, plan)


def test_single_id_mode_never_calls_setgroups():
    (user,) = steps_of(p.SetUser, p.build_plan(spec(), single_id=True))
    assert user.set_groups is False


def test_devpts_has_a_fallback_without_gid_when_ids_come_from_a_range():
    plan = p.build_plan(spec(), single_id=False)
    (devpts,) = [s for s in steps_of(p.MountFilesystem, plan) if s.fstype == "devpts"]
    assert "gid=5" in devpts.data and "gid=" not in devpts.fallback_data


def test_devpts_asks_for_no_gid_in_single_id_mode():
    plan = p.build_plan(spec(), single_id=True)
    (devpts,) = [s for s in steps_of(p.MountFilesystem, plan) if s.fstype == "devpts"]
    assert "gid=" not in devpts.data and devpts.fallback_data is None


def test_docker_default_capabilities_bound_the_container():
    (drop,) = steps_of(p.DropBoundingCapabilities, p.build_plan(spec(), single_id=True))
    assert drop.bounding == 0xA80425FB


def test_init_annotation_asks_for_an_init():
    (ex,) = steps_of(p.Exec, p.build_plan(spec(init=True), single_id=True))
    assert ex.init


def test_executor_names_the_failing_step():
    import errno

    import pytest

    from rootless.errors import RuntimeSetupError

    ex = Executor(RecordingSyscalls(fail={"sethostname": errno.EPERM}))
    with pytest.raises(RuntimeSetupError, match="SetHostname abc: operation not permitted"):
        ex.run((p.SetHostname("abc"),))


def test_executor_drops_every_capability_outside_the_bounding_set():
    sys = RecordingSyscalls()
    Executor(sys).run((p.DropBoundingCapabilities(bounding=1 << 0),))
    dropped = [c[2] for c in sys.calls if c[0] == "prctl" and c[1] == k.PR_CAPBSET_DROP]
    assert 0 not in dropped and 1 in dropped and 21 in dropped  # 21 = CAP_SYS_ADMIN


def test_spec_round_trips_through_json():
    s = spec()
    assert p.build_plan(json.loads(json.dumps(s)), True).typed_steps() == p.build_plan(s, True).typed_steps()


def test_every_step_type_has_a_handler_in_the_executor():
    from rootless.runtime.executor import HANDLERS

    steps = {obj for obj in vars(p).values()
             if isinstance(obj, type) and issubclass(obj, tuple) and obj.__module__ == p.__name__
             and obj is not p.Plan}
    assert steps == set(HANDLERS)
