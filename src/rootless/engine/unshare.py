"""Run a little Python as "root" in a user namespace with this user's full id map.

Files that a container created as a subordinate id (range mode) belong on the host to
ids we do not own; only inside a namespace with the same map can we remove them, as
`podman unshare rm -rf` does. The removal there is the same descriptor-based remover
as everywhere (kernel/remove.py): a container still running can swap a symlink into
the tree, and "root" in the namespace may write wherever the user's ids may.
"""

from __future__ import annotations

import os
from pathlib import Path

from rootless.errors import StoreError
from rootless.kernel import constants as k
from rootless.kernel.idmap import detect_maps, write_maps
from rootless.kernel.syscalls import RealSyscalls


def rmtree_in_userns(path: Path) -> None:
    """Remove a tree whose files subordinate ids own, as root of a user namespace with
    this user's id map (the same remover, by descriptor)."""
    def remove() -> None:
        from rootless.kernel.remove import rmtree_owned

        rmtree_owned(path)

    try:
        call_in_userns(remove)
    except StoreError as e:
        raise StoreError(f"cannot remove {path}: {e}") from None
    if os.path.lexists(path):
        raise StoreError(f"cannot remove {path}: permission denied")


def call_in_userns(work) -> None:
    """Run `work()` in a forked child that is root of a new user namespace with this
    user's id map: there, files that subordinate ids own show their container ids and
    can be read (CAP_DAC_READ_SEARCH over every mapped id), and our own mode-000 files
    too. The child shares this process's descriptors (it may write to stdout or to an
    open file). A RootlessError (or OSError) in it is raised here again, one line."""
    import sys

    from rootless import errors

    sys.stdout.flush()
    maps = detect_maps()
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(ready_r)
        _work_child(work, go_r, ready_w)
    os.close(go_r)
    os.close(ready_w)
    try:
        reply = os.read(ready_r, 1)
        if reply == b"U":
            write_maps(pid, maps)
            os.write(go_w, b"M")
            reply = b""
        while chunk := os.read(ready_r, 4096):
            reply += chunk
    finally:
        os.close(go_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    if reply:
        kind, _, message = reply.decode(errors="replace").partition("\n")
        error = getattr(errors, kind, None)
        if not (isinstance(error, type) and issubclass(error, errors.RootlessError)):
            error = StoreError
        raise error((message.splitlines() or ["failed"])[0])
    if status != 0:
        raise StoreError(f"the user-namespace helper process failed (status {status})")


def _work_child(work, go_r: int, ready_w: int) -> None:
    from rootless.errors import RootlessError

    reply = ""
    try:
        RealSyscalls().unshare(k.CLONE_NEWUSER)
        os.write(ready_w, b"U")
        if os.read(go_r, 1) != b"M":
            os._exit(1)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        work()
    except RootlessError as e:
        reply = f"{type(e).__name__}\n{e}"
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        reply = f"StoreError\n{(e.strerror or str(e)).lower()}{where}"
    except BaseException as e:  # never a traceback from the child
        reply = f"StoreError\n{type(e).__name__}: {e}".lower()
    finally:
        try:
            import sys

            sys.stdout.flush()
        except Exception:
            pass
        if reply:
            os.write(ready_w, reply.encode()[:1000])
        os._exit(0)
