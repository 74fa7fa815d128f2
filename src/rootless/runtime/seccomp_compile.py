"""Compile a checked OCI seccomp section with libseccomp: only on a cache miss.

runtime/seccomp.py says what the program does and when this runs; this module is the
part that needs libseccomp (and cffi's C parser), kept apart so the cached path never
imports it.
"""

from __future__ import annotations

import errno
import os

from rootless.errors import RuntimeSetupError
from rootless.runtime import libseccomp
from rootless.runtime.seccomp import MAX_INSTRUCTIONS, OPERATORS, action_value
from rootless.runtime.seccomp_stub import AUDIT_ARCH_X86_64, enosys_stub

SCMP_ARCH_X32 = 0x4000003E  # EM_X86_64 | __AUDIT_ARCH_LE: libseccomp's own token
OPTIMIZE_ABOVE = 32  # runc: libseccomp <= 2.5.4 builds a broken binary tree for 0 rules
_LETS_THROUGH = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def compile_section(section: dict) -> bytes:
    """struct sock_filter[] for the section, the ENOSYS stub first where it applies."""
    ffi, lib = libseccomp.load()
    default = action_value(section["defaultAction"], section.get("defaultErrnoRet"))
    rules = section.get("syscalls") or []
    names = sorted({name for rule in rules for name in rule["names"]})
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise RuntimeSetupError(f"seccomp: libseccomp {libseccomp.version()} refused the "
                                f"default action {section['defaultAction']}")
    try:
        arches = _add_arches(lib, ctx, section.get("architectures") or [])
        if len(names) > OPTIMIZE_ABOVE:
            lib.seccomp_attr_set(ctx, libseccomp.ATTR_CTL_OPTIMIZE, 2)  # a binary tree
        for rule in rules:
            _add_rule(ffi, lib, ctx, rule, default)
        code = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    if needs_stub(section):
        code = enosys_stub(_maxima(lib, arches, names)) + code
    if len(code) // 8 > MAX_INSTRUCTIONS:
        raise RuntimeSetupError(f"seccomp: the profile compiles to {len(code) // 8} BPF "
                                f"instructions, more than the kernel's {MAX_INSTRUCTIONS}")
    return code


def needs_stub(section: dict) -> bool:
    if section["defaultAction"] in _LETS_THROUGH:
        return False
    return not (section["defaultAction"] == "SCMP_ACT_ERRNO"
                and section.get("defaultErrnoRet") == errno.ENOSYS)


def _add_arches(lib, ctx, names: list[str]) -> list[int]:
    """The filter's architecture tokens, native first (libseccomp always has it)."""
    tokens = [int(lib.seccomp_arch_native())]
    for name in names:
        token = int(lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower()
                                                  .encode()))
        if token == 0:
            raise RuntimeSetupError(f"seccomp: architecture {name} is unknown to "
                                    f"libseccomp {libseccomp.version()}")
        rc = lib.seccomp_arch_add(ctx, token)
        if rc == -errno.EEXIST:
            continue
        if rc < 0:
            raise RuntimeSetupError(f"seccomp: add architecture {name}: "
                                    f"{os.strerror(-rc).lower()}")
        tokens.append(token)
    return tokens


def _add_rule(ffi, lib, ctx, rule: dict, default: int) -> None:
    action = action_value(rule["action"], rule.get("errnoRet"))
    if action == default:
        return  # redundant; libseccomp would refuse it
    conditions = [(a["index"], OPERATORS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                  for a in rule.get("args") or []]
    indexes = [c[0] for c in conditions]
    # two conditions on one argument can never both hold: runc makes them alternatives
    groups = ([[c] for c in conditions] if len(set(indexes)) < len(indexes)
              else [conditions])
    for name in rule["names"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr == libseccomp.NR_SCMP_ERROR:
            continue  # newer than this libseccomp, or another architecture's
        for group in groups:
            array = ffi.new("struct scmp_arg_cmp[]", group) if group else ffi.NULL
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
            if rc < 0:
                raise RuntimeSetupError(f"seccomp: rule for {name}: "
                                        f"{os.strerror(-rc).lower()}")


def _export(lib, ctx) -> bytes:
    fd = os.memfd_create("rootless-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise RuntimeSetupError(f"seccomp: export the filter: {os.strerror(-rc).lower()}")
        return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0)
    finally:
        os.close(fd)


def _maxima(lib, arches: list[int], names: list[str]) -> dict[int, dict[str, int]]:
    """The highest syscall number the profile names, per AUDIT_ARCH (x32 apart)."""
    maxima: dict[int, dict[str, int]] = {}
    for token in arches:
        numbers = [lib.seccomp_syscall_resolve_name_arch(token, n.encode()) for n in names]
        top = max((nr for nr in numbers if nr >= 0), default=None)
        if top is None:
            continue  # the profile names nothing on this architecture
        if token == SCMP_ARCH_X32:
            maxima.setdefault(AUDIT_ARCH_X86_64, {})["x32"] = top
        else:
            maxima.setdefault(token, {})["native"] = top
    return maxima


def library_identity() -> list | None:
    """[path, inode, size, mtime] of the libseccomp that compiled, for the cache."""
    path = libseccomp.library_path()
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [path, st.st_ino, st.st_size, st.st_mtime_ns]
