"""`rootless logs` and `rootless container logs`: docker's json-file log of a container,
written by its monitor, printed as docker prints it: stdout entries on stdout, stderr
entries on stderr, the container's bytes raw; -t, --tail, --since, --until, -f."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import assert_error, ok, read_until, wait_for

pytestmark = pytest.mark.container

RFC3339_NANO_FIXED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")


def run_done(rootless, busybox: str, name: str, script: str, *options: str) -> str:
    """A container that ran `script` to its end; returns its id."""
    result = rootless("run", "--name", name, *options, busybox, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    return ok(rootless("inspect", "--format", "{{.Id}}", name)).strip()


def run_detached(rootless, busybox: str, name: str, script: str, *options: str) -> str:
    return ok(rootless("run", "-d", "--name", name, *options, busybox, "sh", "-c",
                       script)).strip()


def logs_raw(rootless, *args: str) -> subprocess.CompletedProcess:
    """`rootless logs ARGS` with stdout and stderr as bytes."""
    proc = rootless.popen("logs", *args, stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def log_file(store: Path, container_id: str) -> Path:
    return store / "containers" / container_id / "container-json.log"


# ---- what is printed, and where ----

def test_logs_prints_stdout_on_stdout_and_stderr_on_stderr(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo out1; echo err1 >&2; echo out2")
    result = logs_raw(rootless, "ctr")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"out1\nout2\n"
    assert result.stderr == b"err1\n"


def test_container_logs_is_the_same_command(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo out; echo err >&2")
    result = rootless("container", "logs", "ctr")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_logs_prints_the_containers_bytes_raw(rootless, busybox):
    # docker prints a container's output as it was written: tabs, escape sequences
    # and carriage returns included, never escaped
    run_done(rootless, busybox, "ctr", r"printf 'a\tb\033[31mred\r\ncaf\303\251 <&>\n'")
    assert logs_raw(rootless, "ctr").stdout == b"a\tb\x1b[31mred\r\ncaf\xc3\xa9 <&>\n"


def test_a_last_line_without_newline_is_printed_without_one(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo one; printf two")
    assert logs_raw(rootless, "ctr").stdout == b"one\ntwo"


def test_a_line_longer_than_16k_comes_back_whole(rootless, busybox, store):
    cid = run_done(rootless, busybox, "ctr", "head -c 40000 /dev/zero | tr '\\0' x; echo")
    assert logs_raw(rootless, "ctr").stdout == b"x" * 40000 + b"\n"
    entries = [json.loads(line) for line in log_file(store, cid).read_text().splitlines()]
    assert [len(e["log"]) for e in entries] == [16384, 16384, 7232 + 1]


def test_the_log_file_is_dockers_json_file_format(rootless, busybox, store):
    cid = run_done(rootless, busybox, "ctr", "echo hello")
    line = log_file(store, cid).read_text()
    assert re.fullmatch(r'\{"log":"hello\\n","stream":"stdout","time":"'
                        r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}\n', line), line


def test_a_tty_containers_log_is_all_stdout(rootless, busybox):
    run_detached(rootless, busybox, "ctr", "echo to-err >&2; echo to-out", "-t")
    ok(rootless("wait", "ctr"))
    result = logs_raw(rootless, "ctr")
    assert result.stdout == b"to-err\r\nto-out\r\n"
    assert result.stderr == b""


def test_a_container_that_never_ran_has_an_empty_log(rootless, busybox):
    ok(rootless("create", "--name", "ctr", busybox, "echo", "never"))
    result = rootless("logs", "ctr")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_details_puts_a_space_before_each_line(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo a")
    assert logs_raw(rootless, "--details", "ctr").stdout == b" a\n"


# ---- -t, --tail, --since, --until ----

def test_timestamps_prefix_each_line_with_rfc3339nano(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo a; echo b >&2")
    result = rootless("logs", "-t", "ctr")
    for stream in (result.stdout, result.stderr):
        assert RFC3339_NANO_FIXED.match(stream), stream
    assert result.stdout.endswith(" a\n") and result.stderr.endswith(" b\n")


def test_tail_shows_the_last_lines(rootless, busybox):
    run_done(rootless, busybox, "ctr", "for i in 1 2 3 4 5; do echo $i; done")
    assert ok(rootless("logs", "--tail", "2", "ctr")) == "4\n5\n"
    assert ok(rootless("logs", "-n", "1", "ctr")) == "5\n"
    assert ok(rootless("logs", "--tail", "all", "ctr")) == "1\n2\n3\n4\n5\n"
    assert ok(rootless("logs", "--tail", "0", "ctr")) == ""


def test_since_and_until_select_lines_by_time(rootless, busybox, store):
    cid = run_done(rootless, busybox, "ctr", "echo early; sleep 2; echo late")
    times = [json.loads(line)["time"] for line in
             log_file(store, cid).read_text().splitlines()]
    late = times[1]
    assert ok(rootless("logs", "--since", late, "ctr")) == "late\n"
    assert ok(rootless("logs", "--until", times[0], "ctr")) == "early\n"
    assert ok(rootless("logs", "--since", "1h", "ctr")) == "early\nlate\n"
    assert ok(rootless("logs", "--until", "1h", "ctr")) == ""


def test_since_takes_a_unix_timestamp(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo a")
    assert ok(rootless("logs", "--since", f"{time.time() + 3600:.3f}", "ctr")) == ""
    assert ok(rootless("logs", "--since", "0", "ctr")) == "a\n"


def test_a_bad_since_value_is_one_line_error_exit_1(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo a")
    assert_error(rootless("logs", "--since", "tomorrow", "ctr"), 1, 'invalid value for '
                 '"since"', '"tomorrow"')
    assert_error(rootless("logs", "--until", "2026-13-01", "ctr"), 1, 'invalid value for '
                 '"until"', "month out of range")


def test_logs_of_no_such_container_is_an_error(rootless, busybox):
    assert_error(rootless("logs", "nosuch"), 1, "no such container: nosuch")


# ---- -f ----

def test_follow_prints_new_lines_and_ends_when_the_container_exits(rootless, busybox):
    run_detached(rootless, busybox, "ctr", "echo first; sleep 2; echo second; sleep 1; "
                 "echo third >&2")
    proc = rootless.popen("logs", "-f", "ctr", stdin=subprocess.DEVNULL)
    read_until(proc.stdout, "first\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out == b"second\n" and err == b"third\n"


def test_follow_with_tail_0_prints_only_what_comes_after(rootless, busybox):
    run_detached(rootless, busybox, "ctr", "echo old; sleep 2; echo new")
    wait_for(lambda: "old" in rootless("logs", "ctr").stdout)
    result = rootless("logs", "-f", "--tail", "0", "ctr", timeout=30)
    assert (result.returncode, result.stdout) == (0, "new\n")


def test_follow_of_a_stopped_container_prints_its_log_and_returns(rootless, busybox):
    run_done(rootless, busybox, "ctr", "echo a")
    result = rootless("logs", "-f", "ctr", timeout=10)
    assert (result.returncode, result.stdout) == (0, "a\n")


def test_follow_ends_when_the_container_is_removed(rootless, busybox):
    run_detached(rootless, busybox, "ctr", "echo up; sleep 1000")
    proc = rootless.popen("logs", "-f", "ctr", stdin=subprocess.DEVNULL)
    read_until(proc.stdout, "up\n")
    ok(rootless("rm", "-f", "ctr"))
    proc.communicate(timeout=30)
    assert proc.returncode == 0


# ---- must not ----

def test_logs_must_not_follow_a_symlink_in_place_of_the_log(rootless, busybox, store,
                                                           tmp_path):
    cid = run_done(rootless, busybox, "ctr", "echo a")
    secret = tmp_path / "secret"
    secret.write_text('{"log":"secret\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n')
    log = log_file(store, cid)
    log.unlink()
    log.symlink_to(secret)
    result = rootless("logs", "ctr")
    assert "secret" not in result.stdout
    assert_error(result, 1, "not a regular file", str(log))


def test_logs_must_not_hang_on_a_fifo_in_place_of_the_log(rootless, busybox, store):
    import os

    cid = run_done(rootless, busybox, "ctr", "echo a")
    log = log_file(store, cid)
    log.unlink()
    os.mkfifo(log)
    assert_error(rootless("logs", "ctr", timeout=10), 1, "not a regular file", str(log))
