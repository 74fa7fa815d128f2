"""kernel/fdpass.py: descriptors between a container's start processes, without the
socket module."""

from __future__ import annotations

import os
import subprocess
import sys

from rootless.kernel import fdpass


def test_a_descriptor_sent_arrives_with_its_data():
    ours, theirs = fdpass.socketpair()
    r, w = os.pipe()
    try:
        fdpass.send_fds(theirs, b"L", [w])
        data, fds = fdpass.recv_fds(ours, 1, 1)
        assert data == b"L" and len(fds) == 1
        os.write(fds[0], b"through")
        os.close(fds[0])
        os.close(w)
        assert os.read(r, 16) == b"through"
    finally:
        os.close(r)
        ours.close()
        theirs.close()


def test_a_received_descriptor_is_not_inherited_by_what_we_exec():
    ours, theirs = fdpass.socketpair()
    r, w = os.pipe()
    try:
        fdpass.send_fds(theirs, b"L", [r])
        _, (received,) = fdpass.recv_fds(ours, 1, 1)
        assert not os.get_inheritable(received)
        probe = subprocess.run([sys.executable, "-c", f"import os; os.fstat({received})"],
                               close_fds=False, capture_output=True, text=True)
        assert probe.returncode != 0 and "Bad file descriptor" in probe.stderr
        os.close(received)
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


def test_the_start_s_descriptor_passing_does_not_import_socket():
    code = "import sys; import rootless.kernel.fdpass; print('socket' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "False\n"
