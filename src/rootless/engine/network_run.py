"""A container's networks for one run, in its monitor: user networks and container:NAME.

User networks (net/pause.py has the design): before the start, hold the store's pause
process (starting it if need be) and nest the container's user namespace inside its
(runtime/process.Joins); once the init's network namespace exists (the monitor's
on_init, before the command runs), give it one interface per network on that network's
bridge in the hub (net/bridge.py), then write its /etc/hosts and its peers' (network_live),
then start the slirp helper for the way out, unless every network is --internal.

container:NAME: enter the user and network namespaces of NAME's init (pid and start
time from the store, checked after the files are open), so a reused pid never leads
into another process's namespaces; docker's error when NAME is not running.
"""

from __future__ import annotations

import json
import os

from rootless.errors import RootlessError

# {network id: [its interface in the container, the pair's end in the hub, state, MAC]}:
# disconnect deletes the hub's end, which the container cannot rename. state PENDING
# marks a connect of a running container under way: written before its endpoint row and
# its veth pair, "" once both are whole, so a connect killed in between leaves a record
# of what to undo (engine/network_live.settle). MAC: the container's interface's
# address as the kernel gave it at attach (inspect's MacAddress). Older files hold the
# first two items alone.
INTERFACES_FILE = "interfaces.json"
PENDING = "pending"
# flock(2)ed by whoever changes a container's interfaces (connect, disconnect, the
# monitor's attach at start), so a PENDING entry found under it is a killed command's
NETWORK_LOCK = "network.lock"


def bridge_name(network_id: str) -> str:
    """docker's name for a user network's bridge: br- and 12 hex (IFNAMSIZ: 15)."""
    return "br-" + network_id[:12]


def attachment_for(network, endpoint, ifname: str):
    from rootless.net.bridge import Attachment

    prefix = int(network.subnet.partition("/")[2])
    return Attachment(bridge=bridge_name(network.id), gateway=network.gateway,
                      prefixlen=prefix, ifname=ifname, address=endpoint.ip,
                      network=network.name)


def write_interfaces(dirfd: int, interfaces: dict[str, list[str]]) -> None:
    tmp = f"{INTERFACES_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dirfd)
    try:
        os.write(fd, json.dumps(interfaces).encode())
    finally:
        os.close(fd)
    os.replace(tmp, INTERFACES_FILE, src_dir_fd=dirfd, dst_dir_fd=dirfd)


def read_interfaces(dirfd: int) -> dict[str, list[str]]:
    from rootless.kernel.paths import read_regular_at

    try:
        data = json.loads(read_regular_at(dirfd, INTERFACES_FILE, 1 << 16) or b"{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, list)
            and 2 <= len(v) <= 4 and all(isinstance(name, str) for name in v)
            and (len(v) < 3 or v[2] in ("", PENDING))}


def is_pending(names: list[str]) -> bool:
    """An interfaces entry of a connect under way (or killed midway)."""
    return len(names) >= 3 and names[2] == PENDING


