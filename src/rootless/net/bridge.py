"""Put a container on a user network: a veth pair from its network namespace to the
network's bridge in the hub (DESIGN.md "Networking"; net/pause.py holds the hub).

The namespaces, and why a forked child can act in all of them:
- P, the pause process's user namespace, made by our uid; H, the hub network namespace,
  owned by P, holding one bridge per network (`br-` + 12 hex of the network's id);
- C, each container's user namespace, made inside P by our uid, and N, its network
  namespace, owned by C.
After setns(2) into P a process holds every capability in P, and so in H, C and N too:
user_namespaces(7), a process has all capabilities in a namespace whose owner is its
euid and whose parent is its own user namespace. It never enters C: the container's
processes, which have no capability in P, cannot trace or signal it, and the credential
change of setns makes it non-dumpable (commit_creds(): capabilities gained).

Every operation runs in a forked child, so the caller's namespaces never change (the
monitor is trio's and multi-threaded: setns into a user namespace needs a single-threaded
caller anyway, setns(2) EINVAL). The child keeps only its pipe and the namespace fds,
reports one line back, and ends with os._exit: no atexit, no trio, no flush of the
parent's buffers. The parent turns a failure into NetworkAttachError naming the network
and the step.

What the container may do about it: it holds CAP_NET_ADMIN in N, so it may rename or
make interfaces there; at worst it confuses its own network. The name it would take is
checked free before the pair is made (a clear error, not EEXIST from the middle of
veth creation), and its hub end, which only we can reach, is what detach deletes when
the caller kept its name, so a renamed interface cannot stay on a network it left.

The hub never routes: a container may add any route in its own namespace (through its
gateway, say, to another network's subnet), so each bridge is made with IPv4 forwarding
off (ip-sysctl.txt: conf/<dev>/forwarding decides for packets received on <dev>;
a new namespace copies the host's conf/all values, devconf_inherit_init_net) and IPv6
off (its forwarding is the namespace's conf/all alone; containers on one bridge still
reach each other over it: bridging is below IP).
"""

from __future__ import annotations

import errno
import os
import signal
import socket

from rootless.errors import RootlessError
from rootless.kernel import constants as k
from rootless.kernel.syscalls import RealSyscalls
from rootless.net.netlink import Netlink
from rootless.records import record

IFNAMSIZ = 16  # with its NUL: names of at most 15 bytes (netdevice(7))
REPORT_MAX = 4096
# sysctls of the current network namespace (proc_sys_net: current's, not the mount's)
_FORWARDING = "/proc/sys/net/ipv4/conf/{}/forwarding"
_NO_IPV6 = "/proc/sys/net/ipv6/conf/{}/disable_ipv6"


class NetworkAttachError(RootlessError):
    """A container could not be put on (or taken off) a user network's bridge."""


@record
class Attachment:
    """One network of a container, as its interface sees it."""
    bridge: str  # the network's bridge in the hub: "br-" + 12 hex of its id
    gateway: str  # the bridge's address, e.g. 10.89.0.1
    prefixlen: int  # of the network's subnet, e.g. 24
    ifname: str  # the container's interface: eth0, eth1, ... in its networks' order
    address: str  # the container's address on the network, e.g. 10.89.0.2
    mtu: int = 1500
    network: str = ""  # the network's name, for messages (else the bridge's)


class _StepError(Exception):
    """A failed step in the child: its words, sent back whole."""


def veth_name() -> str:
    """A fresh name for a pair's end in the hub: `veth` + 8 hex."""
    return "veth" + os.urandom(4).hex()


def attach(pause_userns_fd: int, hub_netns_fd: int, container_netns_fd: int,
           attachment: Attachment, veth: str = "") -> str:
    """Connect the container's network namespace to `attachment`'s bridge, making the
    bridge if it is missing; return the name of the pair's end in the hub (`veth`, or
    veth_name()'s), which `detach` may be given. A caller that records the name before
    the pair exists passes it, so that a kill in between leaves a name to clean up."""
    return attach_mac(pause_userns_fd, hub_netns_fd, container_netns_fd, attachment,
                      veth)[0]


