"""The network records and commands (issue 11): `network create|ls|inspect|rm|prune|
connect|disconnect`, with docker's flags, columns, JSON and messages; the endpoints of
created (never started) containers, their addresses, and what `inspect`, `rm` and
`system prune` do with them; the store's schema 9. Through the real CLI, as both test
users. Running containers on user networks are tests/test_user_networks.py's.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from helpers import assert_error, ok

pytestmark = pytest.mark.container

INSPECT_KEYS = ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal",
                "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers",
                "Options", "Labels"]
ENDPOINT_KEYS = {"IPAMConfig", "Links", "Aliases", "MacAddress", "NetworkID", "EndpointID",
                 "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address",
                 "GlobalIPv6PrefixLen", "DriverOpts", "DNSNames"}


def create(rootless, name: str, *options: str) -> str:
    return ok(rootless("network", "create", *options, name)).strip()


def inspect(rootless, name: str) -> dict:
    [obj] = json.loads(ok(rootless("network", "inspect", name)))
    return obj


def names(rootless, *args: str) -> list[str]:
    return ok(rootless("network", "ls", "--format", "{{.Name}}", *args)).split()


def container(rootless, image: str, name: str, *options: str) -> str:
    """A created, never started container's full id."""
    return ok(rootless("create", "--name", name, *options, image, "true")).strip()


def networks_of(rootless, name: str) -> dict:
    return json.loads(ok(rootless("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                  name)))


# ---- create, ls, inspect ----

def test_create_prints_the_id_and_ls_lists_it_beside_the_predefined(rootless):
    network_id = create(rootless, "net1")
    assert re.fullmatch(r"[0-9a-f]{64}", network_id)
    lines = ok(rootless("network", "ls")).splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = [line.split() for line in lines[1:]]
    assert [r[1:] for r in rows] == [["bridge", "bridge", "local"], ["host", "host", "local"],
                                     ["net1", "bridge", "local"], ["none", "null", "local"]]
    assert rows[2][0] == network_id[:12]


def test_ls_sorts_names_naturally_as_docker(rootless):
    for name in ("n10", "n9", "n1"):
        create(rootless, name)
    assert names(rootless, "-f", "type=custom") == ["n1", "n9", "n10"]


def test_inspect_prints_every_field_of_docker_network_json(rootless):
    network_id = create(rootless, "net1")
    obj = inspect(rootless, "net1")
    assert list(obj) == INSPECT_KEYS
    assert (obj["Name"], obj["Id"], obj["Scope"], obj["Driver"]) == \
        ("net1", network_id, "local", "bridge")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", obj["Created"])
    assert obj["IPAM"] == {"Driver": "default", "Options": {},
                           "Config": [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}]}
    assert (obj["EnableIPv6"], obj["Internal"], obj["Attachable"], obj["Ingress"],
            obj["ConfigOnly"]) == (False, False, False, False, False)
    assert obj["ConfigFrom"] == {"Network": ""}
    assert (obj["Containers"], obj["Options"], obj["Labels"]) == ({}, {}, {})


def test_default_subnets_are_the_first_free_of_10_89(rootless):
    create(rootless, "net1")
    create(rootless, "net2", "--subnet", "10.89.1.0/24")
    create(rootless, "net3")
    assert inspect(rootless, "net3")["IPAM"]["Config"] == \
        [{"Subnet": "10.89.2.0/24", "Gateway": "10.89.2.1"}]


def test_create_takes_subnet_gateway_internal_labels_and_options(rootless):
    create(rootless, "net1", "--subnet", "172.30.0.0/16", "--gateway", "172.30.5.254",
           "--internal", "--label", "tier=db", "-l", "empty", "-o", "mtu=1400")
    obj = inspect(rootless, "net1")
    assert obj["IPAM"]["Config"] == [{"Subnet": "172.30.0.0/16", "Gateway": "172.30.5.254"}]
    assert obj["Internal"] is True
    assert obj["Labels"] == {"tier": "db", "empty": ""}
    assert obj["Options"] == {"mtu": "1400"}


def test_inspect_format_and_several_networks(rootless):
    create(rootless, "net1")
    create(rootless, "net2")
    out = ok(rootless("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}",
                      "net1", "net2"))
    assert out == "net1 bridge false\nnet2 bridge false\n"


def test_inspect_finds_a_network_by_id_and_unique_id_prefix(rootless):
    network_id = create(rootless, "net1")
    for ref in (network_id, network_id[:12]):
        assert inspect(rootless, ref)["Name"] == "net1"


def test_inspect_answers_for_the_predefined_networks(rootless):
    out = ok(rootless("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}",
                      "bridge", "host", "none"))
    assert out == "bridge bridge local\nhost host local\nnone null local\n"
    ids = ok(rootless("network", "ls", "-q", "--no-trunc")).split()
    assert ids == ok(rootless("network", "ls", "-q", "--no-trunc")).split()  # stable
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids) and len(ids) == 3


def test_inspect_prints_the_found_then_fails_for_an_unknown_network(rootless):
    create(rootless, "net1")
    result = rootless("network", "inspect", "net1", "nope")
    assert_error(result, 1, "network nope not found")
    assert [o["Name"] for o in json.loads(result.stdout)] == ["net1"]


# ---- ls filters and formats ----

def test_ls_quiet_and_no_trunc(rootless):
    network_id = create(rootless, "net1")
    assert network_id[:12] in ok(rootless("network", "ls", "-q")).split()
    assert network_id in ok(rootless("network", "ls", "-q", "--no-trunc")).split()
    assert network_id in ok(rootless("network", "ls", "--no-trunc"))


def test_ls_filters_by_name_id_driver_and_type(rootless):
    network_id = create(rootless, "front")
    create(rootless, "back")
    assert names(rootless, "-f", "name=fro") == ["front"]
    assert names(rootless, "-f", f"id={network_id[:10]}") == ["front"]
    assert names(rootless, "-f", "driver=null") == ["none"]
    assert names(rootless, "-f", "type=builtin") == ["bridge", "host", "none"]
    assert names(rootless, "-f", "type=custom") == ["back", "front"]
    assert names(rootless, "-f", "scope=local", "-f", "driver=bridge") == \
        ["back", "bridge", "front"]


def test_ls_filters_by_label(rootless):
    create(rootless, "a", "--label", "tier=db")
    create(rootless, "b", "--label", "tier=web")
    create(rootless, "c")
    assert names(rootless, "-f", "label=tier") == ["a", "b"]
    assert names(rootless, "-f", "label=tier=db") == ["a"]


def test_ls_filters_dangling_networks(rootless, busybox):
    create(rootless, "used")
    create(rootless, "unused")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "used", "c1"))
    assert names(rootless, "-f", "dangling=true") == ["unused"]
    assert names(rootless, "-f", "dangling=false") == ["bridge", "host", "none", "used"]


