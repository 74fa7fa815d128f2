"""OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): run by the runtime on the
host, each with the container's state as JSON on its stdin.

    createRuntime, prestart   after the container is created, before `create` returns
                              (prestart is the deprecated name; runc runs both there)
    poststart                 after `start` released the init, before it returns
    poststop                  at `delete`, after the container stopped

A failing createRuntime/prestart hook fails `create` (the container is killed); a
failing poststart or poststop hook is a warning, as runtime-spec says. The hooks'
createContainer and startContainer stages would run inside the container's namespaces;
they are refused at create rather than silently skipped.
"""

from __future__ import annotations

import json
import os

from rootless.errors import RootlessError

IN_CONTAINER = ("createContainer", "startContainer")


class HookError(RootlessError):
    pass


def hooks_check(spec: dict) -> None:
    hooks = spec.get("hooks") or {}
    if not isinstance(hooks, dict):
        raise HookError("config.json: hooks must be an object")
    for stage in IN_CONTAINER:
        if hooks.get(stage):
            raise HookError(f"config.json: {stage} hooks are not supported (they would "
                            "run inside the container's namespaces)")
    for stage, entries in hooks.items():
        if not isinstance(entries, list):
            raise HookError(f"config.json: hooks.{stage} must be a list")
        for hook in entries:
            if not isinstance(hook, dict) or not os.path.isabs(str(hook.get("path", ""))):
                raise HookError(f"config.json: a hooks.{stage} entry needs an absolute "
                                "path")


def hooks_run(spec: dict, stages: tuple[str, ...], state: dict) -> None:
    """Run every hook of `stages` in order; raise HookError on the first that fails."""
    hooks = spec.get("hooks") or {}
    payload = json.dumps(state).encode()
    for stage in stages:
        for hook in hooks.get(stage) or []:
            _run_one(stage, hook, payload)


def _run_one(stage: str, hook: dict, payload: bytes) -> None:
    import subprocess  # 4 ms: only a config with hooks pays it

    path = hook["path"]
    args = [str(a) for a in hook.get("args") or [path]]
    env = [str(e) for e in hook.get("env") or []]
    timeout = hook.get("timeout")
    try:
        done = subprocess.run(args, executable=path, input=payload,
                              env=dict(e.partition("=")[::2] for e in env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout if isinstance(timeout, int) and timeout > 0
                              else None, close_fds=True)
    except subprocess.TimeoutExpired:
        raise HookError(f"{stage} hook {path}: timed out after {timeout} s") from None
    except OSError as e:
        raise HookError(f"{stage} hook {path}: {e.strerror.lower()}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise HookError(f"{stage} hook {path}: exit status {done.returncode}"
                        + (f": {detail[-1]}" if detail else ""))