def attach_mac(pause_userns_fd: int, hub_netns_fd: int, container_netns_fd: int,
               attachment: Attachment, veth: str = "") -> tuple[str, str]:
    """attach(), and the MAC address the container's interface has once it is up
    (docker's MacAddress), "" if the kernel gave none."""
    what = f"network {attachment.network or attachment.bridge}"
    _check_attachment(what, attachment)
    veth = veth or veth_name()
    _check_name(what, "veth", veth)
    fds = (pause_userns_fd, hub_netns_fd, container_netns_fd)

    def work() -> str:
        _enter_user(pause_userns_fd)
        _setns("enter the container's network namespace", container_netns_fd,
               k.CLONE_NEWNET)
        ctr = _step("open netlink in the container's namespace", Netlink)
        _name_free(ctr, attachment.ifname)
        _setns("enter the hub network namespace", hub_netns_fd, k.CLONE_NEWNET)
        hub = _step("open netlink in the hub", Netlink)
        bridge = _bridge_ensure(hub, attachment)
        _step(f"add veth {veth} with {attachment.ifname} in the container", hub.veth_add,
              veth, attachment.ifname, container_netns_fd, attachment.mtu)
        try:
            mac = _veth_configure(hub, ctr, veth, bridge, attachment)
        except BaseException:
            try:  # nothing half-made: its peer in the container goes with it
                hub.link_delete(hub.link_index(veth))
            except OSError:
                pass
            raise
        return f"{veth} {mac}"

    name, _, mac = _in_child(what, fds, work).partition(" ")
    return name, mac


def detach(pause_userns_fd: int, container_netns_fd: int, ifname: str, *,
           hub_netns_fd: int | None = None, veth: str = "", network: str = "") -> None:
    """Take the container off a network: delete its interface `ifname`, and with it the
    pair's end in the hub. Given the hub and that end's name (attach's answer), the hub
    end is deleted, whatever the container renamed its own to."""
    what = f"network {network}" if network else f"interface {ifname}"
    _check_name(what, "interface", ifname)
    if veth:
        _check_name(what, "veth", veth)
    fds = (pause_userns_fd, container_netns_fd) + (
        (hub_netns_fd,) if hub_netns_fd is not None else ())

    def work() -> str:
        _enter_user(pause_userns_fd)
        if veth and hub_netns_fd is not None:
            _setns("enter the hub network namespace", hub_netns_fd, k.CLONE_NEWNET)
            if _delete_named(_step("open netlink in the hub", Netlink), veth):
                return ""
        _setns("enter the container's network namespace", container_netns_fd,
               k.CLONE_NEWNET)
        ctr = _step("open netlink in the container's namespace", Netlink)
        if not _delete_named(ctr, ifname):
            raise _StepError(f"delete {ifname} in the container: no such device")
        return ""

    _in_child(what, fds, work)


def bridge_remove(pause_userns_fd: int, hub_netns_fd: int, bridge: str,
                  network: str = "") -> bool:
    """Delete a network's bridge from the hub; False if it was not there (a network no
    container has used since the pause process started). Its ports are released, not
    deleted: a container still on it keeps an interface that leads nowhere."""
    return hub_link_remove(pause_userns_fd, hub_netns_fd, bridge, "bridge", network)


def hub_link_remove(pause_userns_fd: int, hub_netns_fd: int, name: str, kind: str,
                    network: str = "") -> bool:
    """Delete the link `name` (a bridge, or a pair's end: its peer in a container goes
    with it) from the hub; False if there is none."""
    what = f"network {network or name}"
    _check_name(what, kind, name)

    def work() -> str:
        _enter_user(pause_userns_fd)
        _setns("enter the hub network namespace", hub_netns_fd, k.CLONE_NEWNET)
        hub = _step("open netlink in the hub", Netlink)
        return "1" if _delete_named(hub, name) else ""

    return _in_child(what, (pause_userns_fd, hub_netns_fd), work) == "1"


# -- the steps, in the child --

def _step(what: str, call, *args):
    try:
        return call(*args)
    except OSError as e:
        raise _StepError(f"{what}: {_reason(e)}") from None


