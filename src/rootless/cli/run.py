"""`rootless run`, parsed without typer.

`rootless run` is measured against podman and crun on every start, and importing typer
and click alone takes ~45 ms, more than podman's whole budget share. So run's flags are
declared once, here, as data: this small parser reads them the way docker's does
(combined short flags `-it`, `-e K=V`, `--env=K=V`, options stop at IMAGE), and the typer
app only lists `run` for `rootless --help` and hands its arguments over unparsed.
"""

from __future__ import annotations

from rootless.cli.flags import Flag, by_name, parse_options
from rootless.errors import UsageError


FLAGS = (
    Flag(("--add-host",), "extra_hosts", "list",
         "Add a line to /etc/hosts (NAME:IP; IP host-gateway: the host)", "NAME:IP"),
    Flag(("--cidfile",), "cidfile", "value", "Write the container's id to a new file",
         "FILE"),
    Flag(("-c", "--cpu-shares"), "cpu_shares", "value",
         "CPU shares (relative weight; 1024 is the default)", "N"),
    Flag(("--cpus",), "cpus", "value", "Number of CPUs (e.g. 1.5)", "N"),
    Flag(("--cpuset-cpus",), "cpuset_cpus", "value", "CPUs to run on (0-3, 0,1)", "LIST"),
    Flag(("-d", "--detach"), "detach", "bool",
         "Run in the background and print the container's id"),
    Flag(("--detach-keys",), "detach_keys", "value",
         "Keys that detach from the container (default ctrl-p,ctrl-q)", "KEYS"),
    Flag(("--dns",), "dns", "list", "Set a DNS server", "IP"),
    Flag(("--dns-option", "--dns-opt"), "dns_options", "list", "Set a DNS option",
         "OPT"),
    Flag(("--dns-search",), "dns_search", "list", "Set a DNS search domain", "DOMAIN"),
    Flag(("--entrypoint",), "entrypoint", "value", "Override the image's ENTRYPOINT", "CMD"),
    Flag(("-e", "--env"), "env", "list", "Set an environment variable", "K=V"),
    Flag(("--expose",), "expose", "list", "Expose a port or a range of ports",
         "PORT[/PROTO]"),
    Flag(("--env-file",), "env_files", "list", "Read environment variables from a file",
         "FILE"),
    Flag(("--group-add",), "group_add", "list",
         "Add a supplementary group (NAME or GID; needs subordinate ids); keep-groups "
         "keeps your own groups (a no-op in single-id mode, where they are kept anyway)",
         "GROUP"),
    Flag(("--health-cmd",), "health_cmd", "value", "Command to check health", "CMD"),
    Flag(("--health-interval",), "health_interval", "value",
         "Time between health checks (e.g. 30s)", "DURATION"),
    Flag(("--health-retries",), "health_retries", "value",
         "Consecutive failures that make it unhealthy", "N"),
    Flag(("--health-start-period",), "health_start_period", "value",
         "Start-up time before failures count", "DURATION"),
    Flag(("--health-timeout",), "health_timeout", "value",
         "Longest time one check may take", "DURATION"),
    Flag(("-h", "--hostname"), "hostname", "value", "Container hostname", "NAME"),
    Flag(("--init",), "init", "bool", "Run an init as pid 1 that reaps zombies"),
    Flag(("-i", "--interactive"), "interactive", "bool", "Keep stdin open"),
    Flag(("-l", "--label"), "labels", "list", "Set a label on the container", "K=V"),
    Flag(("-m", "--memory"), "memory", "value", "Memory limit (e.g. 512m, 1g)", "BYTES"),
    Flag(("--memory-swap",), "memory_swap", "value",
         "Memory plus swap limit (-1: unlimited swap)", "BYTES"),
    Flag(("--mount",), "mounts", "list",
         "Mount: type=bind|volume|tmpfs,source=,target=[,readonly][,...]", "MOUNT"),
    Flag(("--label-file",), "label_files", "list", "Read labels from a file (K=V lines)",
         "FILE"),
    Flag(("--name",), "name", "value", "Assign a name to the container", "NAME"),
    Flag(("--network", "--net"), "network", "value",
         "Network: slirp (default with pasta or slirp4netns; also bridge, default; "
         "slirp:allow_host_loopback=true), host, none", "MODE"),
    Flag(("--network-alias", "--net-alias"), "network_aliases", "list",
         "Add a network-scoped alias (user networks)", "ALIAS"),
    Flag(("--ip",), "ip", "value", "IPv4 address on the user network", "IPV4"),
    Flag(("--no-healthcheck",), "no_healthcheck", "bool",
         "Disable the image's HEALTHCHECK"),
    Flag(("--pids-limit",), "pids_limit", "value",
         "Limit on the number of processes (-1: unlimited)", "N"),
    Flag(("-p", "--publish"), "publish", "list",
         "Publish a port: [IP:][HOSTPORT:]CTRPORT[/tcp|/udp] (ranges too)", "PORT"),
    Flag(("-P", "--publish-all"), "publish_all", "bool",
         "Publish every exposed port on a random host port"),
    Flag(("--privileged",), "privileged", "bool",
         "Every capability, no seccomp filter, no masked /proc paths"),
    Flag(("--pull",), "pull", "value",
         "Pull the image before running: missing (default), always, never", "POLICY"),
    Flag(("-q", "--quiet"), "quiet", "bool", "Suppress the pull output"),
    Flag(("--read-only",), "read_only", "bool", "Mount the container's root read-only"),
    Flag(("--restart",), "restart", "value",
         "Restart policy: no, always, on-failure[:N], unless-stopped", "POLICY"),
    Flag(("--rm",), "remove", "bool", "Remove the container when it exits"),
    Flag(("--security-opt",), "security_opt", "list",
         "seccomp=unconfined|PROFILE.json, no-new-privileges, fakeroot-stat", "OPT"),
    Flag(("--tmpfs",), "tmpfs", "list", "Mount a tmpfs: /PATH[:size=64m,mode=1777,...]",
         "PATH"),
    Flag(("--sig-proxy",), "sig_proxy", "bool",
         "Forward the signals we receive to the container (default true)"),
    Flag(("--stop-signal",), "stop_signal", "value", "Signal that stops the container",
         "SIGNAL"),
    Flag(("--stop-timeout",), "stop_timeout", "value",
         "Seconds to wait for it to stop before killing it", "SECONDS"),
    Flag(("-t", "--tty"), "tty", "bool", "Allocate a pseudo-TTY"),
    Flag(("--ulimit",), "ulimits", "list", "Set a resource limit: NAME=SOFT[:HARD]", "LIMIT"),
    Flag(("-u", "--user"), "user", "value", "User: NAME|UID[:GROUP|GID]", "USER"),
    Flag(("-v", "--volume"), "volumes", "list",
         "Bind mount HOST:CTR[:ro], volume NAME:CTR[:ro], or anonymous volume CTR", "VOL"),
    Flag(("-w", "--workdir"), "workdir", "value", "Working directory in the container",
         "DIR"),
)
_BY_NAME = by_name(FLAGS)
# docker's resource flags, handed to RunOptions as given (engine/resources.py reads them)
RESOURCE_FLAGS = ("memory", "memory_swap", "cpus", "cpu_shares", "pids_limit",
                  "cpuset_cpus")

