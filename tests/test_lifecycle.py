"""Containers that live on: run -d, create/start, stop, kill, restart, rm -f, pause,
wait, attach, the restart policy, and the process model under them (a monitor per
container; no container process outlives its record).

Every container process of a test is found by a marker in its command line: a fresh
number passed to `sleep`, which no other process of the user carries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from helpers import assert_error, ok, wait_for

pytestmark = pytest.mark.container


def marker() -> str:
    return str(100000 + int.from_bytes(os.urandom(3), "big"))


def pids_with(text: str) -> list[int]:
    """Our processes whose command line holds `text` (the container's, and any
    monitor forked from a command that named it)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in args and state != "Z":
            found.append(int(name))
    return found


def run_d(rootless, *args: str) -> str:
    cid = ok(rootless("run", "-d", *args)).strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid), cid
    return cid


def inspect(rootless, ref: str, template: str) -> str:
    return ok(rootless("inspect", "--format", template, ref)).strip()


def wait_ready(rootless, name: str) -> None:
    """Until the container has said "ready" (its traps are set) in its log."""
    wait_for(lambda: "ready" in ok(rootless("logs", name)))


def status(rootless, name: str) -> str:
    return inspect(rootless, name, "{{.State.Status}}")


# ---- run -d, and the monitor that keeps it ----

def test_run_d_prints_the_id_and_the_container_keeps_running(rootless, busybox):
    mark = marker()
    cid = run_d(rootless, "--name", "bg", busybox, "sleep", mark)
    assert ok(rootless("ps", "-q", "--no-trunc")).split() == [cid]
    assert status(rootless, "bg") == "running"
    init = int(inspect(rootless, "bg", "{{.State.Pid}}"))
    assert init in pids_with(mark)


