"""`rootless run`: image + options -> container record, OCI spec, foreground run."""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.engine.seccomp import BUILTIN, UNCONFINED, profile_load, profile_to_oci
from rootless.engine.spec import (DEFAULT_PATH, ProcessConfig, RootfsConfig, SecurityConfig,
                                  SpecOptions)
from rootless.errors import RootlessError, UsageError
from rootless.records import record
from rootless.runtime.caps import DOCKER_DEFAULT

PULL_POLICIES = ("missing", "always", "never")


@record
class RunOptions:
    image: str
    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    group_add: tuple[str, ...] = ()  # names or gids; KEEP_GROUPS keeps the user's own
    volumes: tuple[str, ...] = ()  # -v HOST:CTR[:ro], NAME:CTR[:ro], CTR
    mounts: tuple[str, ...] = ()  # --mount type=bind|volume|tmpfs,... (docker's CSV)
    tmpfs: tuple[str, ...] = ()  # --tmpfs /path[:opts]
    read_only: bool = False  # --read-only: the root read-only; mounts stay as they are
    hostname: str | None = None
    network: str | None = None  # None: slirp when a helper is installed, else host
    publish: tuple[str, ...] = ()  # -p [IP:][HOSTPORT:]CTRPORT[/PROTO]
    publish_all: bool = False  # -P: every EXPOSEd port, on a random host port
    expose: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # --add-host NAME:IP
    network_aliases: tuple[str, ...] = ()
    ip: str | None = None  # --ip: the container's address on its user network
    name: str | None = None
    remove: bool = False
    interactive: bool = False
    tty: bool = False
    init: bool = False
    no_new_privileges: bool = False
    seccomp: str = "builtin"  # builtin | unconfined | the path of a profile (docker's JSON)
    fakeroot_stat: bool = False  # --security-opt fakeroot-stat: the stat family answered
    privileged: bool = False  # docker's --privileged: every capability, no filter, no masks
    ulimits: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # --label K=V (after --label-file's, so they win)
    label_files: tuple[str, ...] = ()
    cidfile: str | None = None
    pull: str = "missing"  # docker's --pull: missing | always | never
    debug: bool = False
    detach: bool = False  # -d: print the id, leave it to its monitor
    restart: str = "no"  # --restart no|always|on-failure[:N]|unless-stopped
    stop_signal: str | None = None  # --stop-signal (else the image's STOPSIGNAL)
    stop_timeout: int | None = None
    health: tuple = ()  # (cmd, interval, timeout, start_period, retries), or ()
    no_healthcheck: bool = False
    sig_proxy: bool = True
    detach_keys: str | None = None
    # docker's resource flags as given (None: absent); engine/resources.py reads them
    memory: str | None = None  # -m, --memory
    memory_swap: str | None = None
    cpus: str | None = None
    cpu_shares: str | None = None  # -c, --cpu-shares
    pids_limit: str | None = None
    cpuset_cpus: str | None = None


TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports the collections package
    from collections.abc import Callable

    # pull(store, name, missing): fetch `name` into the store and report it; missing is
    # True when the image was not local (docker then says "Unable to find image ...")
    Puller = Callable[[object, str, bool], None]


def container_run(store, opts: RunOptions, pull: Puller | None = None,
                  monitor=None, interruptible: bool = False) -> int:
    """docker run: create, then start; in the foreground attached until the container
    exits (its exit code), with -d printing its id. `monitor` is
    monitor_fork.fork_monitor's, made before `store` was opened (else it is forked
    here, the store disconnected first)."""
    if monitor is None:
        from rootless.engine.monitor_fork import fork_monitor

        store.disconnect()
        monitor = fork_monitor(store.dir, opts.detach, opts.interactive, opts.tty)
    try:
        created = container_create_from(store, opts, pull)
    except BaseException:
        monitor.cancel()
        raise
    launched = _launch(store, monitor, created.id, opts)
    if opts.detach:
        print(created.id, flush=True)
        return 0
    import gc

    from rootless.engine.attach_client import DEFAULT_DETACH_KEYS, DETACHED, attach_session

    if not gc.isenabled():  # off for the start (cli/run.py); a session may last hours
        gc.freeze()  # what the start made stays: a first collection would walk it all
        gc.enable()
    code = attach_session(launched.client, opts.interactive, opts.tty, opts.sig_proxy,
                          opts.detach_keys if opts.detach_keys is not None
                          else DEFAULT_DETACH_KEYS, launcher=True,
                          interruptible=interruptible)
    return 0 if code is DETACHED else code


