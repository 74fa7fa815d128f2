"""What the engine keeps about a container beyond its OCI spec: docker's HostConfig and
Config fields that act after creation (restart policy, stop signal and timeout,
healthcheck, stdin/tty), in `settings.json` beside config.json.

Written once at create (temp + rename); read by the monitor, `start`, `stop` and
`inspect` as untrusted data (bounded, regular file only, every field type-checked), since
it lives in a directory a process of the user can reach.
"""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.errors import UsageError
from rootless.records import record

SETTINGS_FILE = "settings.json"
LOG_FILE = "container-json.log"  # docker's json-file log, written by the monitor
SETTINGS_LIMIT = 1 << 20
# config.json holds the seccomp profile (tens of KiB); anything near this is not ours
SPEC_LIMIT = 8 << 20
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
DEFAULT_STOP_TIMEOUT = 10  # seconds, docker's


@record
class Healthcheck:
    """Docker's HealthConfig, durations in seconds (docker stores nanoseconds)."""

    test: tuple[str, ...]  # ("CMD", ...) | ("CMD-SHELL", "cmd") | ("NONE",)
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    retries: int = 3

    def to_docker(self) -> dict:
        ns = 1_000_000_000
        return {"Test": list(self.test), "Interval": int(self.interval * ns),
                "Timeout": int(self.timeout * ns), "StartPeriod": int(self.start_period * ns),
                "Retries": self.retries}


@record
class Settings:
    restart: str = "no"
    max_retries: int = 0
    stop_signal: str = "SIGTERM"
    stop_timeout: int | None = None  # None: docker's 10 s
    healthcheck: Healthcheck | None = None
    tty: bool = False
    open_stdin: bool = False  # -i
    stdin_once: bool = False  # docker run -i (attached): stdin closes with the client's
    debug: bool = False

    @property
    def timeout(self) -> int:
        return DEFAULT_STOP_TIMEOUT if self.stop_timeout is None else self.stop_timeout


def parse_restart(text: str) -> tuple[str, int]:
    """docker's --restart: no | always | unless-stopped | on-failure[:MAX]."""
    name, sep, count = text.partition(":")
    if name not in RESTART_POLICIES:
        raise UsageError(f"invalid restart policy: {text} (one of: no, always, "
                         "on-failure[:max-retries], unless-stopped)")
    if not sep:
        return name, 0
    if name != "on-failure":
        raise UsageError(f"maximum retry count cannot be used with restart policy '{name}'")
    if not (count.isascii() and count.isdigit()):
        raise UsageError(f"invalid restart policy format: maximum retry count must be an "
                         f"integer: {text}")
    return name, int(count)


def settings_write(cdir: str | os.PathLike, settings: Settings) -> None:
    data = settings._asdict()
    if settings.healthcheck is not None:
        data["healthcheck"] = settings.healthcheck._asdict()
    path = os.path.join(cdir, SETTINGS_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(jsonfast.dumps(data))
    os.replace(path + ".tmp", path)


def settings_read(cdir: str | os.PathLike) -> Settings:
    """The container's settings; the defaults where the file or a field is missing or
    of the wrong type (a container made before settings existed has none)."""
    from rootless.kernel.paths import read_regular_path

    try:
        data = jsonfast.loads(read_regular_path(os.path.join(cdir, SETTINGS_FILE),
                                            SETTINGS_LIMIT))
    except (OSError, ValueError):
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    values = {}
    for key, default in Settings._field_defaults.items():
        value = data.get(key, default)
        if key == "healthcheck":
            value = _healthcheck(value)
        elif key == "stop_timeout":
            value = value if type(value) is int else None
        elif not isinstance(value, type(default)) or isinstance(default, int) and \
                isinstance(value, bool) != isinstance(default, bool):
            value = default
        values[key] = value
    if values["restart"] not in RESTART_POLICIES:
        values["restart"] = "no"
    return Settings(**values)


def _healthcheck(value) -> Healthcheck | None:
    if not isinstance(value, dict):
        return None
    test = value.get("test")
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        return None
    numbers = {}
    for key in ("interval", "timeout", "start_period"):
        number = value.get(key)
        numbers[key] = float(number) if isinstance(number, (int, float)) and \
            not isinstance(number, bool) and 0 <= number < 1e9 else \
            Healthcheck._field_defaults[key]
    retries = value.get("retries")
    retries = retries if type(retries) is int and retries >= 0 else 3
    return Healthcheck(tuple(test), retries=retries, **numbers)


def spec_load(path) -> dict:
    """The container's config.json, {} if unusable: bounded and regular-file only
    (kernel/paths.read_regular), as container_inspect.spec_read reads it, without that
    module's imports: exec and the monitor read it on their start's path."""
    from rootless.kernel.paths import read_regular

    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        spec = jsonfast.loads(read_regular(fd, SPEC_LIMIT))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return spec if isinstance(spec, dict) else {}