def _reason(e: OSError) -> str:
    return (e.strerror or os.strerror(e.errno or errno.EIO)).lower()


def _setns(what: str, fd: int, nstype: int) -> None:
    try:
        RealSyscalls().setns(fd, nstype)
    except OSError as e:  # the shim's words name the call: ours name the step
        raise _StepError(f"{what}: {os.strerror(e.errno or errno.EIO).lower()}") from None


def _enter_user(userns_fd: int) -> None:
    _setns("enter the pause user namespace", userns_fd, k.CLONE_NEWUSER)
    # after setns: the credential change cleared the parent-death signal (prctl(2))
    RealSyscalls().prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)


def _name_free(ctr: Netlink, ifname: str) -> None:
    try:
        ctr.link_index(ifname)
    except OSError as e:
        if e.errno == errno.ENODEV:
            return
        raise _StepError(f"look up {ifname} in the container: {_reason(e)}") from None
    raise _StepError(f"interface {ifname} already exists in the container")


def _bridge_ensure(hub: Netlink, a: Attachment) -> int:
    """The bridge's index, made (with its address, no forwarding, up) if missing;
    another container's attach may be making it at the same time: EEXIST is its."""
    try:  # a fixed address: a bridge takes its ports' least one else, changing it under
        hub.bridge_add(a.bridge, a.mtu, _random_mac())  # its neighbours' ARP caches
    except FileExistsError:
        pass
    except OSError as e:
        raise _StepError(f"add bridge {a.bridge}: {_reason(e)}") from None
    link = _step(f"look up bridge {a.bridge}", hub.link, a.bridge)
    if link.kind != "bridge":
        raise _StepError(f"{a.bridge} in the hub is not a bridge ({link.kind or 'device'})")
    index = link.index
    _routes_nothing(a.bridge)
    try:
        hub.address_add(index, a.gateway, a.prefixlen)
    except FileExistsError:
        pass
    except OSError as e:
        raise _StepError(f"add address {a.gateway}/{a.prefixlen} to {a.bridge}: "
                         f"{_reason(e)}") from None
    _step(f"set {a.bridge} up", lambda: hub.link_set(index, up=True))
    return index


def _random_mac() -> bytes:
    """A locally administered unicast address (IEEE 802: bit 1 set, bit 0 clear)."""
    first, *rest = os.urandom(6)
    return bytes([(first & 0xFC) | 0x02, *rest])


def _routes_nothing(bridge: str) -> None:
    """IPv4: no forwarding of what the bridge brings in. IPv6 forwards by the namespace's
    conf/all only (ip-sysctl.txt), so the bridge takes no IPv6 at all: its frames still
    pass between its ports, which is all a network's containers need of it."""
    _sysctl_set(_FORWARDING.format(bridge), b"0", f"turn forwarding off on {bridge}")
    try:
        _sysctl_set(_NO_IPV6.format(bridge), b"1", f"turn ipv6 off on {bridge}")
    except _StepError:
        if os.path.exists("/proc/sys/net/ipv6"):  # else: a kernel without IPv6
            raise


def _sysctl_set(path: str, value: bytes, what: str) -> None:
    """Write `value` (numeric sysctls take writes at offset 0 only: sysctl_writes_strict);
    where that is refused, the value already there will do."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value)
        finally:
            os.close(fd)
    except OSError as e:
        try:
            with open(path, "rb") as f:
                if f.read(8).strip() == value:
                    return
        except OSError:
            pass
        raise _StepError(f"{what}: {_reason(e)}") from None


def _veth_configure(hub: Netlink, ctr: Netlink, veth: str, bridge: int,
                    a: Attachment) -> str:
    """Enslave and raise both ends, address the container's; its MAC address."""
    index = _step(f"look up {veth}", hub.link_index, veth)
    _step(f"enslave {veth} to {a.bridge}", lambda: hub.link_set(index, master=bridge))
    _step(f"set {veth} up", lambda: hub.link_set(index, up=True))
    peer = _step(f"look up {a.ifname} in the container", ctr.link_index, a.ifname)
    _step(f"add address {a.address}/{a.prefixlen} to {a.ifname}", ctr.address_add, peer,
          a.address, a.prefixlen)
    _step(f"set {a.ifname} up", lambda: ctr.link_set(peer, up=True))
    lo = _step("look up lo in the container", ctr.link_index, "lo")
    _step("set lo up in the container", lambda: ctr.link_set(lo, up=True))
    mac = _step(f"look up {a.ifname} in the container", ctr.link, a.ifname).mac
    return mac if len(mac) == 17 else ""  # an Ethernet address, as inspect shows it


