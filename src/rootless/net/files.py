"""The per-container /etc/hosts, /etc/hostname and /etc/resolv.conf."""

from __future__ import annotations

import re
from pathlib import Path

HOST_RESOLV_CONF = "/etc/resolv.conf"


def hosts_file(hostname: str, network: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if network == "host":
        try:
            lines.append(Path("/etc/hosts").read_text().strip())
        except OSError:
            pass
    lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(network: str) -> str:
    try:
        text = Path(HOST_RESOLV_CONF).read_text()
    except OSError:
        text = ""
    if network == "host":
        return text
    # a loopback resolver of the host is not reachable from another network namespace
    return "".join(line + "\n" for line in text.splitlines()
                   if not re.match(r"\s*nameserver\s+(127\.|::1)", line))


def write_network_files(container_dir: Path, hostname: str, network: str) -> dict[str, Path]:
    files = {
        "/etc/hostname": (container_dir / "hostname", hostname + "\n"),
        "/etc/hosts": (container_dir / "hosts", hosts_file(hostname, network)),
        "/etc/resolv.conf": (container_dir / "resolv.conf", resolv_conf(network)),
    }
    for path, text in files.values():
        path.write_text(text)
    return {dest: path for dest, (path, _) in files.items()}
