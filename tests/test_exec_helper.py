"""The container never executes, and never holds a handle on, the host's runtime (issue 7,
DESIGN.md principle 7): the last stage before its command is the static helper from
csrc/exec_helper.c, run from a sealed memfd, which is also pid 1 with --init.

The probe (tests/exec_probe.c, built static here) answers questions from inside; the
probe image is busybox plus /probe, and the probe again at the path the test
interpreter names as its dynamic loader (PT_INTERP), so that a container exec'ing the
interpreter would run the probe as runc's CVE-2019-5736 attacker."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import IMAGE_PATH_ENV, REPO, assert_error, ok, read_until

pytestmark = pytest.mark.container

HERE = Path(__file__).resolve().parent
HELPER = REPO / "src" / "rootless" / "_exec_helper"  # built by setup.py
HELPER_EXE = "/memfd:rootless-init (deleted)"
USAGE = "rootless-init: this is the container runtime's exec helper, not a command"
ALL_SEALS = 0xF  # F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
# a shell prefix: stop (exit 90) unless pid 1 is the helper, run from its memfd
PID_1_IS_THE_HELPER = (f'[ "$(readlink /proc/1/exe)" = "{HELPER_EXE}" ] || '
                       '{ echo "pid 1 is not the helper"; exit 90; }; ')
LOOP = "while true; do sleep 0.1; done"


# ---- the probe image ----

def program_interpreter(path: str) -> str:
    """The PT_INTERP of an ELF64 little-endian executable (its dynamic loader)."""
    data = Path(path).read_bytes()
    assert data[:6] == b"\x7fELF\x02\x01", f"{path}: not an ELF64 little-endian program"
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, offset, _, _, size = struct.unpack_from("<IIQQQQ", data,
                                                           phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return data[offset:offset + size].rstrip(b"\0").decode()
    pytest.skip(f"{path} is static: an image cannot give it a dynamic loader")


@pytest.fixture(scope="session")
def probe_program(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("probe") / "exec_probe"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(out), str(HERE / "exec_probe.c")],
                   check=True)
    return out.read_bytes()


@pytest.fixture(scope="session")
def probe_archive(tmp_path_factory, image_archives, probe_program) -> Path:
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    loader = program_interpreter(os.path.realpath(sys.executable)).lstrip("/")
    parents = [str(p) for p in reversed(Path(loader).parents) if str(p) != "."]
    layer = tar_bytes(*(entry(d, "dir") for d in parents),
                      entry(loader, data=probe_program, mode=0o755),
                      entry("probe", data=probe_program, mode=0o755))
    image = Image([image_archives.rootfs.read_bytes(), layer],
                  config={"Cmd": ["/proc/self/exe"], "Env": [IMAGE_PATH_ENV]})
    return oci_archive(tmp_path_factory.mktemp("probe-image") / "probe.tar",
                       [(image, {"org.opencontainers.image.ref.name": "probe:latest"})])


@pytest.fixture
def probe_image(rootless, probe_archive) -> str:
    ok(rootless("load", "-i", str(probe_archive)))
    return "probe:latest"


@pytest.fixture
def writable_python(tmp_path) -> Path:
    """A venv as `python -m venv --copies` makes it: bin/python a copy of the test
    interpreter that this user may write, its site-packages those of the test venv."""
    venv = tmp_path / "copies-venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    real = Path(os.path.realpath(sys.executable))
    shutil.copyfile(real, python)
    python.chmod(0o755)
    lib = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    lib.mkdir(parents=True)
    (lib / "site-packages").symlink_to(sysconfig.get_path("purelib"))
    (venv / "pyvenv.cfg").write_text(f"home = {real.parent}\n"
                                     "include-system-site-packages = false\n")
    return python


def run_with(python: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """`rootless ARGS...` run by the interpreter `python`."""
    code = "import sys; from rootless.cli.main import main; main()"
    return subprocess.run([str(python), "-c", code, *args], env=env, text=True,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def probe_lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    return dict(line.split("=", 1) for line in ok(result).splitlines() if "=" in line)


# ---- /proc/self/exe: runc's CVE-2019-5736 ----

def test_proc_self_exe_is_the_sealed_helper_never_the_writable_interpreter(
        rootless, probe_image, writable_python):
    before = writable_python.read_bytes()
    result = run_with(writable_python, rootless.env, "run", "--rm", probe_image)
    assert writable_python.read_bytes() == before
    # the helper is static: the image's dynamic loader (the attacker) never runs
    assert "attacker ran" not in result.stdout, result.stdout
    assert result.returncode == 126, result.stderr
    assert result.stderr.startswith(USAGE), result.stderr


@pytest.mark.parametrize("args", [(), ("-c", "print(1)"), ("--report-fd", "1", "--", "id"),
                                  ("--init",), ("--", )])
def test_exec_of_proc_self_exe_with_any_arguments_is_a_usage_error(
        rootless, probe_image, args):
    result = rootless("run", "--rm", probe_image, "/proc/self/exe", *args)
    assert (result.returncode, result.stdout) == (126, "")
    assert result.stderr.startswith(USAGE), result.stderr


def test_exec_of_pid_1s_exe_under_init_is_a_usage_error(rootless, probe_image):
    result = rootless("run", "--rm", "--init", probe_image, "sh", "-c",
                      'exec /proc/1/exe -c "print(1)"')
    assert (result.returncode, result.stdout) == (126, "")
    assert result.stderr.startswith(USAGE), result.stderr


def test_pid_1s_exe_under_init_is_a_sealed_memfd_that_cannot_be_written(
        rootless, probe_image):
    facts = probe_lines(rootless("run", "--rm", "--init", probe_image,
                                 "/probe", "write", "/proc/1/exe"))
    assert facts["link"] == HELPER_EXE
    assert int(facts["seals"]) & ALL_SEALS == ALL_SEALS, facts
    # refused by the kernel: a file being executed (ETXTBSY), or, where a kernel lets it
    # be opened, the write seal (EPERM)
    opened, written = int(facts["open"]), int(facts.get("write", -1))
    assert opened == errno.ETXTBSY or (opened == 0 and written == errno.EPERM), facts


# ---- pid 1 under --init shows and holds nothing of the host ----

def test_pid_1s_cmdline_under_init_is_the_helper_and_the_command(
        rootless, busybox, tmp_path, store):
    volume = tmp_path / "host-volume"
    volume.mkdir()
    out = ok(rootless("run", "--rm", "--init", "-v", f"{volume}:/data", busybox,
                      "cat", "/proc/1/cmdline"))
    argv = out.split("\0")[:-1]
    assert argv[0] == "rootless-init"
    assert argv[-3:] == ["--", "cat", "/proc/1/cmdline"]
    for host_path in (sys.executable, sys.prefix, str(volume), str(store), str(tmp_path)):
        assert host_path not in out, out


def test_pid_1_under_init_holds_only_stdin_stdout_and_stderr(rootless, busybox):
    out = ok(rootless("run", "--rm", "--init", busybox, "sh", "-c",
                      "cd /proc/1/fd && for fd in *; do echo $fd $(readlink $fd); done"))
    fds = dict(line.split(" ", 1) for line in out.splitlines())
    assert sorted(fds) == ["0", "1", "2"], out
    assert fds["0"] == "/dev/null"
    assert fds["1"].startswith("pipe:") and fds["2"].startswith("pipe:"), out


def test_no_process_in_the_container_holds_a_descriptor_beyond_stdio(rootless, probe_image):
    out = ok(rootless("run", "--rm", "--init", probe_image, "sh", "-c",
                      "sleep 30 & exec /probe fds"))
    # pid 1 (the helper), the sleep and the probe itself
    assert out == "audited 3 processes\n"


# ---- pid 1 under --init: tini's job ----

def test_init_helper_reaps_orphaned_zombies(rootless, busybox):
    script = (PID_1_IS_THE_HELPER
              + "(sleep 0.2 &); sleep 1.5; cat /proc/[0-9]*/stat 2>/dev/null")
    out = ok(rootless("run", "--rm", "--init", busybox, "sh", "-c", script))
    states = [line.rsplit(")", 1)[1].split()[0] for line in out.splitlines() if ")" in line]
    assert len(states) >= 2 and "Z" not in states, out


def test_init_helper_forwards_sigterm_to_the_command(rootless, busybox):
    proc = rootless.popen("run", "--rm", "--init", busybox, "sh", "-c",
                          PID_1_IS_THE_HELPER + f'trap "exit 7" TERM; echo ready; {LOOP}')
    read_until(proc.stdout, "ready")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7


def test_init_helper_exits_128_plus_n_when_the_command_dies_of_signal_n(rootless, busybox):
    result = rootless("run", "--rm", "--init", busybox, "sh", "-c",
                      PID_1_IS_THE_HELPER + "kill -TERM $$; sleep 5")
    assert (result.returncode, result.stdout) == (128 + signal.SIGTERM, "")


# ---- what the command starts with ----

def _ignore_and_block_signals() -> None:
    for sig in (signal.SIGHUP, signal.SIGTSTP, signal.SIGTTOU, signal.SIGURG):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGWINCH})


@pytest.mark.parametrize("init", [False, True])
def test_command_starts_with_default_signals_whatever_the_runtime_inherited(
        rootless, busybox, init):
    proc = rootless.popen("run", "--rm", *(["--init"] if init else []), busybox,
                          "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status",
                          stdin=subprocess.DEVNULL, preexec_fn=_ignore_and_block_signals)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.decode().split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]


# ---- exec failures: Docker's text and codes, as before the helper ----
# (the helper took these over from the runtime's Python; they pin that nothing changed,
# so unlike the rest of this module they pass without the helper too)

@pytest.mark.parametrize("init", [False, True])
@pytest.mark.parametrize("command, code, message", [
    ("no-such-command", 127, 'exec: "no-such-command": executable file not found in $PATH'),
    ("/no/such/binary", 127,
     'exec: "/no/such/binary": stat /no/such/binary: no such file or directory'),
    ("/etc/passwd", 126, 'exec: "/etc/passwd": permission denied'),
    ("/tmp", 126, 'exec: "/tmp": permission denied'),
])
def test_exec_failure_keeps_dockers_text_and_code(rootless, busybox, init, command, code,
                                                  message):
    result = rootless("run", "--rm", *(["--init"] if init else []), busybox, command)
    assert_error(result, code, message)


def test_command_is_looked_up_in_the_containers_path(rootless, busybox):
    result = rootless("run", "--rm", "-e", "PATH=/nowhere", busybox, "id")
    assert_error(result, 127, 'exec: "id": executable file not found in $PATH')
    assert ok(rootless("run", "--rm", "-e", "PATH=/nowhere:/usr/bin:/bin", busybox,
                       "echo", "found")) == "found\n"


# ---- the helper on its own, on the host: its contract with the runtime ----

def run_helper(*args: str, preexec_fn=None,
               extra_fds: tuple[int, ...] = ()) -> tuple[subprocess.CompletedProcess, bytes]:
    """The helper with a report pipe: (its result, what it reported)."""
    r, w = os.pipe()
    with os.fdopen(r, "rb") as report:
        try:
            result = subprocess.run([str(HELPER), "--report-fd", str(w), *args],
                                    pass_fds=(w, *extra_fds),
                                    env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                                    text=True, timeout=30, preexec_fn=preexec_fn)
        finally:
            os.close(w)
        return result, report.read()


def test_helper_reports_an_exec_failure_as_one_json_line():
    name = 'no "such"\ncommand'
    result, report = run_helper("--", name)
    assert result.returncode == 127
    assert json.loads(report) == {
        "message": f'exec: "{name}": executable file not found in $PATH', "code": 127}
    assert report.count(b"\n") == 1


def test_helper_report_pipe_closes_when_the_command_starts():
    result, report = run_helper("--", "true")
    assert (result.returncode, report) == (0, b"")


def _deny_close_range() -> None:
    """seccomp: close_range(2) fails with ENOSYS, as on Linux before 5.9 (CLOSE_RANGE_
    CLOEXEC: 5.11). Any architecture's call 436 is refused: close_range on all of ours."""
    def insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    program = b"".join([
        insn(0x20, 0),  # ld [0]: the syscall number
        insn(0x15, 436, 0, 1),  # jeq close_range
        insn(0x06, 0x00050000 | errno.ENOSYS),  # ret SECCOMP_RET_ERRNO | ENOSYS
        insn(0x06, 0x7FFF0000),  # ret SECCOMP_RET_ALLOW
    ])
    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        os._exit(99)


