"""The pure parts of `top`, `stats` and `port`: moby's ps output parsing, docker's
CPU % formula and units, and published ports as docker/cli's runPort prints them."""

from __future__ import annotations

import pytest

from rootless.cli.stats import bytes_size
from rootless.engine import container_top
from rootless.engine.container_ports import (PORTS_ANNOTATION, join_host_port,
                                             published_ports)
from rootless.engine.container_stats import Usage, cpu_percent, memory_limit
from rootless.errors import RootlessError

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
rl          100      90  0 14:00 ?        00:00:00 sh -c sleep 1000 & wait
rl          101     100  0 14:00 ?        00:00:00 sleep 1000
root          1       0  0 13:00 ?        00:00:01 /sbin/init
"""


def test_ps_rows_of_the_containers_pids_are_kept_with_the_command_whole():
    titles, rows = container_top.ps_parse(PS_EF, {100, 101})
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert rows == [["rl", "100", "90", "0", "14:00", "?", "00:00:00",
                     "sh -c sleep 1000 & wait"],
                    ["rl", "101", "100", "0", "14:00", "?", "00:00:00", "sleep 1000"]]


def test_ps_thread_rows_follow_their_process_only_if_it_is_kept():
    output = "PID TID CMD\n100 - sh\n- 100 -\n1 - init\n- 1 -\n"
    assert container_top.ps_parse(output, {100})[1] == [["100", "-", "sh"],
                                                        ["-", "100", "-"]]


def test_ps_output_without_a_pid_column_is_an_error():
    with pytest.raises(RootlessError, match="couldn't find PID field"):
        container_top.ps_parse("USER COMMAND\nrl sh\n", {1})


def test_without_procps_top_says_what_to_install(monkeypatch):
    monkeypatch.setattr(container_top, "PS_PATHS", ("/nonexistent/ps",))
    with pytest.raises(RootlessError, match=r"install procps"):
        container_top.ps_path()


def test_cpu_percent_is_dockers_formula():
    # 0.5 s of the container's CPU over 1 s of a 2-CPU host's (2 s of CPU time)
    before, after = Usage(cpu=0, system=0), Usage(cpu=500_000_000, system=2_000_000_000)
    assert cpu_percent(before, after, 2) == 50.0
    assert cpu_percent(after, before, 2) == 0.0  # never negative


def test_memory_limit_comes_from_the_spec():
    spec = {"linux": {"resources": {"memory": {"limit": 64 << 20}}}}
    assert memory_limit(spec) == 64 << 20
    assert memory_limit({}) == 0
    assert memory_limit({"linux": {"resources": {"memory": {"limit": "x"}}}}) == 0


@pytest.mark.parametrize("size, text", [(0, "0B"), (1023, "1023B"), (1536, "1.5KiB"),
                                        (2055208, "1.96MiB"),
                                        (25_280_000_000, "23.54GiB")])
def test_memory_is_shown_in_go_units_binary_sizes(size, text):
    assert bytes_size(size) == text


def test_published_ports_are_read_from_the_reserved_annotation():
    ports = '{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, ' \
            '{"HostIp": "::", "HostPort": "8080"}]}'
    found = published_ports({"annotations": {PORTS_ANNOTATION: ports}})
    assert [(p.private, join_host_port(p.host_ip, p.host_port)) for p in found] == [
        ("80/tcp", "0.0.0.0:8080"), ("80/tcp", "[::]:8080")]


def test_no_ports_are_published_without_the_annotation():
    assert published_ports({}) == []
    assert published_ports({"annotations": {PORTS_ANNOTATION: "not json"}}) == []
