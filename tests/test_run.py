"""`rootless run`: the container's identity and its filesystem.

Each test is one behaviour; a "must not" sits beside each "must". All of them run the
real CLI as the unprivileged user running pytest (see scripts/test).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import MARKER, MARKER_PATH, ok, subordinate_start

pytestmark = pytest.mark.container


# ---- who and where the container is ----

def test_container_runs_as_root(sh):
    assert ok(sh("id -u; id -g; id -un")).split() == ["0", "0", "root"]


def test_container_process_is_pid_1(sh):
    assert ok(sh("echo $$")) == "1\n"


def test_container_does_not_see_host_processes(rootless, busybox):
    entries = ok(rootless("run", "--rm", busybox, "ls", "/proc")).split()
    assert [e for e in entries if e.isdigit()] == ["1"]


def test_container_sees_the_image_files(sh):
    assert ok(sh(f"cat {MARKER_PATH}")) == MARKER + "\n"


def test_container_does_not_see_the_host_filesystem(sh, tmp_path):
    (tmp_path / "host-only").write_text("host")
    result = sh(f"ls {tmp_path}/host-only; ls /etc/debian_version")
    assert result.returncode != 0
    assert result.stdout == ""


def test_default_hostname_is_the_short_container_id(rootless, busybox):
    hostname = ok(rootless("run", busybox, "hostname")).strip()
    assert re.fullmatch(r"[0-9a-f]{12}", hostname), hostname
    assert ok(rootless("ps", "-a", "-q")).split() == [hostname]


def test_each_container_gets_its_own_hostname(sh):
    first, second = ok(sh("hostname")), ok(sh("hostname"))
    assert first != second
    assert socket.gethostname() not in (first.strip(), second.strip())


def test_hostname_option_sets_the_hostname(sh):
    out = ok(sh("hostname; cat /etc/hostname; echo; echo $HOSTNAME", "--hostname", "box1"))
    assert out.split() == ["box1", "box1", "box1"]


def test_container_cannot_change_its_hostname(sh):
    # sethostname needs CAP_SYS_ADMIN, which Docker's default set leaves out
    before = socket.gethostname()
    result = sh("hostname changed-inside")
    assert result.returncode != 0
    assert socket.gethostname() == before


# ---- id maps: the two identity modes ----

@pytest.mark.needs_single_id
def test_without_subids_only_the_users_own_id_is_mapped(sh):
    lines = ok(sh("cat /proc/self/uid_map /proc/self/gid_map")).splitlines()
    assert [line.split() for line in lines] == [["0", str(os.getuid()), "1"],
                                               ["0", str(os.getgid()), "1"]]


@pytest.mark.needs_subids
def test_with_subids_root_is_the_user_and_the_rest_comes_from_the_range(sh):
    uid_map = [line.split() for line in ok(sh("cat /proc/self/uid_map")).splitlines()]
    start = subordinate_start("/etc/subuid")
    assert uid_map[0] == ["0", str(os.getuid()), "1"]
    assert uid_map[1][:2] == ["1", str(start)]
    assert int(uid_map[1][2]) >= 65535
    assert len(uid_map) == 2


# ---- the container's writes ----

def test_file_written_in_a_container_is_not_in_the_next_container(sh):
    ok(sh("echo written > /etc/written-by-test && cat /etc/written-by-test"))
    result = sh("cat /etc/written-by-test")
    assert result.returncode == 1
    assert "No such file" in result.stderr


def test_changes_in_a_container_do_not_reach_the_image_layers(rootless, busybox, store):
    ok(rootless("run", busybox, "sh", "-c",
                f"echo changed > {MARKER_PATH}; echo new > /etc/written-by-test"))
    image_files = _files_outside_containers(store)
    assert "written-by-test" not in {p.name for p in image_files}
    markers = [p for p in image_files if p.name == "rootless-test-image"]
    assert markers, f"no image layer found in {store}"
    assert all(p.read_text() == MARKER + "\n" for p in markers)


def test_next_container_sees_the_image_unchanged(sh):
    ok(sh(f"echo changed > {MARKER_PATH}"))
    assert ok(sh(f"cat {MARKER_PATH}")) == MARKER + "\n"


def _files_outside_containers(store: Path) -> list[Path]:
    found = []
    for top, dirs, files in os.walk(store):
        if Path(top) == store and "containers" in dirs:
            dirs.remove("containers")
        found += [Path(top, f) for f in files]
    return found


def test_container_can_write_its_own_tmp(sh):
    assert ok(sh("echo ok > /tmp/x && cat /tmp/x && stat -c %a /tmp")) == "ok\n1777\n"


# ---- the generated /etc files ----

def test_etc_hosts_resolves_localhost(sh):
    hosts = ok(sh("cat /etc/hosts"))
    assert re.search(r"^127\.0\.0\.1\s+.*\blocalhost\b", hosts, re.M), hosts


def test_etc_hostname_and_resolv_conf_are_present(sh):
    out = ok(sh("test -f /etc/resolv.conf && cat /etc/hostname && echo && hostname"))
    first, second = out.split()
    assert first == second


def test_generated_etc_files_do_not_change_the_image(sh):
    ok(sh("echo '1.2.3.4 evil' >> /etc/hosts"))
    assert "evil" not in ok(sh("cat /etc/hosts"))


# ---- concurrency, --rm, --name ----

def test_concurrent_runs_of_the_same_image_all_succeed(rootless, busybox):
    procs = [rootless.popen("run", "--rm", busybox, "sh", "-c", f"sleep 1; echo done-{i}")
             for i in range(3)]
    results = [(p.wait(timeout=60), p.stdout.read().decode(), p.stderr.read().decode())
               for p in procs]
    assert results == [(0, f"done-{i}\n", "") for i in range(3)]


def test_rm_removes_the_container_after_it_exits(rootless, busybox, store):
    ok(rootless("run", "--rm", busybox, "true"))
    assert ok(rootless("ps", "-a", "-q")) == ""
    assert _container_dirs(store) == []


def test_without_rm_the_stopped_container_stays(rootless, busybox, store):
    ok(rootless("run", busybox, "true"))
    assert len(ok(rootless("ps", "-a", "-q")).split()) == 1
    assert len(_container_dirs(store)) == 1
    assert "Exited (0)" in ok(rootless("ps", "-a"))


def test_rm_removes_the_container_when_the_command_fails(rootless, busybox, store):
    assert rootless("run", "--rm", busybox, "sh", "-c", "exit 3").returncode == 3
    assert _container_dirs(store) == []


def _container_dirs(store: Path) -> list[str]:
    path = store / "containers"
    return sorted(os.listdir(path)) if path.exists() else []


def test_name_option_names_the_container(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    lines = ok(rootless("ps", "-a")).splitlines()
    assert lines[1].split()[-1] == "web"


def test_name_already_in_use_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    result = rootless("run", "--name", "web", busybox, "echo", "second")
    assert result.returncode == 125
    assert "web" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert len(ok(rootless("ps", "-a", "-q")).split()) == 1


def test_output_of_the_container_is_the_output_of_run(rootless, busybox):
    result = rootless("run", "--rm", busybox, "sh", "-c", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_run_does_not_leave_processes_behind(rootless, busybox):
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c", "sleep 30 & echo started")
    out, _ = proc.communicate(timeout=60)
    assert out == b"started\n"
    stray = subprocess.run(["pgrep", "-u", str(os.getuid()), "-f", "^sleep 30$"],
                           capture_output=True, text=True)
    assert stray.stdout == ""


def test_ps_shows_an_exited_container_with_its_code_and_when(rootless, busybox):
    assert rootless("run", "--name", "done", busybox, "sh", "-c", "exit 3").returncode == 3
    out = ok(rootless("ps", "-a"))
    line = next(line for line in out.splitlines() if line.endswith("done"))
    assert re.search(r"Exited \(3\) (Less than a second|\d+ seconds?) ago", line), line


def test_ps_without_all_hides_exited_containers(rootless, busybox):
    rootless("run", "--name", "gone", busybox, "true")
    assert "gone" not in ok(rootless("ps"))
    assert "gone" in ok(rootless("ps", "-a"))
