"""Resource limits: `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
`--pids-limit`, `--cpuset-cpus`, enforced through a cgroup v2 subtree the user owns
(systemd's delegation, or one an administrator gave: scripts/test gives the test users
one) and otherwise warned about in one line while the container still runs; `inspect`
records them and `info` says what this user's cgroup can do.

Some behaviours exist only with a delegated cgroup, or only with a given controller in
it: those tests skip with the reason otherwise. The "not delegated" ones make that
situation on purpose: a cgroup whose parent this user may not write (as a login
session's scope is), with `rootless` started inside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers import assert_error, ok, wait_for

pytestmark = pytest.mark.container

WARNING = "WARNING: resource limits are not enforced"


# ---- where this process stands in the cgroup v2 hierarchy ----

def cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        if tail.split(" ", 1)[0] == "cgroup2" and fields.split()[3] == "/":
            return Path(fields.split()[4])
    return None


def cgroup_of(pid: int | str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def delegated_parent() -> Path | None:
    """The directory this process's containers get cgroups in, if it may write it."""
    mount, own = cgroup2_mount(), cgroup_of("self")
    if mount is None or own in ("", "/"):
        return None
    parent = mount / os.path.dirname(own).lstrip("/")
    writable = all(os.access(p, os.W_OK) for p in (
        parent, parent / "cgroup.procs", parent / "cgroup.subtree_control"))
    return parent if writable else None


def need_delegation() -> Path:
    parent = delegated_parent()
    if parent is None:
        pytest.skip("this user has no delegated cgroup v2 subtree (scripts/test gives "
                    "the test users one)")
    return parent


def need_controller(name: str) -> Path:
    parent = need_delegation()
    offered = (parent / "cgroup.controllers").read_text().split()
    if name not in offered:
        pytest.skip(f"the delegated cgroup {parent} has no {name} controller "
                    f"(cgroup.controllers: {' '.join(offered) or 'none'}; on a hybrid "
                    "host the controllers belong to cgroup v1)")
    return parent


def container_cgroup(rootless, name: str) -> Path:
    """The host directory of a running container's cgroup (its init is in its leaf)."""
    pid = ok(rootless("inspect", "--format", "{{.State.Pid}}", name)).strip()
    cid = ok(rootless("inspect", "--format", "{{.Id}}", name)).strip()
    path = cgroup_of(pid)
    assert path.endswith(f"/rootless-{cid}/container"), path
    return cgroup2_mount() / path.lstrip("/").removesuffix("/container")


def events(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in (path / "cgroup.events").read_text().splitlines())


def start_sleeper(rootless, busybox, name: str, *options: str) -> None:
    ok(rootless("run", "-d", "--name", name, *options, busybox, "sleep", "1000"))


# ---- a cgroup whose parent this user may not write ----

class Undelegated:
    """Runs `rootless` from a cgroup that is not delegated: a child of a cgroup this
    user made and then made read-only (as a root-owned login scope is), or, without a
    delegated subtree at all, simply where the test runs."""

    def __init__(self, rootless) -> None:
        self.rootless, self.box = rootless, None
        parent = delegated_parent()
        if parent is not None:
            self.box = parent / f"undelegated-{uuid.uuid4().hex[:8]}"
            (self.box / "session").mkdir(parents=True)
            os.chmod(self.box / "cgroup.procs", 0o444)

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        procs = self.box / "session" / "cgroup.procs" if self.box else None
        proc = self.rootless.popen(*args, stdin=subprocess.DEVNULL, preexec_fn=(
            (lambda: procs.write_text("0")) if procs else None))
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    def close(self) -> None:
        if self.box is None:
            return
        deadline = time.monotonic() + 20
        while True:  # the monitors started in it leave when their containers do
            try:
                os.rmdir(self.box / "session")
                os.rmdir(self.box)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture
def undelegated(rootless):
    runner = Undelegated(rootless)
    yield runner
    rootless.kill_leftovers()
    runner.close()


