"""A minimal pid 1 (docker's --init, tini's job): reap zombies, forward signals.

It runs in the interpreter forked from the runtime, which was made non-dumpable before it
entered the container, so no container process can reach it through /proc/1/exe.
"""

from __future__ import annotations

import os
import signal

_UNFORWARDABLE = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}


def serve_as_init(child: int) -> None:
    """Never returns: exits with the child's status once it has gone."""

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in signal.valid_signals():
        if sig not in _UNFORWARDABLE:
            try:
                signal.signal(sig, forward)
            except (OSError, ValueError):
                pass
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status)
                     else os.WEXITSTATUS(status))
