"""Does kernel overlayfs work here, for this user, on this store's filesystem?

The kernel version alone does not tell: Linux >= 5.11 allows overlayfs in a user
namespace, but an NFS or Lustre home refuses to be an upper layer, and some distributions
disable it. So a child process tries the real thing once, in a throwaway user and mount
namespace, on directories inside the store; the answer is cached per kernel release.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CACHE_NAME = "overlay-probe.json"


def overlay_works(store_root: Path) -> tuple[bool, str]:
    cache = store_root / CACHE_NAME
    release = os.uname().release
    try:
        cached = json.loads(cache.read_text())
        if cached.get("kernel") == release:
            return bool(cached["ok"]), str(cached["reason"])
    except (OSError, ValueError, KeyError):
        pass
    # in the store's tmp/, owned as every temporary entry is (store/temp.py): what a
    # probe killed midway leaves (overlayfs makes work/work mode 000) a later command removes
    from rootless.store.temp import TempOwner

    with TempOwner(store_root) as owner:
        ok, reason = _probe(owner.path("probe"))
        tmp = owner.path("probe.json")
        try:
            tmp.write_text(json.dumps({"kernel": release, "ok": ok, "reason": reason}))
            os.replace(tmp, cache)
        except OSError:
            pass
    return ok, reason


def _probe(base: Path) -> tuple[bool, str]:
    from rootless.kernel.remove import rmtree_owned

    base.mkdir(mode=0o700)
    try:
        return _probe_in(base)
    finally:
        try:
            rmtree_owned(base)
        except OSError:
            pass


def _probe_in(base: Path) -> tuple[bool, str]:
    for name in ("lower", "upper", "work", "merged"):
        (base / name).mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(base, w)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return True, "kernel overlayfs mounts in a user namespace on this store"
    return False, f"kernel overlayfs refused here: {message or 'probe failed'}"


def _child(base: Path, w: int) -> None:
    code = 1
    try:
        from rootless.kernel import constants as k
        from rootless.kernel.syscalls import RealSyscalls

        sys = RealSyscalls()
        uid, gid = os.getuid(), os.getgid()
        sys.unshare(k.CLONE_NEWUSER | k.CLONE_NEWNS)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                           ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        sys.mount(None, "/", None, k.MS_REC | k.MS_PRIVATE)
        sys.mount("overlay", str(base / "merged"), "overlay", 0,
                  f"lowerdir={base / 'lower'},upperdir={base / 'upper'},"
                  f"workdir={base / 'work'},userxattr")
        code = 0
    except OSError as e:
        os.write(w, (e.strerror or str(e)).lower().encode())
    finally:
        os._exit(code)