# ---- bad values: one line, exit 125, before any container exists ----

@pytest.mark.parametrize("flags, words", [
    (["-m", "12x"], ['invalid argument "12x" for "-m, --memory" flag', "invalid suffix"]),
    (["--memory", "5m"], ["minimum memory limit allowed is 6MB"]),
    (["-m", "1g", "--memory-swap", "512m"], ["memoryswap limit should be larger"]),
    (["--memory-swap", "1g"], ["always set the memory limit"]),
    (["--cpus", "two"], ["failed to parse two as a rational number"]),
    (["--cpus", "4096"], ["range of CPUs is from 0.01 to"]),
    (["--cpu-shares", "lots"], ['"-c, --cpu-shares" flag', "invalid syntax"]),
    (["--pids-limit", "1.5"], ['"--pids-limit" flag', "invalid syntax"]),
    (["--cpuset-cpus", "0-4096"], ["requested CPUs are not available"]),
    (["--cpuset-cpus", "3-1"], ["invalid value 3-1 for cpuset cpus"]),
])
def test_a_bad_resource_value_fails_before_any_container_exists(rootless, busybox, flags,
                                                                words):
    assert_error(rootless("run", "--rm", *flags, busybox, "true"), 125, *words)
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_create_checks_resource_values_too(rootless, busybox):
    assert_error(rootless("create", "-m", "1k", busybox, "true"), 125, "minimum memory")
    assert ok(rootless("ps", "-a", "-q")) == ""


# ---- inspect records what was asked ----

def test_inspect_records_every_resource_flag(rootless, busybox):
    ok(rootless("run", "--name", "limited", "-m", "512m", "--cpus", "1.5",
                "--cpu-shares", "512", "--pids-limit", "100", "--cpuset-cpus", "0",
                busybox, "true"))
    host = json.loads(ok(rootless("inspect", "--format", "{{json .HostConfig}}",
                                  "limited")))
    assert {k: host[k] for k in ("Memory", "MemorySwap", "NanoCpus", "CpuShares",
                                 "PidsLimit", "CpusetCpus")} == {
        "Memory": 512 << 20, "MemorySwap": 1 << 30, "NanoCpus": 1_500_000_000,
        "CpuShares": 512, "PidsLimit": 100, "CpusetCpus": "0"}


def test_inspect_records_unlimited_swap_as_minus_one(rootless, busybox):
    ok(rootless("create", "--name", "swap", "-m", "64m", "--memory-swap", "-1", busybox))
    assert ok(rootless("inspect", "--format", "{{.HostConfig.MemorySwap}}", "swap")) == \
        "-1\n"


# ---- without a delegated cgroup: one warning, and the container runs ----

def test_without_delegation_a_limit_is_warned_about_and_the_container_runs(undelegated,
                                                                           busybox):
    result = undelegated("run", "--rm", "-m", "64m", "--pids-limit", "50", busybox,
                         "echo", "ran")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{WARNING} (--memory, --memory-swap, --pids-limit): "
                               "no delegated cgroup v2 subtree ("), lines[0]


def test_without_delegation_create_warns_once(undelegated, busybox):
    result = undelegated("create", "--cpus", "1", busybox)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(WARNING) == 1 and "(--cpus)" in result.stderr


def test_info_says_why_there_are_no_cgroups(undelegated):
    data = json.loads(ok(undelegated("info", "--format", "json")))
    assert data["cgroups"]["usable"] == "no" and data["cgroups"]["reason"]
    assert data["CgroupDriver"] == "none" and not data["MemoryLimit"]
    assert data["Warnings"] == [
        f"WARNING: Running in rootless-mode without cgroups: {data['cgroups']['reason']}"]


def test_info_prints_its_warnings_on_stderr(undelegated):
    result = undelegated("info")
    assert result.returncode == 0
    assert "WARNING: Running in rootless-mode without cgroups" in result.stderr
    assert "cgroups:" in result.stdout and "usable: no" in result.stdout