def test_ls_refuses_an_unknown_filter_and_type(rootless):
    assert_error(rootless("network", "ls", "-f", "colour=red"), 1, "invalid filter 'colour'")
    assert_error(rootless("network", "ls", "-f", "type=other"), 1,
                 "invalid filter: 'type'='other'")


def test_ls_format_template_table_and_json(rootless):
    create(rootless, "net1", "--internal", "--label", "a=b")
    out = ok(rootless("network", "ls", "-f", "name=net1", "--format",
                      "{{.Name}}|{{.Internal}}|{{.IPv6}}|{{.Labels}}"))
    assert out == "net1|true|false|a=b\n"
    table = ok(rootless("network", "ls", "-f", "name=net1", "--format",
                        "table {{.Name}}\t{{.Driver}}")).splitlines()
    assert [line.split() for line in table] == [["NAME", "DRIVER"], ["net1", "bridge"]]
    row = json.loads(ok(rootless("network", "ls", "-f", "name=net1", "--format", "json")))
    assert (row["Name"], row["Driver"], row["Scope"]) == ("net1", "bridge", "local")


def test_ls_format_label_method_prints_one_labels_value(rootless):
    create(rootless, "net1", "--label", "env=prod", "--label", "team=web")
    create(rootless, "net2")
    out = ok(rootless("network", "ls", "-f", "type=custom", "--format",
                      '{{.Name}}={{.Label "env"}}/{{.Label "nope"}}'))
    assert out == "net1=prod/\nnet2=/\n"


