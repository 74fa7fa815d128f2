"""`rootless run` standard streams: -i passes stdin, -t gives a real terminal."""

from __future__ import annotations

import hashlib
import os

import pytest
from helpers import PtySession, assert_error, ok

pytestmark = pytest.mark.container


# ---- pipes ----

def test_interactive_passes_stdin(rootless, busybox):
    assert ok(rootless("run", "--rm", "-i", busybox, "cat", input="hi\n")) == "hi\n"


def test_without_interactive_stdin_is_not_passed(rootless, busybox):
    result = rootless("run", "--rm", busybox, "cat", input="hi\n")
    assert (result.returncode, result.stdout) == (0, "")


def test_interactive_passes_large_input_intact(rootless, busybox):
    data = os.urandom(1 << 20)
    out = ok(rootless("run", "--rm", "-i", busybox, "md5sum", input=data))
    assert out.split()[0] == hashlib.md5(data).hexdigest()


def test_large_output_arrives_intact(rootless, busybox):
    out = ok(rootless("run", "--rm", busybox, "sh", "-c", "yes 0123456789 | head -c 3000000"))
    assert out == ("0123456789\n" * 300000)[:3000000]


def test_stdout_and_stderr_stay_separate(rootless, busybox):
    result = rootless("run", "--rm", busybox, "sh", "-c", "echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_without_tty_the_container_has_no_terminal(rootless, busybox):
    result = rootless("run", "--rm", busybox, "tty")
    assert (result.returncode, result.stdout) == (1, "not a tty\n")


# ---- a terminal ----

def test_tty_gives_the_container_a_terminal(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-t", busybox, "tty")
    assert term.wait() == 0
    assert term.text().strip() == "/dev/pts/0"


def test_tty_without_a_terminal_still_gives_the_container_one(rootless, busybox):
    # Docker refuses only -i with -t when stdin is not a terminal
    result = rootless("run", "--rm", "-t", busybox, "tty")
    assert (result.returncode, result.stdout.strip()) == (0, "/dev/pts/0")


def test_interactive_tty_without_a_terminal_is_refused(rootless, busybox):
    result = rootless("run", "--rm", "-it", busybox, "echo", "ran", input="")
    assert_error(result, 125, "not a TTY")
    assert result.stdout == ""


def test_tty_has_the_size_of_the_callers_terminal(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-t", busybox, "stty", "size",
                      rows=33, cols=101)
    assert term.wait() == 0
    assert term.text().strip() == "33 101"


def test_tty_follows_window_size_changes(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-t", busybox, "sh", "-c",
                      'trap "stty size; exit 0" WINCH; echo ready; '
                      "while true; do sleep 0.1; done")
    term.read_until("ready")
    term.resize(40, 120)
    assert term.wait() == 0
    assert "40 120" in term.text()


def test_interactive_tty_runs_a_shell_session(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-it", busybox, "sh")
    term.read_until("# ")  # root's prompt
    term.write(b"echo $((6 * 7))\n")
    term.read_until("42")
    term.write(b"exit 3\n")
    assert term.wait() == 3


def test_tty_turns_line_endings_into_crlf(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-t", busybox, "echo", "a")
    assert term.wait() == 0
    assert term.output.endswith(b"a\r\n")


def test_ctrl_c_with_interactive_tty_reaches_the_container(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-it", busybox, "sh", "-c",
                      'trap "exit 5" INT; echo ready; while true; do sleep 0.1; done')
    term.read_until("ready")
    term.write(b"\x03")
    assert term.wait() == 5


def test_ctrl_d_with_interactive_tty_ends_the_shell(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-it", busybox, "sh")
    term.read_until("# ")
    term.write(b"echo started\n")
    term.read_until("started")
    term.write(b"\x04")
    assert term.wait() == 0


def test_tty_container_does_not_see_the_callers_terminal(rootless, busybox):
    term = PtySession(rootless, "run", "--rm", "-t", busybox, "ls", "/dev/pts")
    assert term.wait() == 0
    assert sorted(term.text().split()) == ["0", "ptmx"]
