"""Docker's zero values for the parts of `container inspect` that rootless has nothing
to say about (yet): every key of moby's api/types/container.HostConfig and
NetworkSettings, in docker's order, with what `docker inspect` prints for a plain
`docker run`. engine/container_inspect.py fills in what the container records.

Fresh objects on every call: callers may change them.
"""

from __future__ import annotations


def host_config_defaults() -> dict[str, object]:
    return {
        "Binds": None, "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},  # the monitor's (engine/monitor.py)
        "NetworkMode": "", "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None,
        "ConsoleSize": [0, 0], "CapAdd": None, "CapDrop": None,
        "CgroupnsMode": "private",  # engine/spec.py always unshares the cgroup namespace
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
        "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
        "ShmSize": 65536 * 1024,  # engine/spec.py mounts /dev/shm with size=65536k
        "Runtime": "rootless", "Isolation": "",
        **_resources(),
        "MaskedPaths": None, "ReadonlyPaths": None, "Init": None,
    }


def _resources() -> dict[str, object]:
    """HostConfig's embedded Resources (cgroup limits: none are set when rootless)."""
    return {
        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
        "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
        "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None,
        "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
        "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    }


def network_defaults() -> dict[str, object]:
    return {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
        "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {},
    }


def endpoint_defaults() -> dict[str, object]:
    """One entry of NetworkSettings.Networks (moby's network.EndpointSettings)."""
    return {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
    }
