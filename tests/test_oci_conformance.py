"""Conformance of rootless-oci with the OCI runtime spec, one test per runtime-tools
validation test (opencontainers/runtime-tools validation/*: create, start, state, kill,
delete, hostname, mounts, linux_masked_paths, linux_readonly_paths, process_user,
process_cwd, process_env, process_rlimits, process_capabilities, root_readonly_true,
hooks), each run against rootless-oci and against crun, the reference: a behaviour
both show is the spec's, not an accident of ours.

Every config is the busybox bundle's, made rootless as `runc spec --rootless` makes it
(a user namespace mapping the user to root; with a subordinate range, 1..65536 too) and
with a host directory bound at /out, where the container leaves what the test reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import has_subids, ok, subordinate_start
from oci_helpers import CRUN, OCI_BIN, Runtime, config_edit, make_bundle

pytestmark = pytest.mark.container

RUNTIMES = ["rootless-oci", "crun"]


def _crun_usable(tmp: Path, env: dict, bundle: Path) -> str | None:
    """Why crun cannot run a rootless container here, or None."""
    if not CRUN.exists():
        return f"{CRUN} is not installed"
    probe = Runtime(CRUN, tmp / "crun-probe", env)
    result = probe("run", "-b", str(bundle), "probe")
    probe.cleanup()
    if result.returncode != 0:
        return f"crun cannot run rootless here: {result.stderr.strip()[-200:]} " \
               "(PEERS.md: hybrid cgroups need the v1 hugetlb hierarchy mounted)"
    return None


@pytest.fixture(params=RUNTIMES)
def runtime(request, rootless_env, tmp_path):
    binary = OCI_BIN if request.param == "rootless-oci" else CRUN
    rt = Runtime(binary, tmp_path / f"{request.param}-root", rootless_env)
    yield rt
    rt.cleanup()


@pytest.fixture
def bundle(rootless, busybox, tmp_path, runtime) -> Path:
    path = make_bundle(rootless, busybox, tmp_path / "bundle")
    out = tmp_path / "out"
    out.mkdir()
    config_edit(path, lambda c: _rootless_config(c, out))
    if runtime.name == "crun":
        set_args(path, ["true"])
        reason = _crun_usable(tmp_path, runtime.env, path)
        if reason:
            pytest.skip(reason)
    return path


def _rootless_config(config: dict, out: Path) -> None:
    linux = config["linux"]
    if not any(ns["type"] == "user" for ns in linux["namespaces"]):
        linux["namespaces"].append({"type": "user"})
    uids = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    gids = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    if has_subids():
        uids.append({"containerID": 1, "hostID": subordinate_start("/etc/subuid"),
                     "size": 65536})
        gids.append({"containerID": 1, "hostID": subordinate_start("/etc/subgid"),
                     "size": 65536})
    linux["uidMappings"], linux["gidMappings"] = uids, gids
    for ns in ("uts", "network"):
        if not any(n["type"] == ns for n in linux["namespaces"]):
            linux["namespaces"].append({"type": ns})
    config["hostname"] = "conformance"
    for mount in config["mounts"]:
        if mount["type"] == "devpts":  # gid 5 is not mapped with one id
            mount["options"] = [o for o in mount["options"] if not o.startswith("gid=")]
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                             "options": ["rbind", "rw"]})


def set_args(bundle: Path, args: list[str], **process) -> None:
    def change(config: dict) -> None:
        config["process"]["args"] = args
        config["process"].update(process)

    config_edit(bundle, change)


def run_sh(runtime: Runtime, bundle: Path, script: str) -> str:
    set_args(bundle, ["sh", "-c", script])
    return ok(runtime("run", "-b", str(bundle), "c1"))


def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


# ---- lifecycle ----------------------------------------------------------------------

def test_create(runtime, bundle):
    set_args(bundle, ["sleep", "60"])
    ok(runtime("create", "-b", str(bundle), "c1"))
    state = runtime.state("c1")
    assert state["status"] == "created" and state["pid"] > 0


def test_start(runtime, bundle, tmp_path):
    set_args(bundle, ["sh", "-c", "echo started > /out/mark; sleep 60"])
    ok(runtime("create", "-b", str(bundle), "c1"))
    time.sleep(0.2)
    assert not (tmp_path / "out" / "mark").exists()
    ok(runtime("start", "c1"))
    assert wait_for_file(tmp_path / "out" / "mark") == "started\n"
    assert runtime.state("c1")["status"] == "running"


def test_state(runtime, bundle):
    set_args(bundle, ["sleep", "60"])
    ok(runtime("create", "-b", str(bundle), "c1"))
    state = runtime.state("c1")
    assert state["ociVersion"].startswith("1.")
    assert state["id"] == "c1"
    assert state["bundle"] == str(bundle)
    assert runtime("state", "nope").returncode != 0


def test_kill(runtime, bundle):
    set_args(bundle, ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
    ok(runtime("run", "-d", "-b", str(bundle), "c1"))
    ok(runtime("kill", "c1", "TERM"))
    assert runtime.wait_status("c1", "stopped")["status"] == "stopped"


def test_delete(runtime, bundle):
    set_args(bundle, ["true"])
    ok(runtime("run", "-d", "-b", str(bundle), "c1"))
    runtime.wait_status("c1", "stopped")
    ok(runtime("delete", "c1"))
    result = runtime("state", "c1")
    assert result.returncode != 0 and "c1" in result.stderr


# ---- the container's world ----------------------------------------------------------

def test_hostname(runtime, bundle):
    assert run_sh(runtime, bundle, "hostname") == "conformance\n"


def test_mounts(runtime, bundle, tmp_path):
    single = tmp_path / "single-file"
    single.write_text("one file\n")

    def change(config: dict) -> None:
        config["mounts"] += [
            {"destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "size=1m"]},
            {"destination": "/etc/single-file", "type": "bind", "source": str(single),
             "options": ["bind", "ro"]}]

    config_edit(bundle, change)
    out = run_sh(runtime, bundle, "grep ' /mnt/scratch ' /proc/self/mounts | cut -d' ' -f3;"
                                  " cat /etc/single-file; echo x > /etc/single-file "
                                  "2>/dev/null || echo ro")
    assert out == "tmpfs\none file\nro\n"


def test_linux_masked_paths(runtime, bundle):
    def change(config: dict) -> None:
        config["linux"]["maskedPaths"] = ["/etc/passwd", "/etc/init.d", "/no/such"]

    config_edit(bundle, change)
    out = run_sh(runtime, bundle, "wc -c < /etc/passwd; ls -A /etc/init.d | wc -l")
    assert out.split() == ["0", "0"]


def test_linux_readonly_paths(runtime, bundle):
    config_edit(bundle, lambda c: c["linux"].update(readonlyPaths=["/etc"]))
    out = run_sh(runtime, bundle, "touch /etc/new 2>&1; echo status=$?")
    assert "Read-only file system" in out and "status=1" in out


def test_process_user(runtime, bundle):
    # one mapped id without a subordinate range: root is the only user there is
    uid, gid = (1000, 1001) if has_subids() else (0, 0)
    set_args(bundle, ["sh", "-c", "id -u; id -g"], user={"uid": uid, "gid": gid})
    assert ok(runtime("run", "-b", str(bundle), "c1")).split() == [str(uid), str(gid)]


def test_process_cwd(runtime, bundle):
    set_args(bundle, ["pwd"], cwd="/etc")
    assert ok(runtime("run", "-b", str(bundle), "c1")) == "/etc\n"


def test_process_env(runtime, bundle):
    set_args(bundle, ["sh", "-c", "echo $CONFORMANCE"],
             env=["PATH=/bin:/usr/bin", "CONFORMANCE=yes it is"])
    assert ok(runtime("run", "-b", str(bundle), "c1")) == "yes it is\n"


def test_process_rlimits(runtime, bundle):
    set_args(bundle, ["sh", "-c", "ulimit -Sn; ulimit -Hn"],
             rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}])
    assert ok(runtime("run", "-b", str(bundle), "c1")).split() == ["512", "768"]


def test_process_capabilities(runtime, bundle):
    caps = ["CAP_CHOWN", "CAP_KILL"]  # bits 0 and 5
    set_args(bundle, ["grep", "-E", "^Cap(Eff|Bnd):", "/proc/self/status"],
             capabilities={"bounding": caps, "effective": caps, "permitted": caps,
                           "inheritable": [], "ambient": []})
    lines = ok(runtime("run", "-b", str(bundle), "c1")).split("\n")
    values = {line.split(":")[0]: int(line.split()[1], 16) for line in lines if line}
    assert values == {"CapEff": 0x21, "CapBnd": 0x21}


def test_root_readonly_true(runtime, bundle):
    config_edit(bundle, lambda c: c["root"].update(readonly=True))
    out = run_sh(runtime, bundle, "touch /new 2>&1; echo status=$?; touch /out/ok && "
                                  "echo out-writable")
    assert "Read-only file system" in out and "status=1" in out
    assert "out-writable" in out


def test_hooks(runtime, bundle, tmp_path):
    log = tmp_path / "hooks.log"

    def hook(stage: str) -> dict:
        # each hook reads the state on its stdin: the status it was given is logged
        return {"path": "/bin/sh", "args": ["sh", "-c",
                f"status=$(sed 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/'); "
                f"echo {stage} $status >> {log}"]}

    config_edit(bundle, lambda c: c.update(hooks={
        "prestart": [hook("prestart")], "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]}))
    set_args(bundle, ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
    ok(runtime("create", "-b", str(bundle), "c1"))
    ok(runtime("start", "c1"))
    ok(runtime("kill", "c1", "TERM"))
    runtime.wait_status("c1", "stopped")
    ok(runtime("delete", "c1"))
    stages = [line.split()[0] for line in log.read_text().splitlines()]
    assert stages == ["prestart", "poststart", "poststop"]
