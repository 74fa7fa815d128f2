"""`stats`: a container's resource use, without cgroups where the user owns none.

Docker reads everything from the container's cgroup. Without one, the same numbers
come from /proc, summed over the container's processes (engine/container_top.py's
container_pids):

- CPU: utime+stime+cutime+cstime of each process (proc(5)). The children's times
  hold the processes that have exited and been waited for inside the container, so
  the total only grows, as the cgroup's usage does; docker's CPU % is the growth of
  that total over the growth of the host's CPU time (the first seven fields of the
  "cpu" line of /proc/stat, as moby's getSystemCPUUsage), times the online CPUs.
- MEM USAGE: the sum of the processes' proportional set sizes (Pss of
  /proc/PID/smaps_rollup, Linux 4.14): a page shared by N processes counts 1/N in
  each, so shared libraries and the busybox binary count once, not once per process,
  which is nearest to what the cgroup charges (docker shows the cgroup's usage less
  its inactive file cache). Where smaps_rollup cannot be read, the RSS (statm).
- LIMIT: the host's MemTotal, or the container's memory limit if it has a smaller one.
- NET I/O: the bytes of every interface but lo in the init's network namespace
  (/proc/PID/net/dev); 0B / 0B for a container on the host's network, as docker shows.
- BLOCK I/O: read_bytes and write_bytes of /proc/PID/io (storage I/O, children
  included once waited for).
- PIDS: the tasks (threads) of the processes, as the cgroup's pids.current counts.

With a cgroup v2 directory of the container's own (engine/cgroups.py makes one where
the user may), CPU, memory (and its limit), pids and block I/O come from cpu.stat,
memory.current less memory.stat's inactive_file, memory.max, pids.current and io.stat
instead, as docker reads them.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class Usage(NamedTuple):
    """One reading of a container (counters are totals since it started)."""

    cpu: int = 0  # ns of CPU time used by the container
    system: int = 0  # ns of CPU time of the whole host (docker's SystemUsage)
    memory: int = 0
    limit: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0
    pids: int = 0


def _read(path: str, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return None


def _keyed(text: str | None, separator: str = " ") -> dict[str, int]:
    """Lines of "key value" (or "key: value kB") as numbers."""
    values: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(separator)
        number = rest.split()[:1]
        if number and number[0].isdigit():
            values[key.strip()] = int(number[0])
    return values


def host_cpu_ns() -> int:
    """docker's SystemUsage: the first seven fields of /proc/stat's "cpu" line."""
    text = _read("/proc/stat", 4096) or ""
    fields = text.split("\n", 1)[0].split()
    ticks = sum(int(f) for f in fields[1:8]) if fields[:1] == ["cpu"] else 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def host_memory() -> int:
    return _keyed(_read("/proc/meminfo"), ":").get("MemTotal", 0) * 1024


def online_cpus() -> int:
    return os.sysconf("SC_NPROCESSORS_ONLN") or 1


def _process(pid: int, page: int) -> tuple[int, int, int, int, int]:
    """(cpu ticks, tasks, memory bytes, read bytes, written bytes) of one process;
    zeros if it is gone."""
    stat = _read(f"/proc/{pid}/stat", 4096)
    if not stat:
        return 0, 0, 0, 0, 0
    fields = stat[stat.rfind(")") + 2:].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    pss = _keyed(_read(f"/proc/{pid}/smaps_rollup", 8192), ":").get("Pss")
    memory = pss * 1024 if pss is not None else int(fields[21]) * page
    io = _keyed(_read(f"/proc/{pid}/io", 4096), ":")
    return ticks, int(fields[17]), memory, io.get("read_bytes", 0), io.get("write_bytes", 0)


def _network(init: int) -> tuple[int, int]:
    """(received, sent) bytes of the init's network namespace, lo left out; (0, 0)
    when it is the host's own."""
    try:
        if os.stat(f"/proc/{init}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
            return 0, 0
    except OSError:
        return 0, 0
    rx = tx = 0
    for line in (_read(f"/proc/{init}/net/dev") or "").splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() != "lo" and len(values) >= 9:
            rx, tx = rx + int(values[0]), tx + int(values[8])
    return rx, tx


def usage_read(init: int, pids: list[int], memory_limit: int = 0,
               cgroup: str | None = None) -> Usage:
    """A reading of the container whose processes are `pids` (init first), from its
    cgroup directory `cgroup` where it has one."""
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    ticks = tasks = memory = read = written = 0
    for pid in pids:
        t, n, m, r, w = _process(pid, page)
        ticks, tasks, memory, read, written = (ticks + t, tasks + n, memory + m,
                                               read + r, written + w)
    host = host_memory()
    limit = min(memory_limit, host) if memory_limit > 0 else host
    rx, tx = _network(init)
    usage = Usage(ticks * 1_000_000_000 // tick, host_cpu_ns(), memory, limit, rx, tx,
                  read, written, tasks)
    return _cgroup_usage(usage, cgroup) if cgroup is not None else usage


def _cgroup_usage(usage: Usage, cgroup: str) -> Usage:
    """The fields the container's cgroup v2 directory counts (engine/cgroup_stats.py:
    None where a controller is not enabled), in place of /proc's."""
    from rootless.engine.cgroup_stats import cgroup_stats

    c = cgroup_stats(cgroup)
    if c["cpu_usage_usec"] is not None:
        usage = usage._replace(cpu=c["cpu_usage_usec"] * 1000)
    memory, inactive = c["memory_current"], c["memory_inactive_file"] or 0
    if memory is not None:  # docker's: usage less the inactive file cache
        usage = usage._replace(memory=memory - inactive if inactive < memory else memory)
    if c["memory_max"] is not None:
        usage = usage._replace(limit=min(c["memory_max"], usage.limit))
    if c["pids_current"] is not None:
        usage = usage._replace(pids=c["pids_current"])
    if c["io_read_bytes"] is not None:
        usage = usage._replace(block_read=c["io_read_bytes"],
                               block_write=c["io_write_bytes"] or 0)
    return usage


def cpu_percent(previous: Usage, current: Usage, cpus: int) -> float:
    """docker's calculateCPUPercentUnix."""
    cpu, system = current.cpu - previous.cpu, current.system - previous.system
    if system > 0 and cpu > 0:
        return cpu / system * cpus * 100.0
    return 0.0


def memory_limit(spec: dict) -> int:
    """The container's --memory, from its OCI spec (0: none)."""
    try:
        limit = spec["linux"]["resources"]["memory"]["limit"]
    except (KeyError, TypeError):
        return 0
    return limit if isinstance(limit, int) and limit > 0 else 0


class Sampler:
    """Readings of one container over time; `sample()` gives docker's StatsEntry
    numbers for the interval since the previous reading."""

    def __init__(self, store, record) -> None:
        from rootless.engine.container_inspect import spec_read
        from rootless.engine.containers import container_dir

        self.store, self.record = store, record
        spec, _ = spec_read(container_dir(store, record.id) / "config.json")
        self.limit = memory_limit(spec)
        self.previous: Usage | None = None

    def read(self) -> Usage | None:
        """A reading; None if the container is not running (or no longer exists)."""
        from rootless.engine.containers import container_row
        from rootless.engine.container_top import container_pids

        row = container_row(self.store, self.record.id)
        if row is None or not row.running or row.pid is None:
            return None
        from rootless.engine.cgroups import cgroup_of

        return usage_read(row.pid, container_pids(row.pid), self.limit,
                          cgroup_of(self.record.id, row.pid))

    def sample(self) -> dict[str, float] | None:
        """{cpu, memory, limit, memory_percent, net_rx, ...}: zeros for a container
        that is not running (docker's empty stats); None once it is removed."""
        from rootless.engine.containers import container_row

        current = self.read()
        previous, self.previous = self.previous, current
        if current is None:
            if container_row(self.store, self.record.id) is None:
                return None
            current = Usage()
        cpu = cpu_percent(previous, current, online_cpus()) if previous else 0.0
        memory_percent = current.memory / current.limit * 100.0 if current.limit else 0.0
        return {"cpu": cpu, "memory": current.memory, "limit": current.limit,
                "memory_percent": memory_percent, "net_rx": current.net_rx,
                "net_tx": current.net_tx, "block_read": current.block_read,
                "block_write": current.block_write, "pids": current.pids}
