"""The overlay rootfs on kernels without fsconfig's `lowerdir+` (before Linux 6.8).

There every lower layer goes into one `lowerdir=top:...:base` option string, and
mount(2) copies at most one page of options (4096 bytes with the NUL): with store paths
like /home/someone/.local/share/rootless/layers/<64 hex> (~110 bytes each) about 35
layers fit, and a path holding ':' or ',' cannot be written at all (overlayfs splits the
string on them). Docker's overlay2 driver and containers-storage answer both with a
directory of short links, `layers/l/<26 characters>` -> `../<layer>`, and mount from
inside it: overlayfs resolves relative lowerdirs against the caller's working
directory at mount time (Documentation/filesystems/overlayfs.rst), so a layer costs 27
bytes and ~140 fit. Podman's image limit, 128 layers, follows from the same page.

A link's name is a hash of its layer directory's name (base32 of SHA-256, cut to 26
characters, the length containers-storage uses), so every process finds or makes the
same one without keeping a record. Links are made only when the plain string does not
fit (a container's init does it, before the mount, in the store the layers are in),
each atomically (a symlink under a temporary name, then rename(2)), checked before it
is used, and removed with their layer (engine/images.py). Layers outside that
directory (an image with no layers gets an empty one of the container's) stay absolute.
"""

from __future__ import annotations

import os

from rootless.errors import RuntimeSetupError
from rootless.kernel.syscalls import Syscalls

PAGE = 4096  # the most mount(2) copies of its data string, NUL included
LINK_DIR = "l"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def short_name(layer: str) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(os.fsencode(layer)).digest()
    return base64.b32encode(digest).decode()[:26]


def _options(lower: list[str], upper: str, work: str) -> str:
    return f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work},userxattr"


def _unwritable(path: str) -> bool:
    return ":" in path or "," in path


def mount_overlay(sys: Syscalls, step) -> None:
    """mount(2) of the overlay `step` (a plan.MountOverlay) with one options string,
    through short links where the layers' paths do not fit in it as they are."""
    for path in (step.upper, step.work):
        if _unwritable(path):
            raise RuntimeSetupError(f"mount overlay: the path {path} holds ':' or ',', which "
                                    "this kernel's overlay options cannot carry (Linux 6.8 "
                                    "can; or move the store with --root)")
    data = _options(list(step.lower), step.upper, step.work)
    if len(data) < PAGE and not any(_unwritable(p) for p in step.lower):
        sys.mount("overlay", step.target, "overlay", 0, data)
        return
    parent = os.path.dirname(step.lower[-1])  # the base layer's: the image's store
    links = os.path.join(parent, LINK_DIR)
    try:
        lfd = _links_dir(links)
    except OSError as e:
        raise RuntimeSetupError(_refusal(step, _unmade(links, e))) from e
    try:
        try:
            lower = [_linked(lfd, p) if os.path.dirname(p) == parent else p
                     for p in step.lower]
        except OSError as e:
            raise RuntimeSetupError(_refusal(step, _unmade(links, e))) from e
        data = _options(lower, step.upper, step.work)
        if len(data) >= PAGE or any(_unwritable(p) for p in lower):
            raise RuntimeSetupError(_refusal(step, "even as short links"))
        _mount_from(sys, lfd, step.target, data)
    finally:
        os.close(lfd)


def _unmade(links: str, e: OSError) -> str:
    return f"and their short links in {links} could not be made: " \
           f"{os.strerror(e.errno or 0).lower()}"


def _refusal(step, reason: str) -> str:
    odd = [p for p in step.lower if _unwritable(p)]
    if odd:
        return (f"mount overlay: the path {odd[0]} holds ':' or ',', which this kernel's "
                f"overlay options cannot carry, {reason} (Linux 6.8 can; or move the "
                "store with --root)")
    return (f"mount overlay: {len(step.lower)} layers are too many for this kernel's overlay "
            f"options, {reason} (Linux 6.8 lifts the limit; a shorter store path with "
            "--root helps)")


def _links_dir(path: str) -> int:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return os.open(path, _DIR)


def _linked(lfd: int, layer: str) -> str:
    """The short link to `layer` in the links directory, made or repaired if needed."""
    name = os.path.basename(layer)
    link, target = short_name(name), f"../{name}"
    try:
        os.symlink(target, link, dir_fd=lfd)
        return link
    except FileExistsError:
        pass
    try:
        if os.readlink(link, dir_fd=lfd) == target:
            return link
    except OSError:  # not a symlink
        pass
    tmp = f".{link}.{os.getpid()}"
    try:
        os.unlink(tmp, dir_fd=lfd)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp, dir_fd=lfd)
    os.replace(tmp, link, src_dir_fd=lfd, dst_dir_fd=lfd)
    return link


def _mount_from(sys: Syscalls, lfd: int, target: str, data: str) -> None:
    """Mount with the links directory as the working directory, then return to ours."""
    try:
        here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        here = None  # a working directory removed under us: nothing to return to
    os.fchdir(lfd)
    try:
        sys.mount("overlay", target, "overlay", 0, data)
    finally:
        if here is not None:
            os.fchdir(here)
            os.close(here)


def short_link_remove(layers_dir: str, layer: str) -> None:
    """Remove the short link of the layer directory named `layer`, if it has one."""
    link = os.path.join(layers_dir, LINK_DIR, short_name(layer))
    try:
        if os.readlink(link) == f"../{layer}":
            os.unlink(link)
    except OSError:
        pass
