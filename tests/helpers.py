"""What the spec tests share: running the real `rootless` console script, building the
busybox image with scripts/make-image, and small probes of processes and users.

Everything here runs real processes; nothing imports the rootless package, so the tests
see exactly what a user sees.
"""

from __future__ import annotations

import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAKE_IMAGE = REPO / "scripts" / "make-image"
ROOTLESS_BIN = Path(sys.executable).parent / "rootless"

# What scripts/make-image puts in the image.
MARKER = "rootless busybox test image"
MARKER_PATH = "/etc/rootless-test-image"
IMAGE_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_UID, USER_GID, USERS_GID, NOBODY_ID = 1000, 1000, 100, 65534

# Docker's default capability set (moby oci/caps/defaults.go): chown, dac_override,
# fsetid, fowner, mknod, net_raw, setgid, setuid, setfcap, setpcap, net_bind_service,
# sys_chroot, kill, audit_write.
DOCKER_DEFAULT_CAPS = 0x00000000A80425FB


# ---- who is running the tests ----

def is_root() -> bool:
    return os.geteuid() == 0


def user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def subordinate_count(path: str) -> int:
    """How many ids `path` (/etc/subuid or /etc/subgid) gives this user, by name or uid."""
    names = {user_name(), str(os.getuid())}
    total = 0
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in names and parts[2].isdigit():
            total += int(parts[2])
    return total


def subordinate_start(path: str) -> int:
    """The first id of this user's first range in `path`."""
    names = {user_name(), str(os.getuid())}
    for line in Path(path).read_text().splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in names:
            return int(parts[1])
    raise AssertionError(f"no range for {user_name()} in {path}")


def has_subids() -> bool:
    """True when rootless should use a full id mapping: ranges in both files and the
    setuid helpers on PATH."""
    return (subordinate_count("/etc/subuid") > 0 and subordinate_count("/etc/subgid") > 0
            and bool(shutil.which("newuidmap")) and bool(shutil.which("newgidmap")))


# ---- running rootless ----

def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


class Rootless:
    """Runs the real console script with one test's environment (its own store)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[subprocess.Popen] = []

    def __call__(self, *args: str, input: str | bytes | None = None, timeout: float = 60,
                 check: bool = False, env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess:
        """Run `rootless ARGS...`; stdin is /dev/null unless `input` is given; stdout and
        stderr come back as text."""
        if isinstance(input, str):
            input = input.encode()
        proc = self.popen(*args, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                          env=env, pass_fds=pass_fds)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise AssertionError(f"rootless {' '.join(args)} did not finish in {timeout}s\n"
                                 f"stdout: {_decode(out)}\nstderr: {_decode(err)}"
                                 ) from None
        result = subprocess.CompletedProcess([str(ROOTLESS_BIN), *args], proc.returncode,
                                             _decode(out), _decode(err))
        if check:
            ok(result)
        return result

    def popen(self, *args: str, env: dict[str, str] | None = None,
              **kwargs) -> subprocess.Popen:
        """Start `rootless ARGS...` in its own session (so a hung one can be killed with
        all its children); the test's teardown kills what is still running."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen([str(ROOTLESS_BIN), *args], env=env or self.env, **kwargs)
        self.started.append(proc)
        return proc

    def kill_leftovers(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                kill_group(proc)
                proc.wait(timeout=10)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL `proc`, its process group, and every descendant (a container's init may
    sit in a session of its own)."""
    for pid in [proc.pid, *descendants_of(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def ok(result: subprocess.CompletedProcess) -> str:
    """Assert exit 0 (showing stderr if not) and return stdout."""
    assert result.returncode == 0, (
        f"{' '.join(map(str, result.args))}: exit {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result.stdout


def assert_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Docker's failure contract: exit `code`, one line on stderr naming the cause
    (every one of `words`), no traceback."""
    detail = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == code, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"want one line on stderr\n{detail}"
    for word in words:
        assert word in lines[0], f"want {word!r} in the error\n{detail}"


def read_until(stream, text: str, timeout: float = 30) -> str:
    """Read a pipe (binary, unbuffered use) until `text` appears; return all read."""
    fd = stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in data:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"no {text!r} within {timeout}s; read: {_decode(data)!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"EOF before {text!r}; read: {_decode(data)!r}")
        data += chunk
    return _decode(data)


# ---- images ----

def make_image(*args: str) -> None:
    subprocess.run([sys.executable, str(MAKE_IMAGE), *args], check=True)


# ---- processes on the host ----

def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def descendants_of(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            result.append(child)
            todo.append(child)
    return result


def cmdline_of(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def wait_for(predicate, timeout: float = 20, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def mount_options(mountinfo: str, mount_point: str) -> set[str]:
    """The per-mount options (field 6) of the last mount on `mount_point` in a
    /proc/self/mountinfo text."""
    options = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == mount_point:
            options = set(fields[5].split(","))
    assert options is not None, f"{mount_point} is not a mount point:\n{mountinfo}"
    return options


def proc_status_field(status: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(\S+)", status, re.M)
    assert match, f"no {name} in /proc/self/status:\n{status}"
    return match.group(1)


# ---- a terminal for -t ----

class PtySession:
    """`rootless ARGS...` on a fresh pseudo-terminal of a given size, as if typed in a
    terminal window: the pty is its controlling terminal and stdin, stdout and stderr."""

    def __init__(self, rootless: Rootless, *args: str, rows: int = 24, cols: int = 80) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.resize(rows, cols)
        self.proc = rootless.popen(*args, stdin=slave, stdout=slave, stderr=slave,
                                   preexec_fn=_take_controlling_tty)
        os.close(slave)
        self.output = b""

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _read(self, timeout: float) -> bool:
        """Read what is there; False at EOF (Linux reports EIO once the slave is gone)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.output += chunk
        return bool(chunk)

    def read_until(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {text!r} on the terminal; got {self.text()!r}")
        return self.text()

    def wait(self, timeout: float = 30) -> int:
        """Read to EOF, then return the exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        try:
            return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        finally:
            os.close(self.master)

    def text(self) -> str:
        return _decode(self.output)


def _take_controlling_tty() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def load_one_layer_image(rootless, tmp_path: Path, name: str, data: bytes,
                         created: str = "2024-01-01T00:00:00Z",
                         labels: dict | None = None, file: str = "name") -> str:
    """Load (through the CLI) an image NAME of one layer holding /FILE = data, with the
    given creation time and labels; returns its id."""
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    layer = tar_bytes(entry(file, data=data))
    config = {"Cmd": ["sh"], "Labels": labels} if labels else {"Cmd": ["sh"]}
    image = Image([layer], created=created, config=config)
    path = oci_archive(tmp_path / f"{len(list(tmp_path.iterdir()))}.tar",
                       [(image, {"org.opencontainers.image.ref.name": name})])
    ok(rootless("load", "-i", str(path)))
    return image.id
