"""Layers unpacked in parallel: one process per layer (image/layer_worker.py), as many
at once as there are CPUs, because unpacking is CPU-bound Python that one interpreter
runs on one core at a time. Each result is checked against the image config and
installed by this process (image/transports/storage.py), so the store's rules hold
whoever unpacked. A single layer is unpacked here, in-process: a new interpreter costs
more than it would save.

`unpack_parallel` is what StoreDestination calls at commit (load, import); pull calls
`unpack_one` as each layer's blob arrives, so unpacking overlaps the downloads.

With a subordinate range every worker enters a storage namespace of its own as it
starts (kernel/storage_ns.py), where it gives files their true owners; a layer is then
never unpacked in a thread of this process, which cannot enter one (it has threads).
"""

from __future__ import annotations

import heapq
import json
import os
import sys
from contextlib import asynccontextmanager
from typing import Callable

import trio

from rootless.engine.trio_run import run_unwrapped
from rootless.errors import ImageError, StoreError
from rootless.image.layers import LayerResult
from rootless.image.transports.storage import (
    LayerJob,
    layer_ensure,
    layer_ids,
    layer_install,
    layer_size,
    layer_tmp,
)
from rootless.store.blobs import blob_path, remove_tree

_ERRORS = {"ImageError": ImageError, "StoreError": StoreError}


class LargestFirst:
    """`slots` places, given to the largest waiting job first: the image is ready when
    its slowest layer is, so a big layer whose blob arrives last must not queue behind
    small ones. A slot a task releases passes straight to the next one."""

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiting: list[list] = []  # heap of [-size, arrival, event]
        self.arrivals = 0

    @asynccontextmanager
    async def slot(self, size: int):
        if self.free > 0 and not self.waiting:
            self.free -= 1
        else:
            await self._wait(size)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, size: int) -> None:
        event = trio.Event()
        entry = [-size, self.arrivals, event]
        self.arrivals += 1
        heapq.heappush(self.waiting, entry)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # given the slot as it was cancelled: hand it on
                self._release()
            else:
                self.waiting.remove(entry)
                heapq.heapify(self.waiting)
            raise

    def _release(self) -> None:
        if self.waiting:
            heapq.heappop(self.waiting)[2].set()
        else:
            self.free += 1


def unpack_limiter() -> LargestFirst:
    """One unpacking slot per CPU this process may use."""
    return LargestFirst(max(1, len(os.sched_getaffinity(0))))


def unpack_parallel(store, jobs: list[LayerJob]) -> list[int]:
    """Make every layer of `jobs` exist; their sizes, in order."""
    missing = [job for job in jobs if layer_size(store, job.chain_id) is None]
    if len(missing) > 1:
        run_unwrapped(_unpack_all, store, missing)
    return [layer_ensure(store, job) for job in jobs]  # now only reads the rows


async def _unpack_all(store, jobs: list[LayerJob]) -> None:
    limiter = unpack_limiter()
    # the largest first: the image is ready when the slowest layer is
    order = sorted(jobs, key=lambda job: job.desc.size, reverse=True)
    async with trio.open_nursery() as nursery:
        for job in order:
            nursery.start_soon(unpack_one, store, job, limiter)


async def unpack_one(store, job: LayerJob, limiter: LargestFirst,
                     in_process: bool = False, progress: Callable[[int], None] | None = None
                     ) -> int:
    """Unpack one layer's blob (already in the store) in a worker process, or in a
    thread of this one, and install it; its size. `progress` hears how many bytes of
    the blob have been unpacked. A layer another command installed meanwhile is left
    as it is."""
    size = layer_size(store, job.chain_id)
    if size is not None:
        return size
    ids = layer_ids()
    async with limiter.slot(job.desc.size):
        if progress:
            progress(0)  # started: it may have waited for a free CPU
        tmp = layer_tmp(store)
        try:
            if in_process and ids is None:
                result = await _in_thread(_unpack_here, store, job, tmp, progress)
            else:
                result = await _run_worker(store, job, tmp, progress, ids)
            # here, not in a thread: the store's SQLite connection is this thread's
            return layer_install(store, job, tmp, result, ids)
        finally:
            with trio.CancelScope(shield=True):  # cleaned up even when cancelled
                await trio.to_thread.run_sync(remove_tree, tmp)


async def _in_thread(unpack, *args) -> LayerResult:
    """unpack(*args, stop) in a worker thread. A thread cannot be killed, and trio
    waits for one it cannot abandon: cancelled (Ctrl-C, another layer failed), this
    sets `stop`, which the unpacker checks every few MiB it writes, and waits for the
    thread to end, so nothing writes into the layer's tmp/ directory once it returns."""
    import threading

    stop, started, done = threading.Event(), threading.Event(), threading.Event()

    def run() -> LayerResult | None:
        started.set()
        try:
            # set before it began: trio had given up on it already
            return None if stop.is_set() else unpack(*args, stop)
        finally:
            done.set()

    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except BaseException:
        stop.set()
        if started.is_set():
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(done.wait)
        raise


def _unpack_here(store, job: LayerJob, tmp, progress, stop) -> LayerResult:
    from rootless.image.compression import Counting
    from rootless.image.layers import unpack_layer

    with open(blob_path(store, job.desc.digest), "rb") as stream:
        counted = Counting(stream, progress, every=0.1) if progress else stream
        return unpack_layer(counted, tmp, f"layer {job.desc.digest[:19]}", stop)


async def _run_worker(store, job: LayerJob, tmp, progress, ids) -> LayerResult:
    what = f"layer {job.desc.digest[:19]}"
    command = [sys.executable, "-m", "rootless.image.layer_worker",
               str(blob_path(store, job.desc.digest)), str(tmp), what, str(os.getpid())]
    if ids is not None:
        command.append(ids.to_json())
    lines, errors, code = await _run_reporting(command, progress)
    try:
        report = json.loads(lines[-1])
    except (ValueError, IndexError):
        detail = errors.decode(errors="replace").strip().splitlines()
        raise StoreError(f"cannot unpack {what}: the unpacking process failed (exit "
                         f"{code}{': ' + detail[-1] if detail else ''})") from None
    if "error" in report:
        raise _ERRORS.get(report.get("kind"), StoreError)(report["error"])
    return LayerResult(report["diff_id"], report["size"], report["unapplied"],
                       {p: bytes.fromhex(v) for p, v in report["file_caps"].items()})


async def _run_reporting(command: list[str], progress) -> tuple[list[bytes], bytes, int]:
    """Run a worker: pass its {"progress": N} lines to `progress` as they come; return
    its other stdout lines, its stderr and its exit code. Cancelled, it is killed."""
    import subprocess

    lines: list[bytes] = []
    errors = bytearray()
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE)
    try:
        async def read_errors() -> None:
            async for chunk in process.stderr:
                errors.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_errors)
            pending = b""
            async for chunk in process.stdout:
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    _take_line(line, lines, progress)
            if pending:
                _take_line(pending, lines, progress)
        code = await process.wait()
    finally:
        if process.returncode is None:  # cancelled or failed: the worker goes too
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        for pipe in (process.stdout, process.stderr):
            with trio.CancelScope(shield=True):
                await pipe.aclose()
    return lines, bytes(errors), code


def _take_line(line: bytes, lines: list[bytes], progress) -> None:
    if line.startswith(b'{"progress": '):
        if progress:
            progress(json.loads(line)["progress"])
    elif line.strip():
        lines.append(line)
