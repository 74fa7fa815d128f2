"""pyfuse3 without trio: the FUSE overlay server's request loop.

pyfuse3 imports trio when it is imported and runs its loop as trio tasks, but this
server needs none of it: one task serves every request to its end (no handler awaits
anything), and the wait for the next request is poll(2), blocking. trio's import is
80-100 ms of CPU here (attrs, its run loop, ssl) at every start of a FUSE container,
on a machine where the container's own set-up competes for the same cores. So pyfuse3
is imported with a small stand-in registered as `trio` (pyfuse3's own asyncio mode,
pyfuse3/asyncio.py, swaps the module the same way, at `pyfuse3.trio`), and its loop, a
coroutine that never suspends, is driven to its end by hand.

What pyfuse3 (3.x: internal.pxi, __init__.pyx) asks of trio, and the answers:
- Lock(): the read lock of its worker tasks; one task here, so a lock that never waits;
- lowlevel.current_trio_token / current_task().name: names only;
- open_nursery(): main() starts the first worker in one; it runs at the block's end;
- lowlevel.wait_readable(fd): poll(2) on the descriptor, blocking (also the server's
  replacement of pyfuse3's whole wait, `install_wait`, which skips the lock);
- ClosedResourceError, lowlevel.notify_closing: only for terminate(), which no one calls.
A loop that would suspend anyway (a pyfuse3 that awaits something else) is an error,
never a hang: `run` raises.

The wait itself (`Waiter`) polls without sleeping for a moment while requests come in
bursts: on a virtual machine, waking the server's idle CPU for each request costs more
than handling it (see SPIN_NS).
"""

from __future__ import annotations

import os
import select
import sys
import types
from typing import Callable


class _Lock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> bool:
        return False


class _Task:
    name = "pyfuse3"


class _Nursery:
    """Runs what was started in it, in turn, when its block ends."""

    def __init__(self) -> None:
        self.started: list = []

    async def __aenter__(self) -> _Nursery:
        return self

    def start_soon(self, fn, *args, name=None) -> None:
        self.started.append((fn, args))

    async def __aexit__(self, *exc) -> bool:
        if exc[0] is None:
            while self.started:
                fn, args = self.started.pop(0)
                await fn(*args)
        return False


async def _wait_readable(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()


class ClosedResourceError(Exception):
    pass


def _stand_in() -> types.ModuleType:
    trio = types.ModuleType("trio")
    trio.__doc__ = "rootless.fs.fuse_loop's stand-in for trio, for pyfuse3 only"
    trio.Lock = _Lock
    trio.ClosedResourceError = ClosedResourceError
    trio.open_nursery = _Nursery
    trio.lowlevel = trio.from_thread = trio
    trio.current_trio_token = lambda: "rootless.fs.fuse_loop"
    trio.current_task = _Task
    trio.wait_readable = _wait_readable
    trio.notify_closing = lambda fd: None
    return trio


class _NoDistribution(Exception):
    pass


def _no_version(name: str) -> str:
    raise _NoDistribution(name)


def _metadata_stand_in() -> types.ModuleType:
    """pyfuse3 >= 3.5 asks importlib.metadata for its own version at import (a scan of
    site-packages, 10-15 ms here, for a string it never uses): it gets 'unknown'."""
    metadata = types.ModuleType("importlib.metadata")
    metadata.PackageNotFoundError = _NoDistribution
    metadata.version = _no_version
    return metadata


def import_pyfuse3():
    """pyfuse3, bound to the stand-in; the real trio is neither imported nor needed.
    (Where trio is already imported, as in a test process, pyfuse3 keeps it for its
    import and still runs on the stand-in.)"""
    stand_in = _stand_in()
    lent = {name: module for name, module in (("trio", stand_in),
                                              ("importlib.metadata", _metadata_stand_in()))
            if name not in sys.modules}
    sys.modules.update(lent)
    try:
        import pyfuse3
    finally:
        for name, module in lent.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    pyfuse3.trio = stand_in
    return pyfuse3


# How long the server polls without sleeping for the next request of a burst. A FUSE
# request is a round trip between two processes, usually on two CPUs: when the server
# sleeps between requests its CPU idles, and waking an idle CPU costs tens of
# microseconds on a virtual machine (the vCPU halted and exits to the host), more than
# our handling of most requests. Measured here (2-core VM, 20,000 files created,
# stat'ed, renamed, unlinked): 40-50% less time with 50 us of polling. Polling starts
# only once requests come closer together than this (a burst), and stops at the first
# gap longer: an idle container's server never polls, and a burst's end costs one
# window of CPU. ROOTLESS_FUSE_SPIN_US=0 turns it off.
SPIN_NS = 50_000


class Waiter:
    """The wait before each request: poll(2) on the FUSE device (and `also`)."""

    def __init__(self, fd: int, also: tuple[int, Callable[[], None]] | None,
                 spin_ns: int = SPIN_NS) -> None:
        import time

        self.fd, self.spin_ns, self.clock = fd, spin_ns, time.perf_counter_ns
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)
        self.other, self.on_ready = also if also is not None else (-1, None)
        if also is not None:
            self.poller.register(self.other, select.POLLIN)
        self.burst = False

    def poll(self) -> list[tuple[int, int]]:
        poll, clock = self.poller.poll, self.clock
        if self.burst:
            end = clock() + self.spin_ns
            while True:
                ready = poll(0)
                if ready:
                    return ready
                if clock() >= end:
                    break
                # any other runnable task of this CPU first (the container's, its
                # monitor's fakeroot): polling must not delay the next request
                os.sched_yield()
        start = clock()
        ready = poll()
        self.burst = self.spin_ns > 0 and clock() - start < self.spin_ns
        return ready

    async def wait(self) -> bool:
        """True once a request is readable (or the device failed: the read then says
        so), after handling the other descriptor if it is readable too."""
        while True:
            ready = self.poll()
            if len(ready) == 1 and ready[0][0] == self.fd:
                return True
            for which, _ in ready:
                if which == self.other:
                    self.on_ready()
            if any(which == self.fd for which, _ in ready):
                return True


def install_wait(pyfuse3, fd: int, also: tuple[int, Callable[[], None]] | None = None) -> None:
    """pyfuse3's wait for each request (its read lock, then trio's wait) as poll(2)
    alone: at the unmount it reports POLLERR, and pyfuse3's read then ends the loop
    (ENODEV). pyfuse3's loop looks the function up by name at each request (a module
    global); another pyfuse3 without it keeps its own wait, on the stand-in.

    `also`: another descriptor polled in the same call, and what to do when it is
    readable, always before the request that came with it is read (the fakeroot's
    credentials table: fs/fuse_access.FakerootCreds)."""
    if not hasattr(pyfuse3, "_wait_fuse_readable"):
        return
    try:
        spin_ns = int(os.environ.get("ROOTLESS_FUSE_SPIN_US", SPIN_NS // 1000)) * 1000
    except ValueError:
        spin_ns = SPIN_NS
    pyfuse3._wait_fuse_readable = Waiter(fd, also, max(0, spin_ns)).wait


def run(pyfuse3) -> None:
    """pyfuse3.main() with one worker, to its end (the filesystem unmounted)."""
    loop = pyfuse3.main(1, 1)
    try:
        loop.send(None)
    except StopIteration:
        return
    loop.close()
    raise RuntimeError("pyfuse3's loop waited for something other than the FUSE device")