def test_ls_format_label_method_wants_one_argument(rootless):
    create(rootless, "net1", "--label", "env=prod")
    assert_error(rootless("network", "ls", "--format", "{{.Label}}"), 125,
                 "wrong number of args for Label: want 1 got 0")


def test_ls_created_at_is_go_time_string(rootless):
    create(rootless, "net1")
    out = ok(rootless("network", "ls", "--format", "{{.Name}} {{.CreatedAt}}"))
    created = dict(line.split(" ", 1) for line in out.splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+",
                        created["net1"])
    assert created["bridge"] == "0001-01-01 00:00:00 +0000 UTC"  # Go's zero time


# ---- create: bad input ----

@pytest.mark.parametrize("name", ["bad name", "a/b", "_lead", "x:y", "nl\nx"])
def test_create_refuses_a_name_outside_the_rule(rootless, name):
    assert_error(rootless("network", "create", name), 1, "invalid network name",
                 "[a-zA-Z0-9][a-zA-Z0-9_.-]")
    assert names(rootless, "-f", "type=custom") == []


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default", "slirp", "pasta",
                                  "slirp4netns", "container"])
def test_create_refuses_the_predefined_and_mode_names(rootless, name):
    assert_error(rootless("network", "create", name), 1,
                 f"operation is not permitted on predefined {name} network")
    assert names(rootless, "-f", "type=custom") == []


def test_create_refuses_a_taken_name(rootless):
    first = create(rootless, "net1")
    assert_error(rootless("network", "create", "net1"), 1,
                 "network with name net1 already exists")
    assert ok(rootless("network", "ls", "-q", "--no-trunc", "-f", "type=custom")).split() \
        == [first]


def test_create_refuses_another_driver(rootless):
    assert_error(rootless("network", "create", "-d", "macvlan", "net1"), 1,
                 'plugin "macvlan" not found')


@pytest.mark.parametrize("subnet, words", [
    ("nonsense", "invalid subnet nonsense: invalid CIDR block notation"),
    ("10.1.2.3/24", "invalid subnet 10.1.2.3/24: it should be 10.1.2.0/24"),
    ("010.1.2.0/24", "invalid CIDR block notation"),
    ("10.1.2.0/31", "prefix length must be between /8 and /30"),
    ("10.0.0.0/7", "prefix length must be between /8 and /30"),
    ("fd00::/64", "IPv6 is not supported"),
])
def test_create_refuses_a_bad_subnet(rootless, subnet, words):
    assert_error(rootless("network", "create", "--subnet", subnet, "net1"), 1, words)
    assert names(rootless, "-f", "type=custom") == []


def test_create_refuses_a_subnet_overlapping_another_network(rootless):
    create(rootless, "net1", "--subnet", "10.20.0.0/16")
    for subnet in ("10.20.5.0/24", "10.0.0.0/8", "10.20.0.0/16"):
        assert_error(rootless("network", "create", "--subnet", subnet, "net2"), 1,
                     "Pool overlaps with other one on this address space",
                     "network net1 has 10.20.0.0/16")
    assert names(rootless, "-f", "type=custom") == ["net1"]


@pytest.mark.parametrize("subnet", ["10.0.2.0/24", "10.0.0.0/16", "10.0.2.128/25", "10.0.0.0/8"])
def test_create_refuses_a_subnet_overlapping_the_slirp_address_space(rootless, subnet):
    assert_error(rootless("network", "create", "--subnet", subnet, "net1"), 1,
                 "Pool overlaps with other one on this address space", "10.0.2.0/24")
    assert names(rootless, "-f", "type=custom") == []


def test_create_refuses_a_gateway_in_the_slirp_address_space(rootless):
    assert_error(rootless("network", "create", "--subnet", "10.0.2.0/24", "--gateway",
                          "10.0.2.1", "net1"), 1,
                 "Pool overlaps with other one on this address space", "10.0.2.0/24")
    assert names(rootless, "-f", "type=custom") == []


