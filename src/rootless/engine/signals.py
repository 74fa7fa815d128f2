"""Signal names and numbers as docker's `kill -s`, `--stop-signal` and STOPSIGNAL take them."""

from __future__ import annotations

import signal

from rootless.errors import UsageError


def parse_signal(text: str) -> int:
    """"9", "KILL", "SIGKILL", "sigkill", "SIGRTMIN+3" -> the number; docker's error for
    anything else (0 and numbers past the last signal too)."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        number = int(value)
        if 0 < number <= signal.SIGRTMAX:
            return number
        raise UsageError(f"Invalid signal: {text}")
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    for base in ("SIGRTMIN", "SIGRTMAX"):
        if name.startswith(base) and name != base:
            offset = name[len(base):]
            if offset[:1] in "+-" and offset[1:].isdigit():
                number = getattr(signal, base) + int(offset)
                if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                    return number
            raise UsageError(f"Invalid signal: {text}")
    found = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if not isinstance(found, signal.Signals):
        raise UsageError(f"Invalid signal: {text}")
    return int(found)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
