"""Which filesystem a container's root is: kernel overlayfs, our FUSE overlay, or a copy.

- Kernel overlayfs (Linux >= 5.11 mounts it in a user namespace, `userxattr`) is the
  fastest and the default, where the probe (fs/probe.py) finds that it mounts here.
- Our FUSE overlay (fs/fuse_*.py) where the kernel's is unavailable (older kernels,
  RHEL 8's 4.18; filesystems that refuse to be an upper layer), and in single-id mode
  where the files' recorded owners matter (override_stat, image/layers.py). The kernel
  overlay shows every file as the one mapped id's: a container user other than root
  could write root's files, so such a container gets the FUSE overlay, which shows the
  recorded owners and modes and enforces them (fs/fuse_access.py). Root bypasses the
  owners anyway; what the kernel overlay loses for root is what files *do*: setuid and
  setgid programs (su, passwd, chage) and device nodes. So a root container gets the
  FUSE overlay when its image records setuid/setgid bits or devices, and keeps the
  kernel overlay otherwise (busybox, whose /home/user alone belongs to 1000: `run --rm
  busybox true` stays fast), its other owners reading as root there.
- A private copy of the layers where neither mounts (no /dev/fuse access).

Asked for either way: `--storage-opt overlay=fuse|kernel` (store/options.py),
ROOTLESS_OVERLAY=fuse|kernel, or ROOTLESS_ROOTFS=overlay|fuse|copy (tests). Whether a
layer records owners is found once by a scan of its records and kept, per chain id
(a layer's content never changes), in <store>/layer-owners.json.
"""

from __future__ import annotations

import os
import stat

from rootless import jsonfast
from rootless.records import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `run` does without pathlib and collections
    from collections.abc import Sequence
    from pathlib import Path

OWNERS_CACHE = "layer-owners.json"
_NAMES = {"fuse": "fuse", "kernel": "overlay", "overlay": "overlay", "copy": "copy"}


@record
class Strategy:
    name: str  # "overlay" (the kernel's) | "fuse" | "copy"
    reason: str


def requested() -> Strategy | None:
    """The rootfs asked for by option or environment, if any."""
    from rootless.store.options import storage_options

    choice = storage_options().get("overlay")
    if choice:
        return Strategy(_NAMES[choice], f"set by --storage-opt overlay={choice}")
    for var in ("ROOTLESS_OVERLAY", "ROOTLESS_ROOTFS"):
        value = os.environ.get(var, "")
        if value in _NAMES and (var == "ROOTLESS_ROOTFS" or value in ("fuse", "kernel")):
            return Strategy(_NAMES[value], f"set by {var}={value}")
    return None


def choose_strategy(store_root: Path, layer_dirs: Sequence[Path] = (), uid: int = 0,
                    single_id: bool = False, strict: bool = False) -> Strategy:
    """The rootfs of a container of these layers run as `uid` (in single-id mode or
    not); with no layers and uid 0, what an ordinary root container gets. `strict`: a
    FUSE overlay asked for where it cannot serve is an error (else it is reported)."""
    forced = requested()
    if forced is not None:
        if forced.name == "fuse" and strict:
            ok, why = fuse_usable(store_root)
            if not ok:
                from rootless.errors import RootlessError

                raise RootlessError(f"the FUSE overlay was asked for ({forced.reason}), "
                                    f"but {why}")
        return forced
    kernel_ok, kernel_reason = kernel_overlay(store_root)
    if kernel_ok:
        why = owners_matter(store_root, layer_dirs, uid) if single_id else ""
        if not why:
            return Strategy("overlay", kernel_reason)
        fuse_ok, fuse_reason = fuse_usable(store_root)
        if fuse_ok:
            return Strategy("fuse", f"single-id mode and {why}: the FUSE overlay shows "
                                    "and enforces the recorded owners")
        return Strategy("overlay", f"{kernel_reason} ({why}, but {fuse_reason})")
    fuse_ok, fuse_reason = fuse_usable(store_root)
    if fuse_ok:
        return Strategy("fuse", f"{kernel_reason}; the FUSE overlay serves instead")
    return Strategy("copy", f"{kernel_reason}; and {fuse_reason}")


