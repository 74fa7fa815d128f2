"""The exec helper (csrc/exec_helper.c) as the runtime uses it: a sealed copy, its argv.

The container's init must never be, nor hold, the host's runtime (runc CVE-2019-5736):
the interpreter running us may be writable by the user, and a container whose command is
/proc/self/exe would otherwise run it, and could open it, from inside. So before forking,
the runtime copies the static helper built with the package into a memfd (memfd_create(2))
and seals it against every change (F_SEAL_WRITE, F_SEAL_SHRINK, F_SEAL_GROW, and
F_SEAL_SEAL so no seal can be lifted; fcntl(2), "File Sealing"). The container's init,
once the plan has run, execveat(2)s that descriptor: /proc/self/exe inside the container
then names an anonymous file nobody can write, which exists only while it runs.
"""

from __future__ import annotations

import errno
import fcntl
import os

from rootless.errors import RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel.syscalls import Syscalls
from rootless.runtime.plan import Exec

# built by setup.py next to the shim: src/rootless/_exec_helper
HELPER_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "_exec_helper")
NAME = "rootless-init"  # its argv[0], and the memfd's name in /proc/PID/exe
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE

_prepared: int | None = None  # prepare()'s copy, until the next start takes it


def prepare(sys: Syscalls) -> None:
    """Make the next start's sealed copy now: a container's monitor does it while it
    waits for the command to create its container (~0.4 ms off the start's path). A
    failure is met again, and reported, by that start."""
    global _prepared
    if _prepared is None:
        try:
            _prepared = sealed_copy(sys)
        except RuntimeSetupError:
            pass


def take_sealed_copy(sys: Syscalls) -> int:
    """prepare()'s copy if there is one (each is used once), else a new one."""
    global _prepared
    fd, _prepared = _prepared, None
    return fd if fd is not None else sealed_copy(sys)


def sealed_copy(sys: Syscalls) -> int:
    """A close-on-exec descriptor of a sealed, executable memfd holding the helper."""
    try:
        src = os.open(HELPER_PATH, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeSetupError(f"the exec helper {HELPER_PATH}: {e.strerror.lower()} "
                                "(it is built with the package: reinstall rootless)") from e
    try:
        fd = _memfd(sys)
        try:
            _copy(src, fd, os.fstat(src).st_size)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        except BaseException:
            os.close(fd)
            raise
    except OSError as e:
        raise RuntimeSetupError(f"copy the exec helper into a sealed memfd: "
                                f"{e.strerror.lower()}") from e
    finally:
        os.close(src)
    return fd


def _memfd(sys: Syscalls) -> int:
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        # Linux 6.3: where vm.memfd_noexec asks for it, a memfd is only executable
        # when created with MFD_EXEC
        return sys.memfd_create(NAME, flags | k.MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3, which has no such flag
            raise
    return sys.memfd_create(NAME, flags)


def _copy(src: int, dst: int, size: int) -> None:
    """sendfile(2): copy_file_range(2) refuses to cross filesystems (EXDEV, Linux 5.19)."""
    offset = 0
    while offset < size:
        sent = os.sendfile(dst, src, offset, size - offset)
        if sent == 0:
            raise OSError(errno.EIO, f"{HELPER_PATH} shrank while being copied")
        offset += sent


def helper_argv(step: Exec, report_fd: int, close_range: bool = True,
                preserve_fds: int = 0, wait_fd: int | None = None) -> list[str]:
    """`rootless-init [--init] [--no-close-range] --report-fd N -- COMMAND [ARG...]`
    (see its header); --no-close-range where the runtime's own close_range(2) failed
    (an old kernel, or the kernel floor): the helper then closes each fd itself.
    rootless-oci adds --preserve-fds and --wait-fd (its parked `create`)."""
    options = ["--init"] if step.init else []
    if not close_range:
        options.append("--no-close-range")
    if preserve_fds:
        options += ["--preserve-fds", str(preserve_fds)]
    if wait_fd is not None:
        options += ["--wait-fd", str(wait_fd)]
    return [NAME, *options, "--report-fd", str(report_fd), "--", *step.args]
