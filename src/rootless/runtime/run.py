"""Run an OCI runtime spec: plan it, start it, and (in the foreground) wait for it."""

from __future__ import annotations

from rootless.kernel.idmap import IdMaps, detect_maps, maps_from_spec
from rootless.kernel.syscalls import Syscalls
from rootless.runtime.plan import Plan, build_plan, keeps_groups, user_ids
from rootless.runtime.process import Joins, Started, StdioOptions, start

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Callable


def plan_spec(spec: dict, debug: bool = False, served: bool = False) -> tuple[Plan, IdMaps]:
    """The plan for `spec`, and the id maps its user namespace gets. `served`: the
    caller answers the fakeroot's notifications (the monitor); in single-id mode the
    filter then sends them to it, else fakes them (runtime/seccomp_fakeroot.py)."""
    from rootless.runtime.seccomp_fakeroot import fakeroot_mode

    maps = maps_from_spec(spec.get("linux", {}))
    if maps is None:
        uid, gid, _ = user_ids(spec["process"])
        maps = detect_maps(uid, gid)
    if keeps_groups(spec):
        maps = maps._replace(deny_setgroups=True)
    fakeroot, _ = fakeroot_mode(not maps.use_helpers, served,
                                unconfined=not spec.get("linux", {}).get("seccomp"))
    plan = build_plan(spec, single_id=not maps.use_helpers, fakeroot=fakeroot)
    if debug:
        import sys as _sys

        print(plan.describe(), file=_sys.stderr)
    return plan, maps


def start_spec(spec: dict, stdio: StdioOptions, sys: Syscalls | None = None,
               debug: bool = False,
               on_created: Callable[[int], None] | None = None,
               served: bool = False, fuse_channel: int | None = None,
               meanwhile: Callable[[], None] | None = None,
               on_init: Callable[[int, list[int]], None] | None = None,
               joins: Joins | None = None) -> Started:
    """Start the container described by `spec`; it is our child once this returns.
    `on_created`: see runtime.process.start (where a cgroup is joined). `served`: see
    plan_spec; the fakeroot's listener, if any, is then Started.listener.
    `fuse_channel`: the socket to the FUSE overlay's server, for a rootfs that is one
    (fs/fuse_server.PendingServer). `meanwhile`, `on_init`: see runtime.process.start."""
    plan, maps = plan_spec(spec, debug, served)
    if fuse_channel is not None:
        from rootless.runtime.plan import with_fuse_channel

        plan = plan._replace(steps=with_fuse_channel(plan.steps, fuse_channel))
    return start(plan, maps, stdio, sys, on_created, meanwhile, on_init, joins)


def run_foreground(spec: dict, stdio: StdioOptions, sys: Syscalls | None = None,
                   debug: bool = False) -> int:
    """Start the container described by `spec` and return its exit code."""
    from rootless.runtime.attach import SignalForwarder, wait_foreground

    plan, maps = plan_spec(spec, debug)
    forwarder = SignalForwarder()
    started = start(plan, maps, stdio, sys)
    forwarder.target(started.pid)
    return wait_foreground(started, stdio.stdin)