# ---- with a delegated cgroup: a cgroup per container ----

def test_info_lists_the_delegated_controllers(rootless):
    parent = need_delegation()
    data = json.loads(ok(rootless("info", "--format", "json")))
    offered = sorted((parent / "cgroup.controllers").read_text().split())
    assert data["cgroups"]["usable"] == "yes"
    assert data["cgroups"]["controllers"] == (" ".join(offered) or "none")
    assert data["CgroupDriver"] == "cgroupfs"
    assert data["MemoryLimit"] == ("memory" in offered)
    assert data["PidsLimit"] == ("pids" in offered)


def test_a_container_runs_in_a_cgroup_of_its_own(rootless, busybox):
    parent = need_delegation()
    start_sleeper(rootless, busybox, "own")
    path = container_cgroup(rootless, "own")
    assert path.parent == parent
    pid = ok(rootless("inspect", "--format", "{{.State.Pid}}", "own")).strip()
    assert (path / "container" / "cgroup.procs").read_text().split() == [pid]


def test_a_privileged_container_cannot_reach_its_limits(rootless, busybox):
    """Must not: the container's root is the user, who owns the cgroup's files; its
    own cgroup2 mount shows only the leaf its processes are in, never the cgroup that
    holds the limits."""
    need_delegation()
    script = ("grep ^0:: /proc/self/cgroup; "
              "mount -t cgroup2 none /sys/fs/cgroup || exit 9; echo $(cat /sys/fs/cgroup/"
              "cgroup.procs); ls /sys/fs/cgroup | grep -E '^(memory|pids|cpu)\\.max$'; "
              "ls -d /sys/fs/cgroup/container /sys/fs/cgroup/../container 2>&1; true")
    out = ok(rootless("run", "--rm", "--privileged", "-m", "64m", "--pids-limit", "64",
                      busybox, "sh", "-c", script))
    lines = out.splitlines()
    assert lines[0] == "0::/", out  # its cgroup namespace is rooted at its own cgroup
    # the mount's root is the leaf: the init, and no process of the host (those read 0)
    assert "1" in lines[1].split() and "0" not in lines[1].split(), out
    assert not any(line.endswith(".max") for line in lines), out
    assert all("No such file or directory" in line for line in lines[2:]), out


def test_an_exec_joins_the_container_cgroup(rootless, busybox):
    """So that its limits count it and `pause` freezes it (the cgroup2 mount is found
    from mountinfo: /sys/fs/cgroup/unified on a hybrid host)."""
    need_delegation()
    start_sleeper(rootless, busybox, "joined")
    leaf = container_cgroup(rootless, "joined") / "container"
    ok(rootless("exec", "-d", "joined", "sleep", "300"))
    wait_for(lambda: len((leaf / "cgroup.procs").read_text().split()) == 2)


def test_the_cgroup_goes_when_the_container_exits(rootless, busybox):
    need_delegation()
    start_sleeper(rootless, busybox, "done")
    path = container_cgroup(rootless, "done")
    ok(rootless("kill", "done"))
    ok(rootless("wait", "done"))
    wait_for(lambda: not path.exists(), timeout=10)


def test_rm_force_leaves_no_cgroup(rootless, busybox):
    need_delegation()
    start_sleeper(rootless, busybox, "gone")
    path = container_cgroup(rootless, "gone")
    ok(rootless("rm", "-f", "gone"))
    wait_for(lambda: not path.exists(), timeout=10)