@pytest.mark.parametrize("gateway, words", [
    ("10.30.1.1", "invalid gateway 10.30.1.1: parent subnet 10.30.0.0/24 doesn't contain "
                  "this address"),
    ("10.30.0.0", "is the network address of 10.30.0.0/24"),
    ("10.30.0.255", "is the broadcast address of 10.30.0.0/24"),
    ("10.30.0.x", "invalid gateway 10.30.0.x: invalid address"),
])
def test_create_refuses_a_gateway_outside_the_subnet(rootless, gateway, words):
    assert_error(rootless("network", "create", "--subnet", "10.30.0.0/24", "--gateway",
                          gateway, "net1"), 1, words)
    assert names(rootless, "-f", "type=custom") == []


def test_create_refuses_a_gateway_without_a_subnet(rootless):
    assert_error(rootless("network", "create", "--gateway", "10.89.0.1", "net1"), 1,
                 "--gateway needs a --subnet")


def test_create_refuses_an_option_without_a_value(rootless):
    assert_error(rootless("network", "create", "-o", "mtu", "net1"), 125,
                 'invalid argument "mtu" for "--opt" flag')


# ---- connect, disconnect: addresses and records ----

def test_connect_gives_the_next_free_address_and_inspect_shows_it(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.40.0.0/24")
    cid = container(rootless, busybox, "c1")
    assert ok(rootless("network", "connect", "net1", "c1")) == ""
    entry = inspect(rootless, "net1")["Containers"][cid]
    assert entry["Name"] == "c1"
    assert entry["IPv4Address"] == "10.40.0.2/24"
    assert (entry["MacAddress"], entry["IPv6Address"]) == ("", "")
    assert re.fullmatch(r"[0-9a-f]{64}", entry["EndpointID"])


def test_two_containers_get_different_addresses(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.40.0.0/24", "--gateway", "10.40.0.2")
    for name in ("c1", "c2"):
        container(rootless, busybox, name)
        ok(rootless("network", "connect", "net1", name))
    got = sorted(e["IPv4Address"] for e in inspect(rootless, "net1")["Containers"].values())
    assert got == ["10.40.0.1/24", "10.40.0.3/24"]  # never the gateway's


def test_container_inspect_shows_the_endpoint_settings(rootless, busybox):
    network_id = create(rootless, "net1", "--subnet", "10.41.0.0/16")
    cid = container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "--alias", "db", "--alias", "db.local", "net1", "c1"))
    entry = networks_of(rootless, "c1")["net1"]
    assert set(entry) == ENDPOINT_KEYS
    assert (entry["NetworkID"], entry["Gateway"], entry["IPAddress"], entry["IPPrefixLen"]) \
        == (network_id, "10.41.0.1", "10.41.0.2", 16)
    assert entry["Aliases"] == ["db", "db.local"]
    assert entry["DNSNames"] == ["c1", "db", "db.local", cid[:12]]
    assert (entry["IPAMConfig"], entry["Links"], entry["DriverOpts"]) == (None, None, None)
    assert entry["EndpointID"] == inspect(rootless, "net1")["Containers"][cid]["EndpointID"]


def test_connect_by_ids_and_prefixes(rootless, busybox):
    network_id = create(rootless, "net1")
    cid = container(rootless, busybox, "c1")
    ok(rootless("network", "connect", network_id[:8], cid[:8]))
    assert list(inspect(rootless, "net1")["Containers"]) == [cid]


def test_connect_twice_is_refused_with_docker_words(rootless, busybox):
    create(rootless, "net1")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "net1", "c1"))
    assert_error(rootless("network", "connect", "net1", "c1"), 1,
                 "endpoint with name c1 already exists in network net1")
    assert len(inspect(rootless, "net1")["Containers"]) == 1


