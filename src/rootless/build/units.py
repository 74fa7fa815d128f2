"""The two unit grammars Dockerfile flags use, as Go parses them (ValueError, Go's words).

- durations (HEALTHCHECK --interval ...): Go's time.ParseDuration, "1m30s", "1.5h", "300ms";
- sizes (RUN --mount=type=tmpfs,size=...): docker/go-units' RAMInBytes, "64m", "1GiB".

engine/go_duration.py parses durations for the run flags; build/ sits below engine/ and
may not import it, and the two differ in the error they raise.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
          "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"[0-9]*(\.[0-9]*)?")
_UNIT = re.compile(r"[^0-9.]*")
_MAX_SECONDS = (2**63 - 1) / 1e9  # Go durations are int64 nanoseconds
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(text: str) -> float:
    """Seconds, as time.ParseDuration reads `text`."""
    invalid = ValueError(f'time: invalid duration "{text}"')
    rest, sign = text, 1.0
    if rest[:1] in ("+", "-") and rest:
        sign, rest = (-1.0 if rest[0] == "-" else 1.0), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise invalid
    total = 0.0
    while rest:
        number = _NUMBER.match(rest).group()
        if number in ("", "."):
            raise invalid
        rest = rest[len(number):]
        unit = _UNIT.match(rest).group()
        rest = rest[len(unit):]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _UNITS[unit]
        if total > _MAX_SECONDS:
            raise invalid
    return sign * total


def parse_size(text: str) -> int:
    """Bytes, as go-units' RAMInBytes reads `text` (binary multiples: 1k = 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    try:
        number = float(match.group(1))
    except ValueError:  # "1.2.3" passes go-units' regex but not its ParseFloat
        raise ValueError(f"invalid size: '{text}'") from None
    unit = match.group(2)
    return int(number * (_SIZE_UNITS[unit.lower()] if unit else 1))
