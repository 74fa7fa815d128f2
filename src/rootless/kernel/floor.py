"""A kernel floor for testing the fallbacks (DESIGN.md, principle 8).

`ROOTLESS_KERNEL_FLOOR=4.18` makes the code that uses newer kernel calls behave as on
RHEL 8's kernel: each call names the release that brought it, and is treated as
missing (ENOSYS) when that release is above the floor. Unset: the running kernel's
calls are used as they are.
"""

from __future__ import annotations

import os


def kernel_floor() -> tuple[int, int] | None:
    text = os.environ.get("ROOTLESS_KERNEL_FLOOR", "")
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def below_floor(introduced: tuple[int, int]) -> bool:
    """Whether a call brought by Linux `introduced` is missing under the floor."""
    floor = kernel_floor()
    return floor is not None and introduced > floor