def _delete_named(nl: Netlink, name: str) -> bool:
    """Delete link `name`; False if there is none."""
    try:
        nl.link_delete(nl.link_index(name))
    except OSError as e:
        if e.errno == errno.ENODEV:
            return False
        raise _StepError(f"delete {name}: {_reason(e)}") from None
    return True


# -- checks, in the caller --

def _check_name(what: str, kind: str, name: str) -> None:
    """dev_valid_name() of the kernel: 1-15 bytes, no '/', ':' or white space."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise NetworkAttachError(f"{what}: invalid {kind} name {name!r}")
    if len(name.encode()) >= IFNAMSIZ:
        raise NetworkAttachError(f"{what}: {kind} name {name!r} is longer than "
                                 f"{IFNAMSIZ - 1} characters")
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in name):
        raise NetworkAttachError(f"{what}: invalid {kind} name {name!r}")


def _check_address(what: str, address: str) -> None:
    try:
        socket.inet_pton(socket.AF_INET, address)
    except (OSError, TypeError, ValueError):
        raise NetworkAttachError(f"{what}: invalid IPv4 address {address!r}") from None


def _check_attachment(what: str, a: Attachment) -> None:
    _check_name(what, "bridge", a.bridge)
    _check_name(what, "interface", a.ifname)
    _check_address(what, a.gateway)
    _check_address(what, a.address)
    if not isinstance(a.prefixlen, int) or not 1 <= a.prefixlen <= 30:
        raise NetworkAttachError(f"{what}: invalid prefix length {a.prefixlen!r}")
    if not isinstance(a.mtu, int) or not 68 <= a.mtu <= 65535:  # IPv4's least; veth's most
        raise NetworkAttachError(f"{what}: invalid mtu {a.mtu!r}")


# -- the child --

def _in_child(what: str, fds: tuple[int, ...], work) -> str:
    """Run `work` in a forked child; its answer, or NetworkAttachError with its words."""
    import rootless._shim  # noqa: F401 - loaded here, not in the child (setns is in it)

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        _child(write_end, fds, work)  # never returns
    os.close(write_end)
    try:
        report = _read_all(read_end)
    finally:
        os.close(read_end)
        _reap(pid)
    status, _, text = report.decode(errors="replace").partition(" ")
    if status == "ok":
        return text
    if status == "error" and text:
        raise NetworkAttachError(f"{what}: {text}")
    raise NetworkAttachError(f"{what}: the helper process died before it reported")


def _child(write_end: int, fds: tuple[int, ...], work) -> None:
    code = 1
    try:
        try:  # (a fork from another thread made it this process's main thread)
            signal.set_wakeup_fd(-1)  # the parent's (trio's) wake-up pipe is not ours
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
        except ValueError:
            pass
        _close_others({write_end, *fds})
        try:
            report = "ok " + work()
        except _StepError as e:
            report = f"error {e}"
        except Exception as e:  # noqa: BLE001 - one line back, never a traceback
            report = f"error {type(e).__name__}: {e}".lower()
        data = " ".join(report.split()).encode()[:REPORT_MAX]
        while data:
            data = data[os.write(write_end, data):]
        code = 0
    finally:
        os._exit(code)


def _close_others(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the listing's own descriptor, closed by now
                pass


def _read_all(fd: int) -> bytes:
    data = b""
    while len(data) <= REPORT_MAX:
        chunk = os.read(fd, REPORT_MAX + 1)
        if not chunk:
            break
        data += chunk
    return data


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # a monitor's waitpid(-1) may have reaped it first
        pass
