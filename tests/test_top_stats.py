"""`rootless top`, `stats` and `port` (and under `container`): a running container's
processes through the host's ps, its resource use from /proc without cgroups (or
from its cgroup), and its published ports, in docker's columns and words."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from helpers import assert_error, ok, read_until, wait_for

pytestmark = pytest.mark.container

STATS_HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                "BLOCK I/O", "PIDS"]


def start(rootless, busybox: str, name: str, script: str, *options: str) -> str:
    """A running container (run -d); returns its id once its init runs `script`."""
    cid = ok(rootless("run", "-d", "--name", name, *options, busybox, "sh", "-c",
                      script)).strip()
    wait_for(lambda: ok(rootless("inspect", "--format", "{{.State.Pid}}", name)).strip()
             not in ("", "0"))
    return cid


def init_pid(rootless, name: str) -> int:
    return int(ok(rootless("inspect", "--format", "{{.State.Pid}}", name)))


def pid_ns(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def columns(line: str) -> list[str]:
    """The cells of a docker table line (cells are at least 3 spaces apart)."""
    return re.split(r" {3,}", line.strip())


def table(out: str) -> list[list[str]]:
    return [columns(line) for line in out.splitlines() if line.strip()]


# ---- top ----

def test_top_shows_the_containers_processes_with_ps_ef_columns(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000 & sleep 2000")
    rows = table(ok(rootless("top", "ctr")))
    assert rows[0] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    commands = sorted(row[-1] for row in rows[1:])
    assert "sleep 1000" in commands and "sleep 2000" in commands


def test_top_lists_only_processes_of_the_container(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    init = init_pid(rootless, "ctr")
    monitor = Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1]
    rows = table(ok(rootless("top", "ctr")))[1:]
    assert rows, "the container's own process is listed"
    for row in rows:
        assert pid_ns(int(row[1])) == pid_ns(init), f"{row} is not in the container"
    assert monitor not in [row[1] for row in rows]  # init's parent is outside


def test_top_columns_are_docker_aligned(rootless, busybox):
    # docker's tabwriter: a column is its widest cell plus 3, and at least 20 wide
    start(rootless, busybox, "ctr", "sleep 1000")
    header = ok(rootless("top", "ctr")).splitlines()[0]
    assert header.startswith("UID" + " " * 17 + "PID" + " " * 17 + "PPID")


def test_top_passes_ps_options_through(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    rows = table(ok(rootless("top", "ctr", "-o", "pid,comm")))
    assert rows[0] == ["PID", "COMMAND"]
    assert ["sleep"] == [row[1] for row in rows[1:]]
    assert table(ok(rootless("container", "top", "ctr", "-o", "pid,args")))[1][1] == \
        "sleep 1000"


def test_top_must_not_let_ps_options_rename_the_pid_column(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    assert_error(rootless("top", "ctr", "-o", "user=PID"), 1,
                 'specifying "user=PID" is not allowed')


def test_top_of_a_stopped_container_is_dockers_error(rootless, busybox):
    ok(rootless("run", "--name", "ctr", busybox, "true"))
    cid = ok(rootless("inspect", "--format", "{{.Id}}", "ctr")).strip()
    assert_error(rootless("top", "ctr"), 1, f"container {cid} is not running")


def test_top_of_no_such_container_is_an_error(rootless, busybox):
    assert_error(rootless("top", "nosuch"), 1, "no such container: nosuch")


def test_top_reports_a_ps_failure_in_one_line(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    assert_error(rootless("top", "ctr", "--no-such-ps-option"), 1, "ps: ")


# ---- stats ----

def test_stats_no_stream_prints_dockers_columns_for_running_containers(rootless, busybox):
    cid = start(rootless, busybox, "ctr", "sleep 1000")
    ok(rootless("run", "--name", "stopped", busybox, "true"))
    rows = table(ok(rootless("stats", "--no-stream")))
    assert rows[0] == STATS_HEADER
    assert len(rows) == 2, rows  # a stopped container is not shown without -a
    row = rows[1]
    assert row[:2] == [cid[:12], "ctr"]
    assert re.fullmatch(r"\d+\.\d\d%", row[2]) and re.fullmatch(r"\d+\.\d\d%", row[4])
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / [\d.]+[KMGT]iB", row[3]), row[3]
    assert row[7] == "1"


def test_stats_limit_is_the_hosts_memory(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    total = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    gib = total * 1024 / 1024**3
    usage = ok(rootless("stats", "--no-stream", "--format", "{{.MemUsage}}", "ctr"))
    assert usage.strip().endswith(f" / {gib:.4g}GiB")


def test_stats_counts_the_containers_tasks(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000 & sleep 1000 & wait")
    wait_for(lambda: ok(rootless("stats", "--no-stream", "--format", "{{.PIDs}}",
                                 "ctr")).strip() == "3")


def test_stats_memory_is_the_containers_resident_memory(rootless, busybox):
    start(rootless, busybox, "ctr", "x=$(head -c 40000000 /dev/zero | tr '\\0' a); "
          "echo ready; while :; do sleep 1; done")
    wait_for(lambda: "ready" in rootless("logs", "ctr").stdout, timeout=60)
    usage = ok(rootless("stats", "--no-stream", "--format", "{{.MemUsage}}", "ctr"))
    number, unit = re.match(r"([\d.]+)(\w+) /", usage).groups()
    assert unit == "MiB" and 38 <= float(number) < 60, usage


def test_stats_cpu_of_a_busy_container_is_high_and_of_an_idle_one_low(rootless, busybox):
    start(rootless, busybox, "busy", "while :; do :; done")
    start(rootless, busybox, "idle", "sleep 1000")
    out = ok(rootless("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}"))
    cpu = {name: float(value.rstrip("%")) for name, value in
           (line.split() for line in out.splitlines())}
    assert cpu["busy"] > 10.0, out
    assert cpu["idle"] < 5.0, out


def test_stats_block_io_counts_the_containers_writes(rootless, busybox):
    start(rootless, busybox, "ctr", "dd if=/dev/zero of=/big bs=1M count=4 conv=fsync "
          "2>/dev/null; echo done; while :; do sleep 1; done")
    wait_for(lambda: "done" in rootless("logs", "ctr").stdout, timeout=60)
    written = ok(rootless("stats", "--no-stream", "--format", "{{.BlockIO}}", "ctr"))
    assert re.fullmatch(r"\S+ / [4-9]\.\d+MB\n", written), written


def test_stats_must_not_count_loopback_traffic_as_network_io(rootless, busybox):
    start(rootless, busybox, "ctr", "ping -c 3 -i 0.2 127.0.0.1; while :; do sleep 1; done",
          "--network", "none")
    wait_for(lambda: "3 packets received" in rootless("logs", "ctr").stdout)
    assert ok(rootless("stats", "--no-stream", "--format", "{{.NetIO}}", "ctr")) == \
        "0B / 0B\n"


def test_stats_all_shows_a_stopped_container_with_zeros(rootless, busybox):
    ok(rootless("run", "--name", "stopped", busybox, "true"))
    rows = table(ok(rootless("stats", "--no-stream", "-a")))
    assert rows[1][1:] == ["stopped", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B",
                           "0"]


def test_stats_format_takes_dockers_field_names(rootless, busybox):
    cid = start(rootless, busybox, "ctr", "sleep 1000")
    out = ok(rootless("stats", "--no-stream", "--format",
                      "{{.Container}} {{.Name}} {{.ID}} {{.PIDs}} {{.NetIO}}", "ctr"))
    # NetIO: the default network's own traffic (router solicitations) may count already
    assert re.fullmatch(rf"ctr ctr {cid[:12]} 1 \S+ / \S+\n", out), out
    out = ok(rootless("container", "stats", "--no-stream", "--no-trunc", "--format",
                      "table {{.ID}}\\t{{.PIDs}}", cid[:8]))
    assert table(out) == [["CONTAINER ID", "PIDS"], [cid, "1"]]


def test_stats_of_no_such_container_is_an_error(rootless, busybox):
    assert_error(rootless("stats", "--no-stream", "nosuch"), 1, "no such container: nosuch")


def test_stats_streams_a_fresh_table_every_second(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    proc = rootless.popen("stats", "ctr", stdin=subprocess.DEVNULL)
    try:
        frames = read_until(proc.stdout, "\x1b[2J\x1b[H", timeout=10)
        frames += read_until(proc.stdout, "PIDS", timeout=10)
        frames += read_until(proc.stdout, "\x1b[2J\x1b[H", timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    first = frames.split("\x1b[2J\x1b[H")[1]
    assert table(first)[0] == STATS_HEADER and table(first)[1][1] == "ctr"


def test_stats_stream_ends_when_its_containers_are_removed(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    proc = rootless.popen("stats", "ctr", stdin=subprocess.DEVNULL)
    read_until(proc.stdout, "PIDS", timeout=10)
    ok(rootless("rm", "-f", "ctr"))
    proc.communicate(timeout=20)
    assert proc.returncode == 0


# ---- port ----

def test_port_of_a_container_without_published_ports_prints_nothing(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    result = rootless("port", "ctr")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert ok(rootless("container", "port", "ctr")) == ""


def test_port_of_an_unpublished_port_is_dockers_error(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    result = rootless("port", "ctr", "80/tcp")
    assert_error(result, 1, "No public port '80/tcp' published for ctr")
    assert result.stderr == "Error: No public port '80/tcp' published for ctr\n"


def test_port_refuses_a_port_that_is_not_a_number(rootless, busybox):
    start(rootless, busybox, "ctr", "sleep 1000")
    assert_error(rootless("port", "ctr", "http"), 1, "invalid port (http)")
    assert_error(rootless("port", "ctr", "70000/udp"), 1, "invalid port (70000)",
                 "value out of range")


def test_port_of_no_such_container_is_an_error(rootless, busybox):
    assert_error(rootless("port", "nosuch"), 1, "no such container: nosuch")
