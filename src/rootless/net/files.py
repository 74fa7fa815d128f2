"""The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf."""

from __future__ import annotations

import os
import re

HOST_RESOLV_CONF = "/etc/resolv.conf"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def hosts_file(hostname: str, network: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if network == "host":
        try:
            lines.append(_read("/etc/hosts").strip())
        except OSError:
            pass
    lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(network: str) -> str:
    try:
        text = _read(HOST_RESOLV_CONF)
    except OSError:
        text = ""
    if network == "host":
        return text
    # a loopback resolver of the host is not reachable from another network namespace
    return "".join(line + "\n" for line in text.splitlines()
                   if not re.match(r"\s*nameserver\s+(127\.|::1)", line))


def write_network_files(container_dir: str, hostname: str, network: str) -> dict[str, str]:
    """{path in the container: the file written in `container_dir`}."""
    files = {
        "/etc/hostname": (os.path.join(container_dir, "hostname"), hostname + "\n"),
        "/etc/hosts": (os.path.join(container_dir, "hosts"), hosts_file(hostname, network)),
        "/etc/resolv.conf": (os.path.join(container_dir, "resolv.conf"),
                             resolv_conf(network)),
    }
    for path, text in files.values():
        with open(path, "w") as f:
            f.write(text)
    return {dest: path for dest, (path, _) in files.items()}