def kernel_overlay(store_root: Path) -> tuple[bool, str]:
    from rootless.kernel.floor import kernel_release

    version, release = kernel_release()  # the floor's, where one is set
    if version < (5, 11):
        return False, f"kernel {release} < 5.11: no overlayfs in user namespaces"
    from rootless.fs.probe import overlay_works

    return overlay_works(store_root)


def fuse_usable(store_root: Path) -> tuple[bool, str]:
    """Whether our FUSE overlay can serve here, and why not."""
    from rootless.kernel.floor import kernel_release

    version, release = kernel_release()
    if version < (4, 18):
        return False, f"kernel {release} < 4.18: no FUSE mounts in user namespaces"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "no FUSE: /dev/fuse is missing or not readable and writable"
    import importlib.util

    if importlib.util.find_spec("pyfuse3") is None:
        return False, "no FUSE: the pyfuse3 module is not installed"
    from rootless.fs.probe import fuse_works

    return fuse_works(store_root)


OWNERS, SPECIAL = 1, 2  # a layer's records: owners other than 0:0; setuid/setgid, devices


def owners_matter(store_root: Path, layer_dirs: Sequence[Path], uid: int) -> str:
    """Why the recorded owners decide what this container may do ("" if they do not)."""
    if uid != 0:
        return f"the container's user is {uid}, not root"
    if layer_dirs and any(flags & SPECIAL for flags in
                          layer_records(store_root, layer_dirs).values()):
        return "the image records setuid/setgid programs or device nodes"
    return ""


def layer_records(store_root: Path, layer_dirs: Sequence[Path]) -> dict[str, int]:
    """{chain id: OWNERS|SPECIAL flags of the layer's records}, scanned once per layer."""
    cache_path = os.path.join(store_root, OWNERS_CACHE)
    try:
        with open(cache_path) as f:
            cache = jsonfast.loads(f.read())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    result, new = {}, False
    for layer in layer_dirs:
        chain = os.path.basename(layer)
        if type(cache.get(chain)) is not int:
            cache[chain] = scan_records(str(layer))
            new = True
        result[chain] = cache[chain]
    if new:
        _write_cache(store_root, cache_path, cache)
    return result


def _write_cache(store_root: str | Path, path: str, cache: dict) -> None:
    from rootless.store.temp import TempOwner

    try:
        with TempOwner(store_root) as owner:
            tmp = owner.path("owners")
            tmp.write_text(jsonfast.dumps(cache))
            os.replace(tmp, path)
    except OSError:
        pass  # scanned again next time


def scan_records(layer: str) -> int:
    """OWNERS|SPECIAL: what the layer's records hold (stopping once both are found).
    A directory we cannot read (mode 000 in the image) is skipped."""
    from rootless.kernel.override import OVERRIDE_XATTR, parse_override

    flags = 0
    try:
        with open(layer.rstrip("/") + ".xattrs.json") as f:  # records the fs refused
            sidecar = jsonfast.loads(f.read())
        for value in sidecar.values():
            if isinstance(value, dict):
                flags |= _flags(parse_override(value.get(OVERRIDE_XATTR)), False)
    except (OSError, ValueError, AttributeError):
        pass
    stack = [layer]
    while stack and flags != OWNERS | SPECIAL:
        path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                continue
            try:
                raw = os.getxattr(entry.path, OVERRIDE_XATTR, follow_symlinks=False)
            except OSError:
                raw = None
            if raw is not None:
                flags |= _flags(parse_override(raw.decode(errors="replace")), is_dir)
            if is_dir:
                stack.append(entry.path)
    return flags


def _flags(record: tuple | None, is_dir: bool) -> int:
    if record is None:
        return 0
    uid, gid, mode, kind, _ = record
    setid = mode & (stat.S_ISUID if is_dir else stat.S_ISUID | stat.S_ISGID)
    return (OWNERS if uid or gid else 0) | (SPECIAL if setid or kind else 0)