HELP_SUMMARY = "Run a command in a new container."
CREATE_SUMMARY = "Create a new container."


def usage(command: str = "run") -> str:
    summary = HELP_SUMMARY if command == "run" else CREATE_SUMMARY
    lines = [f"Usage: rootless {command} [OPTIONS] IMAGE [COMMAND] [ARG...]", "", summary,
             "", "Options:"]
    for flag in FLAGS:
        if command == "create" and flag.dest in ("detach", "sig_proxy", "detach_keys"):
            continue
        names = ", ".join(flag.names) + (f" {flag.metavar}" if flag.metavar else "")
        lines.append(f"  {names:<28} {flag.help}")
    lines.append(f"  {'--help':<28} Show this message and exit.")
    return "\n".join(lines)


def parse(argv: list[str], command: str = "run") -> dict:
    """Docker's grammar: flags, then IMAGE, then the command, untouched."""
    values, i = parse_options(argv, FLAGS, _BY_NAME, command)
    if values.get("help"):
        return values
    if i >= len(argv):
        raise UsageError(f'"rootless {command}" requires at least 1 argument: IMAGE '
                         f"(see: rootless {command} --help)")
    values["image"], values["command"] = argv[i], argv[i + 1:]
    return values


def security_options(options: list[str]) -> tuple[bool, str, bool]:
    """docker's --security-opt: `no-new-privileges[=true|false]` and `seccomp=unconfined|
    builtin|PROFILE.json`, and ours, `fakeroot-stat[=true|false]` (-> no_new_privileges,
    seccomp, fakeroot_stat); KEY:VALUE is the old spelling."""
    no_new_privileges, seccomp, fakeroot_stat = False, "builtin", False
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "no-new-privileges" and value in ("", "true", "false") and (
                bool(sep) == bool(value)):
            no_new_privileges = value != "false"
        elif key == "seccomp" and value:
            seccomp = value
        elif key == "fakeroot-stat" and value in ("", "true", "false") and (
                bool(sep) == bool(value)):
            fakeroot_stat = value != "false"
        else:
            raise UsageError(f"unsupported --security-opt: {opt} (supported: seccomp="
                             "unconfined|builtin|PROFILE.json, no-new-privileges[=true|false], "
                             "fakeroot-stat[=true|false])")
    return no_new_privileges, seccomp, fakeroot_stat


