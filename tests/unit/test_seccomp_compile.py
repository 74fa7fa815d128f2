"""The seccomp compiler: OCI section -> BPF (libseccomp + runc's ENOSYS stub), and its
cache. Programs are run here by a small classic-BPF interpreter on made-up syscalls, so
what the kernel would answer is checked without loading any filter."""

import errno
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from rootless.engine.seccomp import BUILTIN, profile_load, profile_to_oci
from rootless.errors import RuntimeSetupError
from rootless.runtime import seccomp
from rootless.runtime.caps import DOCKER_DEFAULT

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64",
                                reason="syscall numbers below are x86-64's")

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
X32 = 0x40000000
ALLOW, KILL_THREAD = 0x7FFF0000, 0x00000000
NR = {"read": 0, "mount": 165, "clone": 56, "clone3": 435, "socket": 41, "personality": 135,
      "ptrace": 101, "keyctl": 250, "unshare": 272, "kexec_load": 246, "mkdir": 83,
      "futex_waitv": 449, "userfaultfd": 323}
CLONE_THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes
CLONE_NEWUSER = 0x10000000


def errno_of(ret: int) -> int:
    assert ret & 0xFFFF0000 == 0x00050000, hex(ret)
    return ret & 0xFFFF


def run_bpf(code: bytes, nr: int, arch: int = AUDIT_ARCH_X86_64, args=(0,) * 6) -> int:
    """What SECCOMP_RET_* the program returns for struct seccomp_data {nr, arch, ip, args}."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    insns = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x54:  # and #k
            acc &= k
        elif op == 0x05:  # ja
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        elif op == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"opcode {op:#x} not modelled")


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime / "rootless" / "seccomp"


@pytest.fixture
def docker_program(cache_home):
    section = profile_to_oci(profile_load(BUILTIN), DOCKER_DEFAULT)
    return seccomp.program_for(section)[0]


# ---- docker's default profile, as compiled ----

@pytest.mark.parametrize("name", ["mount", "keyctl", "unshare", "kexec_load", "userfaultfd"])
def test_calls_the_profile_does_not_allow_get_eperm(docker_program, name):
    assert errno_of(run_bpf(docker_program, NR[name])) == errno.EPERM


def test_allowed_call_is_allowed(docker_program):
    assert run_bpf(docker_program, NR["read"]) == ALLOW


def test_syscall_above_the_profile_s_newest_gets_enosys(docker_program):
    assert errno_of(run_bpf(docker_program, 1000)) == errno.ENOSYS


def test_x32_and_i386_calls_get_the_stub_too(docker_program):
    assert errno_of(run_bpf(docker_program, X32 | 1000)) == errno.ENOSYS
    assert errno_of(run_bpf(docker_program, 1000, arch=AUDIT_ARCH_I386)) == errno.ENOSYS
    assert run_bpf(docker_program, X32 | NR["read"]) == ALLOW
    assert run_bpf(docker_program, 3, arch=AUDIT_ARCH_I386) == ALLOW  # i386 read


def test_foreign_architecture_is_killed(docker_program):
    assert run_bpf(docker_program, NR["read"], arch=AUDIT_ARCH_AARCH64) == KILL_THREAD


def test_clone3_gets_enosys_so_libc_falls_back_to_clone(docker_program):
    assert errno_of(run_bpf(docker_program, NR["clone3"])) == errno.ENOSYS


def test_clone_of_a_thread_is_allowed_and_of_a_user_namespace_is_not(docker_program):
    assert run_bpf(docker_program, NR["clone"], args=(CLONE_THREAD_FLAGS,)) == ALLOW
    assert errno_of(run_bpf(docker_program, NR["clone"],
                            args=(CLONE_NEWUSER | 17,))) == errno.EPERM


@pytest.mark.parametrize("family, allowed", [(2, True), (10, True), (1, True), (40, False),
                                             (38, False), (44, True)])
def test_socket_families(docker_program, family, allowed):
    ret = run_bpf(docker_program, NR["socket"], args=(family, 1, 0))
    assert (ret == ALLOW) is allowed


def test_personality_only_docker_s_values(docker_program):
    assert run_bpf(docker_program, NR["personality"], args=(0,)) == ALLOW
    assert errno_of(run_bpf(docker_program, NR["personality"],
                            args=(0x0040000,))) == errno.EPERM


# ---- the stub alone, in front of a filter that allows everything ----

def stub_then_allow(maxima):
    from rootless.runtime.seccomp_stub import enosys_stub

    return enosys_stub(maxima) + struct.pack("=HBBI", 0x06, 0, 0, ALLOW)


def test_stub_answers_enosys_above_each_architecture_s_newest():
    code = stub_then_allow({AUDIT_ARCH_X86_64: {"native": 400, "x32": X32 | 500},
                            AUDIT_ARCH_I386: {"native": 300}})
    answers = [run_bpf(code, 400), run_bpf(code, 401), run_bpf(code, X32 | 500),
               run_bpf(code, X32 | 501), run_bpf(code, 300, arch=AUDIT_ARCH_I386),
               run_bpf(code, 301, arch=AUDIT_ARCH_I386)]
    assert [a == ALLOW for a in answers] == [True, False, True, False, True, False]
    assert all(errno_of(a) == errno.ENOSYS for a in answers if a != ALLOW)


def test_stub_passes_architectures_it_does_not_know_to_the_filter():
    code = stub_then_allow({AUDIT_ARCH_X86_64: {"native": 400}})
    assert run_bpf(code, 9999, arch=AUDIT_ARCH_AARCH64) == ALLOW
    assert run_bpf(code, X32 | 9999) == ALLOW  # no x32 numbers known: the filter decides


def test_stub_answers_enosys_for_s390_multiplexed_unknown_calls():
    s390x = 0x80000016
    code = stub_then_allow({s390x: {"native": 400}})
    assert errno_of(run_bpf(code, 0, arch=s390x)) == errno.ENOSYS
    assert run_bpf(code, 5, arch=s390x) == ALLOW


# ---- actions and rules ----

def compile_section(section, cache_home):
    return seccomp.program_for(section)[0]


def test_errno_ret_of_a_rule_is_returned(cache_home):
    code = compile_section({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]}, cache_home)
    assert errno_of(run_bpf(code, NR["mkdir"])) == errno.EACCES
    assert run_bpf(code, 1000) == ALLOW  # no stub when the default lets calls through


@pytest.mark.parametrize("action, ret", [
    ("SCMP_ACT_KILL_PROCESS", 0x80000000), ("SCMP_ACT_KILL", 0), ("SCMP_ACT_TRAP", 0x30000),
    ("SCMP_ACT_LOG", 0x7FFC0000), ("SCMP_ACT_TRACE", 0x7FF00000 | errno.EPERM),
    ("SCMP_ACT_NOTIFY", 0x7FC00000)])
def test_every_oci_action_compiles(cache_home, action, ret):
    code = compile_section({"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["mkdir"], "action": action}]}, cache_home)
    assert run_bpf(code, NR["mkdir"]) == ret


def test_notify_rules_ask_for_a_listener(cache_home):
    section = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    assert seccomp.program_for(section)[1] == seccomp.FLAG_NEW_LISTENER


def test_two_conditions_on_one_argument_are_alternatives(cache_home):
    code = compile_section({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}, cache_home)
    results = [run_bpf(code, NR["personality"], args=(v,)) for v in (1, 2, 3)]
    assert results[:2] == [ALLOW, ALLOW] and errno_of(results[2]) == errno.EPERM


def test_syscall_names_unknown_to_libseccomp_are_skipped(cache_home):
    code = compile_section({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "no_such_call_2099"], "action": "SCMP_ACT_ALLOW"}]}, cache_home)
    assert run_bpf(code, NR["read"]) == ALLOW


def test_default_enosys_needs_no_stub(cache_home):
    eperm = {"defaultAction": "SCMP_ACT_ERRNO",
             "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    enosys = {**eperm, "defaultErrnoRet": errno.ENOSYS}
    with_stub, without = (compile_section(s, cache_home) for s in (eperm, enosys))
    assert errno_of(run_bpf(with_stub, 1000)) == errno_of(run_bpf(without, 1000)) == errno.ENOSYS
    assert len(without) < len(with_stub)


def test_unknown_architecture_is_refused(cache_home):
    with pytest.raises(RuntimeSetupError, match="architecture SCMP_ARCH_VAX"):
        seccomp.program_for({"defaultAction": "SCMP_ACT_ALLOW",
                             "architectures": ["SCMP_ARCH_VAX"]})


# ---- the cache ----

def test_second_compile_comes_from_the_cache(cache_home):
    section = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    first = seccomp.program_for(section)
    (entry,) = list(cache_home.iterdir())
    assert entry.name == first[2]
    assert oct(cache_home.stat().st_mode & 0o777) == "0o700"
    assert seccomp.program_for(section) == first


def test_a_cached_program_is_used_without_loading_libseccomp_or_cffi(cache_home, docker_program):
    code = textwrap.dedent("""
        import sys
        from rootless.engine.seccomp import BUILTIN, profile_load, profile_to_oci
        from rootless.runtime.caps import DOCKER_DEFAULT
        from rootless.runtime.seccomp import program_for
        program = program_for(profile_to_oci(profile_load(BUILTIN), DOCKER_DEFAULT))
        print(len(program[0]), *[m for m in ("cffi", "rootless.runtime.libseccomp",
                                               "hashlib") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout.split()
    assert out == [str(len(docker_program))]


def test_a_corrupt_cache_entry_is_compiled_again(cache_home):
    section = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    good = seccomp.program_for(section)
    (cache_home / good[2]).write_bytes(seccomp.CACHE_FORMAT + b"[]\n" + b"\x06" + b"\0" * 7)
    assert seccomp.program_for(section) == good


def test_an_entry_from_another_libseccomp_is_compiled_again(cache_home):
    section = {"defaultAction": "SCMP_ACT_ALLOW"}
    good = seccomp.program_for(section)
    entry = cache_home / good[2]
    header, identity, code = entry.read_bytes().split(b"\n", 2)
    path, ino, size, mtime = json.loads(identity)
    entry.write_bytes(header + b"\n" + json.dumps([path, ino, size, mtime - 1]).encode()
                      + b"\n" + b"\x06\0\0\0\0\0\0\0")  # ret KILL, were it believed
    assert seccomp.program_for(section) == good


def test_a_cache_directory_others_can_write_is_not_used(cache_home):
    cache_home.parent.mkdir(mode=0o700)
    cache_home.mkdir(mode=0o700)
    cache_home.chmod(0o777)
    seccomp.program_for({"defaultAction": "SCMP_ACT_ALLOW"})
    assert list(cache_home.iterdir()) == []


def test_a_runtime_directory_others_can_read_still_holds_the_cache(cache_home):
    cache_home.parent.mkdir(mode=0o755)  # as another part of rootless may make it
    program = seccomp.program_for({"defaultAction": "SCMP_ACT_ALLOW"})
    assert [p.name for p in cache_home.iterdir()] == [program[2]]


def test_without_xdg_runtime_dir_the_cache_is_per_user_under_tmp(monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert seccomp.runtime_dir() == f"/tmp/rootless-{os.getuid()}"