def test_the_monitor_is_in_a_session_of_its_own_and_the_parent_of_init(rootless, busybox):
    mark = marker()
    run_d(rootless, "--name", "bg", busybox, "sleep", mark)
    init = int(inspect(rootless, "bg", "{{.State.Pid}}"))
    with open(f"/proc/{init}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    assert os.getsid(monitor) != os.getsid(0)
    assert os.getsid(monitor) != os.getsid(os.getpid())
    with open(f"/proc/{monitor}/status") as f:
        rss_kb = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
    assert rss_kb < 40 * 1024, rss_kb  # no trio, no typer: a small process


def test_the_monitor_holds_no_descriptor_of_the_command_that_made_it(rootless, busybox,
                                                                     tmp_path):
    mark = marker()
    out = tmp_path / "out.txt"
    with open(out, "w") as f:  # if the monitor kept our stdout, this file stays open
        proc = rootless.popen("run", "-d", busybox, "sleep", mark, stdout=f)
        assert proc.wait(timeout=30) == 0
    init = int(inspect(rootless, out.read_text().strip(), "{{.State.Pid}}"))
    with open(f"/proc/{init}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    targets = {os.readlink(f"/proc/{monitor}/fd/{fd}")
               for fd in os.listdir(f"/proc/{monitor}/fd")}
    assert str(out) not in targets
    assert not any(t.endswith("/lock") and "owners" in t for t in targets)


def test_killing_the_command_that_started_it_leaves_the_container_running(rootless,
                                                                           busybox):
    mark = marker()
    proc = rootless.popen("run", "--name", "fg", busybox, "sleep", mark)
    wait_for(lambda: ok(rootless("ps", "-q")).strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.2)
    assert status(rootless, "fg") == "running"
    assert "fg" in ok(rootless("ps", "--format", "{{.Names}}"))
    ok(rootless("stop", "-t", "0", "fg"))
    assert status(rootless, "fg") == "exited"


def test_killing_the_monitor_kills_the_container_and_ps_tells_the_truth(rootless, busybox):
    mark = marker()
    run_d(rootless, "--name", "orphan", busybox, "sleep", mark)
    init = int(inspect(rootless, "orphan", "{{.State.Pid}}"))
    with open(f"/proc/{init}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not pids_with(mark), timeout=10)
    assert status(rootless, "orphan") == "exited"
    assert "Exited" in ok(rootless("ps", "-a", "--format", "{{.Status}}"))
    ok(rootless("rm", "orphan"))
    assert ok(rootless("ps", "-a", "-q")) == ""


# ---- create, start ----

def test_create_then_start(rootless, busybox):
    cid = ok(rootless("create", "--name", "later", busybox, "sh", "-c", "exit 4")).strip()
    assert len(cid) == 64
    assert status(rootless, "later") == "created"
    assert ok(rootless("ps", "-a", "--format", "{{.Status}}")).strip() == "Created"
    assert ok(rootless("start", "later")).strip() == "later"
    assert ok(rootless("wait", "later")).strip() == "4"
    assert status(rootless, "later") == "exited"


def test_start_attach_returns_the_output_and_exit_code(rootless, busybox):
    ok(rootless("create", "--name", "att", busybox, "sh", "-c", "echo out; echo err >&2; "
                "exit 5"))
    result = rootless("start", "-a", "att")
    assert result.returncode == 5
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_start_of_an_exited_container_runs_it_again_with_its_changes(rootless, busybox):
    ok(rootless("run", "--name", "again", busybox, "sh", "-c",
                "echo x >> /counter; wc -l < /counter"))
    assert ok(rootless("start", "-a", "again")).strip() == "2"


def test_start_of_an_unknown_container_fails(rootless):
    assert_error(rootless("start", "nosuch"), 1, "no such container: nosuch")


# ---- stop, kill ----

def test_stop_sends_the_stop_signal_then_records_the_exit(rootless, busybox):
    run_d(rootless, "--name", "trap", busybox, "sh", "-c",
          "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    wait_ready(rootless, "trap")
    start = time.monotonic()
    assert ok(rootless("stop", "trap")).strip() == "trap"
    assert time.monotonic() - start < 8
    assert inspect(rootless, "trap", "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"


def test_stop_kills_after_the_timeout(rootless, busybox):
    mark = marker()
    run_d(rootless, "--name", "deaf", busybox, "sleep", mark)  # pid 1 ignores TERM
    ok(rootless("stop", "-t", "1", "deaf"))
    assert inspect(rootless, "deaf", "{{.State.ExitCode}}") == "137"
    assert pids_with(mark) == []


def test_stop_signal_option_is_used_by_stop(rootless, busybox):
    run_d(rootless, "--name", "usr1", "--stop-signal", "USR1", busybox, "sh", "-c",
          "trap 'exit 9' USR1; echo ready; while :; do sleep 0.1; done")
    wait_ready(rootless, "usr1")
    ok(rootless("stop", "usr1"))
    assert inspect(rootless, "usr1", "{{.State.ExitCode}}") == "9"


def test_kill_sends_a_signal_and_kill_of_a_stopped_container_fails(rootless, busybox):
    run_d(rootless, "--name", "kk", busybox, "sh", "-c",
          "trap 'exit 3' HUP; echo ready; while :; do sleep 0.1; done")
    wait_ready(rootless, "kk")
    ok(rootless("kill", "-s", "HUP", "kk"))
    assert ok(rootless("wait", "kk")).strip() == "3"
    assert_error(rootless("kill", "kk"), 1, "is not running")


def test_kill_with_an_invalid_signal_fails(rootless, busybox):
    run_d(rootless, "--name", "kk", busybox, "sleep", marker())
    assert_error(rootless("kill", "-s", "NOPE", "kk"), 125, "Invalid signal: NOPE")
    assert status(rootless, "kk") == "running"


# ---- rm ----

def test_rm_of_a_running_container_needs_force(rootless, busybox):
    run_d(rootless, "--name", "busy", busybox, "sleep", marker())
    assert_error(rootless("rm", "busy"), 1, "container is running",
                 "stop the container before removing or force remove")
    assert status(rootless, "busy") == "running"


def test_rm_force_leaves_no_process_behind(rootless, busybox):
    mark = marker()
    run_d(rootless, "--name", "doomed", busybox, "sh", "-c",
          f"sleep {mark} & sleep {mark} & exec sleep {mark}")
    wait_for(lambda: len(pids_with(mark)) >= 3)  # three sleeps
    ok(rootless("rm", "-f", "doomed"))
    assert pids_with(mark) == []
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_two_rm_of_one_container_one_wins(rootless, busybox):
    run_d(rootless, "--name", "twice", busybox, "sleep", marker())
    procs = [rootless.popen("rm", "-f", "twice") for _ in range(2)]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    assert any("no such container" in err for _, err in results), results


# ---- restart policy, restart ----

def test_restart_on_failure_with_a_maximum(rootless, busybox):
    run_d(rootless, "--name", "flaky", "--restart", "on-failure:2", busybox, "sh", "-c",
          "exit 1")
    wait_for(lambda: inspect(rootless, "flaky", "{{.RestartCount}} {{.State.Status}}")
             == "2 exited", timeout=30)
    time.sleep(1)
    assert inspect(rootless, "flaky", "{{.RestartCount}}") == "2"


def test_restart_always_restarts_until_stopped(rootless, busybox):
    run_d(rootless, "--name", "phoenix", "--restart", "always", busybox, "sh", "-c",
          "sleep 0.2")
    wait_for(lambda: int(inspect(rootless, "phoenix", "{{.RestartCount}}")) >= 2,
             timeout=30)
    ok(rootless("stop", "-t", "1", "phoenix"))
    count = inspect(rootless, "phoenix", "{{.RestartCount}}")
    time.sleep(1)
    assert inspect(rootless, "phoenix", "{{.RestartCount}} {{.State.Status}}") == \
        f"{count} exited"


def test_restart_policy_and_rm_conflict(rootless, busybox):
    assert_error(rootless("run", "--rm", "--restart", "always", busybox, "true"), 125,
                 "cannot specify both --restart and --rm")
    assert_error(rootless("run", "--restart", "sometimes", busybox, "true"), 125,
                 "invalid restart policy")
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_restart_command_starts_a_new_init(rootless, busybox):
    run_d(rootless, "--name", "re", busybox, "sleep", marker())
    first = inspect(rootless, "re", "{{.State.Pid}}")
    assert ok(rootless("restart", "-t", "0", "re")).strip() == "re"
    assert status(rootless, "re") == "running"
    assert inspect(rootless, "re", "{{.State.Pid}}") != first


# ---- pause ----

def test_pause_stops_every_process_and_unpause_resumes_them(rootless, busybox):
    run_d(rootless, "--name", "pp", busybox, "sh", "-c",
          "(while :; do echo x >> /tmp/child; sleep 0.05; done) & "
          "while :; do echo x >> /tmp/init; sleep 0.05; done")
    root = f"/proc/{inspect(rootless, 'pp', '{{.State.Pid}}')}/root/tmp"
    counters = (f"{root}/child", f"{root}/init")

    def sizes():
        return [os.path.getsize(c) if os.path.exists(c) else 0 for c in counters]

    wait_for(lambda: all(sizes()))
    ok(rootless("pause", "pp"))
    assert status(rootless, "pp") == "paused"
    assert "(Paused)" in ok(rootless("ps", "--format", "{{.Status}}"))
    before = sizes()
    time.sleep(0.5)
    assert sizes() == before  # neither the init nor its child ran
    assert_error(rootless("pause", "pp"), 1, "already paused")
    ok(rootless("unpause", "pp"))
    assert status(rootless, "pp") == "running"
    wait_for(lambda: all(a > b for a, b in zip(sizes(), before)))


def test_a_paused_container_can_be_stopped(rootless, busybox):
    run_d(rootless, "--name", "ps", busybox, "sh", "-c",
          "trap 'exit 6' TERM; echo ready; while :; do sleep 0.1; done")
    wait_ready(rootless, "ps")
    ok(rootless("pause", "ps"))
    ok(rootless("stop", "ps"))
    assert inspect(rootless, "ps", "{{.State.ExitCode}}") == "6"


# ---- wait, attach, signals ----

def test_wait_prints_the_exit_code_of_an_rm_container(rootless, busybox):
    cid = run_d(rootless, "--rm", busybox, "sh", "-c", "sleep 0.5; exit 12")
    assert ok(rootless("wait", cid)).strip() == "12"
    wait_for(lambda: ok(rootless("ps", "-a", "-q")) == "")


def test_attach_streams_output_and_stdin(rootless, busybox):
    run_d(rootless, "-i", "--name", "cat", busybox, "sh", "-c",
          "while read line; do echo got $line; done")
    proc = rootless.popen("attach", "cat", stdin=subprocess.PIPE)
    proc.stdin.write(b"hello\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line == b"got hello\n"
    proc.kill()  # the attached command goes; the container runs on
    proc.wait(timeout=10)
    assert status(rootless, "cat") == "running"


def test_detach_keys_leave_a_terminal_container_running(rootless, busybox):
    from helpers import PtySession

    run_d(rootless, "-it", "--name", "term", busybox, "sh")
    session = PtySession(rootless, "attach", "term")
    session.write(b"\r")  # a fresh prompt: the first one was printed before we attached
    session.read_until("/ # ")
    session.write(b"echo $((6*7))\r")
    session.read_until("42")
    session.write(b"\x10\x11")  # ctrl-p ctrl-q
    assert session.wait(timeout=10) == 0
    assert status(rootless, "term") == "running"


def test_run_it_runs_on_the_containers_own_terminal(rootless, busybox):
    from helpers import PtySession

    session = PtySession(rootless, "run", "-it", "--rm", busybox, "sh", "-c",
                         "tty; read x; echo got $x; exit 3", rows=33, cols=101)
    session.read_until("/dev/pts/0")
    session.write(b"abc\r")
    session.read_until("got abc")
    assert session.wait(timeout=20) == 3


def test_attach_to_a_stopped_container_fails(rootless, busybox):
    ok(rootless("create", "--name", "idle", busybox, "true"))
    assert_error(rootless("attach", "idle"), 1, "cannot attach to a stopped container")


def test_foreground_run_forwards_signals_to_the_container(rootless, busybox):
    proc = rootless.popen("run", "--name", "sig", busybox, "sh", "-c",
                          "trap 'echo caught; exit 11' TERM; echo ready; "
                          "while :; do sleep 0.1; done")
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 11
    assert proc.stdout.read() == b"caught\n"


def test_sig_proxy_false_leaves_the_container_alone(rootless, busybox):
    proc = rootless.popen("run", "--sig-proxy=false", "--name", "alone", busybox, "sh",
                          "-c", "trap 'exit 11' TERM INT; echo ready; "
                          "while :; do sleep 0.1; done")
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) != 11
    assert status(rootless, "alone") == "running"


# ---- many at once ----

def test_twenty_containers_started_in_parallel_all_run(rootless, busybox):
    mark = marker()
    procs = [rootless.popen("run", "-d", "--name", f"par{i}", busybox, "sleep", mark)
             for i in range(20)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 20
    names = ok(rootless("ps", "--format", "{{.Names}}")).split()
    assert sorted(names) == sorted(f"par{i}" for i in range(20))
    ok(rootless("rm", "-f", *names), )
    assert pids_with(mark) == []


# ---- killed midway ----

@pytest.mark.parametrize("delay", [0.02, 0.08, 0.2])
def test_a_killed_rm_leaves_a_container_the_next_rm_removes(rootless, busybox, delay):
    mark = marker()
    run_d(rootless, "--name", "half", busybox, "sleep", mark)
    proc = rootless.popen("rm", "-f", "half")
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=10)
    listing = ok(rootless("ps", "-a", "--format", "{{.Names}} {{.State}}"))
    assert listing in ("", "half running\n", "half removing\n", "half exited\n"), listing
    if listing:
        ok(rootless("rm", "-f", "half"))
    assert ok(rootless("ps", "-a", "-q")) == ""
    wait_for(lambda: pids_with(mark) == [], timeout=10)


@pytest.mark.parametrize("delay", [0.01, 0.05, 0.15])
def test_a_killed_run_d_leaves_a_consistent_store(rootless, busybox, delay, store):
    mark = marker()
    proc = rootless.popen("run", "-d", "--name", "cut", busybox, "sleep", mark)
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=10)
    time.sleep(0.3)
    listing = ok(rootless("ps", "-a", "--format", "{{.Names}}"))
    assert listing in ("", "cut\n"), listing
    ok(rootless("rm", "-f", "cut")) if listing else None
    assert ok(rootless("ps", "-a", "-q")) == ""
    wait_for(lambda: pids_with(mark) == [], timeout=10)
    assert sorted(os.listdir(store / "containers")) == []


# ---- old kernels (DESIGN.md, 8): no pidfd before Linux 5.3 ----

def test_stop_kill_and_rm_work_without_pidfds(rootless, busybox):
    rootless.env["ROOTLESS_KERNEL_FLOOR"] = "4.18"
    mark = marker()
    run_d(rootless, "--name", "old1", busybox, "sleep", mark)
    ok(rootless("stop", "-t", "0", "old1"))
    assert inspect(rootless, "old1", "{{.State.ExitCode}}") == "137"
    run_d(rootless, "--name", "old2", busybox, "sh", "-c", f"sleep {mark} & exec sleep {mark}")
    wait_for(lambda: len(pids_with(mark)) >= 2)
    ok(rootless("kill", "-s", "STOP", "old2"))
    ok(rootless("rm", "-f", "old2", "old1"))
    assert pids_with(mark) == []
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_prune_never_takes_a_container_that_is_being_started(rootless, busybox):
    runs = [rootless.popen("run", busybox, "true") for _ in range(6)]
    prunes = [rootless.popen("container", "prune", "-f") for _ in range(6)]
    results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in runs]
    assert all(code == 0 for code, _ in results), results
    assert all(p.wait(timeout=120) == 0 for p in prunes)


def test_exec_joins_without_pidfds(rootless, busybox):
    rootless.env["ROOTLESS_KERNEL_FLOOR"] = "4.18"
    run_d(rootless, "--name", "old3", "--hostname", "oldbox", busybox, "sleep", marker())
    assert ok(rootless("exec", "old3", "hostname")) == "oldbox\n"


def test_a_run_that_fails_before_its_container_exists_leaves_no_monitor(rootless, busybox):
    mark = marker()  # run forks its monitor first; it must go when nothing is created
    assert_error(rootless("run", "--pull", "never", "--name", "x" + mark, "nosuch:img",
                          "true"), 125, "no such image")
    assert_error(rootless("run", "--name", "bad name " + mark, busybox, "true"), 125,
                 "Invalid container name")
    time.sleep(0.2)
    assert [p for p in pids_with("x" + mark) + pids_with("bad name " + mark)] == []
    assert ok(rootless("ps", "-a", "-q")) == ""
