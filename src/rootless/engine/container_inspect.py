"""`docker container inspect`: a container as moby's ContainerJSON, from its record and
its config.json.

The record (state.db) is ours; config.json lives in the container's directory, which
the container never sees, but it is still read as untrusted data: bounded, regular file
only (a FIFO put there must not hang `inspect`), and every field checked for its type.
What cannot be read gives docker's zero value for the fields it would have filled,
never a traceback. Every key of docker's structure is present, so that templates such
as `{{.HostConfig.SecurityOpt}}` behave as with docker.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import time

from rootless.engine.containers import (ContainerRow, container_list, container_lookup,
                                        container_path)
from rootless.engine.container_settings import LOG_FILE, SPEC_LIMIT, settings_read
from rootless.runtime.annotations import (INIT_ANNOTATION, KEEP_GROUPS_ANNOTATION,
                                          PRIVILEGED_ANNOTATION, ROOTFS_OVERLAY_ANNOTATION,
                                          SECURITY_OPT_ANNOTATION)

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as docker prints it
UNLIMITED = 2**64 - 1  # RLIM_INFINITY in an OCI rlimit; docker's --ulimit says -1


def container_inspect(store, ref: str, size: bool = False) -> dict[str, object]:
    """One container as `docker container inspect` shows it; NotFoundError if `ref`
    names none. `size` adds SizeRw and SizeRootFs (docker's -s)."""
    record = container_lookup(store, ref)
    row = next((r for r in container_list(store) if r.record.id == record.id),
               ContainerRow(record, None, None))
    cdir = container_path(store, record.id)
    spec, started = spec_read(os.path.join(cdir, "config.json"))
    settings = settings_read(cdir)
    driver, graph = graph_driver(spec)
    path, *args = shlex.split(record.command) or [""]
    result = {
        "Id": record.id,
        "Created": rfc3339(record.created),
        "Path": path,
        "Args": args,
        "State": state(row, started, cdir if settings.healthcheck else None),
        "Image": record.image_id,
        "ResolvConfPath": _existing(os.path.join(cdir, "resolv.conf")),
        "HostnamePath": _existing(os.path.join(cdir, "hostname")),
        "HostsPath": _existing(os.path.join(cdir, "hosts")),
        "LogPath": _existing(os.path.join(cdir, LOG_FILE)),
        "Name": "/" + record.name,
        "RestartCount": row.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(spec, record.auto_remove, cdir, settings),
        "GraphDriver": {"Name": driver, "Data": graph},
        "Mounts": mounts(spec, cdir),
        "Config": config(store, record, spec, row.labels, settings),
        "NetworkSettings": network_settings(network_mode(spec), spec,
                                            _user_networks(store, record)),
    }
    if size:
        result.update(sizes(store, record.image_id, cdir, driver))
    return result


# ---- reading config.json ----

def spec_read(path: os.PathLike) -> tuple[dict[str, object], float | None]:
    """(the OCI spec at `path`, its mtime: when the run that wrote it started); ({},
    None) if it is missing, not a regular file, too large or not a JSON object. Opened
    O_PATH|O_NOFOLLOW, then read through kernel/paths.read_regular, which refuses
    anything but a regular file before opening it for reading (open(2) of a FIFO
    blocks until a writer comes)."""
    from rootless.kernel.paths import read_regular

    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}, None
    try:
        mtime = os.fstat(fd).st_mtime
        data = read_regular(fd, SPEC_LIMIT)
    except OSError:
        return {}, None
    finally:
        os.close(fd)
    try:
        spec = json.loads(data)
    except ValueError:  # UnicodeDecodeError is one too
        return {}, None
    return (spec, mtime) if isinstance(spec, dict) else ({}, None)


def field(obj: object, *keys: str, kind: type | tuple[type, ...] = str, default: object = None):
    """obj[k1][k2]... if every step is a JSON object and the value is of `kind`."""
    for key in keys:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    if isinstance(obj, bool) and kind is int:  # JSON true is not a number
        return default
    return obj if isinstance(obj, kind) else default