def _launch(store, monitor, container_id: str, opts: RunOptions):
    """Start the container we created (its op lock is still ours); a failed start of a
    --rm container leaves no record, whoever of us and its monitor removes it."""
    from rootless.engine.containers import container_release

    try:
        return monitor.start(container_id, None if opts.detach else _attach_imports)
    except RootlessError:
        container_release(container_id)
        if opts.remove:
            from rootless.engine.lifecycle import remove_after_exit

            remove_after_exit(store, container_id)
        raise
    finally:
        container_release(container_id)


def _attach_imports() -> None:
    import rootless.engine.attach_client  # noqa: F401  the session's, while the monitor works


def container_create_from(store, opts: RunOptions, pull: Puller | None = None):
    """docker create: the record, its directory, config.json and settings.json."""
    from rootless.engine.containers import container_create, container_remove, labels_merge

    if opts.network is None:
        from rootless.engine.network_options import network_default

        opts = network_default(opts)
    validate(opts)
    target = None  # a user network, or the container whose network is joined
    if opts.network not in ("host", "none"):
        from rootless.engine.network_options import network_resolve

        target = network_resolve(store, opts)
    pull = pull or _pull_silently
    # read before any container exists, as docker's CLI reads it: a bad file leaves nothing
    seccomp_profile = profile_load(opts.seccomp)
    labels, cidfile = {}, _NO_CIDFILE
    if opts.labels or opts.label_files or opts.cidfile:  # else run imports nothing more
        from rootless.engine.container_labels import CidFile, labels_read

        labels, cidfile = labels_read(opts.label_files, opts.labels), CidFile(opts.cidfile)
    if opts.pull == "always":
        pull(store, opts.image, False)
    with cidfile:
        pulled, image = opts.pull == "always", None
        while image is None:
            # shared: `rmi` (exclusive) cannot delete the image between lookup and the
            # row that marks it in use
            with store.lock(shared=True):
                image = _image_local(store, opts, pulled)
                if image is not None:
                    image_config = image.config.get("config") or {}
                    args = command_line(image_config, opts)
                    labels = labels_merge(image_config, labels)
                    settings = container_settings(image_config, opts)
                    record = container_create(store, image.id, opts.image,
                                              shell_join(args), opts.name, opts.remove,
                                              labels)
            if image is None:  # outside the lock: the pull takes the store's own
                pull(store, opts.image, True)
                pulled = True
        if opts.cidfile:
            cidfile.write(record.id)
    try:
        spec = make_spec(store, record, image, image_config, args, opts, seccomp_profile,
                         labels, target)
        if opts.debug:  # the plan the monitor will run, on our stderr
            from rootless.runtime.run import plan_spec

            plan_spec(spec, debug=True)
        from rootless.engine.container_settings import settings_write
        from rootless.engine.containers import container_path

        settings_write(container_path(store, record.id), settings)
    except BaseException:
        from rootless.engine.containers import container_release

        container_remove(store, record.id)
        container_release(record.id)
        raise
    if spec["linux"].get("resources"):  # docker's CLI prints the create's warnings
        from rootless.engine.cgroups import cgroup_check

        warning = cgroup_check(spec["linux"]["resources"])
        if warning:
            import sys

            print(warning, file=sys.stderr, flush=True)
    return record


class _NoCidFile:
    """No --cidfile: a context that does nothing (contextlib.nullcontext, whose module
    imports collections and functools: ~3 ms of `run`)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_NO_CIDFILE = _NoCidFile()


def container_settings(image_config: dict, opts: RunOptions):
    """What acts after creation: restart policy, stop signal, healthcheck, stdio."""
    from rootless.engine.container_settings import Settings, parse_restart

    restart, retries = parse_restart(opts.restart)
    stop_signal = opts.stop_signal or image_config.get("StopSignal") or "SIGTERM"
    return Settings(restart=restart, max_retries=retries,
                    stop_signal=str(stop_signal), stop_timeout=opts.stop_timeout,
                    healthcheck=_healthcheck(image_config, opts), tty=opts.tty,
                    open_stdin=opts.interactive,
                    stdin_once=opts.interactive and not opts.detach, debug=opts.debug)


def _healthcheck(image_config: dict, opts: RunOptions):
    """The image's HEALTHCHECK, overridden field by field by --health-*, as docker."""
    if opts.no_healthcheck or not (opts.health or image_config.get("Healthcheck")):
        return None
    from rootless.engine.health import healthcheck_merge

    return healthcheck_merge(image_config.get("Healthcheck"), opts.health)


