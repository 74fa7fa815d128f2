"""Slurm 22.05 running containers through rootless-oci (`srun --container=BUNDLE`), on
the one-node cluster scripts/test starts as root (scripts/slurm-cluster: munged,
slurmctld, slurmd on 127.0.0.1; /etc/slurm/oci.conf pointing at this venv's
rootless-oci). Jobs are submitted by the unprivileged test user, as on a site.

Slurm reads one oci.conf, in one of two shapes: RunTimeRun (the default here), or
RunTimeCreate + RunTimeStart; tests of one shape skip under the other. scripts/test
writes the run shape; `ROOTLESS_SLURM_OCI=create scripts/test tests/test_oci_slurm.py`
the other (slurmstepd reads oci.conf at each step: no restart is needed). Both shapes
end with slurmstepd, as root, calling `state`, `kill -a` and `delete --force` on the
user's container, so "nothing left in --root" is also the test of those verbs as root.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path

import pytest

from oci_helpers import OCI_BIN, config_edit, make_bundle

pytestmark = pytest.mark.container

OCI_CONF = Path("/etc/slurm/oci.conf")


def _shape() -> str | None:
    try:
        text = OCI_CONF.read_text()
    except OSError:
        return None
    if str(OCI_BIN) not in text:
        return None
    return "create" if "RunTimeCreate" in text else "run"


@pytest.fixture(scope="module")
def shape() -> str:
    if shutil.which("srun") is None:
        pytest.skip("slurm is not installed (scripts/setup installs slurm-wlm)")
    found = _shape()
    if found is None:
        pytest.skip(f"{OCI_CONF} does not point at {OCI_BIN}: the cluster is started by "
                    "scripts/test as root (scripts/slurm-cluster)")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        pytest.skip(f"slurmctld does not answer: {ping.stdout.strip()} {ping.stderr.strip()}")
    return found


@pytest.fixture
def bundle(rootless, busybox, tmp_path) -> Path:
    path = make_bundle(rootless, busybox, tmp_path / "bundle")
    (path / "rootfs" / "etc" / "in-the-image").write_text("from the bundle's rootfs\n")
    return path


def runtime_root() -> Path:
    return Path(f"/tmp/rootless-oci-slurm-{getpass.getuser()}")


def srun(bundle: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["srun", f"--container={bundle}", *command], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def leftovers() -> list[str]:
    root = runtime_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_srun_runs_the_command_in_the_container(shape, bundle, tmp_path):
    if shape != "run":
        pytest.skip("the create/start shape forwards no stdio (slurmstepd reads create's "
                    "output to its end)")
    result = srun(bundle, "cat", "/etc/in-the-image", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the bundle's rootfs\n"


def test_srun_returns_the_commands_exit_code(shape, bundle, tmp_path):
    if shape != "run":
        pytest.skip("the create/start shape returns RunTimeStart's status, not the "
                    "container's (slurmstepd container.c, _create_start)")
    result = srun(bundle, "sh", "-c", "exit 3", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "exit code 3" in result.stderr


def test_srun_of_a_missing_command_fails(shape, bundle, tmp_path):
    if shape != "run":
        pytest.skip("create/start shape: see test_srun_returns_the_commands_exit_code")
    result = srun(bundle, "no-such-command", cwd=tmp_path)
    assert result.returncode == 127, result.stderr
    assert "executable file not found" in result.stderr


def test_create_start_shape_runs_the_command(shape, bundle, tmp_path):
    if shape != "create":
        pytest.skip("oci.conf has the run shape (ROOTLESS_SLURM_OCI=create for this one)")
    result = srun(bundle, "sh", "-c", "id -u > /tmp/ran-by-slurm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs" / "tmp" / "ran-by-slurm").read_text() == "0\n"


def test_the_task_runs_as_root_of_the_users_namespace_only(shape, bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    config_edit(bundle, lambda c: c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": str(out),
         "options": ["rbind", "rw"]}))
    result = srun(bundle, "sh", "-c", "id -u > /out/id; touch /out/made", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "id").read_text() == "0\n"
    # root in the container, the user outside: the file it made is the user's
    assert (out / "made").stat().st_uid == __import__("os").getuid()


def test_nothing_is_left_in_the_users_runtime_root(shape, bundle, tmp_path):
    before = leftovers()
    for command in (["true"], ["sh", "-c", "exit 1"], ["no-such-command"]):
        srun(bundle, *command, cwd=tmp_path)
    assert leftovers() == before
