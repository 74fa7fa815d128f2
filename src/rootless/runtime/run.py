"""Run an OCI runtime spec in the foreground: plan, start, wait."""

from __future__ import annotations

from rootless.kernel.idmap import detect_maps, maps_from_spec
from rootless.kernel.syscalls import Syscalls
from rootless.runtime.attach import SignalForwarder, wait_foreground
from rootless.runtime.plan import build_plan, keeps_groups, user_ids
from rootless.runtime.process import StdioOptions, start


def run_foreground(spec: dict, stdio: StdioOptions, sys: Syscalls | None = None,
                   debug: bool = False) -> int:
    """Start the container described by `spec` and return its exit code."""
    maps = maps_from_spec(spec.get("linux", {}))
    if maps is None:
        uid, gid, _ = user_ids(spec["process"])
        maps = detect_maps(uid, gid)
    if keeps_groups(spec):
        maps = maps._replace(deny_setgroups=True)
    plan = build_plan(spec, single_id=not maps.use_helpers)
    if debug:
        import sys as _sys

        print(plan.describe(), file=_sys.stderr)
    forwarder = SignalForwarder()
    started = start(plan, maps, stdio, sys)
    forwarder.target(started.pid)
    return wait_foreground(started, stdio.stdin)
