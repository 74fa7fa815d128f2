"""A minimal NETLINK_ROUTE client: what user networks need of rtnetlink(7), nothing more.

One `Netlink` object is one socket, and a netlink socket acts in the network namespace
its opener was in when it was made (socket(2) takes current's net namespace; a later
setns(2) does not move it): net/bridge.py opens one in the hub and one in the
container's namespace and uses both from the same process. Capability checks are made
against the credentials the socket was opened with (netlink_ns_capable() looks at the
socket file's f_cred), so a socket must be opened after setns into the pause user
namespace, never before.

The wire format (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, veth.h), every
integer in host byte order except addresses:
- a message is a 16-byte nlmsghdr (len, type, flags, seq, pid) + a fixed struct
  (ifinfomsg 16 bytes, ifaddrmsg 8, rtmsg 12) + attributes; each attribute is a 4-byte
  nlattr (len, type) + payload, padded to 4 bytes (len counts the payload, not the pad);
- a veth's peer (veth.h, VETH_INFO_PEER inside IFLA_LINKINFO/IFLA_INFO_DATA) is a whole
  ifinfomsg + attributes, as iproute2's `ip link add ... type veth peer name N netns X`
  sends: the kernel creates it straight in the namespace IFLA_NET_NS_FD names, which
  needs CAP_NET_ADMIN over that namespace's owner (rtnl_link_get_net_capable());
- every request carries NLM_F_ACK: the kernel answers an NLMSG_ERROR whose error is 0
  (done) or -errno, with the kernel's own words as NLMSGERR_ATTR_MSG where the socket
  asked for extended acks (NETLINK_EXT_ACK, Linux 4.12; best effort: 4.18 has it).

Replies are checked: the sender must be the kernel (port 0; another process of the
namespace may send to our port, and a container holds CAP_NET_ADMIN in its own), the
sequence number ours, every length inside its datagram, a truncated datagram is an
error (EMSGSIZE), and each receive waits at most TIMEOUT seconds. Errors are OSError
with the kernel's errno: creating what exists raises FileExistsError (EEXIST, as
NLM_F_EXCL asks), which callers may take as "made by someone else first".
"""

from __future__ import annotations

import errno
import os
import socket
import struct

TIMEOUT = 5.0  # seconds a reply may take: the kernel answers at once, or never
MAX_DATAGRAMS = 4096  # per request: a dump of a namespace's links or addresses
RECV_SIZE = 1 << 16  # the kernel's dumps fill at most 32 KiB per datagram

SOL_NETLINK = 270  # bits/socket.h; Python 3.11's socket module lacks it
NETLINK_CAP_ACK = 10  # acks without a copy of the request
NETLINK_EXT_ACK = 11  # acks with the kernel's message

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an NLMSG_ERROR
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol,
#                                      scope, type, flags
NLATTR = struct.Struct("=HH")  # len, type
U32 = struct.Struct("=I")


# -- encoding: pure functions, tested without namespaces --

def _pad(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (_pad(length) - length)


def attr_str(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, U32.pack(value))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """A request: nlmsghdr + body (already padded: every part is). Port id 0: the
    kernel fills in the socket's."""
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def veth_body(name: str, peer: str, peer_netns_fd: int, mtu: int) -> bytes:
    """RTM_NEWLINK's body for a veth pair `name` here, `peer` in another namespace."""
    peer_info = (ifinfomsg() + attr_str(IFLA_IFNAME, peer)
                 + attr_u32(IFLA_NET_NS_FD, peer_netns_fd) + attr_u32(IFLA_MTU, mtu))
    info = attr_str(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA,
                                                   attr(VETH_INFO_PEER, peer_info))
    return (ifinfomsg() + attr_str(IFLA_IFNAME, name) + attr_u32(IFLA_MTU, mtu)
            + attr(IFLA_LINKINFO, info))


def address_body(index: int, address: str, prefixlen: int) -> bytes:
    """RTM_NEWADDR's body: an IPv4 address, with its broadcast below /31 (RFC 3021)."""
    local = socket.inet_pton(socket.AF_INET, address)
    body = (IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, local) + attr(IFA_ADDRESS, local))
    if prefixlen < 31:
        host_bits = (1 << (32 - prefixlen)) - 1
        broadcast = struct.unpack("!I", local)[0] | host_bits
        body += attr(IFA_BROADCAST, struct.pack("!I", broadcast))
    return body


