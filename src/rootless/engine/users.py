"""`--user` / the image's User: names and numbers resolved in the image's /etc/passwd.

The lookup happens before the container exists (single-id mode maps the one host id to
the container user's id, so it must be known before the user namespace is made), by
reading the files from the image's layers, topmost first, through openat2 confinement.
"""

from __future__ import annotations

import os
import stat
from typing import NamedTuple
from pathlib import Path

from rootless.errors import RootlessError
from rootless.kernel import constants as k


class UserLookupError(RootlessError):
    pass


class ContainerUser(NamedTuple):
    uid: int
    gid: int
    home: str = "/root"
    additional_gids: tuple[int, ...] = ()


def read_image_file(layer_dirs: list[Path], path: str) -> str | None:
    """The text of `path` as the merged image shows it, or None."""
    from rootless.kernel.syscalls import RealSyscalls

    sys = RealSyscalls()
    resolve = k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS
    for layer in reversed(layer_dirs):
        root = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = sys.openat2(root, path.lstrip("/"), os.O_RDONLY | os.O_CLOEXEC, 0, resolve)
        except OSError:
            continue
        finally:
            os.close(root)
        with os.fdopen(fd, "rb") as f:
            if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return f.read(4 << 20).decode(errors="replace")
            return None  # a whiteout (character device) hides lower layers' file
    return None


def _entries(text: str | None) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines()
            if line and not line.startswith("#") and line.count(":") >= 2]


def resolve_user(layer_dirs: list[Path], spec: str) -> ContainerUser:
    """Docker's rules: `name`, `uid`, `name:group`, `uid:gid`; numbers need no entry."""
    spec = spec or "0"
    user_part, _, group_part = spec.partition(":")
    passwd = _entries(read_image_file(layer_dirs, "/etc/passwd"))
    entry = next((e for e in passwd if user_part in (e[0], e[2])), None)
    if entry is not None and len(entry) >= 4:
        uid, gid, home, name = int(entry[2]), int(entry[3]), (entry[5] if len(entry) > 5
                                                              else "/"), entry[0]
    elif user_part.isdigit():
        uid, gid, home, name = int(user_part), 0, "/", None
    else:
        raise UserLookupError(
            f"unable to find user {user_part}: no matching entries in passwd file")
    groups = _entries(read_image_file(layer_dirs, "/etc/group"))
    if group_part:
        gid = _group_id(groups, group_part)
    extra = [int(g[2]) for g in groups if name and len(g) > 3 and name in g[3].split(",")
             and g[2].isdigit() and int(g[2]) != gid]
    return ContainerUser(uid, gid, home if uid != 0 or home != "/" else "/root", tuple(extra))


def _group_id(groups: list[list[str]], group: str) -> int:
    if group.isdigit():
        return int(group)
    for g in groups:
        if g[0] == group and g[2].isdigit():
            return int(g[2])
    raise UserLookupError(f"unable to find group {group}: no matching entries in group file")
