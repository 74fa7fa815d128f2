"""runc's ENOSYS stub (libcontainer/seccomp/patchbpf), laid out plainly, in front of
libseccomp's program: per architecture, a syscall numbered above the highest one the
profile names returns ENOSYS; everything else falls through to the filter. Used only when
a profile is compiled (runtime/seccomp_compile.py), never on a cached `run`.
"""

from __future__ import annotations

import errno
import struct

from rootless.runtime.seccomp import ACTIONS

# classic BPF opcodes (linux/filter.h) and struct seccomp_data offsets
LD_W_ABS, JA, JEQ_K, JGT_K, JSET_K, RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
DATA_NR, DATA_ARCH = 0, 4
RET_ENOSYS = ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390, AUDIT_ARCH_S390X = 0x00000016, 0x80000016
X32_SYSCALL_BIT = 0x40000000
_FILTER, _ENOSYS = "filter", "enosys"


def enosys_stub(maxima: dict[int, dict[str, int]]) -> bytes:
    """The stub for `maxima`, {AUDIT_ARCH: {"native": highest number}}; that of x86-64
    may hold "x32" too (x32 numbers have bit 30 set and a table of their own)."""
    asm = _Assembler()
    asm.op(LD_W_ABS, DATA_ARCH)
    for arch in maxima:
        asm.op(JEQ_K, arch, jt=f"arch{arch}")
    asm.op(JA, _FILTER)
    for arch, top in maxima.items():
        asm.label(f"arch{arch}")
        asm.op(LD_W_ABS, DATA_NR)
        if arch in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            # an unknown large syscall number reaches the filter as setup(2), number 0
            asm.op(JEQ_K, 0, jt=_ENOSYS)
        if arch == AUDIT_ARCH_X86_64:
            # x32 calls are x86-64 calls with bit 30 set, numbered on their own
            asm.op(JSET_K, X32_SYSCALL_BIT, jt=f"x32{arch}" if "x32" in top else _FILTER,
                   jf=None if "native" in top else _FILTER)
        if "native" in top:
            asm.op(JGT_K, top["native"], jt=_ENOSYS)
            asm.op(JA, _FILTER)
        if "x32" in top:
            asm.label(f"x32{arch}")
            asm.op(JGT_K, top["x32"], jt=_ENOSYS)
            asm.op(JA, _FILTER)
    asm.label(_ENOSYS)
    asm.op(RET_K, RET_ENOSYS)
    asm.label(_FILTER)
    return asm.assemble()


class _Assembler:
    """Forward jumps to labels; the stub is far shorter than a conditional jump's 255."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, object]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def op(self, code: int, k: object = 0, jt: object = None, jf: object = None) -> None:
        self.code.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        out = []
        for i, (code, jt, jf, k) in enumerate(self.code):
            if code == JA:
                k = self._offset(i, k, limit=2**32 - 1)
            out.append(struct.pack("=HBBI", code, self._offset(i, jt), self._offset(i, jf),
                                   k))
        return b"".join(out)

    def _offset(self, i: int, target: object, limit: int = 255) -> int:
        if target is None:
            return 0
        offset = self.labels[target] - i - 1  # type: ignore[index]
        assert 0 <= offset <= limit, (target, offset)
        return offset
