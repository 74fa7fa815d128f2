"""Docker's json-file log (engine/logfile.py): the writer's exact format as moby's
jsonfilelog and log copier write it, the reader as moby's json-file reader reads it,
and docker's --since/--until values (engine/container_logs.py)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from rootless.engine.container_logs import tail_parse, timestamp_parse
from rootless.engine.logfile import (PARTIAL_SIZE, LogWriter, log_entries, time_parse,
                                     time_rfc3339nano_fixed)
from rootless.errors import RootlessError

T0 = 1796047200.123456  # 2026-11-30T14:00:00.123456Z
T0_TEXT = "2026-11-30T14:00:00.123456Z"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "container-json.log"


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def objects(path: Path) -> list[dict]:
    return [json.loads(line) for line in lines_of(path)]


def write(path: Path, *chunks: tuple[str, bytes], now: float = T0, flush=False) -> None:
    with LogWriter(path) as writer:
        for stream, data in chunks:
            writer.write(stream, data, now=now)
        if flush:
            writer.flush()


# ---- the writer: docker's exact bytes ----

def test_a_line_is_one_json_object_in_dockers_key_order(log):
    write(log, ("stdout", b"hello\n"))
    assert log.read_bytes() == (b'{"log":"hello\\n","stream":"stdout",'
                                b'"time":"2026-11-30T14:00:00.123456Z"}\n')


def test_time_is_rfc3339nano_in_utc_without_trailing_zeros(log):
    write(log, ("stdout", b"a\n"), now=1796047200.5)
    write(log, ("stdout", b"b\n"), now=1796047201.0)
    assert [o["time"] for o in objects(log)] == ["2026-11-30T14:00:00.5Z",
                                                 "2026-11-30T14:00:01Z"]


def test_time_without_now_has_nanoseconds_of_the_clock(log):
    before = time.time_ns()
    write(log, ("stdout", b"a\n"), now=None)
    after = time.time_ns()
    stamp = time_parse(objects(log)[0]["time"])
    assert before <= stamp <= after


def test_each_newline_ends_an_entry_and_stays_in_it(log):
    write(log, ("stdout", b"one\ntwo\n\nthree\n"))
    assert [o["log"] for o in objects(log)] == ["one\n", "two\n", "\n", "three\n"]


def test_a_line_without_newline_waits_for_the_rest(log):
    with LogWriter(log) as writer:
        writer.write("stdout", b"hel", now=T0)
        assert log.read_bytes() == b""
        writer.write("stdout", b"lo\nwor", now=T0 + 1)
        assert [o["log"] for o in objects(log)] == ["hello\n"]


def test_flush_writes_the_rest_of_a_line_without_newline(log):
    write(log, ("stdout", b"done\nno newline"), flush=True)
    assert [o["log"] for o in objects(log)] == ["done\n", "no newline"]


def test_a_line_of_more_than_16k_is_split_into_16k_entries_without_newline(log):
    write(log, ("stdout", b"x" * (2 * PARTIAL_SIZE + 10) + b"\n"))
    logs = [o["log"] for o in objects(log)]
    assert PARTIAL_SIZE == 16384
    assert logs == ["x" * PARTIAL_SIZE, "x" * PARTIAL_SIZE, "x" * 10 + "\n"]


def test_a_line_of_exactly_16k_leaves_its_newline_alone(log):
    # moby's copier: a full buffer without a newline is logged before the "\n" is read
    write(log, ("stdout", b"y" * PARTIAL_SIZE + b"\n"))
    assert [o["log"] for o in objects(log)] == ["y" * PARTIAL_SIZE, "\n"]


def test_a_line_one_byte_short_of_16k_is_one_entry(log):
    write(log, ("stdout", b"z" * (PARTIAL_SIZE - 1) + b"\n"))
    assert [o["log"] for o in objects(log)] == ["z" * (PARTIAL_SIZE - 1) + "\n"]


def test_the_16k_split_counts_bytes_across_writes(log):
    with LogWriter(log) as writer:
        for _ in range(4):
            writer.write("stdout", b"a" * 5000, now=T0)
    assert [len(o["log"]) for o in objects(log)] == [PARTIAL_SIZE]


def test_the_pieces_of_a_long_line_share_the_time_of_the_first(log):
    with LogWriter(log) as writer:
        writer.write("stdout", b"p" * PARTIAL_SIZE, now=T0)
        writer.write("stdout", b"p" * PARTIAL_SIZE, now=T0 + 5)
        writer.write("stdout", b"end\n", now=T0 + 9)
        writer.write("stdout", b"next\n", now=T0 + 10)
    times = [o["time"] for o in objects(log)]
    assert times == [T0_TEXT] * 3 + ["2026-11-30T14:00:10.123456Z"]


def test_stdout_and_stderr_interleave_by_line(log):
    with LogWriter(log) as writer:
        writer.write("stdout", b"out-", now=T0)
        writer.write("stderr", b"err line\n", now=T0)
        writer.write("stdout", b"line\n", now=T0)
    assert [(o["stream"], o["log"]) for o in objects(log)] == [
        ("stderr", "err line\n"), ("stdout", "out-line\n")]


def test_flush_writes_both_streams_partial_lines(log):
    with LogWriter(log) as writer:
        writer.write("stdout", b"o", now=T0)
        writer.write("stderr", b"e", now=T0)
        writer.flush()
    assert sorted((o["stream"], o["log"]) for o in objects(log)) == [
        ("stderr", "e"), ("stdout", "o")]


def test_html_characters_are_escaped_as_moby_does(log):
    write(log, ("stdout", b'<a href="x">&\\</a>\n'))
    assert lines_of(log)[0].startswith(
        b'{"log":"\\u003ca href=\\"x\\"\\u003e\\u0026\\\\\\u003c/a\\u003e\\n"')


def test_control_characters_are_u00_escapes_but_cr_and_lf_are_short(log):
    write(log, ("stdout", b"\t\x1b[31m\x7f\r\n"))
    assert lines_of(log)[0].startswith(b'{"log":"\\u0009\\u001b[31m\x7f\\r\\n"')


def test_each_byte_of_invalid_utf8_becomes_one_replacement_escape(log):
    # Go's utf8.DecodeRune yields one RuneError per bad byte: E2 82 (cut short) is two
    write(log, ("stdout", b"a\xff\xe2\x82b\n"))
    assert lines_of(log)[0].startswith(b'{"log":"a\\ufffd\\ufffd\\ufffdb\\n"')


def test_valid_utf8_is_written_raw_and_line_separators_escaped(log):
    write(log, ("stdout", "é✓\ufffd\u2028\u2029\n".encode()))
    assert lines_of(log)[0].startswith(
        b'{"log":"' + "é✓\ufffd".encode() + b'\\u2028\\u2029\\n"')


def test_every_line_is_valid_json_for_any_bytes(log):
    write(log, ("stdout", bytes(range(256)) * 3 + b"\n"))
    for obj in objects(log):
        assert set(obj) == {"log", "stream", "time"}


def test_writes_append_to_an_existing_log(log):
    write(log, ("stdout", b"first\n"))
    write(log, ("stderr", b"second\n"))
    assert [o["log"] for o in objects(log)] == ["first\n", "second\n"]


def test_the_log_is_created_private(log):
    write(log, ("stdout", b"a\n"))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_writer_must_not_follow_a_symlink(log, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    log.symlink_to(target)
    with pytest.raises(OSError) as info:
        LogWriter(log)
    assert info.value.errno == 40  # ELOOP
    assert target.read_bytes() == b""


def test_writer_must_not_hang_on_a_fifo(log):
    os.mkfifo(log)
    with pytest.raises(OSError) as info:
        LogWriter(log)
    assert info.value.errno == 6  # ENXIO: a FIFO nobody reads, refused at open


def test_a_full_disk_drops_entries_without_failing_the_writer(log, monkeypatch):
    import errno

    from rootless.engine import logfile

    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with LogWriter(log) as writer:
        monkeypatch.setattr(logfile.os, "write", full)
        writer.write("stdout", b"lost\n", now=T0)
        monkeypatch.setattr(logfile.os, "write", real_write)
        writer.write("stdout", b"kept\n", now=T0)
        assert writer.error is not None and writer.error.errno == errno.ENOSPC
    assert [e.data for e in log_entries(log)] == [b"kept\n"]


def test_an_entry_torn_by_a_failed_write_stands_alone(log, monkeypatch):
    import errno

    from rootless.engine import logfile

    real_write = os.write
    calls = []

    def torn(fd, data):
        if not calls:
            calls.append(1)
            return real_write(fd, bytes(data)[:10])
        raise OSError(errno.EIO, "Input/output error")

    with LogWriter(log) as writer:
        writer.write("stdout", b"before\n", now=T0)
        monkeypatch.setattr(logfile.os, "write", torn)
        writer.write("stdout", b"torn\n", now=T0)
        monkeypatch.setattr(logfile.os, "write", real_write)
        writer.write("stdout", b"after\n", now=T0)
    assert [e.data for e in log_entries(log)] == [b"before\n", b"after\n"]


def test_writer_refuses_an_unknown_stream(log):
    with LogWriter(log) as writer, pytest.raises(ValueError, match="no such log stream"):
        writer.write("stdin", b"x\n")


# ---- the reader ----

def test_reader_gives_back_the_bytes_written(log):
    data = b"caf\xc3\xa9 <&> \t\x1b\n"
    write(log, ("stdout", data), ("stderr", b"oops\n"))
    entries = list(log_entries(log))
    assert [(e.stream, e.data) for e in entries] == [("stdout", data),
                                                     ("stderr", b"oops\n")]
    assert entries[0].time == 1796047200123456000


def test_reader_of_a_missing_log_gives_nothing(log):
    assert list(log_entries(log)) == []


def test_reader_refuses_a_symlink(log, tmp_path):
    (tmp_path / "x").write_text('{"log":"x\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n')
    log.symlink_to(tmp_path / "x")
    with pytest.raises(RootlessError, match="not a regular file"):
        list(log_entries(log))


def test_reader_refuses_a_fifo_without_waiting(log):
    os.mkfifo(log)
    with pytest.raises(RootlessError, match="not a regular file"):
        list(log_entries(log))


def test_tail_gives_the_last_lines(log):
    write(log, *[("stdout", b"%d\n" % i) for i in range(10)])
    assert [e.data for e in log_entries(log, tail=3)] == [b"7\n", b"8\n", b"9\n"]
    assert list(log_entries(log, tail=0)) == []
    assert len(list(log_entries(log, tail=50))) == 10


def test_tail_reaches_back_across_read_blocks(log):
    write(log, *[("stdout", b"%06d" % i + b"." * 200 + b"\n") for i in range(2000)])
    entries = list(log_entries(log, tail=1500))
    assert len(entries) == 1500 and entries[0].data.startswith(b"000500")


def test_since_and_until_select_by_time(log):
    for i in range(5):
        write(log, ("stdout", b"%d\n" % i), now=T0 + i)
    ns = int(T0 * 1e9)
    assert [e.data for e in log_entries(log, since=ns + 2 * 10**9)] == [b"2\n", b"3\n",
                                                                         b"4\n"]
    assert [e.data for e in log_entries(log, until=ns + 1 * 10**9 + 1)] == [b"0\n", b"1\n"]


def test_a_damaged_line_is_skipped(log):
    write(log, ("stdout", b"a\n"))
    with open(log, "ab") as f:
        f.write(b"not json\n")
    write(log, ("stdout", b"b\n"))
    assert [e.data for e in log_entries(log)] == [b"a\n", b"b\n"]


def test_follow_reads_appended_lines_until_stopped_and_drained(log):
    write(log, ("stdout", b"before\n"))
    done = threading.Event()

    def later():
        time.sleep(0.3)
        write(log, ("stdout", b"during\n"), now=None)
        write(log, ("stdout", b"last\n"), now=None)
        done.set()

    threading.Thread(target=later).start()
    entries = list(log_entries(log, follow=True, stopped=done.is_set, poll=0.02))
    assert [e.data for e in entries] == [b"before\n", b"during\n", b"last\n"]


def test_follow_with_tail_0_shows_only_new_lines(log):
    write(log, ("stdout", b"old\n"))
    done = threading.Event()

    def later():
        time.sleep(0.2)
        write(log, ("stdout", b"new\n"), now=None)
        done.set()

    threading.Thread(target=later).start()
    entries = list(log_entries(log, tail=0, follow=True, stopped=done.is_set, poll=0.02))
    assert [e.data for e in entries] == [b"new\n"]


def test_details_prefixes_the_attributes_and_a_space(log):
    log.write_bytes(b'{"log":"x\\n","stream":"stdout","attrs":{"b":"2 3","a":"1"},'
                    b'"time":"2026-11-30T14:00:00Z"}\n'
                    b'{"log":"y\\n","stream":"stdout","time":"2026-11-30T14:00:00Z"}\n')
    assert [e.data for e in log_entries(log, details=True)] == [b"a=1,b=2+3 x\n", b" y\n"]


def test_timestamps_are_printed_with_nine_digits():
    assert time_rfc3339nano_fixed(1796047200_500000000) == "2026-11-30T14:00:00.500000000Z"
    assert time_rfc3339nano_fixed(1796047200_000000000) == "2026-11-30T14:00:00.000000000Z"


def test_log_times_parse_with_any_fraction_and_zone():
    assert time_parse("2026-11-30T14:00:00Z") == 1796047200 * 10**9
    assert time_parse("2026-11-30T14:00:00.123456789Z") == 1796047200_123456789
    assert time_parse("2026-11-30T15:00:00.5+01:00") == 1796047200_500000000
    assert time_parse("yesterday") is None


# ---- --since, --until and --tail as docker reads them ----

NOW = 1796047200 * 10**9 + 700_000_000


@pytest.mark.parametrize("value, expected", [
    ("10m", "2026-11-30T13:50:00Z"),  # a Go duration before now, in whole seconds
    ("1h30m", "2026-11-30T12:30:00Z"),
    ("1.5s", "2026-11-30T13:59:59Z"),  # 13:59:59.2, cut to the second
    ("2026-11-30T14:00:00Z", "2026-11-30T14:00:00Z"),
    ("2026-11-30T14:00:00.25Z", "2026-11-30T14:00:00.25Z"),
    ("2026-11-30T16:00:00+02:00", "2026-11-30T14:00:00Z"),
    ("2026-11-30T09:00:00-05:00", "2026-11-30T14:00:00Z"),
    ("2026-11-30T14Z", "2026-11-30T14:00:00Z"),
    ("2026-11-30T14:30Z", "2026-11-30T14:30:00Z"),
    ("2026-11-30Z", "2026-11-30T00:00:00Z"),
    ("1796047200", "2026-11-30T14:00:00Z"),  # Unix time
    ("1796047200.25", "2026-11-30T14:00:00.25Z"),
    ("0", "1970-01-01T00:00:00Z"),
])
def test_since_values_in_dockers_forms(value, expected):
    from rootless.engine.logfile import time_rfc3339nano

    assert time_rfc3339nano(timestamp_parse(value, "since", NOW)) == expected


def test_since_without_zone_is_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "UTC+03")  # POSIX sign: three hours west of UTC
    time.tzset()
    try:
        from rootless.engine.logfile import time_rfc3339nano

        assert time_rfc3339nano(timestamp_parse("2026-11-30T11:00", "since", NOW)) == \
            "2026-11-30T14:00:00Z"
        assert time_rfc3339nano(timestamp_parse("2026-11-30", "since", NOW)) == \
            "2026-11-30T03:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("value, message", [
    ("soon", 'invalid value for "since": failed to parse value as time or duration: '
             '"soon"'),
    ("2026-13-01", 'invalid value for "since": parsing time "2026-13-01": month out of '
                   'range'),
    ("2026-02-30", 'invalid value for "since": parsing time "2026-02-30": day out of range'),
    ("2026-11-30T14:00:00ZZ", 'invalid value for "since": parsing time '
                              '"2026-11-30T14:00:00ZZ" as "2006-01-02T15:04:05Z07:00": '
                              'cannot parse'),
    ("1.2.3", 'invalid value for "since": failed to parse value as time or duration: '
              '"1.2.3"'),
])
def test_bad_since_values_are_refused_with_the_clis_words(value, message):
    with pytest.raises(RootlessError) as info:
        timestamp_parse(value, "since", NOW)
    assert str(info.value) == message


def test_tail_is_read_as_the_daemon_reads_it():
    assert tail_parse("all") is None  # anything but a number: all
    assert tail_parse("5") == 5
    assert tail_parse("0") == 0
    assert tail_parse("-1") is None