def interfaces_of(store, container_id: str) -> dict[str, list[str]]:
    """The container's interfaces record ({} if it has none or is gone)."""
    from rootless.engine.containers import container_path

    try:
        dirfd = os.open(container_path(store, container_id),
                        os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return read_interfaces(dirfd)
    finally:
        os.close(dirfd)


def pending_networks(store, container_id: str) -> set[str]:
    """Ids of the networks a connect of the running container has recorded but not
    finished (or was killed in): no interface of theirs may be reported."""
    return {network_id for network_id, names in interfaces_of(store, container_id).items()
            if is_pending(names)}


def lock_interfaces(dirfd: int) -> int:
    """An exclusive flock on the container's NETWORK_LOCK (in its directory `dirfd`),
    held while the descriptor returned is open."""
    from rootless.kernel.flock import open_locked

    return open_locked(NETWORK_LOCK, dir_fd=dirfd)


def killed_here(point: str) -> None:
    """Tests kill the command (or monitor) at a named point, as a SIGKILL from outside
    would: ROOTLESS_TEST_KILL_AT=POINT (tests/test_user_networks.py)."""
    if os.environ.get("ROOTLESS_TEST_KILL_AT") == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def hub_holders(store) -> list[int]:
    """Monitors of the store's running containers on user networks: each holds the
    hub's namespaces for its run (net/pause.ensure's survivors)."""
    return [r[0] for r in store.db.execute(
        "SELECT DISTINCT c.monitor_pid FROM containers c JOIN network_endpoints e "
        "ON e.container_id = c.id WHERE c.state IN ('running', 'paused') AND "
        "c.monitor_pid IS NOT NULL")]


class UserNetworkRun:
    """The pause hold and namespaces of one run of a container on user networks."""

    def __init__(self, store, container_id: str, dirfd: int) -> None:
        from rootless.kernel.idmap import detect_maps
        from rootless.net import pause

        self.store, self.id, self.dirfd = store, container_id, dirfd
        maps = detect_maps(0, 0)
        self.hold = pause.hold(maps)
        try:
            found = pause.ensure(maps, lambda: hub_holders(store))
            self.userns, self.hubns, self.maps = pause.namespaces(found)
        except BaseException:
            os.close(self.hold)
            raise
        self.networks: list = []

    def joins(self):
        from rootless.runtime.process import Joins

        return Joins(userns=self.userns, nest=True, parent_maps=self.maps)

    def attach(self, netns_fd: int) -> bool:
        """Connect the container's network namespace to each of its networks; True if
        one of them leads out (not --internal)."""
        from rootless.engine.network_live import refresh_hosts
        from rootless.engine.networks import endpoints_of_container
        from rootless.net.bridge import attach_mac

        lock = lock_interfaces(self.dirfd)  # a connect's PENDING entry is not ours
        try:  # to drop: this run attaches every endpoint there is, its own included
            endpoints = endpoints_of_container(self.store, self.id)
            interfaces = {}
            for index, (network, endpoint) in enumerate(endpoints):
                ifname = f"eth{index}"
                veth, mac = attach_mac(self.userns, self.hubns, netns_fd,
                                       attachment_for(network, endpoint, ifname))
                interfaces[network.id] = [ifname, veth, "", mac]
                killed_here("start-veth")
            write_interfaces(self.dirfd, interfaces)
        finally:
            os.close(lock)
        self.networks = [network for network, _ in endpoints]
        for network in self.networks:  # its own file before its command runs
            try:
                refresh_hosts(self.store, network, starting=self.id)
            except (OSError, RootlessError):  # names are a convenience; the link is up
                pass
        return any(not network.internal for network in self.networks)

    def announce(self) -> None:
        """Once it is recorded running: every member's hosts file again, for peers
        that started at the same time (each saw the others not running yet)."""
        from rootless.engine.network_live import refresh_hosts

        for network in self.networks:
            try:
                refresh_hosts(self.store, network)
            except (OSError, RootlessError):
                pass

    def release(self) -> None:
        """After the run: its peers forget it; the pause may go once no run holds it."""
        from rootless.engine.network_live import refresh_hosts

        for network in self.networks:
            try:
                refresh_hosts(self.store, network, stopping=self.id)
            except (OSError, RootlessError):
                pass
        self.networks = []
        for fd in (self.userns, self.hubns, self.hold):
            if fd is not None:
                os.close(fd)
        self.userns = self.hubns = self.hold = None


def container_joins(store, spec_mode):
    """Joins of --network container:NAME: NAME's user and network namespaces."""
    from rootless.engine.containers import container_row
    from rootless.kernel.procs import alive_as, open_user_namespaces
    from rootless.runtime.process import Joins

    row = container_row(store, spec_mode.name)
    if row is None:
        raise RootlessError(f"cannot join network of a non running container: "
                            f"{spec_mode.name[:12]} (it was removed)")
    name = row.record.name or row.record.id[:12]
    if row.pid is None or not alive_as(row.pid, row.init_start):
        raise RootlessError(f"cannot join network of a non running container: {name}")
    try:
        (user, net), maps = open_user_namespaces(row.pid, row.init_start, ("net",))
    except ProcessLookupError:
        raise RootlessError(f"cannot join network of a non running container: "
                            f"{name}") from None
    except OSError as e:
        raise RootlessError(f"cannot join the network of container {name}: "
                            f"{os.strerror(e.errno).lower()}") from None
    return Joins(userns=user, nest=True, netns=net, parent_maps=maps)