def strings(obj: object, *keys: str) -> list[str] | None:
    """A list of strings at obj[k1][k2]..., else None."""
    value = field(obj, *keys, kind=list)
    if value is None or not all(isinstance(v, str) for v in value):
        return None
    return value


def _annotation(spec: dict, key: str) -> str | None:
    return field(spec, "annotations", key)


# ---- the parts of ContainerJSON ----

def rfc3339(seconds: float | None) -> str:
    """RFC 3339 with nanoseconds, UTC, as Go's time.RFC3339Nano (trailing zeros of the
    fraction dropped). A float of seconds since 1970 holds about a quarter of a
    microsecond of precision: the digits past the microsecond would be noise."""
    if seconds is None:
        return ZERO_TIME
    whole, micros = divmod(int(round(seconds * 1e6)), 10**6)
    nanos = micros * 1000
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + fraction + "Z"


def state(row: ContainerRow, started: float | None, cdir=None) -> dict[str, object]:
    """Docker's State. Containers started before the record kept a start time have
    config.json's mtime (written just before they started) in its place."""
    running = row.running
    status = row.state
    started = row.started or (started if started is not None else row.record.created)
    return {
        "Status": status, "Running": running, "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": False, "Dead": False,
        "Pid": row.pid if status in ("running", "paused") else 0,
        "ExitCode": 0 if running or row.exit_code is None else row.exit_code,
        "Error": "",
        "StartedAt": ZERO_TIME if status == "created" else rfc3339(started),
        "FinishedAt": ZERO_TIME if running else rfc3339(row.finished),
        **_health(cdir, running),
    }


def _health(cdir, running: bool) -> dict[str, object]:
    """State.Health, for a container with a healthcheck (docker omits the key
    otherwise); "starting" before the monitor's first word."""
    if cdir is None:
        return {}
    from rootless.engine.health import health_read

    health = health_read(cdir) if running else None
    if health is None:
        health = {"Status": "starting" if running else "unhealthy", "FailingStreak": 0,
                  "Log": []}
    return {"Health": health}


def _existing(path: os.PathLike) -> str:
    return os.fspath(path) if os.path.lexists(path) else ""


def graph_driver(spec: dict) -> tuple[str, dict[str, str] | None]:
    """("overlay", its directories) where the rootfs is kernel overlayfs, ("vfs", None)
    where it is a private copy of the layers (docker's vfs has no Data either); ("",
    None) when config.json could not be read."""
    merged = field(spec, "root", "path")
    if merged is None:
        return "", None
    text = _annotation(spec, ROOTFS_OVERLAY_ANNOTATION)
    if text is None:
        return "vfs", None
    try:
        overlay = json.loads(text)
    except ValueError:
        overlay = {}
    return "overlay", {"LowerDir": ":".join(strings(overlay, "lower") or []),
                       "MergedDir": merged,
                       "UpperDir": field(overlay, "upper", default=""),
                       "WorkDir": field(overlay, "work", default="")}


def user_binds(spec: dict, cdir: os.PathLike) -> list[tuple[str, str, bool]]:
    """(host, container, read-only) of the -v mounts: the bind mounts but those of the
    container's own hosts, hostname and resolv.conf."""
    own = os.fspath(cdir) + os.sep
    binds = []
    for mount in field(spec, "mounts", kind=list, default=[]):
        source, dest = field(mount, "source"), field(mount, "destination")
        if field(mount, "type") != "bind" or source is None or dest is None \
                or source.startswith(own):
            continue
        binds.append((source, dest, "ro" in (strings(mount, "options") or [])))
    return binds


def mounts(spec: dict, cdir: os.PathLike) -> list[dict[str, object]]:
    """docker's Mounts: binds, and volumes (a bind of the store's volumes/NAME/_data)."""
    from rootless.engine.volumes import volume_name_of

    store_root = os.path.dirname(os.path.dirname(os.fspath(cdir)))
    result = []
    for host, ctr, ro in user_binds(spec, cdir):
        name = volume_name_of(store_root, host)
        if name is None:
            result.append({"Type": "bind", "Source": host, "Destination": ctr,
                           "Mode": "ro" if ro else "", "RW": not ro,
                           "Propagation": "rprivate"})
        else:
            result.append({"Type": "volume", "Name": name, "Source": host,
                           "Destination": ctr, "Driver": "local",
                           "Mode": "ro" if ro else "z", "RW": not ro, "Propagation": ""})
    return result


