"""`rootless info` (the top-level alias of `system info`) and `version`, with --format
over docker's field names and structure, so scripts written for docker read them."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib.metadata import version

import pytest
from helpers import ok

PACKAGE = version("rootless")


def fmt(rootless, *command: str) -> str:
    return ok(rootless(*command)).rstrip("\n")


def wait_running(rootless, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(ok(rootless("ps", "-q")).split()) < count:
        assert time.monotonic() < deadline, "the container did not start"
        time.sleep(0.1)


# ---- info ----

def test_info_is_the_same_command_as_system_info(rootless):
    template = "{{.rootfs}} {{.id_map_mode}} {{.Driver}}"
    assert fmt(rootless, "info", "--format", template) == \
        fmt(rootless, "system", "info", "--format", template)


def test_info_format_keeps_the_rootless_fields(rootless):
    data = json.loads(ok(rootless("info", "--format", "json")))
    assert data["rootfs"] and data["rootfs_reason"] and data["id_map_mode"]


@pytest.mark.container
def test_info_format_counts_images_and_stopped_containers(rootless, busybox):
    ok(rootless("run", busybox, "true"))
    assert fmt(rootless, "info", "--format",
               "{{.Images}} {{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} "
               "{{.ContainersStopped}}") == "1 1 0 0 1"


@pytest.mark.container
def test_info_format_counts_a_running_container(rootless, busybox):
    rootless.popen("run", "--rm", busybox, "sleep", "60")
    wait_running(rootless, 1)
    assert fmt(rootless, "info", "--format",
               "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}") == "1 1 0"


def test_info_format_an_empty_store_counts_zero(rootless):
    assert fmt(rootless, "info", "--format", "{{.Images}} {{.Containers}}") == "0 0"


def test_info_format_server_version_is_the_package_version(rootless):
    assert fmt(rootless, "info", "--format", "{{.ServerVersion}}") == PACKAGE


def test_info_format_describes_this_machine_as_docker_does(rootless):
    out = fmt(rootless, "info", "--format",
              "{{.OSType}}|{{.Architecture}}|{{.KernelVersion}}|{{.NCPU}}")
    assert out == f"linux|{platform.machine()}|{platform.release()}|" \
                  f"{len(os.sched_getaffinity(0))}"


def test_info_format_mem_total_is_bytes_from_meminfo(rootless):
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    assert fmt(rootless, "info", "--format", "{{.MemTotal}}") == str(kb * 1024)


def test_info_format_docker_root_dir_is_the_store(rootless, store):
    assert fmt(rootless, "info", "--format", "{{.DockerRootDir}}") == str(store)


def test_info_format_driver_names_the_rootfs_strategy(rootless):
    rootfs, driver = fmt(rootless, "info", "--format", "{{.rootfs}} {{.Driver}}").split()
    assert driver == {"overlay": "overlay", "copy": "vfs"}[rootfs]


def test_info_format_operating_system_is_the_os_release_name(rootless):
    with open("/etc/os-release") as f:
        pairs = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    assert fmt(rootless, "info", "--format", "{{.OperatingSystem}}") == \
        pairs["PRETTY_NAME"].strip('"')


def test_info_format_security_options_name_seccomp_and_rootless(rootless):
    options = json.loads(fmt(rootless, "info", "--format", "{{json .SecurityOptions}}"))
    assert options == ["name=seccomp,profile=builtin", "name=rootless"]


def test_info_format_cgroup_fields(rootless):
    kinds = {line.split()[2] for line in open("/proc/self/mounts")
             if line.split()[1].startswith("/sys/fs/cgroup")}
    want = "2" if kinds == {"cgroup2"} else "1"
    # CgroupDriver depends on a delegated cgroup: tests/test_resources.py
    assert fmt(rootless, "info", "--format", "{{.CgroupVersion}}") == want


def test_info_format_json_dot_holds_docker_and_rootless_fields(rootless):
    data = json.loads(fmt(rootless, "info", "--format", "{{json .}}"))
    for key in ("Images", "Containers", "ContainersRunning", "ContainersStopped",
                "ServerVersion", "Driver", "OperatingSystem", "OSType", "Architecture",
                "NCPU", "MemTotal", "KernelVersion", "DockerRootDir", "SecurityOptions",
                "CgroupDriver", "CgroupVersion", "rootfs", "seccomp"):
        assert key in data, key


def test_info_text_has_docker_server_section(rootless, busybox):
    out = ok(rootless("info"))
    lines = out.splitlines()
    assert lines[0] == "Server:"
    assert " Containers: 0" in lines and " Images: 1" in lines
    assert f" Server Version: {PACKAGE}" in lines
    assert platform.release() in out


def test_info_bad_template_is_a_one_line_error(rootless):
    result = rootless("info", "--format", "{{.Images")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "template" in result.stderr


def test_info_text_lists_security_options_as_docker_does(rootless):
    assert "\n Security Options:\n  seccomp\n   Profile: builtin\n  rootless\n" in \
        ok(rootless("info"))


# ---- version ----

def test_version_format_client_and_server_versions(rootless):
    assert fmt(rootless, "version", "--format", "{{.Client.Version}} {{.Server.Version}}") \
        == f"{PACKAGE} {PACKAGE}"


def test_version_format_client_platform_in_go_words(rootless):
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert fmt(rootless, "version", "--format", "{{.Client.Os}}/{{.Client.Arch}}") == \
        f"linux/{arch}"


def test_version_format_api_version_by_its_go_field_name(rootless):
    api = fmt(rootless, "version", "--format", "{{.Client.APIVersion}}")
    assert api and api == fmt(rootless, "version", "--format", "{{.Server.APIVersion}}")


def test_version_format_json_dot_has_docker_structure(rootless):
    data = json.loads(fmt(rootless, "version", "--format", "{{json .}}"))
    assert data["Client"]["Version"] == PACKAGE and data["Client"]["ApiVersion"]
    assert data["Server"]["KernelVersion"] == platform.release()
    assert data["Server"]["Components"][0]["Name"] == "Engine"


def test_version_text_has_client_and_server_sections(rootless):
    lines = ok(rootless("version")).splitlines()
    assert lines[0] == "Client:" and lines[1].split() == ["Version:", PACKAGE]
    server = next(i for i, line in enumerate(lines) if line.startswith("Server:"))
    assert lines[server + 1] == " Engine:"
    assert lines[server + 2].split() == ["Version:", PACKAGE]
