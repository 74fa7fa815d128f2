"""User networks while containers run: names in /etc/hosts, connect and disconnect.

Names: each container on a user network finds the others by name, alias and short id
through its /etc/hosts (the issue allows this in place of an embedded DNS server): below
a marker line, one line per running container that shares a network with it, its
address on that network first. The section is rewritten whenever a member starts,
stops, connects or disconnects, for every running member, under one lock per store so
two rewrites never interleave. The file is a bind mount of the container's own copy:
it is rewritten in place (written from offset 0, then truncated), never replaced,
since a rename would leave the container on the old inode; a reader sees the old
text, the new, or (for an instant) the new with the old's tail, never nothing.

connect/disconnect of a running container act on its network namespace through the
pause process (net/pause.py, net/bridge.py): only a container started on a user
network has its user namespace inside the pause's, where a veth pair can reach it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from rootless.errors import RootlessError

PEERS_MARK = "# containers on the same user networks (rootless)\n"
LIVE_STATES = ("running", "paused")


def refresh_hosts(store, network, starting: str = "", stopping: str = "") -> None:
    """Rewrite the peers section of every running member of `network` (and of
    `starting`, a member whose command has not run yet; without `stopping`, one that
    is on its way out)."""
    from rootless.engine.networks import endpoints_of_network

    lock = os.open(os.path.join(str(store.dir), "networks.lock"),
                   os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        live = _live_ids(store, starting, stopping)
        for endpoint in endpoints_of_network(store, network.id):
            if endpoint.container_id in live:
                _write_peers(store, endpoint.container_id, _peer_lines(
                    store, endpoint.container_id, live))
    finally:
        os.close(lock)


def _live_ids(store, starting: str, stopping: str) -> set[str]:
    rows = store.db.execute("SELECT id FROM containers WHERE state IN (?, ?)",
                            LIVE_STATES).fetchall()
    live = {r[0] for r in rows} | ({starting} if starting else set())
    live.discard(stopping)
    return live


def _peer_lines(store, container_id: str, live: set[str]) -> list[str]:
    """`IP<TAB>name aliases... shortid` of every live container that shares a network
    with `container_id`, one line per shared network, in connection order."""
    from rootless.engine.network_run import pending_networks
    from rootless.engine.networks import endpoints_of_container, endpoints_of_network

    names = dict(store.db.execute("SELECT id, name FROM containers").fetchall())
    lines = []
    for network, _ in endpoints_of_container(store, container_id):
        for peer in endpoints_of_network(store, network.id):
            if peer.container_id == container_id or peer.container_id not in live or \
                    network.id in pending_networks(store, peer.container_id):
                continue
            words = [names.get(peer.container_id) or "", *peer.aliases,
                     peer.container_id[:12]]
            lines.append(f"{peer.ip}\t{' '.join(w for w in words if w)}")
    return lines


def _write_peers(store, container_id: str, lines: list[str]) -> None:
    from rootless.engine.containers import container_path

    cdir = container_path(store, container_id)
    try:
        dirfd = os.open(cdir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # removed meanwhile
    try:
        fd = os.open("hosts", os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        os.close(dirfd)
        return
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        text = os.pread(fd, 1 << 20, 0).decode(errors="replace")
        head = text.split(PEERS_MARK, 1)[0]
        if head and not head.endswith("\n"):
            head += "\n"
        data = (head + PEERS_MARK + "".join(line + "\n" for line in lines)).encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
        os.close(dirfd)


# -- connect and disconnect of a running container ---------------------------------------


def _running_namespaces(store, row):
    """[pause hold, pause userns, hub netns, container netns] (descriptors) of a
    running container on user networks; RootlessError otherwise."""
    from rootless.engine.container_settings import spec_load
    from rootless.engine.containers import container_path
    from rootless.engine.network_run import hub_holders
    from rootless.kernel.idmap import detect_maps
    from rootless.kernel.procs import open_namespaces
    from rootless.net import pause
    from rootless.net.modes import mode_from_spec

    name = row.record.name or row.record.id[:12]
    spec = spec_load(os.path.join(container_path(store, row.record.id), "config.json"))
    mode = mode_from_spec(spec or {})
    if mode is None or mode.mode != "user":
        raise RootlessError(f"container {name} was not started on a user network: its "
                            "network namespace cannot reach one while it runs (stop it, "
                            "connect it, start it)")
    maps = detect_maps(0, 0)
    hold = pause.hold(maps)
    try:
        found = pause.ensure(maps, lambda: hub_holders(store))
        userns, hubns, _ = pause.namespaces(found)
        try:
            (netns,) = open_namespaces(row.pid, row.init_start, ("net",))
        except BaseException:
            os.close(userns)
            os.close(hubns)
            raise
    except ProcessLookupError:
        os.close(hold)
        raise RootlessError(f"container {name} is not running") from None
    except BaseException:
        os.close(hold)
        raise
    return [hold, userns, hubns, netns]


@contextlib.contextmanager
def _interfaces_of(store, row):
    """(pause userns, hub netns, container netns, the container's interfaces record, a
    function that writes it back) of a running container on user networks."""
    from rootless.engine.containers import container_path
    from rootless.engine.network_run import read_interfaces, write_interfaces

    fds = _running_namespaces(store, row)
    try:
        dirfd = os.open(container_path(store, row.record.id),
                        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            interfaces = read_interfaces(dirfd)
            yield (*fds[1:], interfaces, lambda: write_interfaces(dirfd, interfaces))
        finally:
            os.close(dirfd)
    finally:
        for fd in fds:
            os.close(fd)


def settle_container(store, container_id: str) -> None:
    """settle() under the container's lock, its state read under it."""
    from rootless.engine.containers import container_row

    with interfaces_locked(store, container_id):
        row = container_row(store, container_id)
        if row is not None:
            settle(store, row, row.state in LIVE_STATES)


