"""docker's resource flags, read and checked as docker reads and checks them, and the
OCI linux.resources and cgroup v2 files they become (engine/resources.py,
engine/cgroups.py)."""

import os

import pytest

from rootless.engine.cgroup_stats import cgroup_stats
from rootless.engine.cgroups import (SETUP_MEMORY, Place, cgroup_check, cgroup_enter,
                                     cgroup_freeze, cgroup_limits, cgroup_remove,
                                     cgroup_settle, cpu_weight, not_enforced)
from rootless.engine.resources import (Resources, cpuset_format, resources_from_oci,
                                       resources_host_config, resources_parse,
                                       resources_to_oci)
from rootless.errors import UsageError
from rootless.kernel.cgroup2 import host_dir

MIB = 1 << 20


def parse(**flags) -> Resources:
    return resources_parse(**flags)


def refused(match: str, **flags) -> None:
    with pytest.raises(UsageError, match=match):
        resources_parse(**flags)


# ---- --memory and --memory-swap (go-units RAMInBytes, moby's checks) ----

@pytest.mark.parametrize("text, size", [
    ("512m", 512 * MIB), ("1g", 1 << 30), ("1.5g", 3 << 29), ("1G", 1 << 30),
    ("7MB", 7 * MIB), ("7MiB", 7 * MIB), ("7 m", 7 * MIB), ("7340032", 7 * MIB),
    ("7340032b", 7 * MIB), ("0.5g", 512 * MIB), ("6144k", 6 * MIB),
])
def test_memory_sizes_are_binary_units(text, size):
    assert parse(memory=text).memory == size


@pytest.mark.parametrize("text, why", [
    ("abc", "invalid size: 'abc'"), ("1x", "invalid suffix: 'x'"),
    ("-1", "invalid size: '-1'"), ("1mbb", "invalid suffix: 'mbb'"),
    ("inf", "invalid size"), ("1_0m", "invalid size"), ("", "invalid size"),
    ("99999999999p", r"invalid size: '99999999999p' \(more than 8 EiB\)"),
])
def test_memory_refuses_what_go_units_refuses(text, why):
    refused(f'invalid argument "{text}" for "-m, --memory" flag: {why}', memory=text)


def test_memory_below_6mb_is_refused_as_docker_does():
    refused("minimum memory limit allowed is 6MB", memory="5m")


def test_memory_zero_is_no_limit():
    assert parse(memory="0") == Resources()


def test_swap_defaults_to_as_much_as_memory():
    assert parse(memory="512m").memory_swap == 1 << 30


def test_swap_minus_one_is_unlimited():
    assert parse(memory="512m", memory_swap="-1").memory_swap == -1


def test_swap_below_memory_is_refused():
    refused("minimum memoryswap limit should be larger than memory limit",
            memory="1g", memory_swap="512m")


def test_swap_without_memory_is_refused():
    refused("always set the memory limit when using memoryswap", memory_swap="1g")


def test_swap_refuses_a_bad_size_naming_its_flag():
    refused('for "--memory-swap" flag: invalid size', memory="1g", memory_swap="x")


# ---- --cpus, --cpu-shares, --pids-limit, --cpuset-cpus ----

@pytest.mark.parametrize("text", ["1.5", "3/2", "15e-1"])
def test_cpus_is_a_rational_number_of_nanocpus(text):
    assert parse(cpus=text).nano_cpus == 1_500_000_000


def test_cpus_finer_than_a_billionth_is_too_precise():
    refused("value is too precise", cpus="0.0000000001")


@pytest.mark.parametrize("text", ["x", "1/0", " 1"])
def test_cpus_not_a_number_is_refused(text):
    refused(f"failed to parse {text} as a rational number", cpus=text)


@pytest.mark.parametrize("text", ["-1", "0.001", "100000"])
def test_cpus_out_of_range_names_the_range(text):
    count = len(os.sched_getaffinity(0))
    refused(f"range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs",
            cpus=text)


def test_cpus_zero_is_no_limit():
    assert parse(cpus="0").nano_cpus == 0


def test_cpu_shares_refuses_what_parseint_refuses():
    refused('"-c, --cpu-shares" flag: strconv.ParseInt: parsing "1.5": invalid syntax',
            cpu_shares="1.5")


def test_cpu_shares_cannot_be_negative():
    refused("cannot be negative", cpu_shares="-2")


@pytest.mark.parametrize("text", ["-1", "0"])
def test_pids_limit_zero_or_negative_is_unlimited(text):
    assert parse(pids_limit=text).pids_limit == 0


def test_pids_limit_refuses_a_non_number():
    refused('"--pids-limit" flag: strconv.ParseInt: parsing "many"', pids_limit="many")


@pytest.mark.parametrize("text", ["1-0", "a", "0-", "-1", "0,,1"])
def test_cpuset_malformed_is_refused(text):
    refused(f"invalid value {text} for cpuset cpus", cpuset_cpus=text)