@pytest.mark.parametrize("init", [False, True])
def test_helper_leaves_only_stdio_without_close_range(tmp_path, init):
    extra = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # inheritable: must not pass
    try:
        # with --init the shell's parent is the helper, which must hold 0, 1, 2 only
        script = "ls /proc/self/fd; echo -; ls /proc/$PPID/fd"
        result, report = run_helper(*(["--init"] if init else []), "--", "sh", "-c", script,
                                    preexec_fn=_deny_close_range, extra_fds=(extra,))
    finally:
        os.close(extra)
    assert (result.returncode, report) == (0, b""), result.stderr
    own, parent = result.stdout.split("-\n")
    assert own.split() == ["0", "1", "2", "3"]  # 3: the directory ls reads
    if init:
        assert parent.split() == ["0", "1", "2"]


class _KernelBefore63:
    """memfd_create(2) as a kernel before 6.3 answers MFD_EXEC (0x10): EINVAL."""

    def memfd_create(self, name: str, flags: int) -> int:
        if flags & 0x10:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return os.memfd_create(name, flags)


def test_sealed_copy_is_made_without_mfd_exec_before_linux_6_3():
    from rootless.runtime.helper import SEALS, sealed_copy

    fd = sealed_copy(_KernelBefore63())
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == "/memfd:rootless-init (deleted)"
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
        assert os.pread(fd, HELPER.stat().st_size + 1, 0) == HELPER.read_bytes()
        with pytest.raises(PermissionError):  # F_SEAL_WRITE: EPERM
            os.pwrite(fd, b"\0", 0)
    finally:
        os.close(fd)
