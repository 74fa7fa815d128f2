"""The kernel side of user networks (issue 11): net/netlink.py, a NETLINK_ROUTE client,
and net/bridge.py, which puts a container's network namespace on a bridge in the hub.

The namespaces are the tests' own, made as the design makes them (net/pause.py): a
"pause" holder with a user namespace P (this user mapped to root, one id) and a hub
network namespace H; each "container" holder with its own user namespace made inside P
and its own network namespace. attach/detach are called from this process, outside all
of them. What they did is read back with iproute2's `ip -j` run inside each namespace,
and traffic is real TCP between processes placed in the containers' namespaces.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import children_of, wait_for

from rootless.kernel import constants as k
from rootless.kernel.syscalls import RealSyscalls
from rootless.net import netlink
from rootless.net.bridge import Attachment, NetworkAttachError, attach, bridge_remove, detach

pytestmark = pytest.mark.container  # as root, the namespaces would not be a user's

SYS = RealSyscalls()
BRIDGE, OTHER_BRIDGE = "br-0123456789ab", "br-ba9876543210"
PORT = 8080

# a one-connection-at-a-time echo server; prints "ready" once it listens
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"echo:" + c.recv(100))
    c.close()
"""
# connects, sends, prints the answer, or the errno's name ("timeout" when none came)
CLIENT = """
import errno, socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.sendall(b"hello")
    print(s.recv(100).decode())
except TimeoutError:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
"""


class Holder:
    """A sleeping process holding a user and a network namespace, and fds of both."""

    def __init__(self, preexec=None) -> None:
        self.proc = subprocess.Popen(["unshare", "--user", "--map-root-user", "--net",
                                      "sleep", "600"], preexec_fn=preexec)
        comm = f"/proc/{self.proc.pid}/comm"
        wait_for(lambda: _read(comm) == "sleep\n", timeout=10)  # unshare has exec'd it
        self.user = os.open(f"/proc/{self.proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        self.net = os.open(f"/proc/{self.proc.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.user)
        os.close(self.net)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class World:
    """The pause's namespaces (P, H) and the containers made inside P."""

    def __init__(self) -> None:
        self.holders: list[Holder] = []
        self.pause = self._hold()

    def _hold(self, preexec=None) -> Holder:
        holder = Holder(preexec)
        self.holders.append(holder)
        return holder

    def container(self) -> Holder:
        userns = self.pause.user
        return self._hold(lambda: SYS.setns(userns, k.CLONE_NEWUSER))

    def attach(self, ctr: Holder, bridge: str, address: str, ifname: str = "eth0",
               gateway: str | None = None) -> str:
        gateway = gateway or address.rsplit(".", 1)[0] + ".1"
        return attach(self.pause.user, self.pause.net, ctr.net,
                      Attachment(bridge, gateway, 24, ifname, address, network="web"))

    def popen(self, netns: int, argv: list[str], **kw) -> subprocess.Popen:
        """A process in network namespace `netns`, with P's capabilities."""
        userns = self.pause.user

        def enter() -> None:
            SYS.setns(userns, k.CLONE_NEWUSER)
            SYS.setns(netns, k.CLONE_NEWNET)
        return subprocess.Popen(argv, preexec_fn=enter, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)

    def run(self, netns: int, *argv: str) -> str:
        proc = self.popen(netns, list(argv))
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        return out

    def ip(self, netns: int, *args: str) -> list[dict]:
        return json.loads(self.run(netns, "ip", "-j", *args) or "[]")

    def links(self, netns: int) -> dict[str, dict]:
        return {link["ifname"]: link for link in self.ip(netns, "-d", "link", "show")}

    def addresses(self, netns: int) -> dict[str, set[str]]:
        return {link["ifname"]: {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]
                                 if a["family"] == "inet"}
                for link in self.ip(netns, "addr", "show")}

    def serve(self, ctr: Holder, address: str) -> subprocess.Popen:
        proc = self.popen(ctr.net, [sys.executable, "-c", SERVER, address, str(PORT)])
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        return proc

    def connect(self, ctr: Holder, address: str, timeout: float = 5) -> str:
        return self.run(ctr.net, sys.executable, "-c", CLIENT, address, str(PORT),
                        str(timeout)).strip()

    def close(self) -> None:
        for holder in reversed(self.holders):
            holder.close()


