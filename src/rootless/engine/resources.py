"""Docker's resource flags: `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
`--pids-limit`, `--cpuset-cpus`.

Each is read as docker's CLI reads it (go-units' RAMInBytes for sizes, a rational
number for --cpus, strconv.ParseInt for counts) and checked as moby's daemon checks it
(daemon/daemon_unix.go verifyPlatformContainerResources), before any container exists:
a bad value is one line and exit 125. The result is the OCI spec's `linux.resources`
(the cgroup v1 units the runtime spec uses; engine/cgroups.py converts them to cgroup
v2's files), and `inspect` reads HostConfig back from that section.

Light on imports: `rootless run` imports this module on every start.
"""

from __future__ import annotations

import os
import re

from rootless.errors import UsageError
from rootless.records import record

MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory: runc's own init needs about that
CPU_PERIOD = 100_000  # µs: moby gives --cpus a 100 ms CFS period (sched-bwc.txt)
MIN_CPU_QUOTA = 1000  # µs: the kernel refuses a cpu.max quota under 1 ms
BINARY_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"\+?[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?")


@record
class Resources:
    """What the flags asked for, in docker's HostConfig units (0: not set)."""

    memory: int = 0  # bytes
    memory_swap: int = 0  # memory + swap, bytes; -1: unlimited swap
    nano_cpus: int = 0  # CPUs x 10^9
    cpu_shares: int = 0  # relative weight, cgroup v1 units (1024: the default)
    pids_limit: int = 0  # > 0: a limit; 0: none
    cpuset_cpus: str = ""  # "0-1,3"

    def any(self) -> bool:
        return self != Resources()


def resources_parse(memory: str | None = None, memory_swap: str | None = None,
                    cpus: str | None = None, cpu_shares: str | None = None,
                    pids_limit: str | None = None, cpuset_cpus: str | None = None
                    ) -> Resources:
    """The flags' values as given on the command line (None: flag absent); UsageError
    for anything docker would refuse."""
    mem = ram_in_bytes(memory, "-m, --memory") if memory is not None else 0
    swap = 0
    if memory_swap is not None:
        swap = -1 if memory_swap == "-1" else ram_in_bytes(memory_swap, "--memory-swap")
    if 0 < mem < MIN_MEMORY:
        raise UsageError("minimum memory limit allowed is 6MB")
    if mem > 0 and swap > 0 and swap < mem:
        raise UsageError("minimum memoryswap limit should be larger than memory limit "
                         "(see: rootless run --help)")
    if mem == 0 and swap > 0:
        raise UsageError("you should always set the memory limit when using memoryswap "
                         "limit (see: rootless run --help)")
    if mem > 0 and swap == 0:
        swap = 2 * mem  # moby's adaptContainerSettings: as much swap as memory
    shares = _int64(cpu_shares, "-c, --cpu-shares") if cpu_shares is not None else 0
    if shares < 0:
        raise UsageError(f"invalid --cpu-shares {shares}: the weight cannot be negative "
                         "(1024 is the default)")
    pids = _int64(pids_limit, "--pids-limit") if pids_limit is not None else 0
    return Resources(memory=mem, memory_swap=swap,
                     nano_cpus=nano_cpus(cpus) if cpus is not None else 0,
                     cpu_shares=shares, pids_limit=max(pids, 0),  # <= 0: unlimited
                     cpuset_cpus=cpuset_check(cpuset_cpus or ""))


def _flag_error(value: str, flag: str, why: str) -> UsageError:
    """As cobra words a value its flag type refused."""
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def ram_in_bytes(text: str, flag: str) -> int:
    """go-units RAMInBytes: a number, an optional space, an optional binary unit
    (k, m, g, t, p, any case) optionally followed by b or ib: 512m, 1.5g, 100, 1KiB."""
    match = re.fullmatch(r"([0-9.eE+-]*[0-9.]) ?([a-zA-Z]*)", text)
    if match is None:
        raise _flag_error(text, flag, f"invalid size: '{text}'")
    number, suffix = match.groups()
    try:
        if not _NUMBER.fullmatch(number) or not any(c.isdigit() for c in number):
            raise ValueError(number)  # Go's ParseFloat has no "1_0", "inf" or "nan"
        size = float(number)
    except ValueError:
        raise _flag_error(text, flag, f"invalid size: '{text}'") from None
    unit = suffix.lower()
    if unit[:1] in BINARY_UNITS and unit[1:] in ("", "b", "ib"):
        size *= BINARY_UNITS[unit[0]]
    elif unit not in ("", "b"):
        raise _flag_error(text, flag, f"invalid suffix: '{unit}'")
    if size >= 2**63:
        raise _flag_error(text, flag, f"invalid size: '{text}' (more than 8 EiB)")
    return int(size)