def _image_local(store, opts: RunOptions, pulled: bool):
    """The image if the store has it; None if --pull missing should fetch it first.
    The pull machinery is imported only then: a local image costs `run` nothing."""
    from rootless.engine.images import image_resolve
    from rootless.errors import NotFoundError

    try:
        return image_resolve(store, opts.image)
    except NotFoundError:
        if opts.pull != "missing" or pulled:
            raise
        return None


def _pull_silently(store, name: str, missing: bool) -> None:
    import gc

    from rootless.engine.registry import image_pull

    gc.enable()  # off for cli/run.py's start-up; a pull allocates for as long as it lasts

    image_pull(store, name)


def validate(opts: RunOptions) -> None:
    if opts.restart != "no" or opts.stop_signal or opts.health or opts.detach_keys:
        _validate_lifecycle(opts)
    if opts.name is not None:
        from rootless.engine.containers import name_check

        name_check(opts.name)
    if opts.pull not in PULL_POLICIES:
        raise UsageError(f"invalid pull option: '{opts.pull}': must be one of "
                         '"always", "missing" or "never"')
    # slirp (net/modes.py) or a network option; host and none import nothing more
    if opts.network not in ("host", "none") or opts.publish or opts.publish_all or \
            opts.expose or opts.dns or opts.extra_hosts or opts.network_aliases or \
            opts.ip is not None:
        from rootless.engine.network_options import network_validate

        network_validate(opts)
    if opts.tty and opts.interactive and not opts.detach and not os.isatty(0):
        raise UsageError("the input device is not a TTY (drop -t, or run from a terminal)")
    if opts.workdir is not None and not opts.workdir.startswith("/"):
        raise UsageError(f"the working directory '{opts.workdir}' is invalid, it needs to "
                         "be an absolute path")
    if opts.volumes or opts.mounts or opts.tmpfs:  # before any container exists, as
        from rootless.engine.mounts import parse_all  # docker checks them

        parse_all(opts.volumes, opts.mounts, opts.tmpfs)
    for ulimit in opts.ulimits:
        parse_ulimit(ulimit)
    run_resources(opts)
    check_user_options(opts)


def run_resources(opts: RunOptions) -> dict | None:
    """The OCI linux.resources of the resource flags; None without any (UsageError
    for a value docker refuses)."""
    values = (opts.memory, opts.memory_swap, opts.cpus, opts.cpu_shares, opts.pids_limit,
              opts.cpuset_cpus)
    if all(v is None for v in values):
        return None
    from rootless.engine.resources import resources_parse, resources_to_oci

    return resources_to_oci(resources_parse(*values)) or None


def _validate_lifecycle(opts: RunOptions) -> None:
    from rootless.engine.container_settings import parse_restart

    restart, _ = parse_restart(opts.restart)
    if restart != "no" and opts.remove:
        raise UsageError("conflicting options: cannot specify both --restart and --rm")
    if opts.stop_signal:
        from rootless.engine.signals import parse_signal

        parse_signal(opts.stop_signal)
    if opts.health:
        from rootless.engine.health import healthcheck_merge

        healthcheck_merge(None, opts.health)
    if opts.detach_keys:
        from rootless.engine.attach_client import parse_detach_keys

        parse_detach_keys(opts.detach_keys)


def shell_join(args: list[str]) -> str:
    """shlex.join(args), as the record keeps the command (`ps` shows it, `inspect`
    splits it again), without shlex's imports (re, collections: ~4 ms of `run`)."""
    return " ".join(_shell_quote(arg) for arg in args)


