# The C shim (csrc/) is compiled by cffi in API mode when the package is built; setup.py
# exists because setuptools reads `cffi_modules` from setup() arguments, and to build the
# static exec helper (csrc/exec_helper.c, see its header) next to the shim.
import os
import shlex
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

HELPER_SOURCE = "csrc/exec_helper.c"
HELPER_NAME = "_exec_helper"  # rootless/_exec_helper, found by rootless.runtime.helper


class BuildExtWithHelper(build_ext):
    """build_ext, plus the static helper written where the extensions go: into the
    source tree for `pip install -e` (inplace), else into the build directory."""

    def run(self) -> None:
        super().run()
        package_dir = os.path.dirname(self.get_ext_fullpath("rootless." + HELPER_NAME))
        os.makedirs(package_dir, exist_ok=True)
        target = os.path.join(package_dir, HELPER_NAME)
        # -static: it runs inside containers whose libc is the image's (or none)
        command = [*shlex.split(os.environ.get("CC", "gcc")), "-static", "-Os", "-s",
                   "-Wall", "-o", target + ".tmp", HELPER_SOURCE]
        print(" ".join(command))
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"building the exec helper failed ({e}): it needs gcc and a "
                             "static C library (Debian: libc6-dev)") from e
        os.replace(target + ".tmp", target)


# bin/rootless is installed as a script rather than generated from an entry point: pip's
# wrapper imports `re` (with enum, functools, collections: ~4 ms of every command).
setup(cffi_modules=["csrc/build_shim.py:ffibuilder"],
      scripts=["bin/rootless"],
      cmdclass={"build_ext": BuildExtWithHelper})
