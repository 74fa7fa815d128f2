"""Ctrl-C stops `rootless import` and `rootless load` within a second, wherever it is —
reading a slow pipe, inflating a big layer in this process or in worker processes —
and leaves nothing behind in the store: no tmp/ entry, no half layer, no image. As a
terminal's Ctrl-C does, SIGINT goes to the command's whole process group.

The big layers are gzip bombs (test_layer_limits.gzip_bomb): a few MB that inflate to
GiBs, so the command is caught in the middle of writing one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from helpers import wait_for
from registry_server import TinyImage, isolate_registry_client
from test_layer_limits import GIB, assert_store_clean, gzip_bomb, oci_archive, sha

WITHIN = 1.0  # seconds from Ctrl-C to the command's exit: what a user waits for


class SlowFeeder(threading.Thread):
    """Writes `data` into a command's stdin a few KiB at a time, slowly, until told to
    stop or the command goes."""

    def __init__(self, pipe, data: bytes) -> None:
        super().__init__(daemon=True)
        self.pipe, self.data, self.stop = pipe, data, threading.Event()
        self.sent = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.sent < len(self.data):
                self.pipe.write(self.data[self.sent:self.sent + 4096])
                self.pipe.flush()
                self.sent += 4096
                time.sleep(0.02)
        except OSError:
            pass  # the command exited


def ctrl_c(proc: subprocess.Popen) -> tuple[int, float, bytes]:
    """SIGINT to the command's process group; (exit code, seconds it took, stderr)."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=60)
    took = time.monotonic() - started
    return code, took, proc.stderr.read()


def assert_stopped_at_once(proc: subprocess.Popen) -> None:
    code, took, stderr = ctrl_c(proc)
    assert code == 130, stderr
    assert took < WITHIN, f"it took {took:.2f}s to stop"
    assert b"Traceback" not in stderr, stderr


def temp_entries(store, prefix: str) -> list:
    tmp = store / "tmp"
    return [p for p in tmp.iterdir() if p.name.startswith(prefix)] if tmp.is_dir() else []


def inflating(store, count: int = 1) -> bool:
    """`count` layers are being written in tmp/ (their file of zeros has data)."""
    files = [p / "zeros" for p in temp_entries(store, "layer-")]
    try:
        return sum(1 for f in files if f.stat().st_size > 0) >= count
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """Two different 4 GiB gzip bombs (distinct blobs, so two layers to unpack)."""
    d = tmp_path_factory.mktemp("bombs")
    return [gzip_bomb(d / "a.tar.gz", 4 * GIB),
            gzip_bomb(d / "b.tar.gz", 4 * GIB + (16 << 20))]


# ---- reading a slow pipe ----

@pytest.mark.parametrize("command", [["import", "-", "slow:1"], ["load"]])
def test_ctrl_c_stops_a_command_reading_a_slow_pipe_and_leaves_nothing(
        rootless, store, bombs, command):
    proc = rootless.popen(*command, stdin=subprocess.PIPE)
    feeder = SlowFeeder(proc.stdin, bombs[0].read_bytes())
    feeder.start()
    try:
        wait_for(lambda: temp_entries(store, command[0]), timeout=30)
        wait_for(lambda: feeder.sent > 64 << 10, timeout=30)
        assert_stopped_at_once(proc)
    finally:
        feeder.stop.set()
    assert_store_clean(rootless, store)


# ---- inflating a big layer ----

def test_ctrl_c_stops_an_import_inflating_its_layer_and_leaves_nothing(
        rootless, store, tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", GIB)  # import inflates it once to hash it
    proc = rootless.popen("import", str(bomb), "bomb:1")
    wait_for(lambda: inflating(store), timeout=60, interval=0.01)
    assert_stopped_at_once(proc)
    assert_store_clean(rootless, store)


@pytest.mark.parametrize("layers", [1, 2], ids=["in-process", "in-workers"])
def test_ctrl_c_stops_a_load_inflating_layers_and_leaves_nothing(rootless, store, tmp_path,
                                                                 bombs, layers):
    archive = oci_archive(tmp_path / "bombs.oci.tar",
                          [bomb.read_bytes() for bomb in bombs[:layers]])
    proc = rootless.popen("load", "-i", str(archive))
    wait_for(lambda: inflating(store, layers), timeout=60, interval=0.01)
    assert_stopped_at_once(proc)
    assert_store_clean(rootless, store)


def test_ctrl_c_stops_a_pull_inflating_its_only_layer_in_process(rootless, store, fake,
                                                                 tmp_path, bombs):
    """One layer to unpack is unpacked in a thread of the pull itself, which trio cannot
    abandon: it must be told to stop."""
    reg = isolate_registry_client(rootless, tmp_path, "30")
    blob = bombs[0].read_bytes()
    image = TinyImage()
    image.layers = [blob]
    image.manifest_data["layers"][0].update(digest=sha(blob), size=len(blob))
    image.manifest = json.dumps(image.manifest_data).encode()
    image.serve(fake)
    proc = reg.popen("pull", "-q", "--tls-verify=false", f"{fake.host}/tiny:1")
    wait_for(lambda: inflating(store), timeout=60, interval=0.01)
    assert_stopped_at_once(proc)
    assert_store_clean(reg, store)
