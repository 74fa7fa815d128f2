"""Registry credentials in docker's ~/.docker/config.json ($DOCKER_CONFIG/config.json
when DOCKER_CONFIG is set), read and written as docker and podman do:

    {"auths": {"host:5000": {"auth": base64("user:password")}},
     "credsStore": "pass",                      # all registries through a helper
     "credHelpers": {"host:5000": "secretservice"}}   # or per registry

A helper is the program `docker-credential-<name>` (get / store / erase, the server on
stdin, JSON on stdout). The file is rewritten atomically, mode 0600; keys we do not
know are kept.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from rootless.errors import ImageError, UsageError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # docker's key for Docker Hub


def config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                ".docker")
    return Path(directory) / "config.json"


def server_key(registry: str) -> str:
    return DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io") else registry


def _keys(registry: str) -> list[str]:
    key = server_key(registry)
    return [key, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/",
            f"https://{registry}/v2/"]


def _load() -> dict:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object")
    return data


def _save(data: dict) -> None:
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)


def _helper_of(data: dict, registry: str) -> str | None:
    helpers = data.get("credHelpers") or {}
    for key in _keys(registry):
        if isinstance(helpers, dict) and helpers.get(key):
            return helpers[key]
    store = data.get("credsStore")
    return store if isinstance(store, str) and store else None


def credentials_get(registry: str) -> tuple[str, str] | None:
    """(user, secret) for `registry`, or None if the user has not logged in."""
    data = _load()
    helper = _helper_of(data, registry)
    if helper:
        return _helper_get(helper, server_key(registry))
    auths = data.get("auths") or {}
    for key in _keys(registry):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and entry.get("auth"):
            return _decode(entry["auth"], key)
    return None


def credentials_store(registry: str, user: str, secret: str) -> None:
    data = _load()
    key = server_key(registry)
    helper = _helper_of(data, registry)
    if helper:
        _helper_run(helper, "store", json.dumps({"ServerURL": key, "Username": user,
                                                 "Secret": secret}))
        data.setdefault("auths", {})[key] = {}  # docker records the login so
    else:
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        data.setdefault("auths", {})[key] = {"auth": token}
    _save(data)


def credentials_erase(registry: str) -> bool:
    """Forget the login; False if there was none."""
    data = _load()
    auths = data.get("auths") or {}
    found = [k for k in _keys(registry) if k in auths]
    helper = _helper_of(data, registry)
    if helper:
        try:
            _helper_run(helper, "erase", server_key(registry))
            found = found or [server_key(registry)]
        except ImageError:
            pass
    if not found:
        return False
    for key in found:
        auths.pop(key, None)
    _save(data)
    return True


def _decode(value: str, key: str) -> tuple[str, str]:
    try:
        user, sep, secret = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise UsageError(f"{config_path()}: the auth of {key} is not base64 of user:password")
    return user, secret


def _helper_get(helper: str, key: str) -> tuple[str, str] | None:
    out = _helper_run(helper, "get", key, missing_ok=True)
    if out is None:
        return None
    try:
        data = json.loads(out)
        return data["Username"], data["Secret"]
    except (ValueError, KeyError, TypeError):
        raise ImageError(f"docker-credential-{helper} get: answered no Username/Secret") \
            from None


def _helper_run(helper: str, action: str, stdin: str, missing_ok: bool = False) -> str | None:
    import shutil
    import subprocess

    program = shutil.which(f"docker-credential-{helper}")
    if not program:
        raise ImageError(f"credential helper docker-credential-{helper} is not on PATH "
                         f"(named in {config_path()})")
    proc = subprocess.run([program, action], input=stdin.encode(), capture_output=True,
                          timeout=60)
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        if missing_ok and "not found" in out.lower():
            return None
        raise ImageError(f"docker-credential-{helper} {action}: "
                         f"{out or proc.stderr.decode(errors='replace').strip()}")
    return out
