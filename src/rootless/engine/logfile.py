"""Docker's json-file log: the writer the monitor feeds, and the reader of `logs`.

The format is moby's (daemon/logger/jsonfilelog, daemon/logger/copier.go), byte for
byte, so that tools reading docker's logs read ours:

- one JSON object per line: {"log":"text\\n","stream":"stdout","time":"<RFC3339Nano>"}
  with the time in UTC and Go's RFC3339Nano (trailing zeros of the fraction dropped);
- a line ends at each "\\n", which stays in "log";
- output that reaches 16 KiB without a newline is cut into entries of exactly 16 KiB
  with no "\\n" (docker's partial messages); every piece of one such line, and the
  line's final piece, carries the time of its first piece;
- what is left when a stream closes is written without "\\n" (flush());
- stdout and stderr keep separate partial lines, so they interleave by line;
- the container's bytes are escaped as moby's jsonlog does (not as Python's json):
  "<", ">", "&", U+2028 and U+2029 as \\u escapes, control characters other than \\n
  and \\r as \\u00XX, and every byte of invalid UTF-8 as \\ufffd.

The monitor imports this module; it keeps to os and time (its RSS budget is 20 MB).
The reader parses with json, imported when a log is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from rootless.errors import RootlessError
from rootless.records import record

# moby's copier buffer (defaultBufSize): a line longer than this is split
PARTIAL_SIZE = 16 * 1024
STREAMS = ("stdout", "stderr")

# moby's ffjsonWriteJSONBytesAsString, as a str.translate table over text decoded with
# surrogateescape (each invalid byte becomes one of U+DC80..U+DCFF, as Go's
# utf8.DecodeRune yields one RuneError per invalid byte)
_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord('"'): '\\"', ord("\\"): "\\\\",
                 ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})
_ESCAPES.update({c: "\\ufffd" for c in range(0xDC80, 0xDD00)})


def json_string(data: bytes) -> bytes:
    """`data` as a JSON string literal, escaped exactly as moby's json-file writer."""
    text = data.decode("utf-8", "surrogateescape").translate(_ESCAPES)
    return b'"' + text.encode("utf-8") + b'"'


def time_rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano of a UTC time: the fraction without trailing zeros, and
    none at all on a whole second."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{frac:09d}".rstrip("0") + "Z" if frac else text + "Z"


