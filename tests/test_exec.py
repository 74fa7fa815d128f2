"""`rootless exec`: a command joins a running container, with what `run` gave its
command (namespaces, environment, ids, capabilities, seccomp filter, rlimits), and
docker's exit codes; it never enters anything but the container it names.

A running container here is `rootless run -d --name NAME ... sleep TOKEN`; its init is
found on the host as the process running `sleep TOKEN` (a token per container),
independently of exec itself."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from itertools import count
from pathlib import Path

import pytest
from helpers import (DOCKER_DEFAULT_CAPS, NOBODY_ID, USER_GID, USER_UID, USERS_GID,
                     PtySession, assert_error, cmdline_of, ok, proc_status_field, read_until,
                     wait_for)

pytestmark = pytest.mark.container

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
_tokens = count(int(time.time()) % 100000 * 100 + os.getpid() % 100)


def host_process(argv: list[str]) -> int | None:
    """The pid of a process of ours whose command line is exactly `argv`."""
    for name in os.listdir("/proc"):
        if name.isdigit() and cmdline_of(int(name))[:-1] == argv:
            return int(name)
    return None


class Container:
    def __init__(self, name: str, init: int) -> None:
        self.name = name
        self.init = init  # host pid of its init (pid 1 inside)


@pytest.fixture
def start(rootless, busybox):
    """start(*run_options, name="ctr", script="") -> Container: a running container
    (`run -d`) whose init is `sleep TOKEN`, after `script` (a shell script) has run."""

    def run(*options: str, name: str = "ctr", script: str = "") -> Container:
        token = str(next(_tokens))
        command = ["sh", "-c", f"{script}\nexec sleep {token}"] if script else \
            ["sleep", token]
        ok(rootless("run", "-d", "--name", name, *options, busybox, *command))
        return Container(name, wait_for(lambda: host_process(["sleep", token]),
                                        timeout=30))

    return run


def ns_of(pid: int | str) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in NAMESPACES}


# ---- it joins the container ----

def test_exec_runs_in_the_namespaces_of_the_containers_init(rootless, start):
    c = start()
    out = ok(rootless("exec", c.name, "sh", "-c",
                      "for n in " + " ".join(NAMESPACES) + "; do readlink /proc/self/ns/$n; "
                      "done"))
    assert out.split() == [ns_of(c.init)[ns] for ns in NAMESPACES]
    assert ns_of(c.init)["user"] != ns_of("self")["user"]  # it is a container's, not ours


def test_exec_joins_the_containers_own_network_namespace(rootless, start):
    c = start("--network", "none")
    out = ok(rootless("exec", c.name, "sh", "-c", "readlink /proc/self/ns/net; "
                      "cat /proc/net/dev"))
    link, *table = out.splitlines()
    assert link == ns_of(c.init)["net"] != ns_of("self")["net"]
    assert [line.split(":")[0].strip() for line in table[2:]] == ["lo"]


def test_exec_is_in_the_containers_pid_namespace(rootless, start):
    c = start()
    out = ok(rootless("exec", c.name, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; "
                      "echo; echo $$"))
    init_cmdline, own_pid = out.splitlines()
    assert init_cmdline.split() == cmdline_of(c.init)[:-1]
    assert 1 < int(own_pid) < 1000


def test_exec_sees_the_containers_hostname_and_files(rootless, start):
    c = start("--hostname", "box", script="echo written-by-init > /tmp/mark")
    assert ok(rootless("exec", c.name, "sh", "-c", "hostname; cat /tmp/mark")).split() == [
        "box", "written-by-init"]


def test_exec_writes_where_the_container_reads(rootless, start):
    c = start()
    ok(rootless("exec", c.name, "sh", "-c", "echo from-exec > /tmp/shared"))
    assert ok(rootless("exec", c.name, "cat", "/tmp/shared")) == "from-exec\n"


def test_container_exec_is_the_same_command(rootless, start):
    c = start("--hostname", "box")
    assert ok(rootless("container", "exec", c.name, "hostname")) == "box\n"


def test_exec_help_lists_dockers_options(rootless):
    out = ok(rootless("exec", "--help"))
    for option in ("--detach", "--detach-keys", "--env", "--env-file", "--interactive",
                   "--privileged", "--tty", "--user", "--workdir"):
        assert option in out, option


def test_exec_finds_a_container_by_id_prefix(rootless, start):
    c = start()
    short = ok(rootless("ps", "-q", "--filter", f"name={c.name}")).strip()
    assert ok(rootless("exec", short[:6], "echo", "found")) == "found\n"


# ---- environment, working directory, user ----

def test_exec_environment_is_the_containers_then_env_files_then_e(rootless, start,
                                                                  tmp_path):
    c = start("-e", "FROM_RUN=run", "-e", "OVERRIDDEN=run", "-e", "BY_FILE=run")
    env_file = tmp_path / "env"
    env_file.write_text("BY_FILE=file\nOVERRIDDEN=file\n")
    out = ok(rootless("exec", "--env-file", str(env_file), "-e", "OVERRIDDEN=e",
                      "-e", "NEW=e", c.name, "env"))
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert (env["FROM_RUN"], env["BY_FILE"], env["OVERRIDDEN"], env["NEW"]) == (
        "run", "file", "e", "e")
    assert env["PATH"].startswith("/usr/local/sbin")  # the image's
    assert env["HOME"] == "/root"


def test_exec_e_without_a_value_copies_ours(rootless, start, rootless_env):
    c = start()
    env = {**rootless_env, "FROM_CALLER": "mine"}
    out = ok(rootless("exec", "-e", "FROM_CALLER", "-e", "UNSET_HERE", c.name, "env",
                      env=env))
    assert "FROM_CALLER=mine" in out.splitlines()
    assert "UNSET_HERE" not in out


def test_exec_workdir_option(rootless, start):
    c = start("-w", "/etc")
    assert ok(rootless("exec", c.name, "pwd")) == "/etc\n"  # the container's own
    assert ok(rootless("exec", "-w", "/tmp", c.name, "pwd")) == "/tmp\n"


def test_exec_workdir_that_does_not_exist_is_refused_not_created(rootless, start):
    c = start()
    assert_error(rootless("exec", "-w", "/no/such/dir", c.name, "pwd"), 125,
                 "working directory /no/such/dir", "no such file or directory")
    assert rootless("exec", c.name, "ls", "/no").returncode != 0


def test_exec_relative_workdir_is_refused(rootless, start):
    c = start()
    assert_error(rootless("exec", "-w", "tmp", c.name, "pwd"), 125,
                 "'tmp'", "absolute path")


def test_exec_workdir_through_a_symlink_stays_in_the_container(rootless, start):
    c = start(script="ln -s ../../../../../../../.. /tmp/up")
    out = ok(rootless("exec", "-w", "/tmp/up", c.name, "sh", "-c",
                      "pwd; cat etc/rootless-test-image"))
    assert out.splitlines() == ["/", "rootless busybox test image"]


@pytest.mark.parametrize("workdir", ["/proc/self/fd/3", "/proc/self/cwd"])
def test_exec_workdir_in_a_proc_magic_link_is_refused(rootless, start, workdir):
    c = start()
    result = rootless("exec", "-w", workdir, c.name, "echo", "ran")
    assert_error(result, 125, workdir)
    assert result.stdout == ""


@pytest.mark.needs_subids
def test_exec_user_by_number_runs_as_that_user_with_its_groups(rootless, start):
    c = start()
    out = ok(rootless("exec", "-u", str(USER_UID), c.name, "sh", "-c",
                      "id -u; id -g; id -G; echo $HOME"))
    uid, gid, groups, home = out.splitlines()
    assert (int(uid), int(gid), home) == (USER_UID, USER_GID, "/home/user")
    assert str(USERS_GID) in groups.split()


@pytest.mark.needs_subids
def test_exec_user_nobody_by_name(rootless, start):
    c = start()
    assert ok(rootless("exec", "-u", "nobody", c.name, "id", "-u")) == f"{NOBODY_ID}\n"


@pytest.mark.needs_subids
def test_exec_user_with_a_group(rootless, start):
    c = start()
    out = ok(rootless("exec", "-u", "user:users", c.name, "sh", "-c", "id -u; id -g"))
    assert out.split() == [str(USER_UID), str(USERS_GID)]


@pytest.mark.needs_subids
def test_exec_as_a_user_drops_the_capabilities(rootless, start):
    c = start()
    status = ok(rootless("exec", "-u", "1000", c.name, "cat", "/proc/self/status"))
    assert (int(proc_status_field(status, "CapEff"), 16),
            int(proc_status_field(status, "CapPrm"), 16)) == (0, 0)


@pytest.mark.needs_single_id
@pytest.mark.parametrize("user", ["1000", "nobody"])
def test_exec_user_outside_the_single_id_map_is_refused(rootless, start, user):
    c = start()
    result = rootless("exec", "-u", user, c.name, "echo", "ran")
    assert_error(result, 125, "is not mapped in the container", "single-id mode")
    assert result.stdout == ""


def test_exec_runs_as_the_containers_own_user_in_both_modes(rootless, start):
    c = start("-u", "1000")
    assert ok(rootless("exec", c.name, "id", "-u")) == "1000\n"
    assert ok(rootless("exec", "-u", "1000", c.name, "id", "-u")) == "1000\n"


def test_exec_unknown_user_is_refused(rootless, start):
    c = start()
    result = rootless("exec", "-u", "nosuchuser", c.name, "echo", "ran")
    assert_error(result, 125, "unable to find user nosuchuser")
    assert result.stdout == ""


def test_exec_user_lookup_never_follows_a_symlink_out_of_the_container(rootless, start,
                                                                      tmp_path):
    # a passwd of the host's naming a user; the container points its own at that path
    host_passwd = tmp_path / "passwd"
    host_passwd.write_text("hostonly:x:0:0::/host-only:/bin/sh\n")
    c = start(script=f"rm /etc/passwd; ln -s {host_passwd} /etc/passwd")
    result = rootless("exec", "-u", "hostonly", c.name, "echo", "ran")
    assert_error(result, 125, "unable to find user hostonly")


@pytest.mark.parametrize("user", ["-1", "4294967295", "0x10", "1000:-1"])
def test_exec_malformed_user_is_refused(rootless, start, user):
    c = start()
    result = rootless("exec", "-u", user, c.name, "echo", "ran")
    assert_error(result, 125, "invalid")
    assert result.stdout == ""


# ---- exit codes ----

@pytest.mark.parametrize("command, code", [
    (["true"], 0), (["sh", "-c", "exit 3"], 3), (["sh", "-c", "kill -9 $$"], 137)])
def test_exec_exits_with_the_commands_code(rootless, start, command, code):
    c = start()
    assert rootless("exec", c.name, *command).returncode == code


def test_exec_of_a_missing_command_exits_127(rootless, start):
    c = start()
    assert_error(rootless("exec", c.name, "no-such-command"), 127, "no-such-command",
                 "not found")


def test_exec_of_a_file_that_cannot_run_exits_126(rootless, start):
    c = start()
    assert_error(rootless("exec", c.name, "/etc/passwd"), 126, "/etc/passwd",
                 "permission denied")


def test_exec_without_a_command_is_refused(rootless, start):
    c = start()
    assert_error(rootless("exec", c.name), 125, "requires at least 2 arguments")


def test_exec_into_an_unknown_container_is_refused(rootless, busybox):
    assert_error(rootless("exec", "nosuch", "true"), 125, "no such container: nosuch")


def test_exec_into_an_exited_container_is_refused(rootless, busybox):
    ok(rootless("run", "--name", "done", busybox, "true"))
    result = rootless("exec", "done", "echo", "ran")
    assert_error(result, 125, "is not running")
    assert result.stdout == ""


def test_exec_into_a_created_container_is_refused(rootless, busybox):
    ok(rootless("create", "--name", "fresh", busybox, "sleep", "1000"))
    result = rootless("exec", "fresh", "echo", "ran")
    assert_error(result, 125, "is not running")
    assert result.stdout == ""


def test_exec_into_a_paused_container_is_refused(rootless, start):
    c = start()
    ok(rootless("pause", c.name))
    result = rootless("exec", c.name, "echo", "ran")
    ok(rootless("unpause", c.name))
    assert_error(result, 125, "is paused, unpause the container before exec")
    assert result.stdout == ""


def test_exec_into_a_stopped_container_is_refused(rootless, start):
    c = start()
    ok(rootless("stop", "-t", "0", c.name))
    result = rootless("exec", c.name, "echo", "ran")
    assert_error(result, 125, "is not running")
    assert result.stdout == ""


def test_exec_into_a_container_whose_init_is_not_the_recorded_one_is_refused(
        rootless, start, store):
    # As if the init had died and its pid were reused: the record names a start time
    # the process with that pid does not have. exec must refuse, not join it.
    c = start()
    db = sqlite3.connect(store / "state.db")
    with db:
        (saved,) = db.execute("SELECT init_start FROM containers WHERE name=?",
                              (c.name,)).fetchone()
        db.execute("UPDATE containers SET init_start=? WHERE name=?",
                   ((saved or 0) + 12345, c.name))
    result = rootless("exec", c.name, "touch", "/tmp/joined")
    with db:
        db.execute("UPDATE containers SET init_start=? WHERE name=?", (saved, c.name))
    db.close()
    assert_error(result, 125, "is not running")
    assert rootless("exec", c.name, "ls", "/tmp/joined").returncode != 0


# ---- standard streams ----

def test_exec_interactive_passes_stdin(rootless, start):
    c = start()
    assert ok(rootless("exec", "-i", c.name, "cat", input="hi\n")) == "hi\n"


def test_exec_without_interactive_gives_no_stdin(rootless, start):
    c = start()
    assert ok(rootless("exec", c.name, "cat", input="hi\n")) == ""


def test_exec_keeps_stdout_and_stderr_apart(rootless, start):
    c = start()
    result = rootless("exec", c.name, "sh", "-c", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_signals_to_exec_reach_the_command(rootless, start):
    c = start()
    proc = rootless.popen("exec", c.name, "sh", "-c", 'trap "echo caught; exit 5" TERM; '
                          "echo ready; while :; do sleep 0.1; done")
    read_until(proc.stdout, "ready")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 5
    assert proc.stdout.read() == b"caught\n"


def test_exec_tty_gives_the_command_a_terminal(rootless, start):
    c = start()
    term = PtySession(rootless, "exec", "-t", c.name, "tty")
    assert term.wait() == 0
    assert re.fullmatch(r"/dev/pts/\d+", term.text().strip()), term.text()


def test_exec_interactive_tty_runs_a_shell_session(rootless, start):
    c = start()
    term = PtySession(rootless, "exec", "-it", c.name, "sh")
    term.read_until("# ")
    term.write(b"echo $((6 * 7))\n")
    term.read_until("42")
    term.write(b"exit 3\n")
    assert term.wait() == 3


def test_exec_detach_keys_leave_the_command_running(rootless, start):
    c = start()
    term = PtySession(rootless, "exec", "-it", c.name, "sh")
    term.read_until("# ")
    term.write(b"echo $$ > /tmp/shell-pid\n")
    wait_for(lambda: rootless("exec", c.name, "cat", "/tmp/shell-pid").returncode == 0)
    term.write(b"\x10\x11")  # ctrl-p ctrl-q
    assert term.wait() == 0
    script = "kill -0 $(cat /tmp/shell-pid) && echo alive"
    assert ok(rootless("exec", c.name, "sh", "-c", script)) == "alive\n"


def test_exec_interactive_tty_without_a_terminal_is_refused(rootless, start):
    c = start()
    assert_error(rootless("exec", "-it", c.name, "echo", "ran", input=""), 125,
                 "not a TTY")


def test_exec_detach_returns_while_the_command_runs(rootless, start):
    c = start()
    result = rootless("exec", "-d", c.name, "sh", "-c",
                      "echo started > /tmp/bg; exec sleep 1001")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    wait_for(lambda: rootless("exec", c.name, "cat", "/tmp/bg").stdout == "started\n")
    assert "sleep 1001" in ok(rootless("exec", c.name, "ps", "-o", "args"))


def test_exec_detach_with_tty_is_refused(rootless, start):
    c = start()
    assert_error(rootless("exec", "-d", "-t", c.name, "true"), 125, "-d", "-t")


# ---- what run applied applies to exec ----

def status_of(rootless, name: str, path: str, *options: str) -> str:
    return ok(rootless("exec", *options, name, "cat", path))


def test_exec_has_the_capabilities_of_the_containers_command(rootless, start):
    c = start()
    own = status_of(rootless, c.name, "/proc/self/status")
    init = status_of(rootless, c.name, "/proc/1/status")
    for field in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        assert proc_status_field(own, field) == proc_status_field(init, field), field
    assert int(proc_status_field(own, "CapEff"), 16) == DOCKER_DEFAULT_CAPS


def test_exec_runs_under_the_containers_seccomp_filter(rootless, start):
    c = start()
    assert proc_status_field(status_of(rootless, c.name, "/proc/self/status"),
                             "Seccomp") == "2"
    result = rootless("exec", c.name, "unshare", "-U", "true")
    assert result.returncode != 0
    assert "Operation not permitted" in result.stderr


def test_exec_privileged_gets_every_capability_but_keeps_the_filter(rootless, start):
    c = start()
    status = status_of(rootless, c.name, "/proc/self/status", "--privileged")
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert int(proc_status_field(status, "CapEff"), 16) == (1 << (last_cap + 1)) - 1
    assert proc_status_field(status, "Seccomp") == "2"  # docker's exec keeps it too


def test_exec_keeps_no_new_privileges(rootless, start):
    c = start("--security-opt", "no-new-privileges")
    status = status_of(rootless, c.name, "/proc/self/status")
    assert proc_status_field(status, "NoNewPrivs") == "1"


def test_exec_keeps_the_containers_rlimits(rootless, start):
    c = start("--ulimit", "nofile=512:1024")
    assert ok(rootless("exec", c.name, "sh", "-c", "ulimit -n; ulimit -Hn")).split() == [
        "512", "1024"]


def test_exec_privileged_container_has_no_filter(rootless, start):
    c = start("--privileged")
    assert proc_status_field(status_of(rootless, c.name, "/proc/self/status"),
                             "Seccomp") == "0"


def test_only_stdio_reaches_the_exec_command(rootless, start, tmp_path):
    c = start()
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = rootless("exec", c.name, "ls", "/proc/self/fd", pass_fds=(fd,))
    finally:
        os.close(fd)
    assert sorted(ok(result).split()) == ["0", "1", "2", "3"]  # 3: the directory ls reads


PROBE_EXE = """
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if t=$(readlink "$d/exe" 2>/dev/null); then echo "link $p $t"; fi
    if head -c 4 "$d/exe" >/dev/null 2>&1; then echo "open $p"; fi
