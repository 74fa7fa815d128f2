"""`rootless container inspect` and `rootless inspect`: docker's ContainerJSON built from
the container's record and config.json, its security options among it; names resolved
as a container first, then an image; a config.json that is broken or hostile never
turns into a traceback or a hang."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from helpers import ok, wait_for

pytestmark = pytest.mark.container

# moby api/types ContainerJSON, as `docker inspect` prints it
TOP_KEYS = {"Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
            "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
            "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
            "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"}
STATE_KEYS = {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
              "ExitCode", "Error", "StartedAt", "FinishedAt"}
CONFIG_KEYS = {"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
               "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image",
               "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels"}
HOST_CONFIG_KEYS = {
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings",
    "RestartPolicy", "AutoRemove", "VolumeDriver", "VolumesFrom", "ConsoleSize", "CapAdd",
    "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd",
    "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
    "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize",
    "Runtime", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent",
    "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices",
    "DeviceCgroupRules", "DeviceRequests", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent",
    "IOMaximumIOps", "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths", "Init"}
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def run_named(rootless, image: str, name: str, *options: str, command=("true",),
              code: int = 0) -> None:
    result = rootless("run", "--name", name, *options, image, *command)
    assert result.returncode == code, result.stderr


def inspect_one(rootless, *args: str) -> dict:
    objects = json.loads(ok(rootless("container", "inspect", *args)))
    assert len(objects) == 1
    return objects[0]


def spec_path(store: Path, container_id: str) -> Path:
    return store / "containers" / container_id / "config.json"


# ---- shape ----

def test_inspect_prints_dockers_container_object(rootless, busybox):
    run_named(rootless, busybox, "xc", command=("sh", "-c", "exit 3"), code=3)
    obj = inspect_one(rootless, "xc")
    assert TOP_KEYS <= obj.keys()
    assert STATE_KEYS <= obj["State"].keys()
    assert CONFIG_KEYS <= obj["Config"].keys()
    assert HOST_CONFIG_KEYS <= obj["HostConfig"].keys()
    assert set(obj["GraphDriver"]) == {"Name", "Data"}


def test_inspect_output_is_a_json_array_indented_by_four(rootless, busybox):
    run_named(rootless, busybox, "xc")
    out = ok(rootless("container", "inspect", "xc"))
    assert out.startswith("[\n    {\n        \"Id\": ")


def test_inspect_shows_identity_command_and_image(rootless, busybox):
    run_named(rootless, busybox, "xc", command=("sh", "-c", "exit 3"), code=3)
    obj = inspect_one(rootless, "xc")
    image_id = json.loads(ok(rootless("image", "inspect", busybox)))[0]["Id"]
    assert re.fullmatch(r"[0-9a-f]{64}", obj["Id"])
    assert obj["Name"] == "/xc"
    assert (obj["Path"], obj["Args"]) == ("sh", ["-c", "exit 3"])
    assert obj["Image"] == image_id
    assert obj["Config"]["Image"] == busybox
    assert obj["Config"]["Cmd"] == ["sh", "-c", "exit 3"]
    assert obj["Config"]["Hostname"] == obj["Id"][:12]
    assert any(e.startswith("PATH=") for e in obj["Config"]["Env"])


def test_inspect_shows_the_exited_state(rootless, busybox):
    run_named(rootless, busybox, "xc", command=("sh", "-c", "exit 3"), code=3)
    state = inspect_one(rootless, "xc")["State"]
    assert (state["Status"], state["Running"], state["ExitCode"], state["Pid"]) == \
        ("exited", False, 3, 0)
    for key in ("StartedAt", "FinishedAt"):
        assert RFC3339_NANO.match(state[key]) and not state[key].startswith("0001"), state


def test_inspect_created_is_rfc3339_nano_utc(rootless, busybox):
    run_named(rootless, busybox, "xc")
    assert RFC3339_NANO.match(inspect_one(rootless, "xc")["Created"])


def test_inspect_shows_the_running_state(rootless, busybox):
    proc = rootless.popen("run", "--name", "xc", busybox, "sleep", "30")
    def running() -> bool:
        r = rootless("container", "inspect", "-f", "{{.State.Status}}", "xc")
        return r.returncode == 0 and r.stdout.strip() == "running"

    try:
        wait_for(running)
        state = inspect_one(rootless, "xc")["State"]
        assert state["Running"] is True and state["Pid"] > 0
        assert state["FinishedAt"] == "0001-01-01T00:00:00Z"
    finally:
        proc.kill()
        proc.wait()


def test_inspect_shows_runtime_driver_and_files(rootless, busybox, store):
    run_named(rootless, busybox, "xc")
    obj = inspect_one(rootless, "xc")
    cdir = store / "containers" / obj["Id"]
    assert obj["HostConfig"]["Runtime"] == "rootless"
    assert obj["Driver"] in ("overlay", "vfs") and obj["GraphDriver"]["Name"] == obj["Driver"]
    if obj["Driver"] == "overlay":
        assert obj["GraphDriver"]["Data"]["UpperDir"] == str(cdir / "upper")
        assert obj["GraphDriver"]["Data"]["MergedDir"] == str(cdir / "rootfs")
    assert obj["HostsPath"] == str(cdir / "hosts")
    assert obj["ResolvConfPath"] == str(cdir / "resolv.conf")
    assert obj["HostnamePath"] == str(cdir / "hostname")


def test_copied_rootfs_is_shown_as_vfs(rootless, busybox):
    rootless.env["ROOTLESS_ROOTFS"] = "copy"
    run_named(rootless, busybox, "xc")
    obj = inspect_one(rootless, "xc")
    assert (obj["Driver"], obj["GraphDriver"]) == ("vfs", {"Name": "vfs", "Data": None})


def test_inspect_shows_binds_and_mounts(rootless, busybox, tmp_path):
    run_named(rootless, busybox, "xc", "-v", f"{tmp_path}:/data:ro")
    obj = inspect_one(rootless, "xc")
    assert obj["HostConfig"]["Binds"] == [f"{tmp_path}:/data:ro"]
    assert [(m["Source"], m["Destination"], m["RW"]) for m in obj["Mounts"]] == \
        [(str(tmp_path), "/data", False)]


def test_inspect_shows_ulimits_and_init(rootless, busybox):
    run_named(rootless, busybox, "xc", "--ulimit", "nofile=100:200", "--init")
    host = inspect_one(rootless, "xc")["HostConfig"]
    assert host["Ulimits"] == [{"Name": "nofile", "Hard": 200, "Soft": 100}]
    assert host["Init"] is True


def test_size_option_adds_sizes(rootless, busybox):
    run_named(rootless, busybox, "xc", command=("sh", "-c", "head -c 5000 /dev/zero > /f"))
    obj = inspect_one(rootless, "-s", "xc")
    assert obj["SizeRootFs"] >= obj["SizeRw"] >= 5000
    assert "SizeRw" not in inspect_one(rootless, "xc")


# ---- security options ----

def test_default_container_has_no_security_options(rootless, busybox):
    run_named(rootless, busybox, "xc")
    host = inspect_one(rootless, "xc")["HostConfig"]
    assert (host["SecurityOpt"], host["Privileged"]) == (None, False)
    assert "/proc/kcore" in host["MaskedPaths"]


@pytest.mark.parametrize("options,shown", [
    (("--security-opt", "seccomp=unconfined"), ["seccomp=unconfined"]),
    (("--security-opt", "no-new-privileges"), ["no-new-privileges"]),
    (("--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges"),
     ["seccomp=unconfined", "no-new-privileges"]),
])
def test_security_opt_is_shown(rootless, busybox, options, shown):
    run_named(rootless, busybox, "xc", *options)
    out = ok(rootless("container", "inspect", "-f", "{{json .HostConfig.SecurityOpt}}",
                      "xc"))
    assert json.loads(out) == shown


def test_privileged_is_shown(rootless, busybox):
    run_named(rootless, busybox, "xc", "--privileged")
    host = inspect_one(rootless, "xc")["HostConfig"]
    assert host["Privileged"] is True
    assert (host["MaskedPaths"], host["ReadonlyPaths"]) == (None, None)


# ---- --format ----

def test_format_renders_each_container(rootless, busybox):
    run_named(rootless, busybox, "xc", command=("sh", "-c", "exit 3"), code=3)
    run_named(rootless, busybox, "yc")
    out = ok(rootless("container", "inspect", "--format", "{{.State.ExitCode}} {{.Name}}",
                      "xc", "yc"))
    assert out == "3 /xc\n0 /yc\n"


def test_format_lists_print_as_docker_does(rootless, busybox):
    run_named(rootless, busybox, "xc", "--security-opt", "seccomp=unconfined",
              "--security-opt", "no-new-privileges")
    out = ok(rootless("container", "inspect", "-f", "{{.HostConfig.SecurityOpt}}", "xc"))
    assert out == "[seccomp=unconfined no-new-privileges]\n"


def test_bad_template_fails_before_lookup(rootless, busybox):
    result = rootless("container", "inspect", "-f", "{{.Name", "nosuch")
    assert result.returncode == 125, result.stderr
    assert "template" in result.stderr and "nosuch" not in result.stderr


# ---- names ----

def test_container_is_found_by_id_prefix(rootless, busybox):
    run_named(rootless, busybox, "xc")
    full = inspect_one(rootless, "xc")["Id"]
    assert inspect_one(rootless, full[:12])["Id"] == full


def test_unknown_container_is_an_error_after_the_found_ones(rootless, busybox):
    run_named(rootless, busybox, "xc")
    result = rootless("container", "inspect", "xc", "nosuch")
    assert result.returncode == 1, result.stderr
    assert [o["Name"] for o in json.loads(result.stdout)] == ["/xc"]
    assert result.stderr == "Error: no such container: nosuch\n"


def test_top_level_inspect_prefers_a_container_to_an_image(rootless, busybox):
    run_named(rootless, busybox, "busybox")  # a container named like the image
    obj = json.loads(ok(rootless("inspect", "busybox")))[0]
    assert obj["Name"] == "/busybox" and "State" in obj


def test_top_level_inspect_falls_back_to_an_image(rootless, busybox):
    obj = json.loads(ok(rootless("inspect", busybox)))[0]
    assert obj["RepoTags"] == [busybox] and "State" not in obj


def test_top_level_inspect_type_image_skips_containers(rootless, busybox):
    run_named(rootless, busybox, "busybox")
    obj = json.loads(ok(rootless("inspect", "--type", "image", "busybox")))[0]
    assert obj["RepoTags"] == [busybox]


def test_top_level_inspect_type_container_skips_images(rootless, busybox):
    result = rootless("inspect", "--type", "container", busybox)
    assert result.returncode == 1
    assert result.stderr == f"Error: no such container: {busybox}\n"


def test_top_level_inspect_mixes_containers_and_images(rootless, busybox):
    run_named(rootless, busybox, "xc")
    out = ok(rootless("inspect", "-f", "{{.Id}}", "xc", busybox))
    container_id, image_id = out.split()
    assert len(container_id) == 64 and image_id.startswith("sha256:")


def test_top_level_inspect_unknown_name_is_no_such_object(rootless, busybox):
    run_named(rootless, busybox, "xc")
    result = rootless("inspect", "-f", "{{.Name}}", "xc", "nosuch")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "/xc\n"
    assert result.stderr == "Error: no such object: nosuch\n"


def test_top_level_inspect_bad_type_is_refused(rootless, busybox):
    result = rootless("inspect", "--type", "volume", busybox)
    assert result.returncode == 125
    assert '"volume" is not a valid value for --type' in result.stderr


# ---- a config.json that is not what run wrote ----

def break_spec(rootless, busybox: str, store: Path, how: str) -> str:
    """Run container x, then replace its config.json as `how` says."""
    run_named(rootless, busybox, "xc")
    container_id = inspect_one(rootless, "xc")["Id"]
    path = spec_path(store, container_id)
    path.unlink()
    if how == "truncated":
        path.write_text('{"process": {"args": ["sh"')
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "wrong types":
        path.write_text(json.dumps({
            "process": {"env": "PATH=/x", "user": {"uid": "0"}, "rlimits": [7, {}]},
            "annotations": {"run.rootless.security-opt": "{not json",
                            "run.rootless.rootfs.overlay": "[1]"},
            "mounts": {"a": 1}, "linux": {"namespaces": "all", "maskedPaths": [1]},
            "root": {"path": 5}, "hostname": ["h"]}))
    elif how == "a list":
        path.write_text("[1, 2, 3]")
    elif how == "a symlink":
        os.symlink("/dev/zero", path)
    return container_id


@pytest.mark.parametrize("how", ["truncated", "fifo", "wrong types", "a list", "a symlink",
                                 "missing"])
def test_broken_config_json_gives_zero_values(rootless, busybox, store, how):
    container_id = break_spec(rootless, busybox, store, how)
    result = rootless("container", "inspect", "xc", timeout=20)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    obj = json.loads(result.stdout)[0]
    assert obj["Id"] == container_id and obj["State"]["Status"] == "exited"
    assert obj["HostConfig"]["SecurityOpt"] is None
    assert obj["Config"]["Env"] is None
    assert obj["HostConfig"]["Ulimits"] is None
    assert HOST_CONFIG_KEYS <= obj["HostConfig"].keys()
    assert CONFIG_KEYS <= obj["Config"].keys()


def test_oversized_config_json_is_not_read(rootless, busybox, store):
    container_id = break_spec(rootless, busybox, store, "missing")
    with open(spec_path(store, container_id), "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros, past the bound
    result = rootless("container", "inspect", "-f", "{{json .Config.Env}}", "xc")
    assert (result.returncode, result.stdout) == (0, "null\n"), result.stderr