def time_rfc3339nano_fixed(ns: int) -> str:
    """Docker's RFC3339NanoFixed (`logs -t`): always nine digits of fraction."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class LogWriter:
    """Appends a container's stdout and stderr to its json-file log.

    Opened O_APPEND (each entry batch is one write(2), so concurrent readers never see
    half an entry from a complete write) and O_NOFOLLOW: the file lives in the
    container's directory, which the container cannot reach, but a symlink planted
    there must not redirect the monitor's writes. O_NONBLOCK keeps open(2) of a FIFO
    from hanging (it fails with ENXIO); a regular file ignores it.
    """

    def __init__(self, path: os.PathLike | str, dir_fd: int | None = None) -> None:
        flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NONBLOCK)
        self.fd: int | None = os.open(path, flags, 0o600, dir_fd=dir_fd)
        if (os.fstat(self.fd).st_mode & 0o170000) != 0o100000:
            self.close()
            raise RootlessError(f"container log is not a regular file: {path}")
        self._pending = {name: bytearray() for name in STREAMS}
        self._partial_time: dict[str, int | None] = {name: None for name in STREAMS}
        self._second = (-1, "")  # the last whole second formatted, and its text
        self._torn = False  # the last write stopped inside an entry
        self.error: OSError | None = None  # the first write that failed

    def write(self, stream: str, data: bytes, now: float | None = None) -> None:
        """Log `data` read from `stream` ("stdout" or "stderr") at `now` (seconds since
        the epoch, kept to the microsecond; default: the clock, to the nanosecond)."""
        if stream not in self._pending:
            raise ValueError(f"no such log stream: {stream}")
        if not data:
            return
        when = time.time_ns() if now is None else round(now * 1_000_000) * 1000
        out: list[bytes] = []
        pending = self._pending[stream]
        pos, size = 0, len(data)
        while pos < size:
            newline = data.find(b"\n", pos)
            end = size if newline < 0 else newline
            room = PARTIAL_SIZE - len(pending)
            if end - pos >= room:  # the buffer fills before a newline: a partial entry
                pending += data[pos:pos + room]
                pos += room
                out.append(self._partial(stream, when))
                continue
            if newline < 0:
                pending += data[pos:]
                break
            pending += data[pos:newline + 1]
            pos = newline + 1
            first = self._partial_time[stream]
            out.append(self._entry(stream, pending, when if first is None else first))
            pending.clear()
            self._partial_time[stream] = None
        self._write(out)

    def flush(self, stream: str | None = None) -> None:
        """Write what is left of a line without its newline, as docker does when the
        stream closes (both streams by default)."""
        when, names = time.time_ns(), STREAMS if stream is None else (stream,)
        out = [self._partial(name, when) for name in names if self._pending[name]]
        for name in names:
            self._partial_time[name] = None
        self._write(out)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _partial(self, stream: str, when: int) -> bytes:
        """The pending bytes of `stream` as one entry without a newline; the pieces of
        one line share the time of its first piece (moby's copier partialTS)."""
        first = self._partial_time[stream]
        if first is None:
            first = self._partial_time[stream] = when
        pending = self._pending[stream]
        entry = self._entry(stream, pending, first)
        pending.clear()
        return entry

    def _entry(self, stream: str, line: bytes | bytearray, when: int) -> bytes:
        seconds, frac = divmod(when, 1_000_000_000)
        if self._second[0] != seconds:
            self._second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                   time.gmtime(seconds)))
        stamp = (f"{self._second[1]}.{frac:09d}".rstrip("0") if frac
                 else self._second[1]) + "Z"
        return (b'{"log":' + json_string(bytes(line)) + b',"stream":"' + stream.encode()
                + b'","time":"' + stamp.encode() + b'"}\n')

    def _write(self, entries: list[bytes]) -> None:
        """One write(2) of the entries. A failure (ENOSPC, EIO) drops them, as moby's
        copier drops what its driver cannot log: the monitor, whose death would take
        the container with it, must outlive a full disk. `error` keeps the first one;
        after a short write the next entries start on a new line, so that the torn
        one stands alone (the reader skips it)."""
        if not entries or self.fd is None:
            return
        data = b"".join(entries)
        if self._torn:
            data = b"\n" + data
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:] if done else data)
        except OSError as e:
            self.error = self.error or e
        self._torn = self._torn if done == 0 else done < len(data)


# ---- reading ----

@record
class LogEntry:
    time: int  # nanoseconds since the epoch
    stream: str  # "stdout" or "stderr"
    data: bytes  # the bytes as the container wrote them (invalid UTF-8 as U+FFFD)


