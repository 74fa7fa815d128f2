"""Running the engine's trio code from the synchronous commands."""

from __future__ import annotations

import trio


def run_unwrapped(async_fn, *args):
    """trio.run, raising the first error of a task group itself (one line for the
    user, not a group); Ctrl-C stays KeyboardInterrupt."""
    try:
        return trio.run(async_fn, *args)
    except BaseExceptionGroup as group:
        interrupted, rest = group.split(KeyboardInterrupt)
        if interrupted:
            raise KeyboardInterrupt from None
        first = rest
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
