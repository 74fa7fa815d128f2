"""`stats` from a container's cgroup v2 directory (engine/cgroups.py makes it): CPU
time, memory and its limit, pids, block I/O. Kernel files, read bounded; a controller
that is not enabled reads as None, so the caller falls back on /proc for it."""

from __future__ import annotations

import os

READ_LIMIT = 1 << 16


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read(READ_LIMIT).decode(errors="replace")


def _keyed(path: str) -> dict[str, int]:
    """A flat-keyed file ("usage_usec 1234" lines: cpu.stat, memory.stat)."""
    result = {}
    try:
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                result[key] = int(value)
    except OSError:
        pass
    return result


def _single(path: str) -> int | None:
    """A one-value file: a number, or None for "max" and for what cannot be read."""
    try:
        value = _read(path).strip()
    except OSError:
        return None
    return int(value) if value.isdigit() else None


def _io_bytes(path: str) -> tuple[int | None, int | None]:
    """Bytes read and written, summed over devices ("8:0 rbytes=1 wbytes=2 ..." lines)."""
    try:
        text = _read(os.path.join(path, "io.stat"))
    except OSError:
        return None, None
    read = written = 0
    for line in text.splitlines():
        pairs = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
        read += int(pairs.get("rbytes", "0")) if pairs.get("rbytes", "0").isdigit() else 0
        written += int(pairs.get("wbytes", "0")) if pairs.get("wbytes", "0").isdigit() else 0
    return read, written


def cgroup_stats(path: str) -> dict[str, int | None]:
    """What `stats` shows, from the container's cgroup; None where a controller is not
    enabled (memory_max and pids_max are None when unlimited too). Docker's memory
    usage is memory_current - memory_inactive_file on cgroup v2."""
    join = os.path.join
    cpu, memory = _keyed(join(path, "cpu.stat")), _keyed(join(path, "memory.stat"))
    io_read, io_write = _io_bytes(path)
    return {
        "cpu_usage_usec": cpu.get("usage_usec"), "cpu_user_usec": cpu.get("user_usec"),
        "cpu_system_usec": cpu.get("system_usec"),
        "memory_current": _single(join(path, "memory.current")),
        "memory_max": _single(join(path, "memory.max")),
        "memory_inactive_file": memory.get("inactive_file"),
        "pids_current": _single(join(path, "pids.current")),
        "pids_max": _single(join(path, "pids.max")),
        "io_read_bytes": io_read, "io_write_bytes": io_write,
    }
