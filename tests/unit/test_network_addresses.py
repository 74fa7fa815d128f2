"""engine/networks.py's IPv4 arithmetic: addresses and subnets parsed as Go's netip
does, the host's routes read from /proc/net/route, the default subnet chosen around
both the store's networks and those routes."""

import sys

from rootless.engine.networks import cidr_parse, default_subnet, host_routes, ip_parse


def _hex(address: str) -> str:
    """An address as /proc/net/route prints it: the __be32 as a native int."""
    raw = bytes(int(part) for part in address.split("."))
    return f"{int.from_bytes(raw, sys.byteorder):08X}"


def test_ip_parse_takes_only_four_plain_decimal_octets():
    assert ip_parse("10.89.0.1") == 0x0A590001
    for bad in ("10.89.0", "10.89.0.1.2", "10.089.0.1", "10.89.0.256", "10.89.0.x",
                "10.89.0.-1", "10.89.0.١", " 10.89.0.1", ""):
        assert ip_parse(bad) is None, bad


def test_cidr_parse_wants_a_prefix_length_up_to_32():
    assert cidr_parse("10.89.0.0/24") == (0x0A590000, 24)
    for bad in ("10.89.0.0", "10.89.0.0/", "10.89.0.0/33", "10.89.0.0/024", "10.89.0.0/x"):
        assert cidr_parse(bad) is None, bad


def test_host_routes_are_read_without_the_default_route(tmp_path):
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        f"eth0\t00000000\t{_hex('10.0.2.2')}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        f"eth0\t{_hex('10.89.0.0')}\t00000000\t0001\t0\t0\t0\t{_hex('255.255.254.0')}"
        "\t0\t0\t0\n"
        "garbage line\n")
    assert host_routes(str(table)) == [(ip_parse("10.89.0.0"), 23)]
    assert host_routes(str(tmp_path / "missing")) == []


def test_default_subnet_skips_the_store_networks_and_the_host_routes():
    taken = [cidr_parse("10.89.0.0/24")]
    routes = [cidr_parse("10.89.1.0/24"), cidr_parse("10.89.2.128/25")]
    assert default_subnet(taken, routes) == cidr_parse("10.89.3.0/24")
    assert default_subnet([], []) == cidr_parse("10.89.0.0/24")
