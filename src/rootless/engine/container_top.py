"""`top`: the host's ps over a container's processes, as moby's ContainerTop
(daemon/top_unix.go) runs it; and which host processes are a container's.

ps is the HOST's procps, by absolute path: nothing of the container's image is ever
run for `top` (the container's ps could be anything, and would run with our rights).
"""

from __future__ import annotations

import os
import re

from rootless.errors import RootlessError

PS_PATHS = ("/usr/bin/ps", "/bin/ps")
# moby's psArgsRegexp: a ps option may not rename the PID column, which is how the rows
# of the container's processes are found
_PS_ARGS = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")


def _ns_id(pid: int | str, kind: str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def container_pids(init: int) -> list[int]:
    """The host pids of a container's processes: its init, every process below it,
    and every other process of its pid namespace (an `exec` joins the namespace
    from outside the init's tree). A container that shares the host's pid namespace
    has only the init's tree."""
    from rootless.kernel.procs import descendants

    found = descendants(init)
    ns = _ns_id(init, "pid")
    if ns is None or ns == _ns_id("self", "pid"):
        return found
    seen = set(found)
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in seen and _ns_id(name, "pid") == ns:
            found.append(int(name))
            seen.add(int(name))
    return found


def running_init(store, ref: str) -> tuple[str, int]:
    """(full id, init pid) of a running container; docker's errors otherwise."""
    from rootless.engine.containers import container_lookup, container_row

    record = container_lookup(store, ref)
    row = container_row(store, record.id)
    if row is not None and row.state == "restarting":
        raise RootlessError(f"Container {record.id} is restarting, wait until the "
                            "container is running")
    if row is None or not row.running or row.pid is None:
        raise RootlessError(f"container {record.id} is not running")
    return record.id, row.pid


def ps_path() -> str:
    for path in PS_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise RootlessError("top needs the host's ps, and there is none at "
                        f"{' or '.join(PS_PATHS)} (install procps)")


def container_top(store, ref: str, args: list[str]) -> tuple[list[str], list[list[str]]]:
    """(titles, rows) of `ps ARGS` (default -ef) for the container's processes: docker
    joins the arguments with spaces and splits them again, then keeps the rows whose
    PID is one of the container's (and thread rows, PID "-", below such a row)."""
    import subprocess

    ps_args = " ".join(args) or "-ef"
    for key, value in _PS_ARGS.findall(ps_args):
        if key != "pid":
            raise RootlessError(f'specifying "{key}={value}" is not allowed')
    _, init = running_init(store, ref)
    pids = container_pids(init)
    argv = [ps_path(), *ps_args.split(" ")]
    # -q (procps's quick pid list) makes ps read only these; some options (f) refuse it
    result = subprocess.run([*argv, "-q" + ",".join(map(str, pids))], capture_output=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            why = result.stderr.decode(errors="replace").split("\n", 1)[0]
            raise RootlessError(f"ps: {why or f'exit status {result.returncode}'}")
    return ps_parse(result.stdout.decode(errors="replace"), set(pids))


def ps_parse(output: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    """moby's parsePSOutput: ASCII-space fields; the last column takes what
    overhangs (a command line with spaces)."""
    lines = output.split("\n")
    titles = _fields(lines[0])
    if "PID" not in titles:
        raise RootlessError("couldn't find PID field in ps output")
    at = titles.index("PID")
    rows: list[list[str]] = []
    kept = False
    for line in lines[1:]:
        fields = _fields(line)
        if len(fields) <= at:
            continue
        if fields[at] == "-":  # a thread of the process above (ps -L, m)
            if kept:
                rows.append(_merge(fields, len(titles)))
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise RootlessError(f"unexpected pid '{fields[at]}' in ps output") from None
        kept = pid in pids
        if kept:
            rows.append(_merge(fields, len(titles)))
    return titles, rows


def _fields(line: str) -> list[str]:
    return [f for f in _ASCII_SPACE.split(line) if f]


def _merge(fields: list[str], columns: int) -> list[str]:
    return fields[:columns - 1] + [" ".join(fields[columns - 1:])]
