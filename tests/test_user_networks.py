"""User networks (issue 11): containers on one network reach each other by address, name
and alias; containers on different networks cannot; disconnect cuts the link; --internal
has no way out; `--network container:NAME` shares NAME's network namespace; the pause
process holding the hub goes with the last container. Everything as both test users:
with no subordinate ids the design is the same (net/pause.py). All traffic stays inside
namespaces the tests made.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from helpers import assert_error, ok, wait_for

pytestmark = pytest.mark.container

# busybox-static: `timeout` bounds wget (its -T crashes it); `; exit` keeps sh pid 1
PEERS_MARK = "# containers on the same user networks (rootless)\n"
HTTP_GET = "timeout 5 wget -q -O - http://{addr}/; exit $?"
SERVE = "mkdir -p /www && echo hello-from-{tag} > /www/index.html && exec httpd -f -p 80 -h /www"


def serve(rootless, busybox, name: str, network: str, *options: str) -> str:
    """A detached busybox httpd answering hello-from-NAME; its address on `network`."""
    ok(rootless("run", "-d", "--name", name, "--network", network, *options, busybox,
                "sh", "-c", SERVE.format(tag=name)))
    return address_of(rootless, name, network)


def address_of(rootless, container: str, network: str) -> str:
    data = json.loads(ok(rootless("inspect", container)))[0]
    return data["NetworkSettings"]["Networks"][network]["IPAddress"]


def get_from(rootless, busybox, network: str, addr: str, retries: int = 40):
    """wget in a fresh container on `network`; retried while the server starts."""
    for _ in range(retries):
        result = rootless("run", "--rm", "--network", network, busybox, "sh", "-c",
                          HTTP_GET.format(addr=addr))
        if result.returncode == 0:
            return result
        time.sleep(0.1)
    return result


def test_containers_on_one_network_reach_each_other_by_address(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    addr = serve(rootless, busybox, "web", "n1")
    assert addr.startswith(ok(rootless("network", "inspect", "-f",
                                       "{{(index .IPAM.Config 0).Subnet}}",
                                       "n1")).rsplit(".", 1)[0])
    assert ok(get_from(rootless, busybox, "n1", addr)) == "hello-from-web\n"


def test_interface_is_eth0_with_the_endpoint_address(rootless, busybox):
    ok(rootless("network", "create", "--subnet", "10.123.7.0/24", "n1"))
    out = ok(rootless("run", "--rm", "--network", "n1", busybox, "ip", "-o", "-4", "addr"))
    assert "eth0" in out and "10.123.7.2/24" in out


def test_icmp_echo_crosses_a_user_network(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("run", "-d", "--name", "target", "--network", "n1", busybox, "sleep", "300"))
    addr = address_of(rootless, "target", "n1")
    out = ok(rootless("run", "--rm", "--network", "n1", busybox, "ping", "-c", "1", "-W", "5",
                      addr))
    assert "1 packets received" in out, out


def test_containers_reach_each_other_by_name_alias_and_short_id(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    serve(rootless, busybox, "web", "n1", "--network-alias", "www")
    short_id = ok(rootless("inspect", "-f", "{{.Id}}", "web")).strip()[:12]
    for name in ("web", "www", short_id):
        assert ok(get_from(rootless, busybox, "n1", name)) == "hello-from-web\n", name


def test_hosts_file_lists_running_peers_and_drops_stopped_ones(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    addr = serve(rootless, busybox, "web", "n1")
    ok(rootless("run", "-d", "--name", "peer", "--network", "n1", busybox, "sleep", "300"))
    hosts = ok(rootless("exec", "peer", "cat", "/etc/hosts"))
    assert any(line.split()[:2] == [addr, "web"] for line in hosts.splitlines()), hosts
    ok(rootless("stop", "-t", "0", "web"))
    hosts = ok(rootless("exec", "peer", "cat", "/etc/hosts"))
    assert not any("web" in line.split()[1:2] for line in hosts.splitlines()), hosts


def test_containers_started_together_all_list_each_other(rootless, busybox):
    import subprocess

    ok(rootless("network", "create", "n1"))
    names = [f"c{i}" for i in range(5)]
    procs = [rootless.popen("run", "-d", "--name", name, "--network", "n1", busybox,
                            "sleep", "300", stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
             for name in names]
    assert [p.wait(timeout=120) for p in procs] == [0] * 5, \
        [p.stderr.read() for p in procs]
    for name in names:
        hosts = ok(rootless("exec", name, "cat", "/etc/hosts"))
        listed = {line.split()[1] for line in hosts.split(PEERS_MARK)[-1].splitlines()}
        assert listed == set(names) - {name}, (name, hosts)


def test_renamed_peer_is_found_by_its_new_name(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    serve(rootless, busybox, "web", "n1")
    ok(rootless("run", "-d", "--name", "peer", "--network", "n1", busybox, "sleep", "300"))
    ok(rootless("rename", "web", "site"))
    assert ok(rootless("exec", "peer", "sh", "-c", HTTP_GET.format(addr="site"))) == \
        "hello-from-web\n"


def test_container_on_another_network_cannot_reach(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    addr = serve(rootless, busybox, "web", "n1")
    assert ok(get_from(rootless, busybox, "n1", addr)) == "hello-from-web\n"
    result = rootless("run", "--rm", "--network", "n2", busybox, "sh", "-c",
                      HTTP_GET.format(addr=addr))
    assert result.returncode != 0 and "hello-from-web" not in result.stdout
    # no route to n1's subnet but through the way out, which cannot reach the hub
    assert "can't connect" in result.stderr or result.returncode in (1, 124, 143), \
        (result.returncode, result.stderr)


def test_disconnect_cuts_the_link_and_connect_restores_it(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    addr = serve(rootless, busybox, "web", "n1")
    ok(rootless("run", "-d", "--name", "client", "--network", "n2", busybox,
                "sleep", "300"))
    failed = rootless("exec", "client", "sh", "-c", HTTP_GET.format(addr=addr))
    assert failed.returncode != 0 and "hello-from-web" not in failed.stdout
    ok(rootless("network", "connect", "n1", "client"))
    assert ok(rootless("exec", "client", "sh", "-c", HTTP_GET.format(addr=addr))) == \
        "hello-from-web\n"
    ok(rootless("network", "disconnect", "n1", "client"))
    cut = rootless("exec", "client", "sh", "-c", HTTP_GET.format(addr=addr))
    assert cut.returncode != 0 and "hello-from-web" not in cut.stdout
    links = ok(rootless("exec", "client", "ip", "-o", "-4", "addr"))
    assert addr.rsplit(".", 1)[0] + "." not in links, links


def test_a_stopped_slirp_container_connected_starts_on_the_network(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    addr = serve(rootless, busybox, "web", "n1")
    ok(rootless("create", "--name", "late", busybox, "sh", "-c",
                "ip route; " + HTTP_GET.format(addr="web")))
    ok(rootless("network", "connect", "n1", "late"))
    out = ""
    for _ in range(40):  # the server may still be starting
        result = rootless("start", "-a", "late")
        out = result.stdout
        if result.returncode == 0:
            break
        time.sleep(0.1)
    assert "hello-from-web" in out and "default" in out, out  # and its way out
    assert addr


def test_running_slirp_container_cannot_be_connected(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("run", "-d", "--name", "plain", busybox, "sleep", "300"))
    assert_error(rootless("network", "connect", "n1", "plain"), 1,
                 "was not started on a user network")


def test_internal_network_has_no_way_out(rootless, busybox):
    ok(rootless("network", "create", "--internal", "inner"))
    ok(rootless("network", "create", "outer"))
    inner = ok(rootless("run", "--rm", "--network", "inner", busybox, "ip", "route"))
    outer = ok(rootless("run", "--rm", "--network", "outer", busybox, "ip", "route"))
    assert "default" not in inner, inner
    assert "default" in outer, outer
    # with no default route an outside address is unreachable at once
    result = rootless("run", "--rm", "--network", "inner", busybox, "sh", "-c",
                      HTTP_GET.format(addr="192.0.2.1"))
    assert result.returncode != 0
    assert "unreachable" in result.stderr.lower(), result.stderr


def test_internal_network_still_joins_its_members(rootless, busybox):
    ok(rootless("network", "create", "--internal", "inner"))
    addr = serve(rootless, busybox, "web", "inner")
    assert ok(get_from(rootless, busybox, "inner", addr)) == "hello-from-web\n"


def test_published_port_of_a_user_network_container(rootless, busybox):
    import socket
    import urllib.request

    ok(rootless("network", "create", "n1"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve(rootless, busybox, "web", "n1", "-p", f"127.0.0.1:{port}:80")

    def fetch():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None
    assert wait_for(fetch) == "hello-from-web\n"


def test_non_root_user_on_a_user_network(rootless, busybox):
    """Single-id mode maps the container's own uid: its user namespace is nested in the
    pause's with that uid mapped to the pause's root."""
    ok(rootless("network", "create", "n1"))
    out = ok(rootless("run", "--rm", "--network", "n1", "-u", "1000:1000", busybox, "id"))
    assert out.startswith("uid=1000(user) gid=1000(user)"), out


def test_restart_keeps_the_address_and_the_link(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    addr = serve(rootless, busybox, "web", "n1")
    ok(rootless("restart", "-t", "0", "web"))
    assert address_of(rootless, "web", "n1") == addr
    assert ok(get_from(rootless, busybox, "n1", addr)) == "hello-from-web\n"


# -- container:NAME ---------------------------------------------------------------------


@pytest.mark.parametrize("network", ["none", "n1"])
def test_container_mode_shares_the_network_namespace(rootless, busybox, network):
    if network == "n1":
        ok(rootless("network", "create", "n1"))
    serve(rootless, busybox, "web", network) if network == "n1" else ok(rootless(
        "run", "-d", "--name", "web", "--network", network, busybox, "sh", "-c",
        SERVE.format(tag="web")))
    result = None
    for _ in range(40):
        result = rootless("run", "--rm", "--network", "container:web", busybox, "sh", "-c",
                          HTTP_GET.format(addr="127.0.0.1"))
        if result.returncode == 0:
            break
        time.sleep(0.1)
    assert ok(result) == "hello-from-web\n"


def test_exec_in_a_container_mode_container_is_in_the_joined_network(rootless, busybox):
    ok(rootless("run", "-d", "--name", "owner", "--network", "none", busybox, "sleep", "300"))
    ok(rootless("run", "-d", "--name", "guest", "--network", "container:owner", busybox,
                "sleep", "300"))
    owner = ok(rootless("exec", "owner", "cat", "/proc/net/dev"))
    guest = ok(rootless("exec", "guest", "cat", "/proc/net/dev"))
    names = [line.split(":")[0].strip() for line in guest.splitlines()[2:]]
    assert names == ["lo"], guest  # owner's: loopback only, not the host's interfaces
    assert [line.split(":")[0] for line in owner.splitlines()[2:]] == \
        [line.split(":")[0] for line in guest.splitlines()[2:]]


def test_container_mode_takes_the_joined_hostname(rootless, busybox):
    ok(rootless("run", "-d", "--name", "web", "--hostname", "webhost", "--network",
                "none", busybox, "sleep", "300"))
    out = ok(rootless("run", "--rm", "--network", "container:web", busybox, "hostname"))
    assert out.strip() == "webhost"
    mode = ok(rootless("inspect", "-f", "{{.HostConfig.NetworkMode}}", "web"))
    assert mode.strip() == "none"


def test_container_mode_of_a_stopped_container_is_refused(rootless, busybox):
    ok(rootless("create", "--name", "idle", "--network", "none", busybox, "true"))
    assert_error(rootless("run", "--rm", "--network", "container:idle", busybox, "true"),
                 125, "cannot join network of a non running container: idle")


def test_container_mode_of_a_missing_container_is_refused(rootless, busybox):
    assert_error(rootless("run", "--rm", "--network", "container:nosuch", busybox, "true"),
                 125, "no such container: nosuch")
    assert ok(rootless("ps", "-aq")).strip() == ""


@pytest.mark.parametrize("flag,value,message", [
    ("-p", "80", "port publishing and the container type network mode"),
    ("--dns", "1.1.1.1", "dns and the network mode"),
    ("--add-host", "a:1.2.3.4", "custom host-to-IP mapping and the network mode"),
    ("--hostname", "h", "hostname and the network mode"),
])
def test_container_mode_conflicts_are_refused(rootless, busybox, flag, value, message):
    assert_error(rootless("run", "--rm", "--network", "container:x", flag, value, busybox,
                          "true"), 125, message)


# -- the pause process ------------------------------------------------------------------


def pause_pids() -> list[int]:
    """Our user's pause processes (the exec helper's --hold-lock)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if argv[:2] == [b"rootless-pause", b"--hold-lock"] and \
                    os.stat(f"/proc/{entry}").st_uid == os.getuid():
                found.append(int(entry))
        except OSError:
            continue
    return found


