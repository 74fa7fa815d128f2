"""rootless-oci, the runc-compatible runtime (issue 12): its verbs, their grammar and
outputs, driven as runc's callers (podman, Slurm, containerd) drive runc."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import assert_error, ok
from oci_helpers import OCI_BIN, Runtime, config_edit, make_bundle, set_process

pytestmark = pytest.mark.container


@pytest.fixture
def oci(rootless_env, tmp_path):
    runtime = Runtime(OCI_BIN, tmp_path / "oci-root", rootless_env)
    yield runtime
    runtime.cleanup()


@pytest.fixture
def bundle(rootless, busybox, tmp_path) -> Path:
    return make_bundle(rootless, busybox, tmp_path / "bundle")


def test_version_names_the_runtime_and_the_spec(oci):
    out = ok(oci("--version"))
    assert out.splitlines()[0].startswith("rootless-oci version ")
    assert out.splitlines()[1].startswith("spec: 1.")


def test_bundle_holds_a_rootfs_and_the_images_command(bundle):
    config = json.loads((bundle / "config.json").read_text())
    assert config["root"]["path"] == "rootfs"
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    assert config["process"]["args"]
    assert "uidMappings" not in config["linux"]


def test_bundle_refuses_a_directory_that_is_not_empty(rootless, busybox, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert_error(rootless("bundle", busybox, str(tmp_path / "full")), 125, "not empty")


def test_run_returns_the_commands_exit_status(oci, bundle):
    set_process(bundle, ["sh", "-c", "exit 7"])
    result = oci("run", "-b", str(bundle), "c1")
    assert result.returncode == 7, result.stderr
    assert not (oci.root / "c1").exists()


def test_run_passes_its_stdio_to_the_container(oci, bundle):
    set_process(bundle, ["sh", "-c", "read line; echo got $line; echo err >&2"])
    result = oci("run", "-b", str(bundle), "c1", input="hello\n")
    assert ok(result) == "got hello\n"
    assert result.stderr == "err\n"


def test_run_takes_flags_after_the_id_as_slurm_writes_them(oci, bundle):
    set_process(bundle, ["true"])
    ok(oci("run", "node.user.1.0.0", "-b", str(bundle)))


def test_run_of_a_missing_command_fails_with_127(oci, bundle):
    set_process(bundle, ["no-such-command"])
    result = oci("run", "-b", str(bundle), "c1")
    assert_error(result, 127, "executable file not found")
    assert not (oci.root / "c1").exists()


def test_create_parks_the_init_until_start(oci, bundle, tmp_path):
    marker = tmp_path / "bundle" / "rootfs" / "started"
    set_process(bundle, ["sh", "-c", "touch /started; sleep 60"])
    pid_file = tmp_path / "pid"
    ok(oci("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"))
    state = oci.state("c1")
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text())
    time.sleep(0.3)
    assert not marker.exists()
    ok(oci("start", "c1"))
    assert oci.state("c1")["status"] == "running"
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_create_returns_while_the_init_lives_on(oci, bundle, tmp_path):
    set_process(bundle, ["sleep", "60"])
    ok(oci("create", "-b", str(bundle), "c1"))
    pid = oci.state("c1")["pid"]
    os.kill(pid, 0)  # alive, though `create` has exited


def test_state_prints_runcs_fields(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    config_edit(bundle, lambda c: c.setdefault("annotations", {}).update(a="b"))
    ok(oci("create", "-b", str(bundle), "c1"))
    state = oci.state("c1")
    for key in ("ociVersion", "id", "status", "pid", "bundle", "rootfs", "created",
                "owner", "annotations"):
        assert key in state
    assert state["id"] == "c1"
    assert state["bundle"] == str(bundle)
    assert state["rootfs"] == str(bundle / "rootfs")
    assert state["annotations"]["a"] == "b"


def test_state_of_an_unknown_id_fails(oci):
    assert_error(oci("state", "nope"), 1, "nope", "does not exist")


def test_start_of_a_running_container_fails(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("create", "-b", str(bundle), "c1"))
    ok(oci("start", "c1"))
    assert_error(oci("start", "c1"), 1, "running")


def test_create_refuses_an_id_that_exists(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("create", "-b", str(bundle), "c1"))
    assert_error(oci("create", "-b", str(bundle), "c1"), 1, "exists")


def test_create_refuses_an_id_with_a_slash(oci, bundle):
    assert_error(oci("create", "-b", str(bundle), "../x"), 1, "invalid container id")


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM", "term", "sigterm"])
def test_kill_takes_a_signal_by_number_or_name(oci, bundle, sig):
    # pid 1 of a pid namespace gets only the signals it handles (pid_namespaces(7))
    set_process(bundle, ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    ok(oci("kill", "c1", sig))
    assert oci.wait_status("c1", "stopped")["status"] == "stopped"


def test_kill_refuses_an_unknown_signal(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    assert_error(oci("kill", "c1", "SIGNOPE"), 1, "unknown signal")
    assert oci.state("c1")["status"] == "running"


def test_kill_of_a_stopped_container_fails(oci, bundle):
    set_process(bundle, ["true"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    oci.wait_status("c1", "stopped")
    assert_error(oci("kill", "c1", "KILL"), 1, "not running")


def test_delete_refuses_a_running_container_without_force(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    assert_error(oci("delete", "c1"), 1, "not stopped")
    pid = oci.state("c1")["pid"]
    ok(oci("delete", "--force", "c1"))
    assert not (oci.root / "c1").exists()
    with open(f"/proc/{pid}/stat") if os.path.exists(f"/proc/{pid}") else \
            open(os.devnull) as f:
        assert f.read().split(") ")[-1][:1] in ("", "Z")


def test_delete_of_a_created_container_kills_its_parked_init(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("create", "-b", str(bundle), "c1"))
    pid = oci.state("c1")["pid"]
    ok(oci("delete", "c1"))
    assert not (oci.root / "c1").exists()
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().split(") ")[-1][:1] == "Z"


def test_root_path_may_be_absolute_and_outside_the_bundle(oci, bundle, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (bundle / "rootfs").rename(elsewhere / "rootfs")
    set_process(bundle, ["cat", "/etc/hostname-probe"])
    (elsewhere / "rootfs" / "etc" / "hostname-probe").write_text("outside\n")
    config_edit(bundle, lambda c: c["root"].update(path=str(elsewhere / "rootfs")))
    assert ok(oci("run", "-b", str(bundle), "c1")) == "outside\n"


def test_a_single_file_can_be_bind_mounted(oci, bundle, tmp_path):
    source = tmp_path / "one-file"
    source.write_text("from the host\n")
    set_process(bundle, ["cat", "/etc/one-file"])
    config_edit(bundle, lambda c: c["mounts"].append(
        {"destination": "/etc/one-file", "type": "bind", "source": str(source),
         "options": ["bind", "ro"]}))
    assert ok(oci("run", "-b", str(bundle), "c1")) == "from the host\n"


def test_run_forwards_signals_to_the_container(oci, bundle):
    set_process(bundle, ["sh", "-c", "trap 'echo caught; exit 3' TERM; echo ready; "
                                     "while :; do sleep 0.1; done"])
    proc = oci.popen("run", "-b", str(bundle), "c1", stdin=subprocess.DEVNULL)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert out == b"caught\n"
    assert proc.returncode == 3


def test_console_socket_receives_the_pty_master(oci, bundle, tmp_path):
    set_process(bundle, ["sh", "-c", "tty; test -t 0 && echo is-a-tty"], terminal=True)
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    ok(oci("create", "-b", str(bundle), "--console-socket", path, "c1"))
    conn, _ = server.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    assert msg.startswith(b"/dev/pts/") and len(fds) == 1
    ok(oci("start", "c1"))
    out = b""
    deadline = time.monotonic() + 10
    while b"is-a-tty" not in out and time.monotonic() < deadline:
        try:
            chunk = os.read(fds[0], 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert b"/dev/pts/" in out and b"is-a-tty" in out


def test_terminal_without_console_socket_is_refused_at_create(oci, bundle):
    set_process(bundle, ["true"], terminal=True)
    assert_error(oci("create", "-b", str(bundle), "c1"), 1, "console-socket")
    assert not (oci.root / "c1").exists()


def test_preserve_fds_passes_descriptors_to_the_container(oci, bundle, tmp_path):
    set_process(bundle, ["sh", "-c", "cat <&3"])
    data = tmp_path / "data"
    data.write_text("via fd 3\n")
    # a shell opens the file as fd 3 of the runtime (this process's own 3 is pytest's)
    argv = oci.argv("run", "--preserve-fds", "1", "-b", str(bundle), "c1")
    result = subprocess.run(["sh", "-c", 'exec "$@" 3<"$DATA"', "sh", *argv],
                            env={**oci.env, "DATA": str(data)}, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ok(result) == "via fd 3\n"


def test_without_preserve_fds_no_descriptor_reaches_the_container(oci, bundle, tmp_path):
    set_process(bundle, ["sh", "-c", "ls /proc/self/fd"])
    data = tmp_path / "data"
    data.write_text("x")
    fd = os.open(data, os.O_RDONLY)
    try:
        result = oci("run", "-b", str(bundle), "c1", pass_fds=(fd,))
    finally:
        os.close(fd)
    assert sorted(ok(result).split()) == ["0", "1", "2", "3"]  # 3: ls's own directory


def test_exec_runs_a_process_in_the_running_container(oci, bundle):
    set_process(bundle, ["sh", "-c", "echo inside > /tmp/mark; sleep 60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    time.sleep(0.2)
    result = oci("exec", "c1", "sh", "-c", "cat /tmp/mark; exit 5")
    assert result.returncode == 5, result.stderr
    assert result.stdout == "inside\n"


def test_exec_takes_a_process_json(oci, bundle, tmp_path):
    set_process(bundle, ["sleep", "60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "echo $FOO; pwd"],
                                   "env": ["FOO=bar", "PATH=/bin"], "cwd": "/etc",
                                   "user": {"uid": 0, "gid": 0}}))
    assert ok(oci("exec", "--process", str(process), "c1")) == "bar\n/etc\n"


def test_exec_detached_writes_its_pid_file(oci, bundle, tmp_path):
    set_process(bundle, ["sleep", "60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    pid_file = tmp_path / "exec.pid"
    ok(oci("exec", "-d", "--pid-file", str(pid_file), "c1", "sleep", "30"))
    os.kill(int(pid_file.read_text()), 0)


def test_exec_in_a_stopped_container_fails(oci, bundle):
    set_process(bundle, ["true"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    oci.wait_status("c1", "stopped")
    assert_error(oci("exec", "c1", "true"), 1, "stopped")


def test_ps_lists_the_containers_processes_as_json(oci, bundle):
    set_process(bundle, ["sleep", "60"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    pids = json.loads(ok(oci("ps", "--format", "json", "c1")))
    assert oci.state("c1")["pid"] in pids


def test_spec_writes_a_config_json(oci, tmp_path):
    ok(oci("spec", "--rootless", "-b", str(tmp_path)))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["root"]["path"] == "rootfs"
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert_error(oci("spec", "-b", str(tmp_path)), 1, "exists")


def test_features_lists_namespaces_and_hooks(oci):
    features = json.loads(ok(oci("features")))
    assert "user" in features["linux"]["namespaces"]
    assert "poststop" in features["hooks"]


@pytest.mark.parametrize("flags", [
    ["--log", "LOG", "--log-format", "json"], ["--log=LOG", "--log-format=json"],
    ["--debug", "--rootless", "true", "--systemd-cgroup", "--cgroup-manager", "cgroupfs",
     "--log", "LOG", "--log-format", "json"]])
def test_global_flags_in_runcs_grammar(oci, tmp_path, flags):
    log = tmp_path / "log.json"
    runtime = Runtime(OCI_BIN, oci.root, oci.env,
                      tuple(str(log) if f == "LOG" else f.replace("LOG", str(log))
                            for f in flags))
    result = runtime("state", "nope")
    assert result.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [e for e in entries if e["level"] == "error"]
    assert errors and "nope" in errors[-1]["msg"] and errors[-1]["time"]


def test_a_bad_flag_is_one_line_and_exit_1(oci):
    assert_error(oci("create", "--no-such-flag", "c1"), 1, "no-such-flag")


def test_kill_all_reaches_every_process_of_the_container(oci, bundle, tmp_path):
    set_process(bundle, ["sh", "-c", "trap '' TERM; sleep 300 & echo $! > /tmp/child; "
                                     "while :; do sleep 0.1; done"])
    ok(oci("run", "-d", "-b", str(bundle), "c1"))
    init = oci.state("c1")["pid"]
    child_file = bundle / "rootfs" / "tmp" / "child"
    deadline = time.monotonic() + 10
    while not child_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = json.loads(ok(oci("ps", "--format", "json", "c1")))
    assert len(pids) >= 2 and init in pids
    ok(oci("kill", "--all", "c1", "KILL"))
    assert oci.wait_status("c1", "stopped")["status"] == "stopped"
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(") ", 1)[1][:1] == "Z"


def test_run_keep_leaves_the_stopped_container_for_state(oci, bundle):
    set_process(bundle, ["true"])
    ok(oci("run", "--keep", "-b", str(bundle), "c1"))
    assert oci.state("c1")["status"] == "stopped"
    ok(oci("delete", "c1"))
    assert not (oci.root / "c1").exists()


def test_a_failing_prestart_hook_fails_create_and_leaves_nothing(oci, bundle, tmp_path):
    ran = tmp_path / "ran"
    set_process(bundle, ["sh", "-c", "touch /ran-anyway; sleep 60"])
    config_edit(bundle, lambda c: c.update(hooks={"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo hook says no >&2; exit 3"]}]}))
    result = oci("create", "-b", str(bundle), "c1")
    assert_error(result, 1, "prestart hook", "exit status 3", "hook says no")
    assert not (oci.root / "c1").exists()
    assert not ran.exists() and not (bundle / "rootfs" / "ran-anyway").exists()


def test_preserve_fds_never_hands_the_runtimes_own_descriptors_over(oci, bundle):
    # no descriptor 3 or 4 given: the container must find nothing of the runtime there
    set_process(bundle, ["sh", "-c", "for fd in 3 4; do readlink /proc/self/fd/$fd "
                                     "|| echo closed; done"])
    out = ok(oci("run", "--preserve-fds", "2", "-b", str(bundle), "c1"))
    assert "oci-root" not in out and "pipe:" not in out and "socket:" not in out
    assert out.split() == ["/dev/null", "/dev/null"]


@pytest.mark.parametrize("kind", ["writable by others", "a symlink"])
def test_a_root_another_user_could_have_made_is_refused(rootless_env, bundle, tmp_path,
                                                         kind):
    """/tmp/rootless-oci-... (the default without XDG_RUNTIME_DIR, and Slurm's) is a name
    anyone may take first: a --root the caller does not hold alone is refused."""
    root = tmp_path / "shared-root"
    if kind == "a symlink":
        (tmp_path / "elsewhere").mkdir()
        root.symlink_to(tmp_path / "elsewhere")
    else:
        root.mkdir()
        root.chmod(0o777)
    runtime = Runtime(OCI_BIN, root, rootless_env)
    for args in (("run", "-b", str(bundle), "c1"), ("state", "c1")):
        result = runtime(*args)
        assert result.returncode == 1, result
        assert "refused" in result.stderr or "not a directory" in result.stderr, result
