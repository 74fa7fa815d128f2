"""Does kernel overlayfs work here, for this user, on this store's filesystem? And may
this user mount a FUSE filesystem in a user namespace?

The kernel version alone does not tell: Linux >= 5.11 allows overlayfs in a user
namespace, but an NFS or Lustre home refuses to be an upper layer, and some distributions
disable it; a container sandbox may hand out /dev/fuse and still refuse the mount
(seccomp, LSMs). So a child process tries the real thing once, in a throwaway user and
mount namespace, on directories inside the store; the answer is cached per kernel
release (and per kernel floor, which makes the kernel look older).
"""

from __future__ import annotations

import os

from rootless import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` reads the cache without pathlib
    from pathlib import Path

CACHE_NAME = "overlay-probe.json"
FUSE_CACHE_NAME = "fuse-probe.json"


def overlay_works(store_root: Path) -> tuple[bool, str]:
    return _cached(store_root, CACHE_NAME, "overlay")


def fuse_works(store_root: Path) -> tuple[bool, str]:
    """May a FUSE filesystem be mounted in a user namespace here (Linux 4.18)?"""
    return _cached(store_root, FUSE_CACHE_NAME, "fuse")


def _cached(store_root: Path, name: str, kind: str) -> tuple[bool, str]:
    cache = os.path.join(store_root, name)
    release = os.uname().release + os.environ.get("ROOTLESS_KERNEL_FLOOR", "")
    try:
        with open(cache) as f:
            cached = jsonfast.loads(f.read())
        if cached.get("kernel") == release:
            return bool(cached["ok"]), str(cached["reason"])
    except (OSError, ValueError, KeyError):
        pass
    # in the store's tmp/, owned as every temporary entry is (store/temp.py): what a
    # probe killed midway leaves (overlayfs makes work/work mode 000) a later command removes
    from rootless.store.temp import TempOwner

    with TempOwner(store_root) as owner:
        ok, reason = _probe(owner.path("probe"), kind)
        tmp = owner.path("probe.json")
        try:
            tmp.write_text(jsonfast.dumps({"kernel": release, "ok": ok, "reason": reason}))
            os.replace(tmp, cache)
        except OSError:
            pass
    return ok, reason


def _probe(base: Path, kind: str) -> tuple[bool, str]:
    from rootless.kernel.remove import rmtree_owned

    base.mkdir(mode=0o700)
    try:
        return _probe_in(base, kind)
    finally:
        try:
            rmtree_owned(base)
        except OSError:
            pass


def _probe_in(base: Path, kind: str) -> tuple[bool, str]:
    for name in ("lower", "upper", "work", "merged"):
        (base / name).mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(base, w, kind)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    if kind == "fuse":
        return ok, ("FUSE mounts in a user namespace" if ok else
                    f"no FUSE: a FUSE mount in a user namespace was refused: "
                    f"{message or 'probe failed'}")
    if ok:
        return True, "kernel overlayfs mounts in a user namespace on this store"
    return False, f"kernel overlayfs refused here: {message or 'probe failed'}"


def _child(base: Path, w: int, kind: str) -> None:
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
        if kind == "fuse":  # mounted, never served: the namespace takes it at exit
            fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
            sys.mount("rootless-probe", str(base / "merged"), "fuse", 0,
                      f"fd={fd},rootmode=40000,user_id=0,group_id=0")
        else:
            sys.mount("overlay", str(base / "merged"), "overlay", 0,
                      f"lowerdir={base / 'lower'},upperdir={base / 'upper'},"
                      f"workdir={base / 'work'},userxattr")
        code = 0
    except OSError as e:
        os.write(w, (e.strerror or str(e)).lower().encode())
    finally:
        os._exit(code)
