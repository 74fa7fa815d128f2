"""The FUSE overlay's credentials seam (fs/fuse_access.py): the request's own ids, or
the fakeroot's faked ones as the monitor publishes them (runtime/fakeroot_procs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rootless.fs import fuse_access
from rootless.fs.fuse_access import Creds, FakerootCreds, allowed, request_creds
from rootless.runtime.fakeroot_procs import CREDS_FILE


def start_time(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_text()
    return int(data[data.rfind(")") + 2:].split()[19])


def publish(directory: Path, threads: dict) -> None:
    (directory / CREDS_FILE).write_text(json.dumps({"pidns": None, "threads": threads}))


@pytest.fixture
def source():
    yield fuse_access.set_creds_source
    fuse_access.set_creds_source(None)


def test_without_a_source_the_requests_own_ids_hold():
    assert request_creds(1234, 1000, 100) == Creds(1000, 100)


def test_a_thread_the_fakeroot_knows_gets_its_faked_fs_ids(tmp_path, source):
    me = os.getpid()  # our root is "/", so the container's /proc is ours here
    faked = [[0, 42, 42, 42], [0, 42, 42, 43], [7]]  # real, effective, saved, fs
    publish(tmp_path, {str(me): [start_time(me), faked, me]})
    source(FakerootCreds(str(tmp_path), me))
    assert request_creds(me, 0, 0) == Creds(42, 43, frozenset({7}))


def test_a_thread_the_fakeroot_does_not_know_keeps_its_ids(tmp_path, source):
    me = os.getpid()
    publish(tmp_path, {"999999": [1, [[0] * 4, [0] * 4, []], 999999]})
    source(FakerootCreds(str(tmp_path), me))
    assert request_creds(me, 0, 0) == Creds(0, 0)


def test_no_published_table_means_no_faked_ids(tmp_path, source):
    source(FakerootCreds(str(tmp_path), os.getpid()))
    assert request_creds(os.getpid(), 1000, 1000) == Creds(1000, 1000)


def test_faked_non_root_is_checked_as_that_user():
    root_file = (0, 0, 0o644)
    assert allowed(root_file, 0o100000, Creds(0, 0), 2)
    assert not allowed(root_file, 0o100000, Creds(42, 42), 2)
    assert allowed((42, 42, 0o700), 0o040000, Creds(42, 42), 7)


def _ready(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


def test_with_a_watch_a_table_published_later_is_seen_after_its_event(tmp_path, source):
    me = os.getpid()
    creds = FakerootCreds(str(tmp_path), me)
    source(creds)
    assert creds.watch_changes() >= 0
    assert request_creds(me, 0, 0) == Creds(0, 0)  # no table yet
    faked = [[0, 42, 42, 42], [0, 42, 42, 42], []]
    # the monitor's way (fakeroot_procs.save): a temporary, renamed over the table
    (tmp_path / "next.json").write_text(json.dumps(
        {"pidns": None, "threads": {str(me): [start_time(me), faked, me]}}))
    os.replace(tmp_path / "next.json", tmp_path / CREDS_FILE)
    assert _ready(creds.watch)  # queued within rename(2), before the next request
    creds.changed()
    assert not _ready(creds.watch)
    assert request_creds(me, 0, 0) == Creds(42, 42)


def test_with_a_watch_no_request_stats_the_table_until_an_event(tmp_path, source,
                                                               monkeypatch):
    me = os.getpid()
    creds = FakerootCreds(str(tmp_path), me)
    source(creds)
    creds.watch_changes()
    request_creds(me, 0, 0)  # the first ask reads it

    def no_stat(*args, **kwargs):
        raise AssertionError("stat(2) of the table without an event")

    monkeypatch.setattr(os, "stat", no_stat)
    assert request_creds(me, 0, 0) == Creds(0, 0)