def network_mode(spec: dict) -> str:
    """host, none, slirp, a user network's name or container:ID (net/modes.py): a
    network namespace without the annotation means none."""
    if not spec:
        return ""
    from rootless.net.modes import mode_from_spec

    mode = mode_from_spec(spec)
    if mode is not None:  # a user network's name; container:ID (docker's spelling)
        return {"slirp": "slirp", "user": mode.name}.get(mode.mode,
                                                         f"container:{mode.name}")
    namespaces = field(spec, "linux", "namespaces", kind=list, default=[])
    own = any(field(ns, "type") == "network" for ns in namespaces)
    return "none" if own else "host"


def security_options(spec: dict) -> list[str] | None:
    """docker's HostConfig.SecurityOpt: what --security-opt set; null when nothing."""
    try:
        options = json.loads(_annotation(spec, SECURITY_OPT_ANNOTATION) or "[]")
    except ValueError:
        return None
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        return None
    return options or None


def ulimits(spec: dict) -> list[dict[str, object]] | None:
    """docker's Ulimits from process.rlimits (RLIMIT_NOFILE -> nofile, infinity -> -1)."""
    result = []
    for limit in field(spec, "process", "rlimits", kind=list, default=[]):
        kind = field(limit, "type", default="")
        soft, hard = field(limit, "soft", kind=int), field(limit, "hard", kind=int)
        if not kind.startswith("RLIMIT_") or soft is None or hard is None:
            continue
        result.append({"Name": kind.removeprefix("RLIMIT_").lower(),
                       "Hard": -1 if hard == UNLIMITED else hard,
                       "Soft": -1 if soft == UNLIMITED else soft})
    return result or None


def host_config(spec: dict, auto_remove: bool, cdir: os.PathLike,
                settings=None) -> dict[str, object]:
    """Docker's HostConfig: what the spec records, docker's zero value for the rest."""
    from rootless.engine.container_defaults import host_config_defaults
    from rootless.engine.resources import resources_host_config

    binds = [f"{h}:{c}:ro" if ro else f"{h}:{c}"
             for h, c, ro in user_binds(spec, cdir)]
    init = _annotation(spec, INIT_ANNOTATION) == "true"
    keep_groups = _annotation(spec, KEEP_GROUPS_ANNOTATION) == "1"
    privileged = _annotation(spec, PRIVILEGED_ANNOTATION) == "true"
    masked = None if privileged else strings(spec, "linux", "maskedPaths")
    readonly = None if privileged else strings(spec, "linux", "readonlyPaths")
    return {
        **host_config_defaults(),
        "Binds": binds or None,
        "NetworkMode": network_mode(spec),
        "PortBindings": _ports(spec),
        "AutoRemove": auto_remove,
        "GroupAdd": ["keep-groups"] if keep_groups else None,
        "Privileged": privileged,
        "ReadonlyRootfs": field(spec, "root", "readonly", kind=bool, default=False),
        "SecurityOpt": security_options(spec),
        "Init": True if init else None,
        "Ulimits": ulimits(spec),
        "MaskedPaths": masked,
        "ReadonlyPaths": readonly,
        **resources_host_config(field(spec, "linux", "resources", kind=dict)),
        **_lifecycle_host_config(settings),
    }


def _lifecycle_host_config(settings) -> dict[str, object]:
    if settings is None:
        return {}
    return {"RestartPolicy": {"Name": settings.restart,
                              "MaximumRetryCount": settings.max_retries},
            "LogConfig": {"Type": "json-file", "Config": {}}}


