"""docker's -p grammar (net/ports.py) and the --network values (net/modes.py), without
a container: what each spelling means, and docker's message for each bad one."""

from __future__ import annotations

import pytest

from rootless.errors import UsageError
from rootless.net.files import NetworkFiles, hosts_file, resolv_conf
from rootless.net.modes import parse_network
from rootless.net.ports import PortSpec, forwards, parse_expose, parse_publish, publish_table


@pytest.mark.parametrize("spec,want", [
    ("80", PortSpec("", None, (80, 80), "tcp")),
    ("8080:80", PortSpec("", (8080, 8080), (80, 80), "tcp")),
    ("127.0.0.1:8080:80/udp", PortSpec("127.0.0.1", (8080, 8080), (80, 80), "udp")),
    ("127.0.0.1::80", PortSpec("127.0.0.1", None, (80, 80), "tcp")),
    ("[::1]:8080:80", PortSpec("::1", (8080, 8080), (80, 80), "tcp")),
    ("8000-8001:80-81", PortSpec("", (8000, 8001), (80, 81), "tcp")),
])
def test_publish_spellings(spec, want):
    assert parse_publish(spec) == want


@pytest.mark.parametrize("spec,message", [
    ("abc", "invalid containerPort: abc"),
    ("0", "invalid containerPort: 0"),
    ("65536", "invalid containerPort: 65536"),
    ("x:80", "invalid hostPort: x"),
    ("80/icmp", "invalid proto: icmp"),
    ("1.2.3:80:80", "invalid ip address: 1.2.3"),
    ("8000-8002:80-81", "invalid ranges specified for container and host Ports"),
])
def test_publish_refusals_use_dockers_words(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_publish(spec)


def test_a_host_range_for_one_port_takes_one_port_of_it():
    table = publish_table(("127.0.0.1:40000-40100:80",), False, [])
    [binding] = table["80/tcp"]
    assert 40000 <= int(binding["HostPort"]) <= 40100


def test_ranges_map_port_by_port():
    table = publish_table(("8000-8001:80-81/udp",), False, [])
    assert forwards(table) == [("udp", "", 8000, 80), ("udp", "", 8001, 81)]


def test_publish_all_takes_the_exposed_ports_not_already_published():
    table = publish_table(("8080:80",), True, ["80/tcp", "53/udp"])
    assert table["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}]
    assert int(table["53/udp"][0]["HostPort"]) > 0


def test_expose_ranges():
    assert parse_expose("7000-7001/udp") == ["7000/udp", "7001/udp"]


@pytest.mark.parametrize("value", ["nosuch", "container:other", "slirp:mtu=9000",
                                   "host:x"])
def test_unknown_network_values_are_refused(value):
    with pytest.raises(UsageError):
        parse_network(value)


def test_slirp_resolver_is_the_helpers_forwarder_and_dns_replaces_it():
    pasta = NetworkFiles("slirp", helper="pasta")
    assert resolv_conf(pasta).splitlines()[0] == "nameserver 169.254.1.1"
    own = pasta._replace(dns=("192.0.2.53",), dns_search=(".",), dns_options=("ndots:1",))
    assert resolv_conf(own).splitlines() == ["nameserver 192.0.2.53", "options ndots:1"]


def test_host_names_appear_only_with_host_loopback_allowed():
    closed = NetworkFiles("slirp", helper="slirp4netns")
    assert "host.containers.internal" not in hosts_file("h", closed)
    opened = closed._replace(allow_host_loopback=True)
    assert "10.0.2.2\thost.containers.internal" in hosts_file("h", opened)
    gateway = closed._replace(extra_hosts=("gw:host-gateway",))
    assert "10.0.2.2\tgw" in hosts_file("h", gateway).splitlines()