def run_main(argv: list[str], root: str | None, debug: bool, command: str = "run") -> int:
    import gc

    # no collection while the modules load and the container is made and started (~1 ms
    # of the command's, and as much of its monitor's, which inherits this): there is no
    # cyclic garbage to find yet; both turn it on again once the container runs
    gc.disable()
    values = parse(argv, command)
    if values.get("help"):
        print(usage(command))
        return 0
    if command == "create" and (values["detach"] or values["sig_proxy"] is not None or
                                values["detach_keys"] is not None):
        raise UsageError("unknown flag for create: -d/--sig-proxy/--detach-keys are "
                         "run's (see: rootless create --help)")
    fields = _run_options(values, debug)
    monitor = None
    if command != "create":  # forked before the engine's and SQLite's imports
        from rootless.engine.monitor_fork import fork_monitor
        from rootless.store.root import store_root

        monitor = fork_monitor(store_root(root), fields["detach"], fields["interactive"],
                               fields["tty"])
    try:
        from rootless.engine.run import RunOptions, container_create_from, container_run
        from rootless.store.store import Store

        opts = RunOptions(**fields)
        store = Store.open(root)
    except BaseException:
        if monitor is not None:
            monitor.cancel()
        raise
    pull = None if values["quiet"] else _pull_reported  # None: the engine pulls silently
    try:  # closed here, not by the interpreter's teardown: main.exit_now skips that
        if command == "create":
            print(container_create_from(store, opts, pull).id)
            return 0
        return container_run(store, opts, pull, monitor)
    finally:
        store.close(exiting=True)


def _run_options(values: dict, debug: bool) -> dict:
    """RunOptions' fields from the parsed flags, every value checked (UsageError):
    before the monitor is forked, so a bad flag leaves no process behind."""
    no_new_privileges, seccomp, fakeroot_stat = security_options(values["security_opt"])
    return dict(
        image=values["image"], command=values["command"], entrypoint=values["entrypoint"],
        env=values["env"], env_files=values["env_files"], workdir=values["workdir"],
        user=values["user"], group_add=tuple(values["group_add"]),
        volumes=values["volumes"], mounts=tuple(values["mounts"]),
        tmpfs=tuple(values["tmpfs"]), read_only=bool(values["read_only"]),
        hostname=values["hostname"],
        network=values["network"] or None, name=values["name"],
        publish=tuple(values["publish"]), publish_all=bool(values["publish_all"]),
        expose=tuple(values["expose"]), dns=tuple(values["dns"]),
        dns_search=tuple(values["dns_search"]), dns_options=tuple(values["dns_options"]),
        extra_hosts=tuple(values["extra_hosts"]),
        network_aliases=tuple(values["network_aliases"]), ip=values["ip"],
        remove=bool(values["remove"]), interactive=bool(values["interactive"]),
        tty=bool(values["tty"]), init=bool(values["init"]),
        no_new_privileges=no_new_privileges, seccomp=seccomp, fakeroot_stat=fakeroot_stat,
        privileged=bool(values["privileged"]), ulimits=values["ulimits"],
        labels=tuple(values["labels"]), label_files=tuple(values["label_files"]),
        cidfile=values["cidfile"],
        pull="missing" if values["pull"] is None else values["pull"], debug=debug,
        detach=bool(values["detach"]), restart=values["restart"] or "no",
        stop_signal=values["stop_signal"],
        stop_timeout=_stop_timeout(values["stop_timeout"]),
        health=_health(values), no_healthcheck=bool(values["no_healthcheck"]),
        sig_proxy=values["sig_proxy"] is not False, detach_keys=values["detach_keys"],
        **{k: values[k] for k in RESOURCE_FLAGS})


def _stop_timeout(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f'invalid argument "{text}" for "--stop-timeout" flag: '
                         "strconv.ParseInt: parsing: invalid syntax") from None


def _health(values: dict) -> tuple:
    keys = ("health_cmd", "health_interval", "health_timeout", "health_start_period",
            "health_retries")
    found = tuple(values[k] for k in keys)
    return found if any(v is not None for v in found) else ()


def _pull_reported(store, name: str, missing: bool) -> None:
    """As docker's run pulls: every line on stderr, so the container's stdout holds
    only what the container writes."""
    import gc
    import sys

    from rootless.cli.progress import LayerProgress, pull_progress, pull_status
    from rootless.engine.registry import image_pull
    from rootless.image.reference import parse_reference

    gc.enable()  # off for run_main's start-up; a pull allocates for as long as it lasts
    if missing:
        familiar = parse_reference(name).familiar()
        print(f"Unable to find image '{familiar}' locally", file=sys.stderr, flush=True)
    for result in image_pull(store, name, progress=pull_progress(LayerProgress(sys.stderr))):
        print(pull_status(result), file=sys.stderr, flush=True)
