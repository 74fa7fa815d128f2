"""Go's time.ParseDuration, which docker's flags use: "300ms", "1.5h", "2h45m", "-1m"."""

from __future__ import annotations

from rootless.errors import UsageError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
          "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds; UsageError with Go's wording for anything time.ParseDuration refuses."""
    original, sign, rest = text, 1.0, text
    if rest[:1] in "+-" and rest:
        sign, rest = (-1.0 if rest[0] == "-" else 1.0), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise UsageError(f'time: invalid duration "{original}"')
    total = 0.0
    while rest:
        number_end = 0
        while number_end < len(rest) and (rest[number_end].isascii() and
                                          (rest[number_end].isdigit() or
                                           rest[number_end] == ".")):
            number_end += 1
        number, rest = rest[:number_end], rest[number_end:]
        if not number or number == "." or number.count(".") > 1:
            raise UsageError(f'time: invalid duration "{original}"')
        unit_end = 0
        while unit_end < len(rest) and not (rest[unit_end].isascii() and
                                            (rest[unit_end].isdigit() or
                                             rest[unit_end] == ".")):
            unit_end += 1
        unit, rest = rest[:unit_end], rest[unit_end:]
        if not unit:
            raise UsageError(f'time: missing unit in duration "{original}"')
        if unit not in _UNITS:
            raise UsageError(f'time: unknown unit "{unit}" in duration "{original}"')
        total += float(number) * _UNITS[unit]
    if total > 9223372036.854775807:  # Go's durations are int64 nanoseconds
        raise UsageError(f'time: invalid duration "{original}"')
    return sign * total
