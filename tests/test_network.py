"""User-mode networking (issue 11): `--network slirp` through pasta (or slirp4netns),
published ports, the container's resolver and hosts files, and the bad input around
them. All traffic stays on the host's loopback or inside namespaces the tests made.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from helpers import assert_error, ok, wait_for

pytestmark = pytest.mark.container

HELPERS = [h for h in ("pasta", "slirp4netns") if shutil.which(h)]
needs_pasta = pytest.mark.skipif("pasta" not in HELPERS, reason="pasta is not installed")
# busybox-static's wget: `-T` crashes it (SIGSEGV), so `timeout` bounds it; its nc
# spins once its stdin ends, so not nc either; `; exit` keeps sh pid 1 (else wget would
# be, and the kernel spares pid 1 the SIGTERM of timeout: pid_namespaces(7))
HTTP_GET = "timeout 10 wget -q -O - http://{addr}:{port}/; exit $?"
SERVE = "mkdir -p /www && echo hello-from-{tag} > /www/index.html && exec httpd -f -p 80 -h /www"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 20) -> str:
    """The body at `url`, retried while the server in the container starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def host_server():
    """An HTTP server on the host's 127.0.0.1 answering "from-the-host"."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"from-the-host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def helper_children(rootless, name: str) -> list[int]:
    """pids of the container's monitor's children but its init: the network helper
    (and the slirp4netns forwarder)."""
    pid = int(ok(rootless("inspect", "--format", "{{.State.Pid}}", name)).strip())
    with open(f"/proc/{pid}/stat") as f:
        monitor = int(f.read().rsplit(")", 1)[1].split()[1])
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if parent == monitor and int(entry) != pid:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


# -- modes -----------------------------------------------------------------------------


@pytest.mark.parametrize("helper", HELPERS)
def test_slirp_container_has_its_own_interface_and_a_default_route(rootless, busybox,
                                                                   helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    out = ok(rootless("run", "--rm", "--network", "slirp", busybox, "sh", "-c",
                                "ip -o link; ip route", env=env))
    assert "eth0" in out and "default via" in out


def test_default_network_is_slirp_when_a_helper_is_installed(rootless, busybox):
    if not HELPERS:
        pytest.skip("neither pasta nor slirp4netns is installed")
    out = ok(rootless("run", "--rm", busybox, "ip", "-o", "link"))
    assert "eth0" in out
    info = json.loads(ok(rootless("system", "info", "--format", "{{json .}}")))
    assert info["network_default"].startswith("slirp through ")


def test_bridge_is_a_name_of_slirp(rootless, busybox):
    out = ok(rootless("run", "--rm", "--network", "bridge", busybox, "ip", "-o", "link"))
    assert "eth0" in out


def test_none_has_only_loopback(rootless, busybox):
    out = ok(rootless("run", "--rm", "--network", "none", busybox, "ip", "-o", "link"))
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]


@pytest.mark.parametrize("helper", HELPERS)
def test_resolver_is_the_helpers_forwarder(rootless, busybox, helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    out = ok(rootless("run", "--rm", busybox, "cat", "/etc/resolv.conf",
                                env=env))
    want = "169.254.1.1" if helper == "pasta" else "10.0.2.3"
    assert f"nameserver {want}" in out.splitlines()


def test_dns_options_replace_the_resolver_lines(rootless, busybox):
    out = ok(rootless("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.org",
                      "--dns-option", "ndots:2", busybox, "cat", "/etc/resolv.conf"))
    assert out.splitlines() == ["nameserver 192.0.2.53", "search example.org",
                                "options ndots:2"]


def test_add_host_lines_go_into_etc_hosts(rootless, busybox):
    out = ok(rootless("run", "--rm", "--add-host", "db.example:192.0.2.7", busybox,
                      "cat", "/etc/hosts"))
    assert "192.0.2.7\tdb.example" in out.splitlines()


# -- the host's loopback ---------------------------------------------------------------


@pytest.mark.parametrize("helper", HELPERS)
def test_host_loopback_is_reachable_when_allowed(rootless, busybox, host_server, helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    # by the address /etc/hosts gives the name: busybox-static's nc cannot use glibc's
    # static NSS to read it
    out = ok(rootless(
        "run", "--rm", "--network", "slirp:allow_host_loopback=true", busybox, "sh", "-c",
        "addr=$(awk '/host.containers.internal/ {print $1}' /etc/hosts) && "
        + HTTP_GET.format(addr="$addr", port=host_server), env=env))
    assert out == "from-the-host\n"


@pytest.mark.parametrize("helper", HELPERS)
def test_host_loopback_is_unreachable_by_default(rootless, busybox, host_server, helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    # the address the option would use, tried without it
    address = ok(rootless(
        "run", "--rm", "--network", "slirp:allow_host_loopback=true", busybox, "sh", "-c",
        "awk '/host.containers.internal/ {print $1}' /etc/hosts", env=env)).strip()
    assert address
    result = rootless("run", "--rm", busybox, "sh", "-c",
                      HTTP_GET.format(addr=address, port=host_server), env=env)
    assert result.returncode != 0 and "from-the-host" not in result.stdout
    # refused (nothing listens there: the gateway is not the host's loopback), or no
    # answer at all until `timeout` ends it
    assert "can't connect" in result.stderr or result.returncode in (124, 143), \
        (result.returncode, result.stderr)


# -- published ports -------------------------------------------------------------------


@pytest.mark.parametrize("helper", HELPERS)
def test_published_port_serves_a_host_client(rootless, busybox, helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    port = free_port()
    ok(rootless("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", busybox,
                "sh", "-c", SERVE.format(tag="p"), env=env))
    assert http_get(f"http://127.0.0.1:{port}/") == "hello-from-p\n"


@pytest.mark.skipif("slirp4netns" not in HELPERS, reason="slirp4netns is not installed")
def test_forwarder_carries_a_large_body_both_ways(rootless, busybox):
    """slirp4netns's ports go through the monitor's forwarder (net/forwarder.py)."""
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER="slirp4netns")
    port = free_port()
    ok(rootless("run", "-d", "--name", "big", "-p", f"127.0.0.1:{port}:80", busybox,
                "sh", "-c", "mkdir /www && head -c 8388608 /dev/zero | tr '\\0' x "
                "> /www/big && exec httpd -f -p 80 -h /www", env=env))
    body = http_get(f"http://127.0.0.1:{port}/big")
    assert len(body) == 8 << 20 and set(body) == {"x"}


@needs_pasta
def test_random_published_port_shows_in_port_ps_and_inspect(rootless, busybox):
    ok(rootless("run", "-d", "--name", "web", "-p", "127.0.0.1::80", busybox, "sh", "-c",
                SERVE.format(tag="r")))
    line = ok(rootless("port", "web", "80")).strip()
    host, _, port = line.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert ok(rootless("port", "web")).strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert http_get(f"http://127.0.0.1:{port}/") == "hello-from-r\n"
    ps = ok(rootless("ps", "--format", "{{.Ports}}"))
    assert ps.strip() == f"127.0.0.1:{port}->80/tcp"
    ports = json.loads(ok(rootless("inspect", "--format",
                                   "{{json .NetworkSettings.Ports}}", "web")))
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}


# a UDP echo server: busybox has none; Debian's perl-base (Essential) has the sockets
UDP_ECHO = ("use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => $ARGV[0], "
            "Proto => 'udp') or die $!; while ($s->recv(my $m, 512)) { $s->send(\"echo:$m\") }")


@pytest.mark.parametrize("helper", HELPERS)
def test_udp_is_published_with_udp(rootless, debian, helper):
    # the same port on both sides: pasta 2023-03 loses the replies to a loopback client
    # when it translates a UDP port (its spliced path; through a host address it works)
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    port = free_port(socket.SOCK_DGRAM)
    ok(rootless("run", "-d", "--name", "udp", "-p", f"127.0.0.1:{port}:{port}/udp",
                debian, "perl", "-e", UDP_ECHO, str(port), env=env))

    def answered() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(b"datagram", ("127.0.0.1", port))
            try:
                return s.recv(512)
            except OSError:
                return b""
    assert wait_for(answered, timeout=20) == b"echo:datagram"


@needs_pasta
def test_publish_all_publishes_exposed_ports(rootless, busybox):
    ok(rootless("run", "-d", "--name", "web", "--expose", "80", "-P", busybox, "sh", "-c",
                SERVE.format(tag="all")))
    line = ok(rootless("port", "web", "80/tcp")).strip()
    port = line.rpartition(":")[2]
    assert http_get(f"http://127.0.0.1:{port}/") == "hello-from-all\n"


@pytest.mark.parametrize("helper", HELPERS)
def test_stop_and_rm_leave_no_helper_behind(rootless, busybox, helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    ok(rootless("run", "-d", "--name", "ctr", "-p", "127.0.0.1::80", busybox, "sleep",
                "600", env=env))
    helpers = wait_for(lambda: helper_children(rootless, "ctr"))
    assert helpers and all(alive(p) for p in helpers)
    ok(rootless("stop", "-t", "1", "ctr"))
    assert wait_for(lambda: not any(alive(p) for p in helpers), timeout=10)
    ok(rootless("rm", "ctr"))


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("helper", HELPERS)
def test_taken_host_port_is_a_clear_error_and_no_container_runs(rootless, busybox,
                                                                 helper):
    env = dict(rootless.env, ROOTLESS_NETWORK_HELPER=helper)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = rootless("run", "-d", "--name", "late", "-p", f"127.0.0.1:{port}:80",
                          busybox, "sleep", "600", env=env)
        assert_error(result, 125, f"127.0.0.1:{port}", "already allocated")
    state = ok(rootless("inspect", "--format", "{{.State.Status}}", "late")).strip()
    assert state in ("created", "exited")


@pytest.mark.parametrize("spec,message", [
    ("abc", "invalid containerPort: abc"),
    ("99999:80", "invalid hostPort: 99999"),
    ("80/sctp", "invalid proto: sctp"),
    ("8080-8081:80-82", "invalid ranges specified"),
    ("nope:80:80", "invalid ip address: nope"),
])
def test_invalid_publish_spec_is_refused_before_any_container(rootless, busybox, spec,
                                                              message):
    assert_error(rootless("run", "--rm", "--name", "bad", "-p", spec, busybox, "true"),
                 125, message)
    assert ok(rootless("ps", "-aq")).strip() == ""


def test_unknown_network_is_refused(rootless, busybox):
    assert_error(rootless("run", "--rm", "--network", "nosuch", busybox, "true"), 125,
                 "network nosuch not found")


def test_publishing_with_network_none_is_refused(rootless, busybox):
    assert_error(rootless("run", "--rm", "--network", "none", "-p", "80", busybox, "true"),
                 125, "conflicting options: port publishing")


@pytest.mark.parametrize("flag,value,message", [
    ("--add-host", "nocolon", "bad format for add-host"),
    ("--add-host", "name:999.1.1.1", "invalid IP address in add-host"),
    ("--dns", "not-an-ip", "not-an-ip is not an ip address"),
])
def test_bad_resolver_options_are_refused(rootless, busybox, flag, value, message):
    assert_error(rootless("run", "--rm", flag, value, busybox, "true"), 125, message)