def test_cpuset_outside_this_process_cpus_is_refused():
    beyond = max(os.sched_getaffinity(0)) + 1
    refused(f"requested CPUs are not available - requested 0-{beyond}, available: "
            f"{cpuset_format(os.sched_getaffinity(0))}", cpuset_cpus=f"0-{beyond}")


def test_cpuset_format_writes_ranges():
    assert cpuset_format({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"


# ---- the OCI spec's linux.resources, and inspect ----

def test_oci_resources_of_every_flag():
    r = parse(memory="512m", cpus="1.5", cpu_shares="512", pids_limit="100",
              cpuset_cpus="0")
    assert resources_to_oci(r) == {
        "memory": {"limit": 512 * MIB, "swap": 1 << 30},
        "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 100}}


def test_no_flags_no_resources():
    assert resources_to_oci(parse()) == {}


def test_inspect_reads_back_what_was_asked():
    r = parse(memory="512m", memory_swap="-1", cpus="1.5", cpu_shares="512",
              pids_limit="100", cpuset_cpus="0")
    assert resources_host_config(resources_to_oci(r)) == {
        "Memory": 512 * MIB, "MemorySwap": -1, "NanoCpus": 1_500_000_000,
        "CpuShares": 512, "PidsLimit": 100, "CpusetCpus": "0"}


def test_inspect_of_no_resources_is_dockers_zero_values():
    assert resources_host_config(None) == {"Memory": 0, "MemorySwap": 0, "NanoCpus": 0,
                                           "CpuShares": 0, "PidsLimit": None,
                                           "CpusetCpus": ""}


def test_malformed_resources_read_as_unset():
    oci = {"memory": {"limit": "1g", "swap": True}, "cpu": {"quota": 5, "period": 0,
                                                           "cpus": 3},
           "pids": []}
    assert resources_from_oci(oci) == Resources()


# ---- cgroup v2 files ----

@pytest.mark.parametrize("shares, weight", [
    (2, 1), (1, 1), (512, 59), (1024, 100), (2048, 174), (262144, 10000), (10**9, 10000)])
def test_cpu_weight_maps_the_default_share_to_the_default_weight(shares, weight):
    assert cpu_weight(shares) == weight


def files(**flags) -> dict[str, tuple[str, str | None]]:
    return {limit.file: (limit.value, limit.start)
            for limit in cgroup_limits(resources_to_oci(parse(**flags)))}


def test_memory_swap_is_a_total_in_docker_and_swap_alone_in_cgroup_v2():
    assert files(memory="512m")["memory.swap.max"] == (str(512 * MIB), None)
    assert files(memory="512m", memory_swap="512m")["memory.swap.max"] == ("0", None)
    assert files(memory="512m", memory_swap="-1")["memory.swap.max"] == ("max", None)


def test_cpus_is_a_quota_per_100ms_period():
    assert files(cpus="1.5")["cpu.max"] == ("150000 100000", None)


def test_small_limits_are_looser_until_the_command_runs():
    assert files(memory="16m")["memory.max"] == (str(16 * MIB), str(SETUP_MEMORY))
    assert files(pids_limit="1")["pids.max"] == ("1", "2")
    assert files(memory="1g", pids_limit="50") == {
        "memory.max": (str(1 << 30), None), "memory.swap.max": (str(1 << 30), None),
        "pids.max": ("50", None)}


def test_the_warning_names_each_flag_once():
    limits = cgroup_limits(resources_to_oci(parse(memory="1g", pids_limit="5")))
    assert not_enforced(limits, "why") == (
        "WARNING: resource limits are not enforced (--memory, --memory-swap, "
        "--pids-limit): why")
    assert not_enforced([], "why") is None


@pytest.mark.parametrize("mount, path, found", [
    (("/sys/fs/cgroup", "/"), "/a/b", "/sys/fs/cgroup/a/b"),
    (("/sys/fs/cgroup", "/"), "/", "/sys/fs/cgroup"),
    (("/mnt/cg", "/a"), "/a/b", "/mnt/cg/b"),
    (("/mnt/cg", "/a"), "/ab", None),
    (("/sys/fs/cgroup", "/"), "/../x", None),
])
def test_host_dir_maps_a_cgroup_path_under_its_mount(mount, path, found):
    assert host_dir(mount, path) == found


def test_stats_read_a_cgroup_directory(tmp_path):
    (tmp_path / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (tmp_path / "memory.current").write_text("4096\n")
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.stat").write_text("anon 1024\ninactive_file 512\n")
    (tmp_path / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n"
                                      "8:16 rbytes=1 wbytes=2 rios=1 wios=1\n")
    stats = cgroup_stats(str(tmp_path))
    assert stats == {"cpu_usage_usec": 1500, "cpu_user_usec": 1000,
                     "cpu_system_usec": 500, "memory_current": 4096, "memory_max": None,
                     "memory_inactive_file": 512, "pids_current": None, "pids_max": None,
                     "io_read_bytes": 11, "io_write_bytes": 22}


# ---- what cgroup_enter writes (a directory laid out as cgroupfs would be) ----

CID = "ab" * 32
LIMIT_FILES = ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "cpuset.cpus",
               "pids.max", "cgroup.freeze")


def fake_parent(tmp_path, offered: str, files=LIMIT_FILES):
    """PARENT with the controllers `offered`, and the container's cgroup as the kernel
    would make it (cgroup_enter reuses an existing one, as on `restart`)."""
    (tmp_path / "cgroup.controllers").write_text(offered + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    leaf = tmp_path / f"rootless-{CID}" / "container"
    leaf.mkdir(parents=True)
    (leaf / "cgroup.procs").write_text("")
    for name in files:
        (leaf.parent / name).write_text("")
    return Place(str(tmp_path), ""), leaf.parent


def oci(**flags) -> dict:
    return resources_to_oci(parse(**flags))


def test_enter_writes_the_limits_above_and_the_pid_into_the_leaf(tmp_path):
    place, path = fake_parent(tmp_path, "cpu cpuset memory pids")
    resources = oci(memory="1g", cpus="0.5", cpu_shares="512", pids_limit="64",
                    cpuset_cpus="0")
    assert cgroup_enter(CID, 4242, resources, place) == (str(path), None)
    assert {f: (path / f).read_text() for f in LIMIT_FILES[:-1]} == {
        "memory.max": str(1 << 30), "memory.swap.max": str(1 << 30),
        "cpu.max": "50000 100000", "cpu.weight": "59", "cpuset.cpus": "0",
        "pids.max": "64"}
    assert (path / "container" / "cgroup.procs").read_text() == "4242"


def test_enter_then_settle_gives_small_limits_their_own_values(tmp_path):
    place, path = fake_parent(tmp_path, "memory pids")
    resources = oci(memory="16m", pids_limit="1")
    cgroup_enter(CID, 1, resources, place)
    assert (path / "memory.max").read_text() == str(SETUP_MEMORY)
    assert (path / "pids.max").read_text() == "2"
    cgroup_settle(str(path), resources)
    assert (path / "memory.max").read_text() == str(16 << 20)
    assert (path / "pids.max").read_text() == "1"


def test_enter_warns_for_a_controller_the_parent_lacks_and_sets_the_rest(tmp_path):
    place, path = fake_parent(tmp_path, "cpu pids")
    path_made, warning = cgroup_enter(CID, 1, oci(memory="1g", pids_limit="9"), place)
    assert path_made == str(path) and (path / "pids.max").read_text() == "9"
    assert (path / "memory.max").read_text() == ""
    assert warning == (f"WARNING: resource limits are not enforced (--memory, "
                       f"--memory-swap): the memory controller is not available in "
                       f"{tmp_path} (its cgroup.controllers lists cpu pids)")
    assert cgroup_check(oci(memory="1g", pids_limit="9"), place) == warning


def test_enter_warns_where_the_kernel_keeps_no_swap_accounting(tmp_path):
    place, path = fake_parent(tmp_path, "memory", files=("memory.max",))
    _, warning = cgroup_enter(CID, 1, oci(memory="1g"), place)
    assert (path / "memory.max").read_text() == str(1 << 30)
    assert warning.startswith("WARNING: resource limits are not enforced (--memory-swap): ")
    assert "no memory.swap.max" in warning


def test_enter_without_a_place_warns_and_makes_nothing(tmp_path):
    made, warning = cgroup_enter(CID, 1, oci(cpus="1"), Place(None, "the reason"))
    assert made is None
    assert warning == ("WARNING: resource limits are not enforced (--cpus): no delegated "
                       "cgroup v2 subtree (the reason)")


def test_enter_without_limits_warns_about_nothing(tmp_path):
    place, path = fake_parent(tmp_path, "")
    assert cgroup_enter(CID, 7, None, place) == (str(path), None)


def test_enter_refuses_a_container_id_that_is_not_one(tmp_path):
    with pytest.raises(ValueError):
        cgroup_enter("../../x", 1, None, Place(str(tmp_path), ""))


def test_only_a_container_cgroup_can_be_removed_or_frozen(tmp_path):
    for path in (str(tmp_path), f"{tmp_path}/rootless-{CID}/..", "/sys/fs/cgroup"):
        with pytest.raises(ValueError):
            cgroup_remove(path)
        with pytest.raises(ValueError):
            cgroup_freeze(path, True)


def test_one_reason_names_every_missing_controller(tmp_path):
    place, _ = fake_parent(tmp_path, "cpu")
    _, warning = cgroup_enter(CID, 1, oci(memory="1g", pids_limit="9", cpus="1"), place)
    assert warning == ("WARNING: resource limits are not enforced (--memory, "
                       "--memory-swap, --pids-limit): the memory and pids controllers are "
                       f"not available in {tmp_path} (its cgroup.controllers lists cpu)")
