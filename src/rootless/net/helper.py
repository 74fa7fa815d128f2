"""The user-mode network helper of a `slirp` container: pasta, else slirp4netns.

The container's monitor starts it once the init's network namespace exists and before
the init may exec the container's command (runtime/process.start's `on_init`), so the
command never runs without its network. The helper is the monitor's child:

- it dies with the monitor: PR_SET_PDEATHSIG is set in the forked child before exec
  (prctl(2); neither helper changes its credentials, which would clear it), and
  slirp4netns also watches --exit-fd, a pipe whose other end only the monitor holds;
- the monitor stops it (SIGTERM, then reaps it) when the container's init exits, so
  `stop`, `rm` and a restart leave none behind; a restart starts a new one.

Both are pointed at the namespaces by descriptors C handed to the monitor (passed as
/proc/self/fd/N paths: --userns/--netns, --userns-path and a path target): the init's
/proc/PID/ns files are root's until it execs, as it is not dumpable.

Readiness: pasta writes its pid to --pid once its set-up is done (pasta(1) -P), here a
pipe through /proc/self/fd; slirp4netns writes "1" to --ready-fd. EOF before that is a
failure: the helper's own words are in the container's network.log.

What each helper is told, and why:
- pasta: `-t/-u none` unless ports are published (its default, `auto`, would publish
  every port the container listens on); `-T/-U none` (the default `auto` forwards the
  namespace's loopback ports to the host's: the host's loopback would leak in);
  `--no-map-gw` unless host loopback is allowed (else the gateway address is the
  host's loopback); `--dns-forward` a fixed address the container's resolv.conf names,
  which pasta maps to the host's first resolver (a loopback one included).
- slirp4netns: `--disable-host-loopback` unless allowed; its built-in DNS (10.0.2.3)
  forwards to the host's resolvers; `--enable-seccomp` as podman runs it, but not
  `--enable-sandbox`, which setegid(0)s in the container's user namespace and fails
  ("parent failed") where that namespace maps one id (single-id mode). Its published
  ports are the monitor's own forwarder's (net/forwarder.py), not slirp's port handler.
"""

from __future__ import annotations

import os
import select
import signal

from rootless.errors import RootlessError
from rootless.net.modes import PASTA_DNS, NetworkMode, helper_path, mode_from_spec

READY_TIMEOUT = 15.0  # seconds; a helper that has not configured the namespace by then
LOG_NAME = "network.log"


class NetworkHelperError(RootlessError):
    """The helper failed to start, or to bind a published port."""


class Helper:
    """A started helper (and, for slirp4netns with published ports, the forwarder of
    net/forwarder.py): our children, and what stops them."""

    def __init__(self, pid: int, keep: list[int]) -> None:
        self.pids = [pid]
        self.keep = keep  # our ends of its pipes (slirp4netns's exit-fd)

    def owns(self, pid: int) -> bool:
        return pid in self.pids

    def reaped(self, pid: int) -> None:
        """The monitor's waitpid(-1) collected it (it died by itself)."""
        self.pids.remove(pid)

    def stop(self) -> None:
        """SIGTERM and reap them; the namespace is gone with the container's init."""
        for fd in self.keep:
            os.close(fd)
        self.keep = []
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.pids = []


def helper_for_spec(spec: dict, ns_fds: list[int], log_dirfd: int) -> Helper:
    """The helper of the network `spec` records, with its published ports (checked
    free first: a taken port is a clear error, and no helper half-binds the rest)."""
    from rootless.net.ports import check_free, forwards, ports_from_spec

    mode = mode_from_spec(spec)
    if mode is None or not mode.helper:
        raise NetworkHelperError("the container's network annotation is unreadable")
    if len(ns_fds) != 2:
        raise NetworkHelperError("the container's namespaces did not reach its monitor")
    table = ports_from_spec(spec)
    check_free(table)
    try:
        helper = helper_start(mode, ns_fds, log_dirfd, forwards(table))
    except OSError as e:  # fork, pipes, the log file
        raise NetworkHelperError(f"cannot start {mode.helper}: {e.strerror or e}") from e
    if mode.helper == "slirp4netns" and table:
        from rootless.net.forwarder import forwarder_start

        try:
            helper.pids.append(forwarder_start(forwards(table), ns_fds))
        except BaseException as e:
            helper.stop()
            if isinstance(e, OSError):
                raise NetworkHelperError(f"cannot start the port forwarder: "
                                         f"{e.strerror or e}") from e
            raise
    return helper


