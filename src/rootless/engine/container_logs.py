"""`logs`: a container's json-file log (engine/logfile.py) read as docker's daemon reads
it, and docker's --since/--until values.

--since and --until take what the docker CLI's GetTimestamp (moby client/internal/
timestamp) takes: a Go duration before now ("10m", "1h30m"), an RFC3339 time with or
without zone and fraction ("2026-11-30T14:00:00Z", "2026-11-30T14:00", "2026-11-30"
in local time), or a Unix time with a fraction ("1796047200.5").
"""

from __future__ import annotations

import re
import time
from typing import Iterator

from rootless.engine.logfile import LogEntry, days_from_civil
from rootless.errors import RootlessError

# Go layouts by the shape of the value, as GetTimestamp picks them: (layout, pattern)
_DATE = r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
_ZONE = r"(?P<z>Z|[+-]\d{2}:\d{2})"
_FRAC = r"(?:\.(?P<f>\d+))?"
_LAYOUTS = {
    # (has a zone, layout) -> pattern
    (True, "2006-01-02T15:04:05.999999999Z07:00"):
        rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}}):(?P<s>\d{{2}}){_FRAC}{_ZONE}",
    (True, "2006-01-02T15Z07:00"): rf"{_DATE}T(?P<h>\d{{2}}){_ZONE}",
    (True, "2006-01-02T15:04Z07:00"): rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}}){_ZONE}",
    (True, "2006-01-02T15:04:05Z07:00"):
        rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}}):(?P<s>\d{{2}}){_FRAC}{_ZONE}",
    (True, "2006-01-02Z07:00"): rf"{_DATE}{_ZONE}",
    (False, "2006-01-02T15:04:05.999999999"):
        rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}}):(?P<s>\d{{2}}){_FRAC}",
    (False, "2006-01-02T15"): rf"{_DATE}T(?P<h>\d{{2}})",
    (False, "2006-01-02T15:04"): rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}})",
    (False, "2006-01-02T15:04:05"):
        rf"{_DATE}T(?P<h>\d{{2}}):(?P<mi>\d{{2}}):(?P<s>\d{{2}}){_FRAC}",
    (False, "2006-01-02"): _DATE,
}


def timestamp_parse(value: str, flag: str, now_ns: int | None = None) -> int:
    """A --since/--until value as nanoseconds since the epoch, as the docker CLI and
    daemon read it; RootlessError with the CLI's wording for a value it refuses."""
    from rootless.engine.go_duration import parse_duration
    from rootless.errors import UsageError

    now_ns = time.time_ns() if now_ns is None else now_ns
    if value != "0":
        try:
            seconds = parse_duration(value)
        except UsageError:
            pass
        else:  # reference.Add(-d).Unix(): whole seconds
            return (now_ns - round(seconds * 1e9)) // 1_000_000_000 * 1_000_000_000
    try:
        return _time_parse(value, now_ns)
    except ValueError as e:
        if "-" in value:
            raise RootlessError(f'invalid value for "{flag}": {e}') from None
    unix = _unix_parse(value)
    if unix is None:
        raise RootlessError(f'invalid value for "{flag}": failed to parse value as time '
                            f'or duration: "{value}"')
    return unix


def _layout(value: str) -> tuple[bool, str]:
    """GetTimestamp's choice of Go layout for `value`: (zoned, layout)."""
    zoned = any(c in value for c in "zZ+") or value.count("-") == 3
    if "." in value:
        return zoned, ("2006-01-02T15:04:05.999999999Z07:00" if zoned
                       else "2006-01-02T15:04:05.999999999")
    if "T" in value:
        colons = value.count(":")
        if zoned and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the zone offset's own colon
        hours = {0: "2006-01-02T15", 1: "2006-01-02T15:04"}.get(colons,
                                                                "2006-01-02T15:04:05")
        return zoned, hours + ("Z07:00" if zoned else "")
    return zoned, "2006-01-02Z07:00" if zoned else "2006-01-02"


def _time_parse(value: str, now_ns: int) -> int:
    """time.Parse (zoned) or time.ParseInLocation in the local zone as it is now;
    ValueError with Go's wording."""
    zoned, layout = _layout(value)
    match = re.fullmatch(_LAYOUTS[(zoned, layout)], value)
    if not match:
        raise ValueError(f'parsing time "{value}" as "{layout}": cannot parse')
    g = {k: v for k, v in match.groupdict().items() if v is not None}
    year, month, day = int(g["y"]), int(g["mo"]), int(g["d"])
    hour, minute, second = int(g.get("h", 0)), int(g.get("mi", 0)), int(g.get("s", 0))
    for name, number, top in (("month", month, 12), ("hour", hour, 23),
                              ("minute", minute, 59), ("second", second, 59)):
        if number > top or (name == "month" and number < 1):
            raise ValueError(f'parsing time "{value}": {name} out of range')
    if not 1 <= day <= _month_days(year, month):
        raise ValueError(f'parsing time "{value}": day out of range')
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    seconds -= _offset(g["z"]) if zoned else time.localtime(now_ns // 10**9).tm_gmtoff
    return seconds * 1_000_000_000 + int(g.get("f", "0")[:9].ljust(9, "0"))


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _offset(zone: str) -> int:
    if zone == "Z":
        return 0
    seconds = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
    return -seconds if zone[0] == "-" else seconds


def _unix_parse(value: str) -> int | None:
    """moby's parseTimestamp: SECONDS[.FRACTION] (Go's ParseInt: an optional sign, digits)."""
    seconds, dot, fraction = value.partition(".")
    if not re.fullmatch(r"[+-]?\d+", seconds) or \
            (dot and not re.fullmatch(r"[+-]?\d+", fraction)):
        return None
    nanos = int(int(fraction) * 10.0 ** (9 - len(fraction))) if dot else 0
    return int(seconds) * 1_000_000_000 + nanos


def tail_parse(value: str) -> int | None:
    """--tail as the daemon reads it (strconv.Atoi, anything else meaning all): None
    for all lines, else the count (0: none)."""
    if not re.fullmatch(r"[+-]?\d+", value):
        return None
    count = int(value)
    return None if count < 0 else count


def container_logs(store, ref: str, since: str = "", until: str = "", tail: str = "all",
                   follow: bool = False, details: bool = False) -> Iterator[LogEntry]:
    """The entries `docker logs` would show for container `ref`; with `follow`, until
    the container stops. A container that has written nothing has no entries."""
    from rootless.engine.container_settings import LOG_FILE
    from rootless.engine.containers import container_dir, container_lookup, container_row
    from rootless.engine.logfile import log_entries

    since_ns = timestamp_parse(since, "since") if since else None
    until_ns = timestamp_parse(until, "until") if until and until != "0" else None
    record = container_lookup(store, ref)

    def stopped() -> bool:
        row = container_row(store, record.id)
        return row is None or not row.running

    follow = follow and not stopped()
    return log_entries(container_dir(store, record.id) / LOG_FILE, since_ns, until_ns,
                       tail_parse(tail), follow, stopped, details)