def no_pause_running() -> None:
    """Skip unless this user has no pause process: there is one per user, so another
    store's (or an earlier test's, on its way out) would share its hub and bridges."""
    try:
        wait_for(lambda: not pause_pids(), timeout=10)
    except AssertionError:
        pytest.skip("another store of this user keeps a pause process running")


def test_pause_process_goes_with_the_last_container(rootless, busybox):
    no_pause_running()
    ok(rootless("network", "create", "n1"))
    ok(rootless("run", "-d", "--name", "ca", "--network", "n1", busybox, "sleep", "300"))
    ok(rootless("run", "-d", "--name", "cb", "--network", "n1", busybox, "sleep", "300"))
    ours = set(pause_pids())
    assert len(ours) == 1, ours  # one, shared by the user's containers
    ok(rootless("rm", "-f", "ca"))
    assert set(pause_pids()) == ours
    ok(rootless("rm", "-f", "cb"))
    wait_for(lambda: not (set(pause_pids()) & ours), timeout=10)


# -- robustness: killed commands, removed networks ---------------------------------------


def networks_of(rootless, container: str) -> dict:
    return json.loads(ok(rootless("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                  container)))


def killed_at(rootless, point: str, *args: str):
    """`rootless ARGS` killed (SIGKILL) at the named point of its work."""
    result = rootless(*args, env={**rootless.env, "ROOTLESS_TEST_KILL_AT": point})
    assert result.returncode == -9, (result.returncode, result.stderr)
    return result


def links_of(rootless, container: str) -> list[str]:
    out = ok(rootless("exec", container, "ip", "-o", "link"))
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


@pytest.mark.parametrize("point", ["connect-endpoint", "connect-veth"])
def test_a_killed_connect_shows_no_endpoint(rootless, busybox, point):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    killed_at(rootless, point, "network", "connect", "n2", "ct")
    assert list(networks_of(rootless, "ct")) == ["n1"]
    [net] = json.loads(ok(rootless("network", "inspect", "n2")))
    assert net["Containers"] == {}


@pytest.mark.parametrize("point", ["connect-endpoint", "connect-veth"])
def test_connect_after_a_killed_connect_gives_one_working_interface(rootless, busybox,
                                                                    point):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    addr = serve(rootless, busybox, "web", "n2")
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    killed_at(rootless, point, "network", "connect", "n2", "ct")
    ok(rootless("network", "connect", "n2", "ct"))
    mine = address_of(rootless, "ct", "n2")
    out = ok(rootless("exec", "ct", "ip", "-o", "-4", "addr"))
    subnet = addr.rsplit(".", 1)[0] + "."
    assert [line.split()[1] for line in out.splitlines() if subnet in line] == ["eth1"], out
    assert f"{mine}/" in out, out
    assert ok(rootless("exec", "ct", "sh", "-c", HTTP_GET.format(addr=addr))) == \
        "hello-from-web\n"


@pytest.mark.parametrize("how, said", [(("network", "rm", "n2"), "n2\n"),
                                       (("network", "prune", "-f"),
                                        "Deleted Networks:\nn2\n\n")])
def test_network_rm_after_a_killed_connect_removes_its_interface(rootless, busybox, how,
                                                                  said):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    killed_at(rootless, "connect-veth", "network", "connect", "n2", "ct")
    assert "eth1" in links_of(rootless, "ct")  # the pair was whole when it was killed
    assert ok(rootless(*how)) == said
    assert "eth1" not in links_of(rootless, "ct")


def test_disconnect_after_a_killed_connect_says_it_was_not_connected(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    killed_at(rootless, "connect-veth", "network", "connect", "n2", "ct")
    assert_error(rootless("network", "disconnect", "n2", "ct"), 1,
                 "is not connected to the network n2")
    assert "eth1" not in links_of(rootless, "ct")


def hub_links() -> list[str]:
    """The links of our user's hub (the pause process's network namespace)."""
    import subprocess

    [pid] = pause_pids()
    out = subprocess.run(["nsenter", "--preserve-credentials", "-U", "-n", "-t", str(pid),
                          "ip", "-o", "link"], capture_output=True, text=True, check=True)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


@pytest.mark.parametrize("how", [("network", "rm", "old"),
                                 ("network", "prune", "-f")])
def test_a_removed_networks_bridge_leaves_the_live_hub(rootless, busybox, how):
    no_pause_running()
    ok(rootless("network", "create", "keep"))
    ok(rootless("run", "-d", "--name", "keeper", "--network", "keep", busybox,
                "sleep", "300"))  # holds the hub
    old = ok(rootless("network", "create", "--subnet", "10.131.0.0/24", "old")).strip()
    ok(rootless("run", "--rm", "--network", "old", busybox, "true"))
    assert "br-" + old[:12] in hub_links()
    ok(rootless(*how))
    assert "br-" + old[:12] not in hub_links()


def test_a_network_reusing_a_removed_ones_subnet_reaches_its_gateway(rootless, busybox):
    ok(rootless("network", "create", "keep"))
    ok(rootless("run", "-d", "--name", "keeper", "--network", "keep", busybox,
                "sleep", "300"))
    ok(rootless("network", "create", "--subnet", "10.132.0.0/24", "old"))
    ok(rootless("run", "--rm", "--network", "old", busybox, "true"))
    ok(rootless("network", "rm", "old"))
    ok(rootless("network", "create", "--subnet", "10.132.0.0/24", "new"))
    out = ok(rootless("run", "--rm", "--network", "new", busybox, "ping", "-c", "1", "-W",
                      "3", "10.132.0.1"))
    assert "1 packets received" in out, out


# -- --ip -------------------------------------------------------------------------------


def test_run_ip_is_the_interface_address(rootless, busybox):
    ok(rootless("network", "create", "--subnet", "10.133.0.0/24", "n1"))
    out = ok(rootless("run", "--rm", "--network", "n1", "--ip", "10.133.0.77", busybox,
                      "ip", "-o", "-4", "addr", "show", "eth0"))
    assert "10.133.0.77/24" in out, out


def test_connect_ip_of_a_running_container_is_its_new_interface_address(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "--subnet", "10.134.0.0/24", "n2"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    ok(rootless("network", "connect", "--ip", "10.134.0.50", "n2", "ct"))
    out = ok(rootless("exec", "ct", "ip", "-o", "-4", "addr", "show", "eth1"))
    assert "10.134.0.50/24" in out, out
    assert networks_of(rootless, "ct")["n2"]["IPAMConfig"] == {"IPv4Address": "10.134.0.50"}


# -- a killed pause process --------------------------------------------------------------


def kill_the_pause() -> tuple[int, int]:
    """SIGKILL our pause process; (its pid, its hub's inode)."""
    import signal

    [pid] = pause_pids()
    hub = os.stat(f"/proc/{pid}/ns/net").st_ino
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in pause_pids(), timeout=10)
    return pid, hub


def test_after_the_pause_is_killed_a_new_container_reaches_the_running_ones(rootless,
                                                                          busybox):
    no_pause_running()
    ok(rootless("network", "create", "n1"))
    addr = serve(rootless, busybox, "web", "n1")
    assert ok(get_from(rootless, busybox, "n1", addr)) == "hello-from-web\n"
    killed, hub = kill_the_pause()
    assert ok(get_from(rootless, busybox, "n1", "web", retries=3)) == "hello-from-web\n"
    [again] = pause_pids()
    assert again != killed
    assert os.stat(f"/proc/{again}/ns/net").st_ino == hub  # the survivors' hub, entered
    ok(rootless("rm", "-f", "web"))  # and the new pause goes with the last container
    wait_for(lambda: again not in pause_pids(), timeout=10)


def test_after_the_pause_is_killed_connect_of_a_running_container_reaches_peers(rootless,
                                                                              busybox):
    no_pause_running()
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    addr = serve(rootless, busybox, "web", "n1")
    ok(rootless("run", "-d", "--name", "ct", "--network", "n2", busybox, "sleep", "300"))
    kill_the_pause()
    ok(rootless("network", "connect", "n1", "ct"))
    assert ok(rootless("exec", "ct", "sh", "-c", HTTP_GET.format(addr=addr))) == \
        "hello-from-web\n"


# -- MAC addresses in inspect ------------------------------------------------------------


def test_inspect_mac_address_is_the_interfaces(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    ok(rootless("network", "connect", "n2", "ct"))
    settings = networks_of(rootless, "ct")
    cid = ok(rootless("inspect", "-f", "{{.Id}}", "ct")).strip()
    for network, ifname in (("n1", "eth0"), ("n2", "eth1")):
        mac = ok(rootless("exec", "ct", "cat", f"/sys/class/net/{ifname}/address")).strip()
        assert len(mac) == 17 and settings[network]["MacAddress"] == mac, (network, mac)
        [net] = json.loads(ok(rootless("network", "inspect", network)))
        assert net["Containers"][cid]["MacAddress"] == mac


def test_inspect_mac_address_is_empty_once_stopped(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("run", "-d", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    assert networks_of(rootless, "ct")["n1"]["MacAddress"] != ""
    ok(rootless("stop", "-t", "0", "ct"))
    assert networks_of(rootless, "ct")["n1"]["MacAddress"] == ""


def test_a_start_killed_while_attaching_starts_whole_the_next_time(rootless, busybox):
    ok(rootless("network", "create", "n1"))
    ok(rootless("network", "create", "n2"))
    ok(rootless("create", "--name", "ct", "--network", "n1", busybox, "sleep", "300"))
    ok(rootless("network", "connect", "n2", "ct"))
    killed = rootless("start", "ct", env={**rootless.env, "ROOTLESS_TEST_KILL_AT":
                                          "start-veth"})
    assert_error(killed, 1, "the container's monitor failed to start")
    assert ok(rootless("inspect", "-f", "{{.State.Status}}", "ct")).strip() in (
        "created", "exited")
    ok(rootless("start", "ct"))
    out = ok(rootless("exec", "ct", "ip", "-o", "-4", "addr"))
    for network, ifname in (("n1", "eth0"), ("n2", "eth1")):
        addr = address_of(rootless, "ct", network)
        assert [line.split()[1] for line in out.splitlines() if f" {addr}/" in line] == \
            [ifname], out


def test_network_rm_after_the_pause_is_killed_deletes_the_bridge_from_the_kept_hub(
        rootless, busybox):
    no_pause_running()
    ok(rootless("network", "create", "keep"))
    ok(rootless("run", "-d", "--name", "keeper", "--network", "keep", busybox,
                "sleep", "300"))
    old = ok(rootless("network", "create", "old")).strip()
    ok(rootless("run", "--rm", "--network", "old", busybox, "true"))
    _, hub = kill_the_pause()
    ok(rootless("network", "rm", "old"))
    [again] = pause_pids()
    assert os.stat(f"/proc/{again}/ns/net").st_ino == hub
    assert "br-" + old[:12] not in hub_links()
