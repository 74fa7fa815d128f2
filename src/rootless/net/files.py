"""The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf.

host: the host's files (its /etc/hosts after ours). none: no resolver that cannot be
reached (a loopback one). slirp: the helper's DNS forwarder (net/modes.py: pasta's
--dns-forward address, slirp4netns's 10.0.2.3), which asks the host's resolvers, a
loopback one included; --dns replaces it, --dns-search and --dns-option replace the
host's search and options lines, as docker's do. --add-host lines go last, as docker
writes them; `host-gateway` and, with allow_host_loopback, host.containers.internal
name the address the host's loopback is reached at.
"""

from __future__ import annotations

import os

from rootless.errors import UsageError
from rootless.records import record

HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_GATEWAY = "host-gateway"
HOST_NAMES = ("host.containers.internal", "host.docker.internal")


@record
class NetworkFiles:
    """What goes into the three files besides the hostname."""
    network: str = "host"  # host | none | slirp | user | container
    helper: str = ""  # pasta | slirp4netns, for slirp (and user: its way out)
    allow_host_loopback: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # --add-host NAME:IP
    address: str = ""  # user: the container's address on its first network
    joined: str = ""  # container: the id of the container whose network it joins


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _valid_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_options(dns: tuple[str, ...], extra_hosts: tuple[str, ...]) -> None:
    """docker's checks of --dns and --add-host, with its messages."""
    for server in dns:
        if not _valid_ip(server):
            raise UsageError(f'invalid argument "{server}" for "--dns" flag: {server} is '
                             "not an ip address")
    for item in extra_hosts:
        _parse_extra_host(item)


def _parse_extra_host(item: str) -> tuple[str, str]:
    name, sep, ip = item.partition(":")
    if not sep or not name or not ip:
        raise UsageError(f'invalid argument "{item}" for "--add-host" flag: bad format '
                         f'for add-host: "{item}"')
    if ip != HOST_GATEWAY and not _valid_ip(ip.strip("[]")):
        raise UsageError(f'invalid argument "{item}" for "--add-host" flag: invalid IP '
                         f'address in add-host: "{ip}"')
    return name, ip.strip("[]")


def default_gateway() -> str | None:
    """The host's IPv4 default gateway (/proc/net/route: little-endian hex), where pasta
    maps the host's loopback unless told --no-map-gw."""
    try:
        lines = _read("/proc/net/route").splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            raw = bytes.fromhex(fields[2])[::-1]
            return ".".join(str(b) for b in raw)
    return None


def host_address(files: NetworkFiles) -> str:
    """Where the container reaches the host: host-gateway of --add-host."""
    if files.network == "slirp":
        from rootless.net.modes import SLIRP4NETNS_HOST

        if files.helper == "slirp4netns":
            return SLIRP4NETNS_HOST
        return default_gateway() or "127.0.0.1"
    return "127.0.0.1"


def hosts_file(hostname: str, files: NetworkFiles) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if files.network == "host":
        try:
            lines.append(_read("/etc/hosts").strip())
        except OSError:
            pass
    if files.network == "slirp" and files.helper == "slirp4netns":
        from rootless.net.modes import SLIRP4NETNS_ADDRESS

        lines.append(f"{SLIRP4NETNS_ADDRESS}\t{hostname}")
    elif files.network == "user" and files.address:
        lines.append(f"{files.address}\t{hostname}")
    else:
        lines.append(f"127.0.1.1\t{hostname}")
    if files.network == "slirp" and files.allow_host_loopback:
        lines.append(f"{host_address(files)}\t{' '.join(HOST_NAMES)}")
    for item in files.extra_hosts:
        name, ip = _parse_extra_host(item)
        lines.append(f"{host_address(files) if ip == HOST_GATEWAY else ip}\t{name}")
    return "\n".join(lines) + "\n"


def resolv_conf(files: NetworkFiles) -> str:
    try:
        text = _read(HOST_RESOLV_CONF)
    except OSError:
        text = ""
    if files.network == "host" and not (files.dns or files.dns_search or
                                        files.dns_options):
        return text
    nameservers = list(files.dns)
    if not nameservers and files.helper and files.network in ("slirp", "user"):
        from rootless.net.modes import PASTA_DNS, SLIRP4NETNS_DNS

        nameservers = [SLIRP4NETNS_DNS if files.helper == "slirp4netns" else PASTA_DNS]
    if not nameservers:
        # a loopback resolver of the host is not reachable from another network namespace
        nameservers = [value.split()[0] for value in _resolv_values(text, "nameserver")
                       if files.network == "host" or not _loopback(value.split()[0])]
    out = [f"nameserver {ns}" for ns in nameservers]
    search = (" ".join(files.dns_search) if files.dns_search else
              " ".join(_resolv_values(text, "search", "domain")))
    if search and search != ".":  # docker's `--dns-search .`: no search line
        out.append(f"search {search}")
    options = (" ".join(files.dns_options) if files.dns_options else
               " ".join(_resolv_values(text, "options")))
    if options:
        out.append(f"options {options}")
    return "".join(line + "\n" for line in out)


def _resolv_values(text: str, *keywords: str) -> list[str]:
    """What follows each of `keywords` on its own line of a resolv.conf, as the resolver
    reads it (resolv.conf(5)): the keyword first on the line, then blanks, then the
    value. (Parsed by hand: `re` costs every `run` ~4 ms of imports.)"""
    values = []
    for line in text.split("\n"):
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in keywords:
            values.append(parts[1])
    return values


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"


JOINED_FILES = ("hostname", "hosts", "resolv.conf")  # what container:NAME copies


def joined_texts(container_dir: str, joined: str) -> dict[str, str]:
    """The /etc files of the container `joined` (a sibling of `container_dir`), read
    bounded and never through a symlink; a missing one reads empty."""
    from rootless.kernel.paths import read_regular_at

    texts = {}
    parent = os.path.dirname(container_dir.rstrip("/"))
    for name in JOINED_FILES:
        try:
            data = read_regular_at(None, os.path.join(parent, joined, name), 1 << 20)
        except OSError:  # missing, too large, or not a regular file
            data = b""
        texts[name] = data.decode(errors="replace")
    return texts


def write_network_files(container_dir: str, hostname: str,
                        files: NetworkFiles | str) -> dict[str, str]:
    """{path in the container: the file written in `container_dir`}."""
    if isinstance(files, str):
        files = NetworkFiles(files)
    if files.network == "container":
        joined = joined_texts(container_dir, files.joined)
        texts = {f"/etc/{name}": (os.path.join(container_dir, name), joined[name])
                 for name in JOINED_FILES}
    else:
        texts = _own_texts(container_dir, hostname, files)
    for path, text in texts.values():
        with open(path, "w") as f:
            f.write(text)
    return {dest: path for dest, (path, _) in texts.items()}


def _own_texts(container_dir: str, hostname: str,
               files: NetworkFiles) -> dict[str, tuple[str, str]]:
    return {
        "/etc/hostname": (os.path.join(container_dir, "hostname"), hostname + "\n"),
        "/etc/hosts": (os.path.join(container_dir, "hosts"), hosts_file(hostname, files)),
        "/etc/resolv.conf": (os.path.join(container_dir, "resolv.conf"),
                             resolv_conf(files)),
    }