def config(store, record, spec: dict, labels: dict[str, str] | None = None,
           settings=None) -> dict[str, object]:
    """Docker's Config: the process of config.json, what the image adds (volumes, stop
    signal) while it is still in the store; the labels the container was made with
    (the image's, for a container made before labels were recorded)."""
    image = _image_config(store, record.image_id)
    args = shlex.split(record.command)
    entrypoint = image.get("Entrypoint") if isinstance(image.get("Entrypoint"), list) \
        else None
    if not entrypoint or args[: len(entrypoint)] != entrypoint:
        entrypoint = None  # --entrypoint replaced it, or the image has none
    cmd = args[len(entrypoint or []):]
    # the ids the process ran as: the name or number given to -u is not recorded
    uid = field(spec, "process", "user", "uid", kind=int, default=0)
    gid = field(spec, "process", "user", "gid", kind=int, default=0)
    cwd = field(spec, "process", "cwd", default="")
    tty = field(spec, "process", "terminal", kind=bool, default=False)
    result = {
        "Hostname": field(spec, "hostname", default=""),
        "Domainname": "",
        "User": "" if (uid, gid) == (0, 0) else f"{uid}:{gid}",
        "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
        "Tty": tty, "OpenStdin": False, "StdinOnce": False,
        "Env": strings(spec, "process", "env"),
        "Cmd": cmd or None,
        "Image": record.image_name,
        "Volumes": image.get("Volumes") if isinstance(image.get("Volumes"), dict) else None,
        "WorkingDir": "" if cwd == "/" else cwd,
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels if labels is not None else
                  image.get("Labels") if isinstance(image.get("Labels"), dict) else {},
    }
    if isinstance(image.get("StopSignal"), str):
        result["StopSignal"] = image["StopSignal"]
    if settings is not None:
        result.update({"OpenStdin": settings.open_stdin, "StdinOnce": settings.stdin_once,
                       "AttachStdin": settings.stdin_once})
        if settings.stop_signal != "SIGTERM" or "StopSignal" in result:
            result["StopSignal"] = settings.stop_signal
        if settings.stop_timeout is not None:
            result["StopTimeout"] = settings.stop_timeout
        if settings.healthcheck is not None:
            result["Healthcheck"] = settings.healthcheck.to_docker()
    return result


def _image_config(store, image_id: str) -> dict[str, object]:
    """The image's `config` section, {} once the image is gone (or unreadable)."""
    from rootless.store import metadata as md

    row = md.image_get(store, image_id)
    try:
        section = json.loads(row.config).get("config") if row else None
    except (ValueError, AttributeError):
        section = None
    return section if isinstance(section, dict) else {}


def network_settings(mode: str, spec: dict | None = None,
                     user_networks: dict[str, dict] | None = None) -> dict[str, object]:
    """`user_networks`: name -> EndpointSettings of the user networks it is on (a
    container on one has its own namespace, not "none")."""
    from rootless.engine.container_defaults import endpoint_defaults, network_defaults

    # the built-in modes' own entry (docker's "host", "none", "bridge"); a user
    # network's entries are its endpoints alone (none after its last disconnect), and
    # container:NAME has none of its own
    builtin = mode in ("host", "slirp") or (mode == "none" and not user_networks)
    networks = {mode: endpoint_defaults()} if builtin else {}
    networks.update(user_networks or {})
    return {**network_defaults(), "Networks": networks, "Ports": _ports(spec or {})}


def _user_networks(store, record) -> dict[str, dict]:
    from rootless.engine.networks import container_networks

    return container_networks(store, record.id, record.name)


def _ports(spec: dict) -> dict:
    """docker's {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]} of -p/-P."""
    from rootless.net.ports import ports_from_spec

    return ports_from_spec(spec)


def sizes(store, image_id: str, cdir: os.PathLike, driver: str) -> dict[str, int]:
    """docker's -s: SizeRw, what the container wrote (as `system df` counts it), and
    SizeRootFs, everything its root filesystem holds."""
    from pathlib import Path

    from rootless.engine.disk_usage import container_size, directory_size
    from rootless.store import metadata as md

    cdir = Path(cdir)
    written = container_size(cdir)
    rootfs = cdir / "rootfs"
    if driver == "vfs" and _plain_dir(rootfs):
        return {"SizeRw": written, "SizeRootFs": directory_size(rootfs)}
    image = md.image_get(store, image_id)
    return {"SizeRw": written, "SizeRootFs": (image.size if image else 0) + written}


def _plain_dir(path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
