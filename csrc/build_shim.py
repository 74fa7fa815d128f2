"""cffi API-mode build of the C shim; run by setuptools (see setup.py)."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
# cdef takes the declarations without preprocessor lines.
ffibuilder.cdef(
    "\n".join(
        line
        for line in (HERE / "shim.h").read_text().splitlines()
        if not line.startswith("#")
    )
    + "\n"
)
ffibuilder.set_source(
    "rootless._shim",
    '#include "shim.h"',
    # setuptools insists on paths relative to the project root.
    sources=["csrc/shim.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