def route_body(dst: str, dst_len: int, gateway: str | None, index: int | None) -> bytes:
    """RTM_NEWROUTE's body: an IPv4 unicast route in the main table."""
    scope = RT_SCOPE_LINK if gateway is None else RT_SCOPE_UNIVERSE
    body = RTMSG.pack(socket.AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope,
                      RTN_UNICAST, 0)
    if dst_len:
        body += attr(RTA_DST, socket.inet_pton(socket.AF_INET, dst))
    if gateway is not None:
        body += attr(RTA_GATEWAY, socket.inet_pton(socket.AF_INET, gateway))
    if index is not None:
        body += attr_u32(RTA_OIF, index)
    return body


# -- decoding --

def attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from `offset` on, by type (the last of a repeated one wins)."""
    found: dict[int, bytes] = {}
    while offset + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size or offset + length > len(data):
            raise OSError(errno.EPROTO, "malformed netlink attribute")
        found[kind & NLA_TYPE_MASK] = data[offset + NLATTR.size:offset + length]
        offset += _pad(length)
    return found


def messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of each message in one datagram."""
    found, offset = [], 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            raise OSError(errno.EPROTO, "malformed netlink message")
        found.append((kind, flags, seq, data[offset + NLMSGHDR.size:offset + length]))
        offset += _pad(length)
    return found


def error_of(flags: int, payload: bytes) -> OSError | None:
    """An NLMSG_ERROR's error (None for an ack), with the kernel's message if any."""
    if len(payload) < 4 + NLMSGHDR.size:
        return OSError(errno.EPROTO, "short netlink error message")
    code = -struct.unpack_from("=i", payload)[0]
    if code == 0:
        return None
    text = os.strerror(code).lower()
    if flags & NLM_F_ACK_TLVS:
        request_len = NLMSGHDR.unpack_from(payload, 4)[0]
        start = 4 + (NLMSGHDR.size if flags & NLM_F_CAPPED else _pad(request_len))
        said = attrs(payload, start).get(NLMSGERR_ATTR_MSG, b"")
        said_text = said.rstrip(b"\0").decode(errors="replace").strip()
        if said_text:
            text += f" ({said_text.lower()})"
    return OSError(code, " ".join(text.split()))  # one line, whatever the kernel said