def test_rm_takes_the_cgroup_a_killed_monitor_left(rootless, busybox):
    need_delegation()
    start_sleeper(rootless, busybox, "orphan")
    path = container_cgroup(rootless, "orphan")
    init = ok(rootless("inspect", "--format", "{{.State.Pid}}", "orphan")).strip()
    monitor = int(Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(monitor, 9)  # the init dies with it (PR_SET_PDEATHSIG); the cgroup stays
    wait_for(lambda: events(path)["populated"] == "0")
    ok(rootless("rm", "-f", "orphan"))
    assert not path.exists()


def test_pause_freezes_the_cgroup_and_unpause_thaws_it(rootless, busybox):
    need_delegation()
    start_sleeper(rootless, busybox, "frozen")
    path = container_cgroup(rootless, "frozen")
    pid = ok(rootless("inspect", "--format", "{{.State.Pid}}", "frozen")).strip()
    ok(rootless("pause", "frozen"))
    assert events(path)["frozen"] == "1"
    # the freezer, not SIGSTOP: a stopped process would read T
    assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T"
    assert ok(rootless("inspect", "--format", "{{.State.Status}}", "frozen")) == "paused\n"
    ok(rootless("unpause", "frozen"))
    assert events(path)["frozen"] == "0"


def test_a_frozen_container_makes_no_progress(rootless, busybox):
    need_delegation()
    ok(rootless("run", "-d", "--name", "counter", busybox, "sh", "-c",
                "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; done"))
    path = container_cgroup(rootless, "counter")
    ok(rootless("pause", "counter"))
    before = (path / "cpu.stat").read_text().split()[1]
    time.sleep(0.3)
    assert (path / "cpu.stat").read_text().split()[1] == before  # usage_usec
    ok(rootless("unpause", "counter"))
    wait_for(lambda: (path / "cpu.stat").read_text().split()[1] != before)


# ---- with the controllers: limits that hold ----

def limit_file(rootless, busybox, name: str, options: list[str], file: str) -> str:
    start_sleeper(rootless, busybox, name, *options)
    return (container_cgroup(rootless, name) / file).read_text().strip()


def test_a_missing_controller_is_warned_about_by_name(rootless, busybox):
    parent = need_delegation()
    offered = (parent / "cgroup.controllers").read_text().split()
    if "memory" in offered:
        pytest.skip(f"the delegated cgroup {parent} has the memory controller")
    result = rootless("run", "--rm", "-m", "64m", busybox, "echo", "ran")
    assert ok(result) == "ran\n"
    assert result.stderr.strip() == (
        f"{WARNING} (--memory, --memory-swap): the memory controller is not available in "
        f"{parent} (its cgroup.controllers lists {' '.join(sorted(offered)) or 'none'})")


def test_memory_limit_is_memory_max(rootless, busybox):
    need_controller("memory")
    assert limit_file(rootless, busybox, "mem", ["-m", "16m"], "memory.max") == str(16 << 20)


def test_memory_limit_oom_kills_the_container(rootless, busybox):
    need_controller("memory")
    result = rootless("run", "--rm", "-m", "16m", "--memory-swap", "16m", busybox, "sh",
                      "-c", "head -c 200m /dev/zero | tail")
    assert result.returncode == 137, result.stderr


def test_pids_limit_makes_forks_fail(rootless, busybox):
    need_controller("pids")
    result = rootless("run", "--rm", "--pids-limit", "8", busybox, "sh", "-c",
                      "for i in $(seq 20); do sleep 5 & done 2>&1; wait")
    assert "Resource temporarily unavailable" in result.stdout + result.stderr


def test_a_pids_limit_of_one_still_runs_the_command(rootless, busybox):
    need_controller("pids")
    assert limit_file(rootless, busybox, "pids", ["--pids-limit", "1"], "pids.max") == "1"


def test_cpus_is_cpu_max(rootless, busybox):
    need_controller("cpu")
    assert limit_file(rootless, busybox, "cpus", ["--cpus", "0.5"], "cpu.max") == \
        "50000 100000"


def test_cpu_shares_is_cpu_weight(rootless, busybox):
    need_controller("cpu")
    assert limit_file(rootless, busybox, "weight", ["--cpu-shares", "512"], "cpu.weight") == "59"


def test_cpuset_cpus_is_cpuset_cpus(rootless, busybox):
    need_controller("cpuset")
    assert limit_file(rootless, busybox, "cpuset", ["--cpuset-cpus", "0"], "cpuset.cpus") == "0"