def _shell_quote(arg: str) -> str:
    """shlex.quote: as it is when every character is safe, else in single quotes."""
    if arg and all(c in _SHELL_SAFE or (c.isalnum() and c.isascii()) for c in arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"


_SHELL_SAFE = frozenset("_@%+=:,./-")  # and ASCII letters and digits: shlex's \w, re.ASCII


def command_line(image_config: dict, opts: RunOptions) -> list[str]:
    """Docker's rule: ENTRYPOINT + CMD, where --entrypoint drops the image's CMD."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = list(opts.command)
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = list(opts.command) or list(image_config.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise UsageError(f"no command specified for {opts.image} (give one after the image)")
    return args


def make_spec(store, record, image, image_config: dict, args: list[str],
              opts: RunOptions, seccomp_profile: dict | None = None,
              labels: dict[str, str] | None = None, network_target=None) -> dict:
    from rootless.engine.containers import container_path
    from rootless.engine.spec import build_spec
    from rootless.fs.rootfs import choose_strategy, prepare
    from rootless.kernel.idmap import maps_to_spec
    from rootless.net.files import write_network_files

    cdir = container_path(store, record.id)
    user, maps = container_user(image, image_config, opts)
    hostname = opts.hostname or record.id[:12]
    strategy = choose_strategy(store.dir, image.layer_dirs, user.uid,
                               single_id=not maps.use_helpers, strict=True)
    if strategy.name == "copy" and maps.use_helpers:  # layers of subordinate ids: read
        from rootless.kernel.storage_ns import call_as_root  # and copied with their

        dirs = call_as_root(prepare, cdir, image.layer_dirs, strategy)  # owners there
    else:
        dirs = prepare(cdir, image.layer_dirs, strategy)
    overlay = strategy.name in ("overlay", "fuse")
    lower = list(image.layer_dirs)
    if overlay and not lower:  # overlayfs needs a lower layer; an image may have none
        lower = [os.path.join(cdir, "empty")]
        try:
            os.mkdir(lower[0])
        except FileExistsError:
            pass
    files, net_annotations = opts.network, {}
    if opts.network not in ("host", "none") or opts.publish or opts.publish_all or \
            opts.dns or opts.dns_search or opts.dns_options or opts.extra_hosts:
        from rootless.engine.network_options import network_spec

        files, net_annotations = network_spec(opts, image_config, cdir, store, record.id,
                                              network_target)
        if files.network == "container":  # docker: the joined container's hostname
            from rootless.net.files import joined_texts

            hostname = joined_texts(cdir, files.joined)["hostname"].strip() or hostname
    binds = [(path, dest, False)
             for dest, path in write_network_files(cdir, hostname, files).items()]
    mounts = []
    if opts.volumes or opts.mounts or opts.tmpfs:
        from rootless.engine.mounts import parse_all, spec_mounts

        mounts = spec_mounts(store, record.id, parse_all(opts.volumes, opts.mounts,
                                                         opts.tmpfs), image.layer_dirs)
    capabilities = privileged_capabilities() if opts.privileged else DOCKER_DEFAULT
    process = ProcessConfig(
        args=args, env=environment(image_config, opts, user.home, hostname),
        cwd=opts.workdir or image_config.get("WorkingDir") or "/",
        uid=user.uid, gid=user.gid, additional_gids=user.additional_gids,
        terminal=opts.tty, no_new_privileges=opts.no_new_privileges,
        capabilities=capabilities,
        rlimits=tuple(parse_ulimit(u) for u in opts.ulimits))
    spec = build_spec(SpecOptions(
        process=process,
        rootfs=RootfsConfig(path=dirs.merged,
                            lower=lower if overlay else [],
                            upper=dirs.upper, work=dirs.work,
                            readonly=opts.read_only, driver=strategy.name,
                            single_id=not maps.use_helpers),
        hostname=hostname, network=files if isinstance(files, str) else files.network,
        binds=binds, mounts=tuple(mounts),
        init=opts.init,
        id_maps=maps_to_spec(maps), keep_groups=KEEP_GROUPS in opts.group_add,
        security=security_config(opts, seccomp_profile, capabilities),
        resources=run_resources(opts)))
    from rootless.engine.containers import labels_annotations

    spec["annotations"] = {**labels_annotations(labels or {}), **spec["annotations"],
                           **net_annotations}
    write_json(os.path.join(cdir, "config.json"), spec)
    return spec


KEEP_GROUPS = "keep-groups"  # podman's --group-add value: the user's own groups stay


def check_user_options(opts: RunOptions) -> None:
    """-u and --group-add, before any container exists (the image's User is checked
    when the image is read)."""
    from rootless.engine.users import name_or_id, parse_user

    if opts.user:
        parse_user(opts.user)
    if KEEP_GROUPS in opts.group_add and any(g != KEEP_GROUPS for g in opts.group_add):
        raise UsageError(f"--group-add {KEEP_GROUPS} cannot be combined with other groups "
                         "(as in podman)")
    for group in opts.group_add:
        if group != KEEP_GROUPS:
            name_or_id(group, "group")


def container_user(image, image_config: dict, opts: RunOptions):
    """(the container's user from -u or the image's User, the id maps that hold it)."""
    from rootless.engine.users import resolve_user
    from rootless.kernel.idmap import detect_maps

    added = tuple(g for g in opts.group_add if g != KEEP_GROUPS)
    user = resolve_user(image.layer_dirs, opts.user or image_config.get("User") or "0",
                        added)
    maps = detect_maps(user.uid, user.gid)
    if not maps.use_helpers:  # setgroups(2) is denied: no supplementary group can be set
        if added:
            raise UsageError(f"--group-add {added[0]}: supplementary groups need a "
                             "subordinate gid range (/etc/subgid); in single-id mode the "
                             "container has one gid")
        return user._replace(additional_gids=()), maps
    if KEEP_GROUPS in opts.group_add:  # the user's own groups, as the host gave them
        user = user._replace(additional_gids=())
    maps.check_mapped(user.uid, user.gid, user.additional_gids)
    return user, maps


def privileged_capabilities() -> tuple[str, ...]:
    """--privileged: every capability this kernel has (held in the user namespace only)."""
    from rootless.runtime.caps import CAPABILITIES, last_cap

    return CAPABILITIES[:last_cap() + 1]


def security_config(opts: RunOptions, profile: dict | None,
                    capabilities: tuple[str, ...]) -> SecurityConfig:
    """The seccomp section for these capabilities; docker's --privileged drops it."""
    name = opts.seccomp if opts.seccomp in (BUILTIN, UNCONFINED) else os.path.abspath(
        opts.seccomp)
    options = ((f"seccomp={name}",) if name != BUILTIN else ()) + (
        ("no-new-privileges",) if opts.no_new_privileges else ()) + (  # docker's spelling
        ("fakeroot-stat",) if opts.fakeroot_stat else ())
    if opts.privileged:
        return SecurityConfig(None, UNCONFINED, True, options)
    if profile is None:
        profile = profile_load(opts.seccomp)
    return SecurityConfig(profile_to_oci(profile, capabilities), name, False, options)


def environment(image_config: dict, opts: RunOptions, home: str, hostname: str) -> list[str]:
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if opts.tty:
        env["TERM"] = "xterm"
    for item in image_config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    for path in opts.env_files:
        for item in read_env_file(path):
            _set_env(env, item)
    for item in opts.env:
        _set_env(env, item)
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]


