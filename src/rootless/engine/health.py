"""Healthchecks: docker's HEALTHCHECK run by the container's monitor.

Each check is an `exec` in the container (engine/exec.py: the same path as `rootless
exec`), run from a child of the monitor that waits for it with the timeout and reports
one JSON line back over a pipe, so the monitor's loop never blocks on a check. The
state (docker's State.Health: Status, FailingStreak, the last five results) is written
to health.json in the container's directory (temp + rename) for `ps` and `inspect`.
"""

from __future__ import annotations

import json
import os
import signal
import time

from rootless.errors import UsageError

HEALTH_FILE = "health.json"
LOG_KEEP = 5  # docker keeps the last five results
OUTPUT_LIMIT = 4096  # docker keeps this much of a check's output
NS = 1_000_000_000


def healthcheck_merge(image: dict | None, flags: tuple):
    """The image's Healthcheck (docker's JSON, nanoseconds) with the --health-* flags
    over it: flags = (cmd, interval, timeout, start_period, retries), None where unset,
    durations as docker's text ("30s"). None when there is no check or it is NONE."""
    from rootless.engine.container_settings import Healthcheck
    from rootless.engine.go_duration import parse_duration

    base = image if isinstance(image, dict) else {}
    cmd, interval, timeout, start_period, retries = flags or (None,) * 5
    test = base.get("Test")
    if cmd is not None:
        test = ["CMD-SHELL", cmd]
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test) \
            or test[0] == "NONE":
        return None
    values = {}
    for key, flag, name in (("interval", interval, "Interval"),
                            ("timeout", timeout, "Timeout"),
                            ("start_period", start_period, "StartPeriod")):
        if flag is not None:
            seconds = parse_duration(flag)
            if seconds != 0 and seconds < 0.001:
                raise UsageError(f"--health-{key.replace('_', '-')} cannot be less than 1ms")
        else:
            ns = base.get(name)
            seconds = ns / NS if isinstance(ns, int) and ns > 0 else 0
        if seconds:
            values[key] = seconds
    if retries is not None:
        if not (retries.lstrip("-").isdigit()):
            raise UsageError(f"invalid --health-retries: {retries}")
        if int(retries) < 0:
            raise UsageError("--health-retries cannot be negative")
        values["retries"] = int(retries) or 3
    elif isinstance(base.get("Retries"), int) and base["Retries"] > 0:
        values["retries"] = base["Retries"]
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None
    return Healthcheck(tuple(test), **values)


def check_argv(test: tuple[str, ...]) -> list[str]:
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def health_read(cdir) -> dict | None:
    """docker's State.Health of a container, or None if it has no healthcheck."""
    from rootless.kernel.paths import read_regular_path

    try:
        data = json.loads(read_regular_path(os.path.join(cdir, HEALTH_FILE), 1 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("Status") not in (
            "starting", "healthy", "unhealthy"):
        return None
    return data


def health_status(store, row) -> str:
    """docker's health word for `ps`: starting, healthy, unhealthy, or none (no
    healthcheck, or not running)."""
    from rootless.engine.containers import container_path

    if row.state != "running":
        return "none"
    health = health_read(container_path(store, row.record.id))
    return health["Status"] if health else "none"


def status_suffix(health: str) -> str:
    """What docker's `ps` adds to "Up ..." for a container's health."""
    return {"starting": " (health: starting)", "healthy": " (healthy)",
            "unhealthy": " (unhealthy)"}.get(health, "")


def _rfc3339(seconds: float) -> str:
    from rootless.engine.container_inspect import rfc3339

    return rfc3339(seconds)


class HealthMonitor:
    """The monitor's side: when the next check is due, its child, its result."""

    def __init__(self, store, container_id: str, check) -> None:
        from rootless.engine.containers import container_dir

        self.store = store
        self.id = container_id
        self.cdir = container_dir(store, container_id)
        self.check = check
        self.began = time.monotonic()
        self.next_due = self.began + check.interval
        self.child: int | None = None
        self.result_r: int | None = None
        self.started_at = 0.0
        self.state = {"Status": "starting", "FailingStreak": 0, "Log": []}
        self._write()

    def tick(self, init_pid: int | None) -> float | None:
        """Start a check if one is due; seconds until the next one."""
        now = time.monotonic()
        if self.child is None and now >= self.next_due and init_pid is not None:
            self._spawn()
            self.next_due = now + self.check.interval
        if self.child is not None:
            return max(0.05, min(self.next_due - now, 1.0))
        return max(0.0, self.next_due - now)

    def _spawn(self) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        self.started_at = time.time()
        self.store.disconnect()  # each side opens its own when it needs one
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.write(w, json.dumps(_run_check(self.store, self.id,
                                                  self.check)).encode())
            except BaseException as e:
                os.write(w, json.dumps({"code": -1, "output": f"{e}"}).encode())
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self.child, self.result_r = pid, r

    def reaped(self, pid: int, status: int) -> None:
        if pid != self.child:
            return
        data = b""
        try:
            while chunk := os.read(self.result_r, 65536):
                data += chunk
        except OSError:
            pass
        os.close(self.result_r)
        self.child = self.result_r = None
        try:
            result = json.loads(data)
        except ValueError:
            result = {"code": -1, "output": "health check did not report"}
        self._record(result)

    def _record(self, result: dict) -> None:
        code = result.get("code", -1)
        entry = {"Start": _rfc3339(self.started_at), "End": _rfc3339(time.time()),
                 "ExitCode": code, "Output": str(result.get("output", ""))}
        state = self.state
        state["Log"] = (state["Log"] + [entry])[-LOG_KEEP:]
        in_start_period = time.monotonic() - self.began < self.check.start_period
        if code == 0:
            state["Status"], state["FailingStreak"] = "healthy", 0
        elif not in_start_period:
            state["FailingStreak"] += 1
            if state["FailingStreak"] >= self.check.retries:
                state["Status"] = "unhealthy"
        self._write()

    def _write(self) -> None:
        tmp = self.cdir / (HEALTH_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps(self.state))
            os.replace(tmp, self.cdir / HEALTH_FILE)
        except OSError:  # the container is being removed
            pass


def _run_check(store, container_id: str, check) -> dict:
    """In the monitor's child: exec the check in the container, wait at most its
    timeout, return {"code", "output"} (docker's -1 and message on a timeout)."""
    import select

    from rootless.engine.exec import exec_start
    from rootless.errors import RootlessError
    from rootless.runtime.process import StdioOptions

    try:
        started = exec_start(store, container_id, check_argv(check.test),
                             stdio=StdioOptions())
    except RootlessError as e:  # 126/127 from the exec helper, or the engine's 125
        return {"code": e.exit_code, "output": str(e)}
    streams = started.streams
    output = bytearray()
    deadline = time.monotonic() + check.timeout
    open_fds = [streams.stdout, streams.stderr]
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(started.pid, signal.SIGKILL)
            os.waitpid(started.pid, 0)
            return {"code": -1, "output": "Health check exceeded timeout "
                    f"({check.timeout:g}s)"}
        ready, _, _ = select.select(open_fds, [], [], left)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
            elif len(output) < OUTPUT_LIMIT:
                output += chunk[:OUTPUT_LIMIT - len(output)]
    _, status = os.waitpid(started.pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return {"code": code, "output": output.decode(errors="replace")}
