"""exec's plan: joining a running container's namespaces instead of making them, with
run's own process steps and seccomp filter; and how the runtime enters the namespaces of
an init named by pid and start time (no kernel namespaces involved: a recording double)."""

import errno
import os

import pytest

from rootless.engine.seccomp import BUILTIN, profile_load, profile_to_oci
from rootless.engine.spec import ProcessConfig, RootfsConfig, SecurityConfig, SpecOptions, \
    build_spec
from rootless.errors import RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel.procs import start_time
from rootless.kernel.recording import RecordingSyscalls
from rootless.runtime import plan as p
from rootless.runtime.attach import scan_detach_keys
from rootless.runtime.caps import DOCKER_DEFAULT
from rootless.runtime.executor import Executor


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):  # the compiled filter's cache (runtime/seccomp.py)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))


def spec(network="host", seccomp=None, no_new_privileges=False):
    return build_spec(SpecOptions(
        process=ProcessConfig(args=["sleep", "1000"], env=["PATH=/bin"], cwd="/srv",
                              no_new_privileges=no_new_privileges),
        rootfs=RootfsConfig(path="/c/rootfs", lower=["/l/base"], upper="/c/up",
                            work="/c/work"),
        hostname="abc", network=network, security=SecurityConfig(seccomp=seccomp)))


def exec_plan(s=None, single_id=True, **process):
    s = s or spec()
    return p.build_exec_plan(s, {**s["process"], "args": ["id"], **process}, single_id,
                             4242, 777)


def kinds(plan):
    return [type(step).__name__ for step in plan.steps]


# ---- the plan ----

def test_exec_plan_joins_the_init_named_by_pid_and_start_time_first():
    plan = exec_plan()
    assert plan.steps[:2] == (p.JoinCgroup(4242, 777),
                              p.JoinNamespaces(4242, 777, plan.steps[1].namespaces))


def test_exec_plan_joins_the_user_namespace_and_every_namespace_run_made():
    joined = exec_plan().steps[1].namespaces
    made = p.build_plan(spec(), single_id=True).namespaces
    assert joined == made | k.CLONE_NEWUSER
    assert not joined & k.CLONE_NEWNET  # --network host: the host's, never entered


def test_exec_plan_joins_the_network_namespace_of_a_container_that_has_one():
    assert exec_plan(spec(network="none")).steps[1].namespaces & k.CLONE_NEWNET


def test_exec_plan_makes_no_namespace_mount_or_pivot():
    plan = exec_plan()
    assert plan.namespaces == 0
    assert not set(kinds(plan)) & {"MakeMountsPrivate", "MountOverlay", "BindRootfs",
                                   "MountFilesystem", "BindMount", "BindDevice", "PivotRoot",
                                   "MaskPath", "ReadonlyPath", "SetHostname", "LoopbackUp"}


def test_exec_plan_has_the_process_steps_of_run_after_the_join():
    plan = exec_plan()
    run = p.build_plan(spec(), single_id=True)
    assert kinds(plan)[2:] == [k for k in kinds(run) if k in (
        "SetRlimit", "Chdir", "DropBoundingCapabilities", "SetUser", "SetCapabilities",
        "NoNewPrivileges", "LoadSeccomp", "Exec")]


def test_exec_plan_enters_but_never_creates_its_working_directory():
    (chdir,) = [s for s in exec_plan(cwd="/tmp").steps if isinstance(s, p.Chdir)]
    assert chdir == p.Chdir("/tmp", create=False)


def test_exec_plan_loads_the_containers_seccomp_filter_as_run_places_it():
    for nnp in (False, True):
        s = spec(seccomp=profile_to_oci(profile_load(BUILTIN), DOCKER_DEFAULT),
                 no_new_privileges=nnp)
        names = kinds(exec_plan(s))
        assert names.count("LoadSeccomp") == 1
        before = "Exec" if nnp else "SetUser"
        assert names.index("LoadSeccomp") == names.index(before) - 1


def test_exec_plan_execs_the_command_without_an_init():
    last = exec_plan(terminal=True).steps[-1]
    assert last == p.Exec(("id",), ("PATH=/bin",), init=False, terminal=True)