@pytest.fixture
def world():
    made = World()
    servers: list[subprocess.Popen] = []
    made.servers = servers
    yield made
    for proc in servers:
        proc.kill()
        proc.communicate()
    made.close()


# -- attach --

def test_attach_gives_the_container_its_interface_and_address(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    links = world.links(ctr.net)
    assert "UP" in links["eth0"]["flags"]
    assert "UP" in links["lo"]["flags"]
    assert world.addresses(ctr.net)["eth0"] == {"10.89.0.2/24"}


def test_attach_makes_the_bridge_in_the_hub_with_the_gateway_address(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    hub = world.links(world.pause.net)
    assert hub[BRIDGE]["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in hub[BRIDGE]["flags"]
    assert world.addresses(world.pause.net)[BRIDGE] == {"10.89.0.1/24"}


def test_attach_enslaves_the_returned_hub_end_to_the_bridge(world):
    ctr = world.container()
    veth = world.attach(ctr, BRIDGE, "10.89.0.2")
    assert veth.startswith("veth") and len(veth) == 12
    hub = world.links(world.pause.net)
    assert hub[veth]["master"] == BRIDGE
    assert "UP" in hub[veth]["flags"]


def test_attach_leaves_no_process_and_no_descriptor_behind(world):
    ctr = world.container()
    fds_before = sorted(os.listdir("/proc/self/fd"))
    world.attach(ctr, BRIDGE, "10.89.0.2")
    assert sorted(children_of(os.getpid())) == sorted(h.proc.pid for h in world.holders)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


def test_attach_leaves_the_container_without_a_route_out(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    routes = world.ip(ctr.net, "route", "show")
    assert [r["dst"] for r in routes] == ["10.89.0.0/24"]  # the link's own, no default


def test_a_second_attach_to_an_existing_bridge_joins_it(world):
    first, second = world.container(), world.container()
    world.attach(first, BRIDGE, "10.89.0.2")
    veth = world.attach(second, BRIDGE, "10.89.0.3")
    hub = world.links(world.pause.net)
    assert [name for name in hub if name.startswith("br-")] == [BRIDGE]
    assert hub[veth]["master"] == BRIDGE
    assert world.addresses(world.pause.net)[BRIDGE] == {"10.89.0.1/24"}
    assert world.addresses(second.net)["eth0"] == {"10.89.0.3/24"}


def test_attaches_racing_to_make_one_bridge_all_succeed(world):
    """Containers started together on a new network: every attach but one finds the
    bridge (or its address) made by another, EEXIST, and joins it."""
    ctrs = [world.container() for _ in range(4)]
    with ThreadPoolExecutor(len(ctrs)) as pool:
        veths = list(pool.map(lambda i: world.attach(ctrs[i], BRIDGE, f"10.89.0.{i + 2}"),
                              range(len(ctrs))))
    hub = world.links(world.pause.net)
    assert [hub[veth]["master"] for veth in veths] == [BRIDGE] * len(ctrs)
    assert world.addresses(world.pause.net)[BRIDGE] == {"10.89.0.1/24"}


def test_one_container_on_two_networks_gets_eth0_and_eth1(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2", "eth0")
    world.attach(ctr, OTHER_BRIDGE, "10.90.0.2", "eth1")
    addresses = world.addresses(ctr.net)
    assert addresses["eth0"] == {"10.89.0.2/24"}
    assert addresses["eth1"] == {"10.90.0.2/24"}


def test_two_containers_on_one_bridge_exchange_bytes_over_tcp(world):
    a, b = world.container(), world.container()
    world.attach(a, BRIDGE, "10.89.0.2")
    world.attach(b, BRIDGE, "10.89.0.3")
    world.servers.append(world.serve(a, "10.89.0.2"))
    assert world.connect(b, "10.89.0.2") == "echo:hello"


def test_a_container_on_another_bridge_cannot_reach_them_even_routed_by_the_hub(world):
    """Containers own their routes: c sends to a's network through its own gateway, and
    a answers through its. The hub must not forward between its bridges, even when it
    would by default (a new network namespace copies the host's ip_forward)."""
    world.run(world.pause.net, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
    a, b, c = world.container(), world.container(), world.container()
    world.attach(a, BRIDGE, "10.89.0.2")
    world.attach(b, BRIDGE, "10.89.0.3")
    world.attach(c, OTHER_BRIDGE, "10.90.0.2")
    world.run(a.net, "ip", "route", "add", "default", "via", "10.89.0.1")
    world.run(c.net, "ip", "route", "add", "default", "via", "10.90.0.1")
    world.servers.append(world.serve(a, "10.89.0.2"))
    assert world.connect(b, "10.89.0.2") == "echo:hello"  # a serves its network
    assert world.connect(c, "10.90.0.1") == "ECONNREFUSED"  # c's link to the hub works
    assert world.connect(c, "10.89.0.2", timeout=1.5) == "timeout"  # dropped in the hub


def test_the_hub_takes_no_ipv6_from_a_bridge(world):
    """IPv6 forwards by the namespace's conf/all alone: the bridge must not feed it."""
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    flag = world.run(world.pause.net, "cat", f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6")
    assert flag.strip() == "1"
    bridge = [link for link in world.ip(world.pause.net, "addr", "show")
              if link["ifname"] == BRIDGE]
    assert [a["family"] for a in bridge[0]["addr_info"]] == ["inet"]


# -- detach --

def test_detach_removes_the_interface_and_cuts_the_link(world):
    a, b = world.container(), world.container()
    world.attach(a, BRIDGE, "10.89.0.2")
    veth = world.attach(b, BRIDGE, "10.89.0.3")
    world.servers.append(world.serve(a, "10.89.0.2"))
    assert world.connect(b, "10.89.0.2") == "echo:hello"
    detach(world.pause.user, b.net, "eth0", network="web")
    assert "eth0" not in world.links(b.net)
    assert veth not in world.links(world.pause.net)  # its hub end went with it
    assert world.connect(b, "10.89.0.2") == "ENETUNREACH"


def test_detach_by_the_hub_end_takes_off_a_container_that_renamed_its_interface(world):
    ctr = world.container()
    veth = world.attach(ctr, BRIDGE, "10.89.0.2")
    world.run(ctr.net, "sh", "-c", "ip link set eth0 down && ip link set eth0 name eth9")
    detach(world.pause.user, ctr.net, "eth0", hub_netns_fd=world.pause.net, veth=veth,
           network="web")
    assert set(world.links(ctr.net)) == {"lo"}
    assert veth not in world.links(world.pause.net)


def test_detach_of_a_missing_interface_is_a_clear_error(world):
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        detach(world.pause.user, ctr.net, "eth3", network="web")
    assert str(caught.value) == "network web: delete eth3 in the container: no such device"


# -- a network's removal --

def test_bridge_remove_deletes_the_bridge_from_the_hub(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    world.attach(ctr, OTHER_BRIDGE, "10.90.0.2", "eth1")
    detach(world.pause.user, ctr.net, "eth0", network="web")
    assert bridge_remove(world.pause.user, world.pause.net, BRIDGE, network="web") is True
    assert [n for n in world.links(world.pause.net) if n.startswith("br-")] == [OTHER_BRIDGE]


def test_bridge_remove_of_a_bridge_never_made_says_so(world):
    assert bridge_remove(world.pause.user, world.pause.net, BRIDGE, network="web") is False
    assert set(world.links(world.pause.net)) == {"lo"}


# -- bad input --

def test_attach_through_a_closed_fd_names_the_step(world):
    ctr = world.container()
    closed = 1000
    assert not os.path.exists(f"/proc/self/fd/{closed}")
    with pytest.raises(NetworkAttachError) as caught:
        attach(closed, world.pause.net, ctr.net,
               Attachment(BRIDGE, "10.89.0.1", 24, "eth0", "10.89.0.2", network="web"))
    assert str(caught.value) == ("network web: enter the pause user namespace: "
                                 "bad file descriptor")


def test_attach_through_the_wrong_kind_of_namespace_names_the_step(world):
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        attach(world.pause.user, world.pause.net, ctr.user,
               Attachment(BRIDGE, "10.89.0.1", 24, "eth0", "10.89.0.2", network="web"))
    assert str(caught.value) == ("network web: enter the container's network namespace: "
                                 "invalid argument")
    assert "br-" not in json.dumps(world.ip(world.pause.net, "link", "show"))


def test_an_interface_name_longer_than_ifnamsiz_is_refused(world):
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        world.attach(ctr, BRIDGE, "10.89.0.2", ifname="eth0123456789abc")
    assert str(caught.value) == ("network web: interface name 'eth0123456789abc' is "
                                 "longer than 15 characters")


@pytest.mark.parametrize("name", ["", "eth/0", "eth:0", "eth 0", ".."])
def test_an_invalid_interface_name_is_refused(world, name):
    ctr = world.container()
    with pytest.raises(NetworkAttachError, match="^network web: invalid interface name"):
        world.attach(ctr, BRIDGE, "10.89.0.2", ifname=name)


def test_an_invalid_address_is_refused(world):
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        world.attach(ctr, BRIDGE, "10.89.0.300")
    assert str(caught.value) == "network web: invalid IPv4 address '10.89.0.300'"


def test_a_taken_interface_name_is_refused_and_leaves_nothing_in_the_hub(world):
    ctr = world.container()
    first = world.attach(ctr, BRIDGE, "10.89.0.2")
    with pytest.raises(NetworkAttachError) as caught:
        world.attach(ctr, BRIDGE, "10.89.0.3")
    assert str(caught.value) == "network web: interface eth0 already exists in the container"
    veths = [name for name in world.links(world.pause.net) if name.startswith("veth")]
    assert veths == [first]
    assert world.addresses(ctr.net)["eth0"] == {"10.89.0.2/24"}


def test_a_failure_after_the_pair_is_made_leaves_neither_end(world, monkeypatch):
    """Fault injection: the container's address is refused (attach's child is a fork of
    this process, so the patched client is the one it uses)."""
    real = netlink.Netlink.address_add

    def refuse_the_containers(self, index, address, prefixlen):
        if address == "10.89.0.2":
            raise OSError(errno.EADDRNOTAVAIL, "cannot assign requested address")
        return real(self, index, address, prefixlen)

    monkeypatch.setattr(netlink.Netlink, "address_add", refuse_the_containers)
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        world.attach(ctr, BRIDGE, "10.89.0.2")
    assert str(caught.value) == ("network web: add address 10.89.0.2/24 to eth0: "
                                 "cannot assign requested address")
    assert set(world.links(ctr.net)) == {"lo"}
    assert not [name for name in world.links(world.pause.net) if name.startswith("veth")]


def test_a_hub_link_of_the_bridges_name_that_is_no_bridge_is_refused(world):
    world.run(world.pause.net, "ip", "link", "add", "name", BRIDGE, "type", "veth", "peer",
              "name", "other0")
    ctr = world.container()
    with pytest.raises(NetworkAttachError) as caught:
        world.attach(ctr, BRIDGE, "10.89.0.2")
    assert str(caught.value) == f"network web: {BRIDGE} in the hub is not a bridge (veth)"
    assert set(world.links(ctr.net)) == {"lo"}


# -- the client on its own --

def test_the_client_finds_loopback_in_its_own_namespace():
    with netlink.Netlink() as nl:
        lo = nl.link("lo")
        assert lo.index == 1 and lo.name == "lo"
        assert "lo" in [link.name for link in nl.links()]
        assert (1, "127.0.0.1", 8) in nl.addresses()


def test_the_client_reports_a_missing_link_as_enodev():
    with netlink.Netlink() as nl, pytest.raises(OSError) as caught:
        nl.link_index("nosuchlink0")
    assert caught.value.errno == errno.ENODEV


def test_the_client_raises_the_kernels_errno_for_a_refused_request():
    with netlink.Netlink() as nl, pytest.raises(PermissionError) as caught:
        nl.bridge_add("br-notallowed")  # the host's namespace: no CAP_NET_ADMIN there
    assert caught.value.errno == errno.EPERM


def test_the_client_reports_eexist_as_file_exists_error(world):
    """What a concurrent attach sees when the other made the bridge first."""
    proc = world.popen(world.pause.net, [sys.executable, "-c", (
        "from rootless.net.netlink import Netlink\n"
        "nl = Netlink()\n"
        "nl.bridge_add('br-twice')\n"
        "try:\n"
        "    nl.bridge_add('br-twice')\n"
        "except FileExistsError as e:\n"
        "    print('EEXIST', e.errno)\n")])
    out, err = proc.communicate(timeout=30)
    assert out.strip() == f"EEXIST {errno.EEXIST}", err


def test_the_client_adds_routes_by_gateway_and_by_device(world):
    ctr = world.container()
    world.attach(ctr, BRIDGE, "10.89.0.2")
    world.run(ctr.net, sys.executable, "-c", (
        "from rootless.net.netlink import Netlink\n"
        "nl = Netlink()\n"
        "nl.route_add('0.0.0.0', 0, gateway='10.89.0.1')\n"
        "nl.route_add('192.0.2.0', 24, index=nl.link_index('eth0'))\n"))
    routes = {r["dst"]: r for r in world.ip(ctr.net, "route", "show")}
    assert routes["default"]["gateway"] == "10.89.0.1"
    assert routes["192.0.2.0/24"]["dev"] == "eth0"
    assert routes["192.0.2.0/24"]["scope"] == "link"


# -- the encoding, without namespaces (linux/netlink.h, rtnetlink.h, if_link.h) --

def test_an_attribute_is_padded_to_four_bytes_and_counts_only_its_payload():
    assert netlink.attr(3, b"ab\0") == struct.pack("=HH", 7, 3) + b"ab\0" + b"\0"
    assert netlink.attr_u32(4, 1500) == struct.pack("=HHI", 8, 4, 1500)


def test_a_request_header_counts_itself_and_its_body():
    body = netlink.ifinfomsg(7, 1, 1)
    data = netlink.message(16, 0x5, 42, body)
    assert data == struct.pack("=IHHII", 32, 16, 0x5, 42, 0) + body
    assert body == struct.pack("=BBHiII", 0, 0, 0, 7, 1, 1)


def test_a_veth_request_nests_the_peer_with_its_namespace_fd():
    def nla(kind: int, payload: bytes) -> bytes:
        size = 4 + len(payload)
        return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)

    empty_ifinfo = bytes(16)
    peer = empty_ifinfo + nla(3, b"eth0\0") + nla(28, struct.pack("=I", 9)) \
        + nla(4, struct.pack("=I", 1500))
    linkinfo = nla(1, b"veth\0") + nla(2, nla(1, peer))
    expected = empty_ifinfo + nla(3, b"vethabcd1234\0") + nla(4, struct.pack("=I", 1500)) \
        + nla(18, linkinfo)
    assert netlink.veth_body("vethabcd1234", "eth0", 9, 1500) == expected


def test_an_address_request_carries_local_address_and_broadcast():
    body = netlink.address_body(5, "10.89.0.2", 24)
    assert body[:8] == struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 5)
    found = netlink.attrs(body, 8)
    assert found[netlink.IFA_LOCAL] == socket.inet_aton("10.89.0.2")
    assert found[netlink.IFA_ADDRESS] == socket.inet_aton("10.89.0.2")
    assert found[netlink.IFA_BROADCAST] == socket.inet_aton("10.89.0.255")


def test_a_point_to_point_address_has_no_broadcast():
    found = netlink.attrs(netlink.address_body(5, "10.89.0.2", 31), 8)
    assert netlink.IFA_BROADCAST not in found


def test_a_route_request_names_destination_gateway_and_device():
    body = netlink.route_body("10.90.0.0", 24, "10.89.0.1", 3)
    assert body[:12] == struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, 254, 3, 0, 1, 0)
    found = netlink.attrs(body, 12)
    assert found[netlink.RTA_DST] == socket.inet_aton("10.90.0.0")
    assert found[netlink.RTA_GATEWAY] == socket.inet_aton("10.89.0.1")
    assert found[netlink.RTA_OIF] == struct.pack("=I", 3)


def test_an_ack_is_no_error_and_an_error_carries_errno_and_the_kernels_words():
    request = struct.pack("=IHHII", 40, 16, 0x605, 9, 0)
    assert netlink.error_of(0, struct.pack("=i", 0) + request) is None
    said = netlink.attr(netlink.NLMSGERR_ATTR_MSG, b"Device exists\0")
    error = netlink.error_of(netlink.NLM_F_CAPPED | netlink.NLM_F_ACK_TLVS,
                             struct.pack("=i", -errno.EEXIST) + request + said)
    assert isinstance(error, FileExistsError) and error.errno == errno.EEXIST
    assert error.strerror == "file exists (device exists)"


def test_a_message_longer_than_its_datagram_is_refused():
    data = struct.pack("=IHHII", 64, 16, 0, 1, 0) + bytes(16)
    with pytest.raises(OSError) as caught:
        netlink.messages(data)
    assert caught.value.errno == errno.EPROTO


def test_attribute_types_are_read_without_the_nested_flag():
    data = netlink.attr(0x8000 | 18, netlink.attr_str(1, "veth"))
    assert set(netlink.attrs(data)) == {18}