def test_twenty_parallel_connects_get_twenty_distinct_addresses(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.42.0.0/24")
    ids = [container(rootless, busybox, f"c{i}") for i in range(20)]
    procs = [rootless.popen("network", "connect", "net1", cid) for cid in ids]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    entries = inspect(rootless, "net1")["Containers"]
    assert sorted(entries) == sorted(ids)
    addresses = {e["IPv4Address"] for e in entries.values()}
    assert len(addresses) == 20
    assert addresses == {f"10.42.0.{n}/24" for n in range(2, 22)}


def test_a_full_subnet_is_a_clear_error(rootless, busybox):
    create(rootless, "tiny", "--subnet", "10.43.0.0/30")  # .1 gateway, .2 the only one
    container(rootless, busybox, "c1")
    container(rootless, busybox, "c2")
    ok(rootless("network", "connect", "tiny", "c1"))
    assert_error(rootless("network", "connect", "tiny", "c2"), 1,
                 "no available addresses", "10.43.0.0/30", "is full")
    assert networks_of(rootless, "c2").get("tiny") is None


def test_a_freed_address_is_handed_out_again(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.44.0.0/24")
    for name in ("c1", "c2"):
        container(rootless, busybox, name)
        ok(rootless("network", "connect", "net1", name))
    ok(rootless("network", "disconnect", "net1", "c1"))
    container(rootless, busybox, "c3")
    ok(rootless("network", "connect", "net1", "c3"))
    assert networks_of(rootless, "c3")["net1"]["IPAddress"] == "10.44.0.2"


def test_a_container_on_two_networks_lists_both_in_connection_order(rootless, busybox):
    create(rootless, "net2")
    create(rootless, "net1")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "net2", "c1"))
    ok(rootless("network", "connect", "net1", "c1"))
    networks = networks_of(rootless, "c1")
    assert {"net1", "net2"} <= set(networks)
    assert networks["net1"]["IPAddress"] != networks["net2"]["IPAddress"]


# ---- --ip ----

def test_create_ip_is_the_address_and_inspect_shows_it_requested(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.40.0.0/24")
    container(rootless, busybox, "c1", "--network", "net1", "--ip", "10.40.0.9")
    container(rootless, busybox, "c2", "--network", "net1")
    first, second = networks_of(rootless, "c1")["net1"], networks_of(rootless, "c2")["net1"]
    assert first["IPAddress"] == "10.40.0.9"
    assert first["IPAMConfig"] == {"IPv4Address": "10.40.0.9"}
    assert (second["IPAddress"], second["IPAMConfig"]) == ("10.40.0.2", None)


def test_connect_ip_is_the_address_and_the_next_allocation_skips_it(rootless, busybox):
    create(rootless, "net1", "--subnet", "10.40.0.0/24")
    for name in ("c1", "c2"):
        container(rootless, busybox, name)
    ok(rootless("network", "connect", "--ip", "10.40.0.2", "net1", "c1"))
    ok(rootless("network", "connect", "net1", "c2"))
    assert networks_of(rootless, "c1")["net1"]["IPAMConfig"] == {"IPv4Address": "10.40.0.2"}
    assert networks_of(rootless, "c2")["net1"]["IPAddress"] == "10.40.0.3"


@pytest.mark.parametrize("ip, words", [
    ("10.40.1.5", "no configured subnet or ip-range contain the IP address 10.40.1.5"),
    ("10.40.0.1", "Address already in use"),  # the gateway
    ("10.40.0.7", "Address already in use"),  # c0's
    ("10.40.0.0", "it is the network address of 10.40.0.0/24"),
    ("10.40.0.255", "it is the broadcast address of 10.40.0.0/24"),
    ("10.40.0.x", "invalid IPv4 address: 10.40.0.x"),
    ("fd00::1", "invalid IPv4 address: fd00::1"),
])
def test_ip_refusals_leave_no_container_and_no_endpoint(rootless, busybox, ip, words):
    create(rootless, "net1", "--subnet", "10.40.0.0/24")
    c0 = container(rootless, busybox, "c0", "--network", "net1", "--ip", "10.40.0.7")
    assert_error(rootless("create", "--name", "c1", "--network", "net1", "--ip", ip,
                          busybox, "true"), 125, words)
    assert ok(rootless("ps", "-aq", "--no-trunc")).split() == [c0]
    container(rootless, busybox, "c2")
    assert_error(rootless("network", "connect", "--ip", ip, "net1", "c2"), 1, words)
    assert list(inspect(rootless, "net1")["Containers"]) == [c0]


@pytest.mark.parametrize("network", [None, "none", "host", "bridge"])
def test_ip_is_refused_off_user_networks(rootless, busybox, network):
    mode = ("--network", network) if network else ()
    assert_error(rootless("create", *mode, "--ip", "10.40.0.9", busybox, "true"), 125,
                 "user specified IP address is supported on user defined networks only")
    assert ok(rootless("ps", "-aq")) == ""


def test_connect_refuses_a_bad_alias(rootless, busybox):
    create(rootless, "net1")
    container(rootless, busybox, "c1")
    for alias in ("two words", "a\nb", "-x"):
        assert_error(rootless("network", "connect", "--alias", alias, "net1", "c1"), 1,
                     "invalid network alias")
    assert inspect(rootless, "net1")["Containers"] == {}


def test_connect_refuses_a_host_network_container(rootless, busybox):
    create(rootless, "net1")
    container(rootless, busybox, "c1", "--network", "host")
    assert_error(rootless("network", "connect", "net1", "c1"), 1,
                 "container sharing network namespace with another container or host "
                 "cannot be connected to any other network")
    assert inspect(rootless, "net1")["Containers"] == {}


def test_connect_refuses_a_predefined_network(rootless, busybox):
    container(rootless, busybox, "c1")
    assert_error(rootless("network", "connect", "none", "c1"), 1,
                 "cannot connect a container to the predefined none network")


def test_disconnect_removes_the_endpoint(rootless, busybox):
    create(rootless, "net1")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "net1", "c1"))
    assert ok(rootless("network", "disconnect", "net1", "c1")) == ""
    assert inspect(rootless, "net1")["Containers"] == {}
    assert "net1" not in networks_of(rootless, "c1")


