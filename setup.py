# The C shim (csrc/) is compiled by cffi in API mode when the package is built; setup.py
# exists only because setuptools reads `cffi_modules` from setup() arguments.
from setuptools import setup

setup(cffi_modules=["csrc/build_shim.py:ffibuilder"])
