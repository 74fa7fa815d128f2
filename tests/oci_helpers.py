"""Driving the real `rootless-oci` binary (and crun, the reference) on bundles made by
`rootless bundle` from the busybox fixture: shared by tests/test_oci*.py."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from helpers import ROOTLESS_BIN, _decode, kill_group

OCI_BIN = ROOTLESS_BIN.parent / "rootless-oci"
CRUN = Path("/usr/bin/crun")


class Runtime:
    """`RUNTIME --root ROOT ARGS...` as this test's user; stdin /dev/null unless given."""

    def __init__(self, binary: Path | str, root: Path, env: dict[str, str],
                 global_args: tuple[str, ...] = ()) -> None:
        self.binary, self.root, self.env = str(binary), root, env
        self.global_args = global_args
        self.started: list[subprocess.Popen] = []

    @property
    def name(self) -> str:
        return os.path.basename(self.binary)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *self.global_args, *args]

    def __call__(self, *args: str, input: bytes | str | None = None, timeout: float = 60,
                 pass_fds: tuple[int, ...] = (), cwd: str | None = None
                 ) -> subprocess.CompletedProcess:
        # files, not pipes: a created container inherits the runtime's stdout and
        # stderr (as runc's does) and holds them after `create` exits
        if isinstance(input, str):
            input = input.encode()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = self.popen(*args, stdin=subprocess.DEVNULL if input is None
                              else subprocess.PIPE, stdout=out, stderr=err,
                              pass_fds=pass_fds, cwd=cwd)
            try:
                proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()
                raise AssertionError(f"{self.name} {' '.join(args)}: no exit in "
                                     f"{timeout}s\nstdout: {_read(out)}\n"
                                     f"stderr: {_read(err)}") from None
            return subprocess.CompletedProcess(self.argv(*args), proc.returncode,
                                               _read(out), _read(err))

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(*args), env=self.env, **kwargs)
        self.started.append(proc)
        return proc

    def state(self, container_id: str) -> dict:
        result = self("state", container_id)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_status(self, container_id: str, status: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(container_id)
            if state["status"] == status or time.monotonic() > deadline:
                return state
            time.sleep(0.05)

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                kill_group(proc)
                proc.wait(timeout=10)
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.is_dir():
                    self("delete", "-f", entry.name)


def _read(f) -> str:
    f.seek(0)
    return _decode(f.read())


def config_edit(bundle: Path, change) -> dict:
    """Apply change(config) to the bundle's config.json, write it back, return it."""
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config, indent=2))
    return config


def set_process(bundle: Path, args: list[str], **fields) -> dict:
    def change(config: dict) -> None:
        config["process"]["args"] = list(args)
        config["process"].update(fields)

    return config_edit(bundle, change)


def make_bundle(rootless, image: str, directory: Path) -> Path:
    result = rootless("bundle", image, str(directory), timeout=120)
    assert result.returncode == 0, result.stderr
    return directory