def _cstr(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode(errors="replace")


class Link:
    """One interface as RTM_GETLINK tells it."""

    __slots__ = ("index", "name", "flags", "mtu", "master", "kind", "mac")

    def __init__(self, payload: bytes) -> None:
        if len(payload) < IFINFOMSG.size:
            raise OSError(errno.EPROTO, "short netlink link message")
        _family, _type, self.index, self.flags, _change = IFINFOMSG.unpack_from(payload)
        found = attrs(payload, IFINFOMSG.size)
        self.name = _cstr(found.get(IFLA_IFNAME, b""))
        self.mtu = U32.unpack(found[IFLA_MTU])[0] if IFLA_MTU in found else 0
        self.master = U32.unpack(found[IFLA_MASTER])[0] if IFLA_MASTER in found else 0
        self.mac = ":".join(f"{b:02x}" for b in found.get(IFLA_ADDRESS, b""))  # "" if none
        info = attrs(found.get(IFLA_LINKINFO, b""))
        self.kind = _cstr(info.get(IFLA_INFO_KIND, b""))

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    def __repr__(self) -> str:
        return f"Link({self.index}, {self.name!r}, kind={self.kind!r}, master={self.master})"


class Netlink:
    """One NETLINK_ROUTE socket, in the network namespace it was opened in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
            self.sock.settimeout(TIMEOUT)
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
                try:
                    self.sock.setsockopt(SOL_NETLINK, option, 1)
                except OSError:  # older kernels: plain acks serve as well
                    pass
        except BaseException:
            self.sock.close()
            raise
        self.seq = int.from_bytes(os.urandom(3), "little")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- the exchange --

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request and collect its replies (type, payload) up to its ack (or,
        for a dump, its NLMSG_DONE); raise the kernel's error as OSError."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        seq = self.seq
        self.sock.send(message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, body))
        replies: list[tuple[int, bytes]] = []
        for _ in range(MAX_DATAGRAMS):
            for rkind, rflags, rseq, payload in self._receive():
                if rseq != seq:
                    continue  # a late answer to an earlier request that timed out
                if rkind == NLMSG_ERROR:
                    error = error_of(rflags, payload)
                    if error is not None:
                        raise error
                    return replies
                if rkind == NLMSG_DONE:
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code > 0:
                        raise OSError(code, os.strerror(code).lower())
                    return replies
                replies.append((rkind, payload))
        raise OSError(errno.EMSGSIZE, "netlink reply too long")

    def _receive(self) -> list[tuple[int, int, int, bytes]]:
        try:
            data, _anc, msg_flags, (sender, _groups) = self.sock.recvmsg(RECV_SIZE)
        except TimeoutError:
            raise OSError(errno.ETIMEDOUT, "the kernel did not answer") from None
        if sender != 0:  # not the kernel's: another socket of the namespace sent it
            return []
        if msg_flags & socket.MSG_TRUNC:
            raise OSError(errno.EMSGSIZE, "netlink reply truncated")
        return messages(data)

    # -- links --

    def links(self) -> list[Link]:
        return [Link(p) for kind, p in self.request(RTM_GETLINK, NLM_F_DUMP, ifinfomsg())
                if kind == RTM_NEWLINK]

    def link(self, name: str) -> Link:
        """The interface called `name` (ENODEV if there is none)."""
        replies = self.request(RTM_GETLINK, 0, ifinfomsg() + attr_str(IFLA_IFNAME, name))
        for kind, payload in replies:
            if kind == RTM_NEWLINK:
                return Link(payload)
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV).lower())

    def link_index(self, name: str) -> int:
        return self.link(name).index

    def bridge_add(self, name: str, mtu: int | None = None, mac: bytes | None = None) -> None:
        body = ifinfomsg() + attr_str(IFLA_IFNAME, name)
        if mtu is not None:
            body += attr_u32(IFLA_MTU, mtu)
        if mac is not None:
            body += attr(IFLA_ADDRESS, mac)
        body += attr(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def veth_add(self, name: str, peer: str, peer_netns_fd: int, mtu: int = 1500) -> None:
        """A veth pair: `name` here, `peer` made directly in the namespace of the fd."""
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     veth_body(name, peer, peer_netns_fd, mtu))

    def link_set(self, index: int, *, up: bool | None = None,
                 master: int | None = None) -> None:
        """Bring a link up or down, and/or enslave it (master 0: release it)."""
        flags = IFF_UP if up else 0
        body = ifinfomsg(index, flags, IFF_UP if up is not None else 0)
        if master is not None:
            body += attr_u32(IFLA_MASTER, master)
        self.request(RTM_NEWLINK, 0, body)

    def link_delete(self, index: int) -> None:
        self.request(RTM_DELLINK, 0, ifinfomsg(index))

    # -- addresses and routes --

    def address_add(self, index: int, address: str, prefixlen: int) -> None:
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                     address_body(index, address, prefixlen))

    def addresses(self) -> list[tuple[int, str, int]]:
        """(link index, address, prefix length) of each IPv4 address here."""
        found = []
        dump = IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        for kind, payload in self.request(RTM_GETADDR, NLM_F_DUMP, dump):
            if kind != RTM_NEWADDR or len(payload) < IFADDRMSG.size:
                continue
            family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
            got = attrs(payload, IFADDRMSG.size)
            local = got.get(IFA_LOCAL, got.get(IFA_ADDRESS, b""))
            if family == socket.AF_INET and len(local) == 4:
                found.append((index, socket.inet_ntop(socket.AF_INET, local), prefixlen))
        return found

    def route_add(self, dst: str, dst_len: int, *, gateway: str | None = None,
                  index: int | None = None) -> None:
        """An IPv4 route to dst/dst_len (0.0.0.0/0: the default), through `gateway`
        and/or out of link `index`."""
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                     route_body(dst, dst_len, gateway, index))