def _int64(text: str, flag: str) -> int:
    """strconv.ParseInt(text, 10, 64)'s grammar and range."""
    if not _INTEGER.fullmatch(text):
        raise _flag_error(text, flag, f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -2**63 <= value <= INT64_MAX:
        raise _flag_error(text, flag,
                          f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def nano_cpus(text: str) -> int:
    """docker's opts.NanoCPUs: a rational number (1.5, 3/2), exact in billionths, and
    moby's range: at most the CPUs this process may use; 0 means no limit."""
    from fractions import Fraction  # only when --cpus is given

    try:
        if text != text.strip():
            raise ValueError(text)
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise _flag_error(text, "--cpus",
                          f"failed to parse {text} as a rational number") from None
    nano = value * 10**9
    if nano.denominator != 1:
        raise _flag_error(text, "--cpus", "value is too precise")
    count = cpu_count()
    # docker leaves quotas under the kernel's 1 ms floor to the runtime, which fails
    # at start; its range message says the same thing before anything exists
    if nano != 0 and not (10**7 <= nano <= count * 10**9):
        raise UsageError(f"range of CPUs is from 0.01 to {count}.00, as there are only "
                         f"{count} CPUs available")
    return int(nano)


def cpu_count() -> int:
    """Go's runtime.NumCPU(), as moby counts: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def cpuset_parse(text: str) -> list[tuple[int, int]]:
    """moby's parsers.ParseUintList: "0-2,5" -> [(0, 2), (5, 5)]; ValueError if bad."""
    if text == "":
        return []
    ranges = []
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not re.fullmatch(r"\+?[0-9]+", low) or (
                dash and not re.fullmatch(r"\+?[0-9]+", high)):
            raise ValueError(text)
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(text)
        ranges.append((first, last))
    return ranges


def cpuset_check(text: str) -> str:
    """--cpuset-cpus: well formed, and every CPU one this process may run on."""
    try:
        ranges = cpuset_parse(text)
    except ValueError:
        raise UsageError(f"invalid value {text} for cpuset cpus") from None
    available = os.sched_getaffinity(0)
    if any(last > max(available) or not available.issuperset(range(first, last + 1))
           for first, last in ranges):
        raise UsageError(f"requested CPUs are not available - requested {text}, "
                         f"available: {cpuset_format(available)}")
    return text


def cpuset_format(cpus: set[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5", the kernel's list format (cpuset.cpus)."""
    parts, ordered = [], sorted(cpus)
    start = prev = ordered[0] if ordered else 0
    for cpu in ordered[1:] + [None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts) if ordered else ""


# ---- the OCI spec's linux.resources, and back ----

def resources_to_oci(r: Resources) -> dict[str, object]:
    """linux.resources of the runtime spec (config-linux.md), {} when nothing is set.
    memory.swap is memory + swap, as in the spec and docker; cpu.shares in cgroup v1
    units; --cpus is quota/period, as moby writes it."""
    oci: dict[str, object] = {}
    memory = {k: v for k, v in (("limit", r.memory), ("swap", r.memory_swap)) if v}
    if memory:
        oci["memory"] = memory
    cpu: dict[str, object] = {}
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.nano_cpus:
        cpu["quota"], cpu["period"] = r.nano_cpus * CPU_PERIOD // 10**9, CPU_PERIOD
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if cpu:
        oci["cpu"] = cpu
    if r.pids_limit > 0:
        oci["pids"] = {"limit": r.pids_limit}
    return oci


def _number(section: object, key: str) -> int:
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def resources_from_oci(oci: object) -> Resources:
    """linux.resources read back (untrusted JSON: wrong types read as unset)."""
    if not isinstance(oci, dict):
        return Resources()
    memory, cpu, pids = oci.get("memory"), oci.get("cpu"), oci.get("pids")
    quota, period = _number(cpu, "quota"), _number(cpu, "period")
    cpus = cpu.get("cpus") if isinstance(cpu, dict) else None
    return Resources(
        memory=_number(memory, "limit"), memory_swap=_number(memory, "swap"),
        nano_cpus=quota * 10**9 // period if quota > 0 and period > 0 else 0,
        cpu_shares=_number(cpu, "shares"), pids_limit=max(_number(pids, "limit"), 0),
        cpuset_cpus=cpus if isinstance(cpus, str) else "")


def resources_host_config(oci: object) -> dict[str, object]:
    """The fields of docker's HostConfig these flags set (inspect records what was
    asked for, enforced or not: the warning at start says which were not)."""
    r = resources_from_oci(oci)
    return {"Memory": r.memory, "MemorySwap": r.memory_swap, "NanoCpus": r.nano_cpus,
            "CpuShares": r.cpu_shares, "PidsLimit": r.pids_limit or None,
            "CpusetCpus": r.cpuset_cpus}
