"""OCI `linux.seccomp` -> the classic BPF program seccomp(2) installs, compiled once.

Any bundle's `linux.seccomp` section (docker's default profile as the engine writes it,
a user's profile, or what podman or containerd hand the OCI front end) is compiled here,
in the runtime's own process before it forks, so errors come back as one line and the
container never needs the host's libraries after pivot_root:

- libseccomp builds the filter from the rules, as in runc and crun (seccomp_compile.py,
  through cffi's ABI mode: libseccomp.py): it knows every architecture's syscall table,
  the x32 and multiplexed (socketcall, ipc) quirks and 64-bit argument comparisons.
  Names it does not know are skipped (as runc does: a profile names syscalls newer than
  the library); a rule whose action is the default action is redundant and skipped;
  conditions on the same argument twice become separate rules (an OR, runc's reading).
- runc's ENOSYS stub (libcontainer/seccomp/patchbpf; here seccomp_stub.py) goes in
  front: a syscall numbered above the highest one the profile names, per architecture,
  gets ENOSYS instead of the default EPERM. A profile cannot list syscalls newer than
  itself, and libcs probe new ones (clone3, fchmodat2, ...) and fall back only on
  ENOSYS; EPERM would break them. runc checks the architectures the profile lists; the
  native one is checked even when a profile lists none, since libseccomp always filters
  it. Where the default action lets calls through (allow, log, trace) or already is
  ENOSYS, no stub is needed.
- The program is cached under $XDG_RUNTIME_DIR/rootless/seccomp (0700, temp + rename)
  by a hash of the section, so a `rootless run` whose profile was compiled before loads
  neither libseccomp nor cffi's C parser (~25 ms). A cache entry records the libseccomp
  file that built it, and is rebuilt when that file changes.

Filter flags come from the section (`flags`); SCMP_ACT_NOTIFY rules ask the kernel for a
listener descriptor (SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0), which the fakeroot's
notification handler will receive.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless import jsonfast
from rootless.errors import RuntimeSetupError

# libseccomp's action values (seccomp.h), under the names the OCI spec uses for them.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,  # KILL_THREAD, as runc maps it
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,  # | errno
    "SCMP_ACT_TRACE": 0x7FF00000,  # | message for the tracer
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_DATA = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")  # default data: EPERM, as runc
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# seccomp(2) filter flags by OCI name; TSYNC means nothing to a single-threaded process
FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 0, "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5}
FLAG_NEW_LISTENER = 1 << 3
MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS
U64 = 2**64 - 1

CACHE_FORMAT = b"rootless-seccomp 1\n"


def action_value(name: object, errno_ret: object = None) -> int:
    """The SECCOMP_RET_* word for an OCI action (and errnoRet), checked."""
    if not isinstance(name, str) or name not in ACTIONS:
        raise RuntimeSetupError(f"seccomp: unknown action {name!r} (one of: "
                                f"{', '.join(ACTIONS)})")
    value = ACTIONS[name]  # type: ignore[index]
    if name in _WITH_DATA:
        data = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= 0xFFFF:
            raise RuntimeSetupError(f"seccomp: errnoRet {errno_ret!r} is not a number "
                                    "from 0 to 65535")
        value |= data
    return value


def check_section(section: object) -> None:
    """Refuse a malformed section with a line naming the field, before compiling."""
    if not isinstance(section, dict):
        raise RuntimeSetupError("seccomp: the section must be a JSON object")
    action_value(section.get("defaultAction"), section.get("defaultErrnoRet"))
    if section.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise RuntimeSetupError("seccomp: SCMP_ACT_NOTIFY cannot be the default action")
    for arch in _list(section, "architectures"):
        if not isinstance(arch, str) or not arch.startswith("SCMP_ARCH_"):
            raise RuntimeSetupError(f"seccomp: unknown architecture {arch!r}")
    for flag in _list(section, "flags"):
        if not isinstance(flag, str) or flag not in FILTER_FLAGS:
            raise RuntimeSetupError(f"seccomp: unknown flag {flag!r}")
    for rule in _list(section, "syscalls"):
        _check_rule(rule)


def _list(obj: dict, key: str) -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RuntimeSetupError(f"seccomp: {key} must be a list")
    return value


def _check_rule(rule: object) -> None:
    if not isinstance(rule, dict):
        raise RuntimeSetupError("seccomp: every entry of syscalls must be an object")
    names = _list(rule, "names")
    if not names or not all(isinstance(n, str) and n and "\0" not in n for n in names):
        raise RuntimeSetupError("seccomp: a syscalls entry needs names, a list of syscall "
                                "names")
    action_value(rule.get("action"), rule.get("errnoRet"))
    for arg in _list(rule, "args"):
        if not isinstance(arg, dict):
            raise RuntimeSetupError(f"seccomp: args of {names[0]} must be objects")
        index = arg.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
            raise RuntimeSetupError(f"seccomp: argument index {index!r} of {names[0]} is "
                                    "not 0 to 5")
        for key in ("value", "valueTwo"):
            v = arg.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= U64:
                raise RuntimeSetupError(f"seccomp: {key} {v!r} of {names[0]} is not an "
                                        "unsigned 64-bit number")
        op = arg.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            raise RuntimeSetupError(f"seccomp: unknown operator {op!r} for {names[0]}")


def filter_flags(section: dict) -> int:
    flags = 0
    for name in section.get("flags") or []:
        flags |= FILTER_FLAGS[name]
    if any(rule.get("action") == "SCMP_ACT_NOTIFY" for rule in section.get("syscalls") or []):
        flags |= FLAG_NEW_LISTENER
    return flags


def uses_notify(section: dict) -> bool:
    return bool(filter_flags(section) & FLAG_NEW_LISTENER)


def kernel_actions() -> list[str] | None:
    """The filter actions this kernel offers (Linux 4.14 lists them; `user_notif` is
    seccomp user notification, Linux 5.0); None where seccomp filters are missing."""
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            return f.read().split()
    except OSError:
        pass
    try:  # before 4.14: filter mode is there if the status file knows seccomp at all
        with open("/proc/self/status") as f:
            return [] if any(line.startswith("Seccomp:") for line in f) else None
    except OSError:
        return None


# --- the cache -------------------------------------------------------------------------


def program_for(section: dict) -> tuple[bytes, int, str]:
    """(code, flags, digest) for `section`, from the cache or compiled and cached: code is
    struct sock_filter[] in native byte order, the ENOSYS stub first; flags are
    SECCOMP_FILTER_FLAG_*; digest names the section. (A plain tuple: a NamedTuple here
    would compile its annotations on every `run`.)"""
    check_section(section)
    digest = section_digest(section)
    flags = filter_flags(section)
    directory = cache_dir()
    if directory:
        code = cache_read(directory, digest)
        if code is not None:
            return code, flags, digest
    from rootless.runtime.seccomp_compile import compile_section, library_identity

    code = compile_section(section)
    if directory:
        cache_write(directory, digest, code, library_identity())
    return code, flags, digest


def section_digest(section: dict) -> str:
    # A program depends on the section and the machine it was built for.
    text = jsonfast.dumps([os.uname().machine, section], sort_keys=True, separators=(",", ":"))
    return _sha256(text.encode()).hexdigest()


def _sha256(data: bytes):
    # _sha256 is built in; hashlib would load OpenSSL (~2.5 ms on every `run`)
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[no-redef]  # Python 3.12
        except ImportError:
            from hashlib import sha256  # type: ignore[no-redef]
    return sha256(data)


def runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/rootless, or /tmp/rootless-$UID (DESIGN.md, Storage)."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if base.startswith("/"):
        return os.path.join(base, "rootless")
    return f"/tmp/rootless-{os.getuid()}"


def cache_dir() -> str | None:
    """The cache directory, made 0700 if missing; None (compile every time) unless it
    and its parent are directories of ours that nobody else can write: another user's
    directory could hand us a program (a /tmp fallback made by someone else, say)."""
    root = runtime_dir()
    path = os.path.join(root, "seccomp")
    for d in (root, path):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
        try:
            st = os.lstat(d)
        except OSError:
            return None
        if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid()
                or st.st_mode & 0o022):
            return None
    return path


def cache_read(directory: str, digest: str) -> bytes | None:
    try:
        fd = os.open(os.path.join(directory, digest), os.O_RDONLY | os.O_NOFOLLOW
                     | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 2 * 8 * MAX_INSTRUCTIONS:
            return None
        data = os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)
    if not data.startswith(CACHE_FORMAT):
        return None
    identity, sep, code = data[len(CACHE_FORMAT):].partition(b"\n")
    if not sep or not code or len(code) % 8 or len(code) > 8 * MAX_INSTRUCTIONS:
        return None
    if not _library_unchanged(identity):
        return None
    return code


def _library_unchanged(identity: bytes) -> bool:
    try:
        path, ino, size, mtime = jsonfast.loads(identity)
        st = os.stat(path)
    except (ValueError, TypeError, OSError):
        return False
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (ino, size, mtime)


def cache_write(directory: str, digest: str, code: bytes, identity: list | None) -> None:
    """Best effort, atomic: a reader sees the whole entry or none."""
    if identity is None:
        return
    tmp = os.path.join(directory, f".{digest}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, CACHE_FORMAT + jsonfast.dumps(identity).encode() + b"\n" + code)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(directory, digest))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
