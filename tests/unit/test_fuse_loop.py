"""The FUSE overlay server's request loop without trio (fs/fuse_loop.py): pyfuse3 is
imported with a stand-in for trio, and its loop, which never suspends, is run by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rootless.fs import fuse_loop


def test_the_server_imports_pyfuse3_without_trio_or_package_metadata():
    # a fresh interpreter, as the forked server is one that never imported either
    code = ("import sys; from rootless.fs import fuse_loop; p = fuse_loop.import_pyfuse3(); "
            "print('trio' in sys.modules, 'importlib.metadata' in sys.modules, "
            "p.trio.__name__, hasattr(p, 'main'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "trio", "True"]


class _Suspend:
    def __await__(self):
        yield "something else"


class _FakePyfuse3:
    """pyfuse3's main() in shape: a nursery whose first worker runs the loop."""

    def __init__(self, trio, suspend: bool) -> None:
        self.trio, self.suspend, self.served = trio, suspend, []

    async def _worker(self, name: str) -> None:
        async with self.trio.Lock():
            if self.suspend:
                await _Suspend()
            self.served.append((name, self.trio.lowlevel.current_task().name))

    async def main(self, min_tasks: int, max_tasks: int) -> None:
        self.trio.lowlevel.current_trio_token()
        async with self.trio.open_nursery() as nursery:
            nursery.start_soon(self._worker, "first", name="pyfuse-01")


def test_run_drives_the_loop_to_its_end_without_an_event_loop():
    fake = _FakePyfuse3(fuse_loop._stand_in(), suspend=False)
    fuse_loop.run(fake)
    assert fake.served == [("first", "pyfuse3")]


def test_a_loop_that_would_wait_for_anything_else_fails_instead_of_hanging():
    fake = _FakePyfuse3(fuse_loop._stand_in(), suspend=True)
    with pytest.raises(RuntimeError, match="waited for something other than the FUSE"):
        fuse_loop.run(fake)
    assert fake.served == []


def test_the_stand_ins_wait_returns_once_the_descriptor_is_readable():
    import os

    read, write = os.pipe()
    try:
        os.write(write, b"x")
        waiting = fuse_loop._stand_in().lowlevel.wait_readable(read)
        with pytest.raises(StopIteration):
            waiting.send(None)
    finally:
        os.close(read)
        os.close(write)


def test_the_wait_handles_the_other_descriptor_before_the_request_it_came_with():
    import os
    import types

    fuse_r, fuse_w = os.pipe()
    other_r, other_w = os.pipe()
    seen = []
    fake = types.SimpleNamespace(_wait_fuse_readable=None)
    try:
        fuse_loop.install_wait(fake, fuse_r, (other_r, lambda: seen.append(os.read(other_r, 9))))
        os.write(other_w, b"changed")
        os.write(fuse_w, b"request")
        with pytest.raises(StopIteration) as done:
            fake._wait_fuse_readable().send(None)
        assert done.value.value is True
        assert seen == [b"changed"]
    finally:
        for fd in (fuse_r, fuse_w, other_r, other_w):
            os.close(fd)


@pytest.fixture
def pipe():
    import os

    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


def test_requests_closer_than_the_window_make_a_burst(pipe):
    import os

    read, write = pipe
    waiter = fuse_loop.Waiter(read, None, spin_ns=1_000_000_000)
    os.write(write, b"x")
    assert waiter.poll() and waiter.burst  # it slept less than the window: a burst


def test_a_gap_longer_than_the_window_ends_the_burst(pipe):
    import os
    import threading
    import time

    read, write = pipe
    waiter = fuse_loop.Waiter(read, None, spin_ns=20_000_000)
    waiter.burst = True
    threading.Timer(0.2, os.write, (write, b"x")).start()
    start = time.monotonic()
    assert waiter.poll()
    assert time.monotonic() - start >= 0.19 and not waiter.burst  # it went to sleep


def test_without_a_window_the_server_always_sleeps(pipe):
    import os

    read, write = pipe
    waiter = fuse_loop.Waiter(read, None, spin_ns=0)
    os.write(write, b"x")
    assert waiter.poll() and not waiter.burst