def log_open(path: os.PathLike | str) -> int | None:
    """A read descriptor on a log file; None if there is none yet. A symlink or a
    FIFO where the log should be is refused, never followed or waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno != 40:  # ELOOP: a symlink, refused by O_NOFOLLOW
            raise
        raise RootlessError(f"container log is not a regular file: {path}") from None
    if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
        os.close(fd)
        raise RootlessError(f"container log is not a regular file: {path}")
    return fd


def log_entries(path: os.PathLike | str, since: int | None = None,
                until: int | None = None, tail: int | None = None, follow: bool = False,
                stopped: Callable[[], bool] | None = None, details: bool = False,
                poll: float = 0.1) -> Iterator[LogEntry]:
    """The entries of a json-file log, oldest first, as moby's json-file reader gives
    them: the last `tail` lines (None or negative: all, 0: none), then from those the
    ones from `since` on (ns; once one matches, later ones are not checked again, as
    moby's forwarder), stopping at the first after `until` (ns). With `follow`, keep
    reading what is appended, every `poll` seconds, until `stopped()` says the
    container has stopped and the file is drained. `details` puts docker's
    `--details` prefix (the entry's attrs, then a space) before each line."""
    fd = log_open(path)
    if fd is None:
        return
    try:
        offset = _tail_offset(fd, tail) if tail is not None and tail >= 0 else 0
        window = _Window(since, until)
        rest = b""
        while True:
            chunk = os.pread(fd, 1 << 20, offset)
            if chunk:
                offset += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()  # a line still being written, or b""
                for line in lines:
                    entry = _decode(line, details)
                    verdict = _SKIP if entry is None else window.verdict(entry.time)
                    if verdict == _STOP:
                        return
                    if verdict == _TAKE:
                        yield entry
                continue
            if not follow or window.expired() or (stopped is not None and stopped()
                                                  and os.fstat(fd).st_size <= offset):
                return
            time.sleep(poll)
    finally:
        os.close(fd)


_TAKE, _SKIP, _STOP = 0, 1, 2


class _Window:
    """--since and --until as moby's forwarder applies them."""

    def __init__(self, since: int | None, until: int | None) -> None:
        self.since, self.until = since, until

    def verdict(self, when: int) -> int:
        if self.since is not None:
            if when < self.since:
                return _SKIP
            self.since = None  # times need not be monotonic: only up to the first match
        if self.until is not None and when > self.until:
            return _STOP
        return _TAKE

    def expired(self) -> bool:
        """Following past `until` could only find entries after it."""
        return self.until is not None and time.time_ns() > self.until


def _tail_offset(fd: int, lines: int) -> int:
    """Where the last `lines` complete lines of the file begin, read backwards in
    blocks as moby's tailfile does; 0 lines: the end of the last complete line (a
    line still being written is not counted, and is read once it is complete)."""
    end, found = os.fstat(fd).st_size, 0
    while end > 0:
        begin = max(0, end - 65536)
        data = os.pread(fd, end - begin, begin)
        i = len(data)
        while (i := data.rfind(b"\n", 0, i)) >= 0:
            found += 1
            if found == lines + 1:
                return begin + i + 1
        end = begin
    return 0


def _decode(line: bytes, details: bool) -> LogEntry | None:
    """One line of the file; None for one that is not a log entry (skipped, where
    moby would stop reading the file)."""
    import json

    try:
        obj = json.loads(line)
        text, stream, when = obj.get("log", ""), obj.get("stream", ""), obj["time"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(text, str) or not isinstance(stream, str) or \
            not isinstance(when, str) or (when := time_parse(when)) is None:
        return None
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate's escape: Go decodes it as U+FFFD
        data = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
    if details:
        data = _attrs(obj.get("attrs")) + b" " + data
    return LogEntry(when, stream, data)


def _attrs(attrs: object) -> bytes:
    """moby's attrsByteSlice: k=v pairs, query-escaped, comma-separated (sorted: Go's
    map order is random)."""
    if not isinstance(attrs, dict) or not attrs:
        return b""
    from urllib.parse import quote_plus

    return ",".join(f"{quote_plus(str(k))}={quote_plus(str(v))}"
                    for k, v in sorted(attrs.items())).encode()


_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    years = year - 1
    days = years * 365 + years // 4 - years // 100 + years // 400
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days += _DAYS_BEFORE_MONTH[month - 1] + (1 if leap and month > 2 else 0) + day - 1
    return days - 719162  # days from 0001-01-01 to 1970-01-01


def time_parse(text: str) -> int | None:
    """An RFC3339 time with any fraction and zone ("2026-11-30T14:00:00.5Z",
    "...+01:00") as nanoseconds since the epoch; None if it is not one."""
    if len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] != "T" or \
            text[13] != ":" or text[16] != ":":
        return None
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
        rest, frac = text[19:], 0
        if rest.startswith("."):
            digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
            frac = int(rest[1:1 + digits][:9].ljust(9, "0")) if digits else 0
            rest = rest[1 + digits:]
        if rest in ("Z", "z"):
            offset = 0
        elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
            offset = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60
            offset = -offset if rest[0] == "-" else offset
        else:
            return None
        if not 1 <= month <= 12 or not 1 <= day <= 31:
            return None
    except ValueError:
        return None
    seconds = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60
               + second - offset)
    return seconds * 1_000_000_000 + frac