def test_disconnect_of_a_container_not_on_the_network_fails(rootless, busybox):
    create(rootless, "net1")
    cid = container(rootless, busybox, "c1")
    assert_error(rootless("network", "disconnect", "net1", "c1"), 1,
                 f"container {cid} is not connected to the network net1")


@pytest.mark.parametrize("verb", ["inspect", "rm", "connect", "disconnect"])
def test_every_command_names_an_unknown_network(rootless, busybox, verb):
    container(rootless, busybox, "c1")
    args = ["nope", "c1"] if verb in ("connect", "disconnect") else ["nope"]
    assert_error(rootless("network", verb, *args), 1, "network nope not found")


@pytest.mark.parametrize("verb", ["connect", "disconnect"])
def test_connect_and_disconnect_name_an_unknown_container(rootless, verb):
    create(rootless, "net1")
    assert_error(rootless("network", verb, "net1", "ghost"), 1, "no such container: ghost")


# ---- rm, prune ----

def test_rm_prints_each_name_and_removes_it(rootless):
    create(rootless, "net1")
    network_id = create(rootless, "net2")
    assert ok(rootless("network", "rm", "net1", network_id[:12])) == \
        f"net1\n{network_id[:12]}\n"
    assert names(rootless, "-f", "type=custom") == []


def test_rm_of_a_network_in_use_is_refused_until_the_container_leaves(rootless, busybox):
    network_id = create(rootless, "net1")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "net1", "c1"))
    assert_error(rootless("network", "rm", "net1"), 1,
                 f"error while removing network: network net1 id {network_id} has active "
                 "endpoints")
    assert names(rootless, "-f", "type=custom") == ["net1"]
    ok(rootless("network", "disconnect", "net1", "c1"))
    assert ok(rootless("network", "rm", "net1")) == "net1\n"


def test_rm_of_a_container_removes_its_endpoints(rootless, busybox):
    create(rootless, "net1")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "net1", "c1"))
    ok(rootless("rm", "c1"))
    assert inspect(rootless, "net1")["Containers"] == {}
    assert ok(rootless("network", "rm", "net1")) == "net1\n"


@pytest.mark.parametrize("name", ["bridge", "host", "none"])
def test_rm_of_a_predefined_network_is_refused(rootless, name):
    assert_error(rootless("network", "rm", name), 1,
                 f"{name} is a pre-defined network and cannot be removed")
    assert name in names(rootless)


def test_rm_tries_every_name_and_fails_after(rootless):
    create(rootless, "net1")
    result = rootless("network", "rm", "nope", "net1")
    assert_error(result, 1, "network nope not found")
    assert result.stdout == "net1\n"
    assert names(rootless, "-f", "type=custom") == []