def _set_env(env: dict[str, str], item: str) -> None:
    """`K=V` sets; a bare `K` copies the caller's value, or is dropped, as Docker does."""
    key, sep, value = item.partition("=")
    if not key:
        raise UsageError(f"invalid environment variable: {item}")
    if sep:
        env[key] = value
    elif key in os.environ:
        env[key] = os.environ[key]


ENV_FILE_LIMIT = 1 << 20


def read_env_file(path: str) -> list[str]:
    from rootless.kernel.paths import read_regular_path

    try:  # bounded, regular files only: a FIFO named here must not hang `run`
        text = read_regular_path(path, ENV_FILE_LIMIT).decode(errors="replace")
    except OSError as e:
        raise UsageError(f"cannot read env file {path}: {e.strerror.lower()}") from e
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


# docker's --ulimit names (moby's pkg/ulimit) and the rlimits they set
ULIMITS = {"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
           "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
           "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
           "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
           "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
           "stack": "RLIMIT_STACK", "as": "RLIMIT_AS"}


def parse_ulimit(spec: str) -> dict:
    """`nofile=1024:4096` (soft:hard; one number sets both; -1 is unlimited)."""
    name, _, limits = spec.partition("=")
    if name not in ULIMITS:
        raise UsageError(f"invalid ulimit type: {name} (one of: {', '.join(sorted(ULIMITS))})")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise UsageError(f"invalid ulimit {spec} (want NAME=SOFT[:HARD])") from None
    unlimited = 2**64 - 1
    soft, hard = (unlimited if v == -1 else v for v in (soft, hard))
    if soft > hard:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: {spec}")
    return {"type": ULIMITS[name], "soft": soft, "hard": hard}


def write_json(path: str, data: dict) -> None:
    """Compact, as runc writes config.json: `indent` would make json fall back from its
    C encoder to the Python one, half of `create`'s time for a spec with the seccomp
    profile in it."""
    tmp = os.path.splitext(path)[0] + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsonfast.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)