def test_exec_plan_in_single_id_mode_never_calls_setgroups():
    (user,) = [s for s in exec_plan(single_id=True).steps if isinstance(s, p.SetUser)]
    assert user.set_groups is False


# ---- joining: the executor's JoinNamespaces through a recording double ----

class NoPidfdSetns(RecordingSyscalls):
    """A kernel before 5.8: setns refuses a pidfd (EINVAL); namespace files work."""

    def setns(self, fd, nstype):
        self._record("setns", fd, nstype)
        if nstype & (nstype - 1):  # several flags: only a pidfd takes them
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))


ALL = (k.CLONE_NEWUSER | k.CLONE_NEWIPC | k.CLONE_NEWUTS | k.CLONE_NEWNET | k.CLONE_NEWPID
       | k.CLONE_NEWCGROUP | k.CLONE_NEWNS)


def join(sys, pid=None, start=None, flags=ALL):
    pid = os.getpid() if pid is None else pid
    start = start_time(pid) if start is None else start
    Executor(sys).run((p.JoinNamespaces(pid, start, flags),))


def test_join_enters_every_namespace_at_once_through_a_pidfd():
    sys = RecordingSyscalls()
    join(sys)
    assert [(c[0], c[2]) for c in sys.calls] == [("setns", ALL)]


def test_join_without_pidfd_setns_enters_the_user_namespace_first_and_mount_last():
    sys = NoPidfdSetns()
    join(sys)
    assert [c[2] for c in sys.calls[1:]] == [
        k.CLONE_NEWUSER, k.CLONE_NEWIPC, k.CLONE_NEWUTS, k.CLONE_NEWNET, k.CLONE_NEWPID,
        k.CLONE_NEWCGROUP, k.CLONE_NEWNS]


def test_join_without_pidfd_setns_enters_only_the_namespaces_asked_for():
    sys = NoPidfdSetns()
    join(sys, flags=k.CLONE_NEWUSER | k.CLONE_NEWNS | k.CLONE_NEWPID)
    assert [c[2] for c in sys.calls[1:]] == [k.CLONE_NEWUSER, k.CLONE_NEWPID, k.CLONE_NEWNS]


@pytest.mark.parametrize("sys_kind", [RecordingSyscalls, NoPidfdSetns])
def test_join_of_a_pid_with_another_start_time_enters_nothing(sys_kind):
    # a reused pid: the process there now started at another time than the init
    sys = sys_kind()
    with pytest.raises(RuntimeSetupError, match=f"pid {os.getpid()}.* is gone"):
        join(sys, start=start_time(os.getpid()) + 1)
    assert sys.calls == []


def test_join_of_an_init_that_exited_meanwhile_enters_nothing():
    sys = RecordingSyscalls(fail={"setns": errno.ESRCH})  # pidfd: the process is gone
    with pytest.raises(RuntimeSetupError, match="is gone"):
        join(sys)


def test_join_failure_names_the_cause():
    sys = RecordingSyscalls(fail={"setns": errno.EPERM})
    with pytest.raises(RuntimeSetupError, match="join the container's namespaces: "
                                                "operation not permitted"):
        join(sys)


def test_start_joined_refuses_a_plan_that_joins_nothing_before_forking():
    from rootless.runtime.process import StdioOptions, start_joined

    sys = RecordingSyscalls()
    with pytest.raises(RuntimeSetupError, match="JoinNamespaces"):
        start_joined(p.build_plan(spec(), single_id=True), StdioOptions(), sys)
    assert sys.calls == []


# ---- the detach keys of exec -it ----

KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def test_detach_keys_end_the_session():
    assert scan_detach_keys(b"ls\x10\x11", KEYS, 0) == (None, 0)


def test_detach_keys_split_across_reads_still_detach():
    data, held = scan_detach_keys(b"ab\x10", KEYS, 0)
    assert (data, held) == (b"ab", 1)
    assert scan_detach_keys(b"\x11", KEYS, held) == (None, 0)


def test_a_broken_detach_sequence_is_passed_on_as_typed():
    data, held = scan_detach_keys(b"\x10", KEYS, 0)
    assert scan_detach_keys(b"x", KEYS, held) == (b"\x10x", 0)