def test_rm_force_ignores_a_missing_network(rootless):
    create(rootless, "net1")
    assert ok(rootless("network", "rm", "-f", "nope", "net1")) == "net1\n"


def test_prune_asks_docker_question_and_no_keeps_everything(rootless):
    create(rootless, "net1")
    result = rootless("network", "prune", input="n\n")
    assert result.stdout == ("WARNING! This will remove all custom networks not used by at "
                             "least one container.\nAre you sure you want to continue? "
                             "[y/N] ")
    assert_error(result, 1, "network prune has been cancelled")
    assert names(rootless, "-f", "type=custom") == ["net1"]


def test_prune_removes_the_networks_no_container_is_on(rootless, busybox):
    create(rootless, "used")
    create(rootless, "spare1")
    create(rootless, "spare2")
    container(rootless, busybox, "c1")
    ok(rootless("network", "connect", "used", "c1"))
    assert ok(rootless("network", "prune", "-f")) == "Deleted Networks:\nspare1\nspare2\n\n"
    assert names(rootless) == ["bridge", "host", "none", "used"]
    assert ok(rootless("network", "prune", "-f")) == ""


def test_prune_filters_by_label_and_until(rootless):
    create(rootless, "keep", "--label", "keep=1")
    create(rootless, "drop")
    assert ok(rootless("network", "prune", "-f", "--filter", "until=1h")) == ""
    assert ok(rootless("network", "prune", "-f", "--filter", "label!=keep")) == \
        "Deleted Networks:\ndrop\n\n"
    assert names(rootless, "-f", "type=custom") == ["keep"]


def test_prune_refuses_a_bad_filter_before_the_question(rootless):
    assert_error(rootless("network", "prune", "--filter", "driver=bridge"), 1,
                 "invalid filter 'driver'")


def test_system_prune_removes_unused_networks(rootless, busybox):
    create(rootless, "spare")
    create(rootless, "used")
    container(rootless, busybox, "c1", "--label", "x=1")
    ok(rootless("network", "connect", "used", "c1"))
    out = ok(rootless("system", "prune", "-f", "--filter", "label!=x"))
    assert "Deleted Networks:\nspare\n\n" in out
    assert names(rootless, "-f", "type=custom") == ["used"]


# ---- the store ----

def test_a_version_8_store_is_upgraded_and_keeps_its_containers(rootless, busybox, store):
    cid = container(rootless, busybox, "c1")
    db = sqlite3.connect(store / "state.db")
    with db:  # the store as schema 8 left it: no networks tables
        db.execute("DROP TABLE network_endpoints")
        db.execute("DROP TABLE networks")
        db.execute("UPDATE schema_version SET version=8")
    db.close()
    create(rootless, "net1")
    ok(rootless("network", "connect", "net1", "c1"))
    assert list(inspect(rootless, "net1")["Containers"]) == [cid]
    db = sqlite3.connect(store / "state.db")
    assert db.execute("SELECT version FROM schema_version").fetchone() == (10,)
    db.close()


def test_a_version_9_store_is_upgraded_and_keeps_its_endpoints(rootless, busybox, store):
    create(rootless, "net1", "--subnet", "10.40.0.0/24")
    cid = container(rootless, busybox, "c1", "--network", "net1")
    db = sqlite3.connect(store / "state.db")
    with db:  # the store as schema 9 left it: no requested_ip column
        db.execute("ALTER TABLE network_endpoints DROP COLUMN requested_ip")
        db.execute("UPDATE schema_version SET version=9")
    db.close()
    entry = networks_of(rootless, "c1")["net1"]
    assert (entry["IPAddress"], entry["IPAMConfig"]) == ("10.40.0.2", None)
    container(rootless, busybox, "c2", "--network", "net1", "--ip", "10.40.0.9")
    assert networks_of(rootless, "c2")["net1"]["IPAMConfig"] == {"IPv4Address": "10.40.0.9"}
    assert list(inspect(rootless, "net1")["Containers"]) == [cid, ok(rootless(
        "inspect", "-f", "{{.Id}}", "c2")).strip()]
    db = sqlite3.connect(store / "state.db")
    assert db.execute("SELECT version FROM schema_version").fetchone() == (10,)
    db.close()
