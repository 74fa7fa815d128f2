"""The Dockerfile instructions that change only an image's config: each takes the
stage's config and returns the new one, in docker's format (moby's
builder/dockerfile/dispatchers.go, read, not copied), so `image inspect` shows what
`docker build` would have made: Cmd, Entrypoint, Env, WorkingDir, User, ExposedPorts,
Volumes, Labels, StopSignal, Healthcheck, OnBuild, Shell and the author.

Values arrive already expanded (engine/build.py expands the words docker expands);
CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are kept as written.
"""

from __future__ import annotations

import posixpath

from rootless.build import instructions as ins

DEFAULT_SHELL = ["/bin/sh", "-c"]
_NS = 1_000_000_000


def shell_of(config: dict) -> list[str]:
    return list(config.get("config", {}).get("Shell") or DEFAULT_SHELL)


def command_argv(config: dict, command: tuple[str, ...], shell_form: bool) -> list[str]:
    """A shell-form command runs under the stage's SHELL; the exec form as it is."""
    return [*shell_of(config), command[0]] if shell_form else list(command)


def env_dict(config: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in config.get("config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def set_env(section: dict, pairs: list[tuple[str, str]]) -> None:
    """ENV: a key already there keeps its place with the new value."""
    env = list(section.get("Env") or [])
    for key, value in pairs:
        item = f"{key}={value}"
        for i, old in enumerate(env):
            if old.partition("=")[0] == key:
                env[i] = item
                break
        else:
            env.append(item)
    section["Env"] = env


def workdir(section: dict, path: str) -> None:
    """WORKDIR: relative to the previous one."""
    base = section.get("WorkingDir") or "/"
    section["WorkingDir"] = posixpath.normpath(posixpath.join(base, path))


def apply(config: dict, step, words: dict) -> None:
    """Apply a config-only instruction to `config["config"]` (in place). `words` holds
    the expanded values engine/build.py computed for the instruction."""
    section = config.setdefault("config", {})
    kind = type(step)
    if kind is ins.Env:
        set_env(section, words["pairs"])
    elif kind is ins.Label:
        section["Labels"] = {**(section.get("Labels") or {}), **dict(words["pairs"])}
    elif kind is ins.Maintainer:
        config["author"] = words["name"]
    elif kind is ins.Expose:
        ports = dict(section.get("ExposedPorts") or {})
        for port in words["ports"]:
            ports[port if "/" in port else f"{port}/tcp"] = {}
        section["ExposedPorts"] = ports
    elif kind is ins.Volume:
        section["Volumes"] = {**(section.get("Volumes") or {}),
                              **{path: {} for path in words["paths"]}}
    elif kind is ins.User:
        section["User"] = words["user"]
    elif kind is ins.Workdir:
        workdir(section, words["path"])
    elif kind is ins.Stopsignal:
        section["StopSignal"] = words["signal"]
    elif kind is ins.Cmd:
        section["Cmd"] = command_argv(config, step.command, step.shell_form)
    elif kind is ins.Entrypoint:
        section["Entrypoint"] = command_argv(config, step.command, step.shell_form)
        if not words.get("cmd_set"):  # docker: ENTRYPOINT drops an inherited CMD
            section["Cmd"] = None
    elif kind is ins.Shell:
        section["Shell"] = list(step.shell)
    elif kind is ins.Healthcheck:
        section["Healthcheck"] = healthcheck(config, step)
    elif kind is ins.Onbuild:
        trigger = step.expression or step.trigger.original
        section["OnBuild"] = [*(section.get("OnBuild") or []), trigger]
    # ARG changes no config: only what later steps see


def healthcheck(config: dict, step) -> dict:
    if step.command is None:
        return {"Test": ["NONE"]}
    test = (["CMD-SHELL", step.command[0]] if step.shell_form
            else ["CMD", *step.command])
    check: dict = {"Test": test}
    for field, value in (("Interval", step.interval), ("Timeout", step.timeout),
                         ("StartPeriod", step.start_period),
                         ("StartInterval", step.start_interval)):
        if value:
            check[field] = int(value * _NS)
    if step.retries:
        check["Retries"] = step.retries
    return check


def history_text(step, shown: str) -> str:
    """created_by, as buildah (podman build) writes it: a RUN's command line, else
    `/bin/sh -c #(nop) INSTRUCTION`."""
    if isinstance(step, ins.Run):
        return shown
    return f"/bin/sh -c #(nop) {shown}"