def bridge_forget(store, *networks) -> None:
    """After `network rm`/prune: the network's bridge leaves a live hub too, so a later
    network on the same subnet never meets it there (two bridges with one gateway
    address: the hub answers on the first). Best effort: it goes with the pause process
    anyway, and the network's row is gone already."""
    from rootless.engine.network_run import bridge_name, hub_holders
    from rootless.kernel.idmap import detect_maps
    from rootless.net import pause
    from rootless.net.bridge import bridge_remove

    if not networks:
        return
    maps = detect_maps(0, 0)
    hold = pause.hold(maps)
    try:
        found = pause.find(maps)
        holders = hub_holders(store) if found is None else []
        if holders:  # a killed pause's hub, which its running containers keep
            found = pause.ensure(maps, lambda: holders)
        if found is None:  # no hub: no bridge
            return
        userns, hubns, _ = pause.namespaces(found)
        try:
            for network in networks:
                bridge_remove(userns, hubns, bridge_name(network.id), network.name)
        finally:
            os.close(userns)
            os.close(hubns)
    except (OSError, RootlessError):
        pass
    finally:
        os.close(hold)


@contextlib.contextmanager
def interfaces_locked(store, container_id: str):
    """The container's NETWORK_LOCK held (engine/network_run.py): one connect,
    disconnect or start changes its interfaces at a time. A container whose directory
    is gone has none to guard."""
    from rootless.engine.containers import container_path
    from rootless.engine.network_run import lock_interfaces

    try:
        dirfd = os.open(container_path(store, container_id),
                        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        lock = lock_interfaces(dirfd)
    finally:
        os.close(dirfd)
    try:
        yield
    finally:
        os.close(lock)


def settle(store, row, running: bool) -> None:
    """Undo what a connect killed midway left (the caller holds interfaces_locked, so
    a PENDING entry is no live command's): its pair's end in the hub (the container's
    end goes with it), its endpoint row, its entry. docker's connect either happens or
    not; one killed before it said so did not."""
    from rootless.engine.containers import container_path
    from rootless.engine.network_run import (interfaces_of, is_pending, read_interfaces,
                                             write_interfaces)
    from rootless.engine.networks import endpoint_remove

    pending = {network_id: names for network_id, names
               in interfaces_of(store, row.record.id).items() if is_pending(names)}
    if not pending:
        return
    if running:  # its namespace lives: the half-made pair may too
        from rootless.net.bridge import hub_link_remove

        with _interfaces_of(store, row) as (userns, hubns, _, interfaces, save):
            for network_id, names in pending.items():
                hub_link_remove(userns, hubns, names[1], "veth")
                endpoint_remove(store, network_id, row.record.id)
                interfaces.pop(network_id, None)
                save()
        return
    dirfd = os.open(container_path(store, row.record.id),  # the pair went with its
                    os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)  # netns
    try:
        interfaces = read_interfaces(dirfd)
        for network_id in pending:
            endpoint_remove(store, network_id, row.record.id)
            interfaces.pop(network_id, None)
        write_interfaces(dirfd, interfaces)
    finally:
        os.close(dirfd)


def connect_running(store, row, network, aliases=(), ip: str | None = None):
    """Give the running container `row` an endpoint and an interface on `network` now;
    the endpoint. The caller holds interfaces_locked and has settled it. Its entry
    is PENDING from before the endpoint row until the pair is whole."""
    from rootless.engine.network_run import PENDING, attachment_for, killed_here
    from rootless.engine.networks import endpoint_add, endpoint_remove
    from rootless.net.bridge import attach_mac, veth_name

    with _interfaces_of(store, row) as (userns, hubns, netns, interfaces, save):
        taken = {names[0] for names in interfaces.values()}
        ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        veth = veth_name()
        interfaces[network.id] = [ifname, veth, PENDING, ""]
        save()
        try:
            endpoint = endpoint_add(store, network, row.record.id, aliases, ip)
            killed_here("connect-endpoint")
            try:
                _, mac = attach_mac(userns, hubns, netns,
                                    attachment_for(network, endpoint, ifname), veth)
                killed_here("connect-veth")
            except BaseException:
                endpoint_remove(store, network.id, row.record.id)
                raise
        except BaseException:
            interfaces.pop(network.id, None)
            save()
            raise
        interfaces[network.id] = [ifname, veth, "", mac]
        save()
    return endpoint


def disconnect_running(store, row, network, endpoint) -> None:
    """Remove the running container's interface on `network` (its hub end goes with
    it: the link is cut at once)."""
    from rootless.net.bridge import detach

    with _interfaces_of(store, row) as (userns, hubns, netns, interfaces, save):
        names = interfaces.pop(network.id, None)
        if names is not None:
            detach(userns, netns, names[0], hub_netns_fd=hubns, veth=names[1],
                   network=network.name)
            save()


def adopt_user_networks(store, container_id: str, network) -> None:
    """A stopped slirp container connected to a user network becomes a user network
    container (its slirp helper its way out, as docker keeps a container's default
    bridge beside the networks it joins): its spec's network mode says so, written
    atomically, its mtime kept (the start time `inspect` reads from it)."""
    from rootless.engine.container_inspect import spec_read
    from rootless.engine.containers import container_path
    from rootless.engine.run import write_json
    from rootless.net.modes import NETWORK_ANNOTATION, NetworkMode, mode_from_spec

    path = os.path.join(container_path(store, container_id), "config.json")
    spec, mtime = spec_read(path)
    mode = mode_from_spec(spec)
    if mode is None or mode.mode != "slirp":
        return
    spec["annotations"][NETWORK_ANNOTATION] = NetworkMode(
        "user", mode.helper, name=network.name).annotation()
    write_json(path, spec)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
