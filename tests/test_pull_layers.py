"""Pull of images with several layers: each layer is unpacked as soon as its blob is
in, several at once (in worker processes), and checked like any other; and the
progress a user sees on a terminal and in a log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import PtySession, assert_error, cmdline_of, descendants_of, ok, wait_for
from registry_server import TinyImage, isolate_registry_client, sha, stalling_blob


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path, "5")


def layer_files(store) -> dict[str, bytes]:
    """Every regular file of every unpacked layer: name -> content."""
    found = {}
    for layer in (store / "layers").iterdir():
        if layer.is_dir():
            for path in layer.rglob("*"):
                if path.is_file():
                    found[str(path.relative_to(layer))] = path.read_bytes()
    return found


def no_image_and_no_temp(reg, store) -> None:
    assert ok(reg("images", "-q")) == ""
    tmp = store / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


def test_every_layer_of_a_multi_layer_image_is_unpacked(reg, fake, store):
    image = TinyImage(b"layered\n", layer_count=4)
    image.serve(fake)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert layer_files(store) == {name: b"layered\n"
                                  for name in ("hello", "hello1", "hello2", "hello3")}
    inspected = json.loads(ok(reg("image", "inspect", f"{fake.host}/tiny:1")))[0]
    assert inspected["RootFS"]["Layers"] == [sha(t) for t in image.tars]


def test_a_layer_whose_content_is_not_the_configs_fails_the_pull(reg, fake, store):
    image = TinyImage(layer_count=3)
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"][1] = "sha256:" + "ab" * 32
    image.config = json.dumps(config).encode()
    image.manifest_data["config"].update(digest=sha(image.config), size=len(image.config))
    image.manifest = json.dumps(image.manifest_data).encode()
    image.serve(fake)
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "diff id", "the image is corrupt")
    no_image_and_no_temp(reg, store)


def test_a_hostile_layer_among_several_is_refused_with_its_reason(reg, fake, store):
    good = TinyImage.tar_of({"fine": b"ok\n"})
    hostile = TinyImage.tar_of({"../../escape": b"x\n"})
    TinyImage(tars=[good, hostile, good]).serve(fake)
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 "climbs above the layer root")
    no_image_and_no_temp(reg, store)


def test_a_corrupt_gzip_layer_among_several_is_refused(reg, fake, store):
    image = TinyImage(layer_count=2)
    broken = image.layers[1][:-12] + b"\0" * 12  # the trailer's crc and length wrong
    image.serve(fake, blobs={sha(image.layers[1]): broken})
    assert_error(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"), 1,
                 image.manifest_data["layers"][1]["digest"][:19])
    no_image_and_no_temp(reg, store)


def test_a_layer_shared_within_one_image_is_fetched_once(reg, fake, store):
    same = TinyImage.tar_of({"same": b"twice\n"})
    TinyImage(tars=[same, TinyImage.tar_of({"between": b"b\n"}), same]).serve(fake)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    path = f"/v2/tiny/blobs/{sha(TinyImage.compress(same, 'gzip'))}"
    assert [method for method, seen, _ in fake.seen if seen.split("?")[0] == path] == ["GET"]


def test_pull_in_a_log_prints_one_line_per_layer_state(reg, fake):
    image = TinyImage(layer_count=2)
    image.serve(fake)
    out = ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    short = image.manifest_data["layers"][0]["digest"][7:19]
    lines = out.splitlines()
    for state in ("Pulling fs layer", "Download complete", "Extracting", "Pull complete"):
        assert lines.count(f"{short}: {state}") == 1, out
    assert "\x1b[" not in out and "Downloading" not in out


def test_pull_on_a_terminal_redraws_one_line_per_layer_with_a_bar(reg, fake):
    TinyImage(layer_count=2).serve(fake)
    session = PtySession(reg, "pull", "--tls-verify=false", f"{fake.host}/tiny:1")
    assert session.wait() == 0
    text = session.text()
    assert "Downloading [" in text and "Extracting [" in text and "Pull complete" in text
    assert "\x1b[2A" in text  # back up over the second layer's line to redraw the first
    assert text.rstrip().endswith(f"{fake.host}/tiny:1")


def test_a_second_pull_of_the_same_layers_fetches_and_unpacks_nothing(reg, fake, store):
    TinyImage(layer_count=3).serve(fake)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    before = sorted(p.name for p in (store / "layers").iterdir())
    out = ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert "Image is up to date" in out and "Extracting" not in out
    assert sorted(p.name for p in (store / "layers").iterdir()) == before


def unpackers(pid: int) -> list[int]:
    return [p for p in descendants_of(pid)
            if "rootless.image.layer_worker" in cmdline_of(p)]


def test_a_pull_killed_while_unpacking_leaves_the_store_consistent_and_the_next_completes(
        reg, fake, store):
    # two layers of 150 MB of zeros: small to serve, long enough to unpack to be caught
    big = [TinyImage.tar_of({f"zeros{i}": bytes(150 << 20)}) for i in range(2)]
    TinyImage(tars=big).serve(fake)
    proc = reg.popen("pull", "--tls-verify=false", f"{fake.host}/tiny:1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = wait_for(lambda: unpackers(proc.pid), timeout=60, interval=0.01)
    os.kill(proc.pid, signal.SIGKILL)  # the pull alone, not its process group
    proc.wait()
    wait_for(lambda: all(not os.path.exists(f"/proc/{w}") or
                         "layer_worker" not in " ".join(cmdline_of(w)) for w in workers),
             timeout=10)
    assert ok(reg("images", "-q")) == ""
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert ok(reg("images", "-q")).strip()
    assert not list((store / "tmp").iterdir())


def test_an_unpacking_process_dies_with_its_parent(tmp_path):
    """A layer worker stuck on its blob (here a FIFO nobody writes) must not outlive the
    command that started it."""
    fifo = tmp_path / "blob"
    os.mkfifo(fifo)
    (tmp_path / "dest").mkdir()
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-m", "rootless.image.layer_worker",
                                   {str(fifo)!r}, {str(tmp_path / "dest")!r}, "layer x",
                                   str(os.getpid())])
        print(worker.pid, flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    try:
        wait_for(lambda: "layer_worker" in " ".join(cmdline_of(worker)))
        time.sleep(0.3)  # past its start-up, blocked opening the FIFO
        parent.kill()
        parent.wait()
        wait_for(lambda: not os.path.exists(f"/proc/{worker}") or
                 open(f"/proc/{worker}/stat").read().split(") ")[1].startswith("Z"),
                 timeout=5)
    finally:
        if "layer_worker" in " ".join(cmdline_of(worker)):
            os.kill(worker, signal.SIGKILL)  # the test failed: leave nothing behind


def test_a_layer_worker_whose_parent_is_already_gone_exits_at_once(tmp_path):
    (tmp_path / "dest").mkdir()
    done = subprocess.run([sys.executable, "-m", "rootless.image.layer_worker",
                           str(tmp_path / "missing"), str(tmp_path / "dest"), "layer x", "1"],
                          capture_output=True, timeout=30)
    assert done.returncode == 1 and done.stdout == b""


def test_ctrl_c_stops_a_stalled_pull_at_once_and_leaves_no_image(reg, fake, store):
    image = TinyImage(layer_count=2)
    image.serve(fake)
    path = f"/v2/tiny/blobs/{sha(image.layers[1])}"
    fake.routes[path] = stalling_blob(image.layers[1], 20)
    reg.env["ROOTLESS_REGISTRY_TIMEOUT"] = "30"
    proc = reg.popen("pull", "--tls-verify=false", f"{fake.host}/tiny:1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: any(seen.split("?")[0] == path for _, seen, _ in fake.seen))
    time.sleep(0.3)
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=15) == 130
    assert time.monotonic() - started < 5
    assert b"Traceback" not in proc.stderr.read()
    assert ok(reg("images", "-q")) == ""


def test_two_pulls_of_the_same_image_at_once_both_succeed_with_each_layer_once(
        reg, fake, store):
    image = TinyImage.tar_of({"big": bytes(20 << 20)})
    TinyImage(tars=[image, TinyImage.tar_of({"b": b"b\n"}),
                    TinyImage.tar_of({"c": bytes(10 << 20)})]).serve(fake)
    procs = [reg.popen("pull", "-q", "--tls-verify=false", f"{fake.host}/tiny:1",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len([p for p in (store / "layers").iterdir() if p.is_dir()]) == 3
    assert len(ok(reg("images", "-q")).split()) == 1
    assert not list((store / "tmp").iterdir())


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_layers_of_every_compression_unpack_in_worker_processes(reg, fake, store,
                                                                 compression):
    import shutil

    if compression == "zstd" and not shutil.which("zstd"):
        pytest.skip("no zstd program")
    TinyImage(b"packed\n", compression, layer_count=3).serve(fake)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert layer_files(store) == {"hello": b"packed\n", "hello1": b"packed\n",
                                  "hello2": b"packed\n"}
