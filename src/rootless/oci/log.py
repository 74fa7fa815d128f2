"""runc's --log and --log-format: errors and warnings go to stderr, and also to the log
file when one is given, as text or as one JSON object per line ({"level", "msg",
"time"}), which conmon and containerd read back to report a runtime's failure."""

from __future__ import annotations

import os
import sys
import time

_settings = {"path": None, "format": "text", "debug": False}


def log_setup(path: str | None, fmt: str, debug: bool) -> None:
    _settings.update(path=path, format=fmt, debug=debug)


def log(level: str, message: str) -> None:
    if level != "debug" or _settings["debug"]:
        print(message if level != "error" else f"rootless-oci: {message}", file=sys.stderr)
    path = _settings["path"]
    if not path or (level == "debug" and not _settings["debug"]):
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if _settings["format"] == "json":
        import json

        line = json.dumps({"level": level, "msg": message, "time": stamp})
    else:
        line = f'time="{stamp}" level={level} msg="{message}"'
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError:
        pass
