"""The words of an instruction after docker's variable expansion, with the stage's
environment (its image's ENV, then its ARGs: ENV wins). Docker expands ADD, COPY, ENV,
EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR; RUN, CMD, ENTRYPOINT, SHELL,
HEALTHCHECK and ONBUILD are kept as written (a shell expands them, or nothing does)."""

from __future__ import annotations

from collections.abc import Mapping

from rootless.build import instructions as ins
from rootless.engine.build_context import BuildError


def expanded(step, env: Mapping[str, str], escape: str) -> dict:
    from rootless.build.expand import ExpandError, expand_word

    def word(text: str | None) -> str | None:
        return None if text is None else expand_word(text, env, escape)

    kind = type(step)
    try:
        if kind in (ins.Env, ins.Label):
            return {"pairs": [(word(k), word(v)) for k, v in step.pairs]}
        if kind is ins.Maintainer:
            return {"name": step.name}
        if kind is ins.Expose:
            return {"ports": _ports([word(p) for p in step.ports])}
        if kind is ins.Volume:
            return {"paths": [word(p) for p in step.paths]}
        if kind is ins.User:
            return {"user": word(step.user)}
        if kind is ins.Workdir:
            return {"path": word(step.path)}
        if kind is ins.Stopsignal:
            return {"signal": word(step.signal)}
        if kind in (ins.Copy, ins.Add):
            return {"sources": [word(s) for s in step.sources], "dest": word(step.dest),
                    "chown": word(step.chown), "chmod": word(step.chmod),
                    "from": word(getattr(step, "from_", None))}
    except ExpandError as e:
        raise BuildError(str(e)) from None
    return {}


def _ports(ports: list[str]) -> list[str]:
    """EXPOSE 80 8000-8002/udp -> 80, 8000/udp, 8001/udp, 8002/udp."""
    found = []
    for text in ports:
        number, _, proto = text.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = number.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or proto not in (
                "tcp", "udp", "sctp"):
            raise BuildError(f"invalid containerPort: {text}")
        first, last = int(low), int(high or low)
        if not (0 < first <= last <= 65535):
            raise BuildError(f"invalid containerPort: {text}")
        found += [f"{port}/{proto}" for port in range(first, last + 1)]
    return found
