"""libseccomp through cffi's ABI mode: `ffi.dlopen("libseccomp.so.2")`, no headers.

The shim (csrc/) is built in cffi's API mode and would need libseccomp's headers at
build time; the seccomp compiler needs libseccomp only when a profile is not yet in the
compile cache, so it gets a small FFI of its own, declared from libseccomp's stable
ABI (seccomp.h of libseccomp >= 2.5, the version with SCMP_ACT_NOTIFY and the binary
tree optimizer). Importing cffi's C parser costs ~25 ms: nothing here is imported on a
`rootless run` whose filter is cached.
"""

from __future__ import annotations

import functools

from rootless.errors import RuntimeSetupError

SONAME = "libseccomp.so.2"

_CDEF = """
typedef void *scmp_filter_ctx;
struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
const struct scmp_version *seccomp_version(void);
unsigned int seccomp_api_get(void);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
"""

# enum scmp_filter_attr (seccomp.h)
ATTR_CTL_OPTIMIZE = 8
NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: the name is unknown to libseccomp


@functools.cache
def load():
    """(ffi, lib), or RuntimeSetupError naming the missing library."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    try:
        lib = ffi.dlopen(SONAME)
    except OSError as e:
        raise RuntimeSetupError(
            f"seccomp: cannot load {SONAME} ({e}); install libseccomp (Debian: "
            "libseccomp2) or run with --security-opt seccomp=unconfined") from e
    return ffi, lib


def version() -> str:
    _, lib = load()
    v = lib.seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"


def api_level() -> int:
    """libseccomp's API level: 6 and above can build SCMP_ACT_NOTIFY filters."""
    return int(load()[1].seccomp_api_get())


def library_path() -> str | None:
    """Where the loaded libseccomp lives (from /proc/self/maps), so a cached program
    can tell when the library under it was replaced."""
    load()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rstrip("\n").split(None, 5)[-1]
                if "/libseccomp.so" in path and path.startswith("/"):
                    return path
    except OSError:
        pass
    return None
