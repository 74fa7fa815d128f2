"""Without -t, a container's stdin, stdout and stderr are pipes the runtime owns, as with
docker and podman (issue 7): never the caller's own terminal or files, which the
container could otherwise reconfigure, reopen or overwrite through /proc/self/fd. The
runtime copies between those pipes and its own streams."""

from __future__ import annotations

import hashlib
import os
import subprocess
import termios
import threading

import pytest
from helpers import PtySession, ok

pytestmark = pytest.mark.container


def pipe_inode(link: str) -> int:
    """N of a `pipe:[N]` link as readlink shows it inside the container."""
    assert link.startswith("pipe:["), link
    return int(link[len("pipe:["):-1])


# ---- the caller's terminal and files are out of reach ----

def test_container_cannot_change_the_callers_terminal(rootless, busybox):
    # -i without -t: the caller's terminal is its stdin, stdout and stderr
    script = ("for fd in 0 1 2; do stty -echo <&$fd; echo rc=$?; done; "
              "stty -F /dev/tty -echo; echo rc=$?; echo done")
    term = PtySession(rootless, "run", "--rm", "-i", busybox, "sh", "-c", script)
    term.read_until("done")
    assert termios.tcgetattr(term.master)[3] & termios.ECHO  # still echoing
    assert term.wait() == 0
    assert term.text().count("rc=1") == 4, term.text()
    assert term.text().count("Inappropriate ioctl for device") == 3, term.text()
    assert "can't open '/dev/tty': No such device or address" in term.text()


def test_writing_to_proc_self_fd_0_cannot_modify_the_input_file(rootless, busybox, tmp_path):
    victim = tmp_path / "input"
    victim.write_text("original\n")
    victim.chmod(0o444)
    with victim.open("rb") as stdin:
        proc = rootless.popen("run", "--rm", "-i", busybox, "sh", "-c",
                              "readlink /proc/self/fd/0; echo pwned > /proc/self/fd/0",
                              stdin=stdin)
        out, err = proc.communicate(timeout=60)
    assert victim.read_text() == "original\n"
    assert proc.returncode == 0, err
    pipe_inode(out.decode().strip())  # a pipe of the runtime's, not the file


def test_container_cannot_truncate_the_file_given_as_its_stdout(rootless, busybox, tmp_path):
    log = tmp_path / "log"
    log.write_text("earlier lines\n")
    with log.open("ab") as stdout:
        proc = rootless.popen("run", "--rm", busybox, "sh", "-c",
                              "echo new > /proc/self/fd/1", stdout=stdout)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert log.read_text() == "earlier lines\nnew\n"


def test_stdout_and_stderr_are_separate_pipes_when_the_caller_merges_them(rootless, busybox):
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c",
                          "readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2",
                          stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=60)
    links = out.decode().split()
    assert proc.returncode == 0, out
    assert len({pipe_inode(link) for link in links}) == 2, links


# ---- what the runtime copies ----

def test_stdout_and_stderr_arrive_separately_and_in_order(rootless, busybox):
    script = ("for i in 1 2 3; do echo out$i; echo err$i >&2; done; "
              "readlink /proc/self/fd/1")
    proc = rootless.popen("run", "--rm", busybox, "sh", "-c", script)
    ours = os.fstat(proc.stdout.fileno()).st_ino
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    *lines, link = out.decode().split()
    assert (lines, err.decode()) == (["out1", "out2", "out3"], "err1\nerr2\nerr3\n")
    assert pipe_inode(link) != ours  # the runtime's pipe, not ours


def test_large_binary_output_arrives_intact(rootless, busybox, tmp_path):
    result = tmp_path / "out"
    with result.open("wb") as stdout:
        proc = rootless.popen("run", "--rm", busybox, "sh", "-c",
                              "[ -p /proc/self/fd/1 ] || exit 9; "
                              "head -c 5000000 /dev/urandom > /tmp/data; "
                              "md5sum /tmp/data >&2; cat /tmp/data", stdout=stdout)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = result.read_bytes()
    assert len(data) == 5000000
    assert err.decode().split()[0] == hashlib.md5(data).hexdigest()


def test_stdin_end_reaches_the_container_as_eof(rootless, busybox, tmp_path):
    given = tmp_path / "input"
    given.write_bytes(bytes(range(256)) * 1000)
    with given.open("rb") as stdin:
        proc = rootless.popen("run", "--rm", "-i", busybox, "sh", "-c",
                              "[ -p /dev/stdin ] || exit 9; md5sum; echo end",
                              stdin=stdin)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    digest, _, end = out.decode().split()
    assert (digest, end) == (hashlib.md5(given.read_bytes()).hexdigest(), "end")


def test_a_reader_that_stops_ends_the_copy_and_the_writer_gets_sigpipe(rootless, busybox):
    # under --init `yes` is not pid 1, which the kernel would shield from SIGPIPE
    proc = rootless.popen("run", "--rm", "--init", busybox, "sh", "-c",
                          "link=$(readlink /proc/$$/fd/1); echo $link >&2; exec yes")
    theirs = os.fstat(proc.stdout.fileno()).st_ino
    assert proc.stdout.read(2) == b"y\n"
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=30) == 141  # the container's code: killed by SIGPIPE
    err = proc.stderr.read().decode()
    assert pipe_inode(err.splitlines()[0]) != theirs
    assert "Traceback" not in err


def test_a_container_that_never_reads_stdin_does_not_hold_up_the_run(rootless, busybox):
    r, w = os.pipe()
    stop = threading.Event()

    def feed() -> None:  # our stdin never ends while the run lasts
        try:
            while not stop.is_set():
                os.write(w, b"x" * 65536)
        except OSError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        proc = rootless.popen("run", "--rm", "-i", busybox, "sh", "-c",
                              "exec 0<&-; readlink /proc/self/fd/1", stdin=r)
        ours = os.fstat(proc.stdout.fileno()).st_ino
        out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
        os.close(r)  # no reader left: a write still waiting fails (EPIPE)
        writer.join(timeout=10)
        os.close(w)
    assert proc.returncode == 0, err
    assert pipe_inode(out.decode().strip()) != ours