done
"""


def test_no_host_binary_is_reachable_through_proc_exe_during_exec(rootless, start):
    c = start()
    ok(rootless("exec", "-d", c.name, "sleep", "1002"))  # one exec'd process stays
    lines = [line.split() for line in ok(rootless("exec", c.name, "sh", "-c",
                                                  PROBE_EXE)).splitlines()]
    links = {fields[1]: fields[2] for fields in lines if fields[0] == "link"}
    assert len(links) >= 3 and set(links.values()) == {"/bin/busybox"}, lines


def test_runtime_is_not_visible_in_the_container_during_exec(rootless, start):
    c = start()
    out = ok(rootless("exec", c.name, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"))
    assert "python" not in out and "rootless" not in out, out


def test_a_fifo_in_place_of_dev_null_cannot_hang_exec(rootless, start):
    # a container (here a privileged one, which may unmount) may replace its /dev/null;
    # exec opens it for the command's stdin and must neither block on it nor use it
    c = start("--privileged", script="umount -l /dev/null && rm /dev/null && mkfifo /dev/null")
    result = rootless("exec", c.name, "echo", "ran", timeout=30)
    assert_error(result, 125, "/dev/null is not the null device")
    assert result.stdout == ""


def test_a_fifo_in_place_of_cap_last_cap_cannot_hang_exec(rootless, start):
    # the exec'd process's last stage runs in the container's mount namespace, where
    # /proc is the container's: what it reads of the kernel was read on the host first
    c = start("--privileged", script="mount -t tmpfs none /proc/sys/kernel && "
              "mkfifo /proc/sys/kernel/cap_last_cap")
    result = rootless("exec", c.name, "grep", "CapBnd", "/proc/self/status", timeout=30)
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert int(ok(result).split()[1], 16) == (1 << (last_cap + 1)) - 1