def pasta_args(mode: NetworkMode, forwards: list[tuple[str, str, int, int]],
               pid_path: str, userns: str, netns: str) -> list[str]:
    args = ["pasta", "-f", "-q", "--config-net", "--ns-ifname", helper_ifname(mode),
            "--userns", userns, "--netns", netns,
            "-T", "none", "-U", "none", "--dns-forward", PASTA_DNS, "-P", pid_path]
    if not mode.allow_host_loopback:
        args.append("--no-map-gw")
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        specs = [f"{ip + '/' if ip else ''}{host}:{ctr}"
                 for p, ip, host, ctr in forwards if p == proto]
        for spec in specs or ["none"]:
            args += [flag, spec]
    return args


def slirp4netns_args(mode: NetworkMode, ready_fd: int, exit_fd: int, userns: str,
                     netns: str) -> list[str]:
    args = ["slirp4netns", "--configure", "--mtu=65520", f"--ready-fd={ready_fd}",
            f"--exit-fd={exit_fd}", "--enable-seccomp",
            "--netns-type=path", f"--userns-path={userns}"]
    if not mode.allow_host_loopback:
        args.append("--disable-host-loopback")
    return args + [netns, helper_ifname(mode)]


def helper_ifname(mode: NetworkMode) -> str:
    """The helper's interface in the container: eth0 in slirp mode; on user networks,
    whose interfaces are eth0, eth1..., tap0 (slirp4netns's own default name)."""
    return "tap0" if mode.mode == "user" else "eth0"


def helper_start(mode: NetworkMode, ns_fds: list[int], log_dirfd: int,
                 forwards: list[tuple[str, str, int, int]]) -> Helper:
    """Start the helper for the container's namespaces (descriptors of its user and
    network namespaces, runtime/process.start's on_init); return once the network
    namespace is configured (NetworkHelperError if it fails)."""
    path = helper_path(mode.helper)
    if path is None:
        raise NetworkHelperError(f"network helper {mode.helper} is not installed")
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    keep: list[int] = []
    # the helper's descriptors 3, 4, ...: its readiness pipe, the namespaces, ...
    if mode.helper == "pasta":
        args = pasta_args(mode, forwards, "/proc/self/fd/3", "/proc/self/fd/4",
                          "/proc/self/fd/5")
        fds = [ready_w, *ns_fds]
    else:
        exit_r, exit_w = os.pipe2(os.O_CLOEXEC)
        keep.append(exit_w)
        args = slirp4netns_args(mode, 3, 6, "/proc/self/fd/4", "/proc/self/fd/5")
        fds = [ready_w, *ns_fds, exit_r]
    log = os.open(LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW |
                  os.O_CLOEXEC, 0o600, dir_fd=log_dirfd)
    try:
        pid = _spawn(path, args, fds, log)
    finally:
        os.close(log)
        for fd in fds[3:]:
            os.close(fd)
        os.close(ready_w)
    helper = Helper(pid, keep)
    try:
        _wait_ready(ready_r, mode.helper, log_dirfd)
    except BaseException:
        helper.stop()
        raise
    finally:
        os.close(ready_r)
    return helper


def _spawn(path: str, args: list[str], fds: list[int], log: int) -> int:
    """fork + exec with `fds` as 3, 4, ...; dies with us (PR_SET_PDEATHSIG)."""
    from rootless.kernel import constants as k
    from rootless.kernel.syscalls import RealSyscalls

    sys = RealSyscalls()
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        sys.prctl(k.PR_SET_PDEATHSIG, signal.SIGKILL)
        # pasta 2023-03 fails ("Couldn't install signal handlers") when it inherits an
        # ignored SIGPIPE, which Python sets for itself
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        moved = [os.dup(fd) for fd in fds]  # above 3 + len(fds), then into place
        for i, fd in enumerate(moved):
            os.dup2(fd, 3 + i)  # inheritable
        os.closerange(3 + len(fds), 1 << 16)
        if os.getppid() == 1:  # the monitor died before the prctl
            os._exit(1)
        os.execv(path, args)
    except BaseException:
        pass
    os._exit(127)


def _wait_ready(ready_r: int, name: str, log_dirfd: int) -> None:
    poller = select.poll()
    poller.register(ready_r, select.POLLIN)
    if not poller.poll(int(READY_TIMEOUT * 1000)):
        raise NetworkHelperError(f"{name} did not configure the container's network in "
                                 f"{READY_TIMEOUT:.0f}s")
    if not os.read(ready_r, 64):
        raise NetworkHelperError(f"{name} failed: {_log_tail(log_dirfd)}")


def _log_tail(log_dirfd: int) -> str:
    """The helper's last meaningful line (its own log lines start with a timestamp)."""
    try:
        fd = os.open(LOG_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=log_dirfd)
        try:
            text = os.read(fd, 65536).decode(errors="replace")
        finally:
            os.close(fd)
    except OSError:
        text = ""
    lines = [line.split(": ", 1)[-1].strip() for line in text.splitlines()
             if line.strip() and "syslog" not in line]
    return lines[-1].lower() if lines else "it exited before its set-up was done"
