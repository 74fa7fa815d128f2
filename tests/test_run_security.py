"""`rootless run` security floor: capabilities, masked and read-only paths, /dev, no
leaked descriptors, no way back to the host interpreter, hostile image layouts refused."""

from __future__ import annotations

import os

import pytest
from helpers import DOCKER_DEFAULT_CAPS, assert_error, mount_options, ok, proc_status_field

pytestmark = pytest.mark.container

# moby oci/defaults.go; only those this kernel has are checked
MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug"]
MASKED_DIRS = ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
               "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DEV_REQUIRED = {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
                "mqueue"}
# what Docker's /dev may hold at most (no -t: no console)
DEV_ALLOWED = DEV_REQUIRED | {"console", "core", "fd", "stdin", "stdout", "stderr"}


def on_host(paths: list[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def caps(status: str, name: str) -> int:
    return int(proc_status_field(status, name), 16)


# ---- capabilities and no_new_privs ----

def test_root_has_dockers_default_capabilities(sh):
    status = ok(sh("cat /proc/self/status"))
    assert [caps(status, f) for f in ("CapEff", "CapPrm", "CapBnd")] == \
        [DOCKER_DEFAULT_CAPS] * 3


def test_no_inheritable_or_ambient_capabilities(sh):
    status = ok(sh("cat /proc/self/status"))
    assert (caps(status, "CapInh"), caps(status, "CapAmb")) == (0, 0)


def test_non_root_user_has_no_effective_capabilities(sh):
    status = ok(sh("cat /proc/self/status", "-u", "1000"))
    assert (caps(status, "CapEff"), caps(status, "CapPrm")) == (0, 0)
    assert caps(status, "CapBnd") == DOCKER_DEFAULT_CAPS


def test_container_root_cannot_mount(sh):
    result = sh("mount -t tmpfs none /tmp && echo mounted")
    assert result.returncode != 0
    assert "mounted" not in result.stdout


def test_no_new_privs_is_off_by_default(sh):
    assert proc_status_field(ok(sh("cat /proc/self/status")), "NoNewPrivs") == "0"


def test_security_opt_no_new_privileges_sets_no_new_privs(sh):
    status = ok(sh("cat /proc/self/status", "--security-opt", "no-new-privileges"))
    assert proc_status_field(status, "NoNewPrivs") == "1"


# ---- /proc and /sys ----

@pytest.mark.parametrize("path", on_host(MASKED_FILES))
def test_masked_proc_file_reads_empty(sh, path):
    assert ok(sh(f"wc -c < {path}")).strip() == "0"


@pytest.mark.parametrize("path", on_host(MASKED_DIRS))
def test_masked_directory_is_empty(sh, path):
    assert ok(sh(f"ls -A {path}")) == ""


def test_unmasked_proc_files_stay_readable(sh):
    out = ok(sh("grep -c ^processor /proc/cpuinfo; grep ^Name: /proc/self/status"))
    count, name = out.splitlines()
    assert int(count) >= 1 and name.split() == ["Name:", "grep"]


@pytest.mark.parametrize("path", on_host(READONLY_PATHS))
def test_proc_path_is_mounted_read_only(sh, path):
    assert "ro" in mount_options(ok(sh("cat /proc/self/mountinfo")), path)


def test_proc_sys_refuses_writes(sh):
    result = sh("echo changed > /proc/sys/kernel/hostname")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_sys_is_mounted_read_only(sh):
    assert "ro" in mount_options(ok(sh("cat /proc/self/mountinfo")), "/sys")


def test_proc_is_the_containers_own(sh):
    mountinfo = ok(sh("cat /proc/self/mountinfo"))
    line = next(li for li in mountinfo.splitlines() if li.split()[4] == "/proc")
    assert line.split(" - ")[1].split()[0] == "proc"


# ---- /dev ----

def test_dev_has_the_standard_devices(sh):
    assert DEV_REQUIRED <= set(ok(sh("ls -A /dev")).split())


def test_dev_has_no_host_devices(sh):
    assert set(ok(sh("ls -A /dev")).split()) <= DEV_ALLOWED


def test_dev_null_zero_and_urandom_work(sh):
    out = ok(sh("echo x > /dev/null && head -c 3 /dev/zero | od -An -tx1 && "
                "head -c 16 /dev/urandom | wc -c"))
    assert out.split() == ["00", "00", "00", "16"]


def test_dev_full_refuses_writes(sh):
    result = sh("echo x > /dev/full")
    assert result.returncode != 0
    assert "No space left on device" in result.stderr


def test_dev_pts_is_a_private_instance(sh):
    assert ok(sh("ls /dev/pts")).split() == ["ptmx"]


def test_dev_shm_is_writable(sh):
    assert ok(sh("echo shared > /dev/shm/x && cat /dev/shm/x")) == "shared\n"


# ---- no descriptor and no process of the runtime reaches the container ----

@pytest.mark.parametrize("options", [[], ["-i"], ["--init"]], ids=["plain", "i", "init"])
def test_only_stdio_reaches_the_container(rootless, busybox, tmp_path, options):
    # the caller's own extra descriptor must not get through either
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = rootless("run", "--rm", *options, busybox, "ls", "/proc/self/fd",
                          pass_fds=(fd,), input="" if "-i" in options else None)
    finally:
        os.close(fd)
    assert sorted(ok(result).split()) == ["0", "1", "2", "3"]  # 3: the directory ls reads


PROBE_EXE = """
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if t=$(readlink "$d/exe" 2>/dev/null); then echo "link $p $t"; fi
    if head -c 4 "$d/exe" >/dev/null 2>&1; then echo "open $p"; fi
done
"""


@pytest.mark.parametrize("options", [[], ["--init"]], ids=["plain", "init"])
def test_no_host_binary_is_reachable_through_proc_exe(sh, options):
    lines = [line.split() for line in ok(sh(PROBE_EXE, *options)).splitlines()]
    links = {fields[1]: fields[2] for fields in lines if fields[0] == "link"}
    opened = {fields[1] for fields in lines if fields[0] == "open"}
    # with --init, pid 1 is the exec helper run from its sealed memfd (test_exec_helper.py)
    allowed = {"/bin/busybox", *(["/memfd:rootless-init"] if options else [])}
    assert links and set(links.values()) <= allowed, lines
    assert "/bin/busybox" in links.values(), lines
    assert opened <= set(links), lines


def test_runtime_is_not_visible_in_the_container(sh):
    out = ok(sh("cat /proc/[0-9]*/cmdline | tr '\\0' ' '"))
    assert "python" not in out and "rootless" not in out, out


def test_working_directory_is_inside_the_container_root(sh):
    out = ok(sh("readlink /proc/1/cwd; cd /../../..; pwd; cat /etc/rootless-test-image"))
    assert out.splitlines()[:2] == ["/", "/"]


def test_store_is_not_visible_in_the_container(sh, store):
    result = sh(f"ls {store}")
    assert result.returncode != 0


# ---- hostile image layouts and working directories ----

@pytest.mark.parametrize("name", ["proc", "sys", "dev"])
def test_image_with_a_symlinked_kernel_directory_is_refused(rootless, load_variant, name):
    image = load_variant(f"symlink-{name}", "--symlink", f"/{name}=/tmp")
    result = rootless("run", "--rm", image, "echo", "ran")
    assert_error(result, 125, f"/{name}")
    assert result.stdout == ""


def test_image_workdir_in_proc_self_fd_is_refused(rootless, load_variant):
    image = load_variant("fdworkdir", "--workdir", "/proc/self/fd/3")
    result = rootless("run", "--rm", image, "echo", "ran")
    assert_error(result, 125, "/proc/self/fd/3")
    assert result.stdout == ""


@pytest.mark.parametrize("workdir", ["/proc/self/fd/3", "/proc/self/fd/7"])
def test_workdir_option_in_proc_self_fd_is_refused(rootless, busybox, workdir):
    result = rootless("run", "--rm", "-w", workdir, busybox, "echo", "ran")
    assert_error(result, 125, workdir)
    assert result.stdout == ""
