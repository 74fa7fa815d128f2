"""`rootless run` exit codes, signals and --init, as Docker defines them:
the container's own code; 125 the engine failed; 126 the command cannot be invoked;
127 the command was not found; 128+N the container's pid 1 died of signal N."""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers import assert_error, cmdline_of, ok, read_until, wait_for

pytestmark = pytest.mark.container

LOOP = "while true; do sleep 0.1; done"


# ---- the container's own code ----

@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_is_the_containers_own(sh, code):
    result = sh(f"exit {code}")
    assert result.returncode == code
    assert result.stderr == ""


def test_false_exits_1(rootless, busybox):
    assert rootless("run", "--rm", busybox, "false").returncode == 1


def test_container_exiting_127_itself_is_not_reported_as_an_error(sh):
    result = sh("exit 127")
    assert (result.returncode, result.stderr) == (127, "")


def test_exit_code_of_a_command_killed_inside_is_passed_on(sh):
    # pid 1 cannot be killed from inside its namespace, but a child of it can; the
    # trailing `exit` keeps sh from exec'ing the child as pid 1
    assert sh('sh -c "kill -9 \\$\\$"; exit $?').returncode == 137


# ---- 126, 127: the command cannot run ----

def test_command_not_found_exits_127(rootless, busybox):
    assert_error(rootless("run", "--rm", busybox, "no-such-command"), 127, "no-such-command")


def test_missing_absolute_command_exits_127(rootless, busybox):
    assert_error(rootless("run", "--rm", busybox, "/no/such/binary"), 127, "/no/such/binary")


def test_non_executable_file_exits_126(rootless, busybox):
    assert_error(rootless("run", "--rm", busybox, "/etc/passwd"), 126, "/etc/passwd")


def test_directory_as_command_exits_126(rootless, busybox):
    assert_error(rootless("run", "--rm", busybox, "/tmp"), 126, "/tmp")


# ---- 125: the engine failed ----

def test_unknown_image_exits_125(rootless, busybox):
    assert_error(rootless("run", "--rm", "--pull", "never", "no-such-image:1", "true"), 125,
                 "no-such-image")


def test_unknown_image_that_cannot_be_pulled_exits_125(rootless, busybox, rootless_env):
    """--pull missing (the default) tries the registry first, as docker does: here an
    address nothing answers, so the test never leaves the machine."""
    result = rootless("run", "--rm", "127.0.0.1:9/no-such-image:1", "true")
    assert result.returncode == 125
    assert "Unable to find image '127.0.0.1:9/no-such-image:1' locally" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: ")


def test_unknown_image_creates_no_container(rootless, busybox, store):
    rootless("run", "--pull", "never", "no-such-image:1", "true")
    rootless("run", "127.0.0.1:9/no-such-image:1", "true")
    assert ok(rootless("ps", "-a", "-q")) == ""


def test_bad_flag_exits_125(rootless, busybox):
    result = rootless("run", "--no-such-flag", busybox, "echo", "ran")
    assert_error(result, 125, "--no-such-flag")
    assert result.stdout == ""


def test_missing_flag_value_exits_125(rootless, busybox):
    assert_error(rootless("run", "--rm", "-e"), 125, "needs an argument")


def test_image_without_command_exits_125(rootless, image_archives):
    ok(rootless("image", "import", str(image_archives.rootfs), "nocmd:1"))
    assert_error(rootless("run", "--rm", "nocmd:1"), 125)


# ---- signals ----

def test_sigterm_to_run_reaches_the_container(rootless, busybox):
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c",
                          f'trap "exit 7" TERM; echo ready; {LOOP}')
    read_until(proc.stdout, "ready")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7


def test_sigint_to_run_reaches_the_container(rootless, busybox):
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c",
                          f'trap "exit 8" INT; echo ready; {LOOP}')
    read_until(proc.stdout, "ready")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 8


def test_sigkill_of_the_containers_pid_1_exits_137(rootless, busybox):
    token = f"{os.getpid() % 1000 + 100}.{time.monotonic_ns() % 10**6:06d}"  # a unique
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c", f"echo ready; exec sleep {token}")
    read_until(proc.stdout, "ready")
    pid = wait_for(lambda: _process_running(["sleep", token]))
    os.kill(pid, signal.SIGKILL)  # from the host, where pid 1 of a namespace is not immune
    assert proc.wait(timeout=30) == 137
    assert b"Traceback" not in proc.stderr.read()


def _process_running(argv: list[str]) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit() and cmdline_of(int(entry))[: len(argv)] == argv:
            return int(entry)
    return None


# ---- --init ----

def test_init_makes_the_command_not_pid_1(rootless, busybox):
    assert ok(rootless("run", "--rm", "--init", busybox, "sh", "-c", "echo $$")) != "1\n"


def test_without_init_pid_1_is_the_command(rootless, busybox):
    assert ok(rootless("run", "--rm", busybox, "cat", "/proc/1/cmdline")) == \
        "cat\0/proc/1/cmdline\0"


def test_init_passes_the_exit_code_on(rootless, busybox):
    assert rootless("run", "--rm", "--init", busybox, "sh", "-c", "exit 42").returncode == 42


def test_init_reaps_zombies(rootless, busybox):
    # the subshell exits at once, so its `sleep` is re-parented to pid 1, which must
    # collect it when it exits
    script = "(sleep 0.2 &); sleep 1.5; cat /proc/[0-9]*/stat 2>/dev/null"
    out = ok(rootless("run", "--rm", "--init", busybox, "sh", "-c", script))
    states = [line.rsplit(")", 1)[1].split()[0] for line in out.splitlines() if ")" in line]
    assert states and "Z" not in states, out


def test_init_forwards_signals_to_the_command(rootless, busybox):
    proc = rootless.popen("run", "--rm", "--init", busybox, "sh", "-c",
                          f'trap "exit 7" TERM; echo ready; {LOOP}')
    read_until(proc.stdout, "ready")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7


def test_init_reports_a_signal_death_as_128_plus_n(rootless, busybox):
    result = rootless("run", "--rm", "--init", busybox, "sh", "-c", "kill -TERM $$; sleep 5")
    assert result.returncode == 128 + signal.SIGTERM
