"""`--user`, the image's User and `--group-add`: names and numbers, resolved in the
image's /etc/passwd and /etc/group.

The lookup happens before the container exists (single-id mode maps the one host id to
the container user's id, so it must be known before the user namespace is made). Every
value may be an attacker's (DESIGN.md, principle 7), so:

- A number is an id, never a name: `-u 1000` takes the passwd line whose uid is 1000
  (for its gid, home and groups), never a line NAMED `1000`; a numeric group is a gid.
  Only plain ASCII decimal digits make a number, from 0 to 4294967294: 4294967295 is -1
  to setresuid(2) ("leave unchanged"), which would leave the container root.
- A value that is neither a number nor a plausible name ('-1', '+1', ' 1', '0x10',
  '1e3', another script's digits, all of which Python's int() or str.isdigit() partly
  accept) is refused, never looked up. So is a passwd or group line we use whose id
  field is not a valid id.
- /etc/passwd and /etc/group are read as the container will see them: the layers
  merged by the one resolver (kernel/paths.open_in_layers: whiteouts and opaque
  directories honoured, symlinks resolved inside the image, never on the host), and
  only when the result is a regular file (a FIFO would block the read forever; a faked
  device, an override_stat record of image/layers.py, counts as a device) of at most
  MAX_FILE bytes. Anything else refuses the run, naming the file.
"""

from __future__ import annotations

import errno
import os
import stat

from rootless.errors import RootlessError
from rootless.kernel.idmap import ID_RANGE, MAX_ID, parse_id, valid_id
from rootless.records import record

MAX_FILE = 4 << 20  # far above any real passwd (10,000 users take ~1 MiB)
_KINDS = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
          stat.S_IFBLK: "block device", stat.S_IFDIR: "directory"}


class UserLookupError(RootlessError):
    pass


@record
class ContainerUser:
    uid: int
    gid: int
    home: str = "/root"
    additional_gids: tuple[int, ...] = ()


def name_or_id(text: str, what: str) -> int | str:
    """A user or group as given: an id (int) or a name (str); refused when it is
    neither, or a number that is no id."""
    number = parse_id(text)
    if number is not None:
        if not valid_id(number):
            raise UserLookupError(f"invalid {what} id {text}: {ID_RANGE}")
        return number
    first = text[:1]
    if (not text or first in "+-" or first.isdigit() or first.isnumeric()
            or not text.isprintable() or any(c.isspace() for c in text)):
        raise UserLookupError(f"invalid {what} {text!r}: neither a {what} name nor a "
                              f"decimal id from 0 to {MAX_ID}")
    return text


def parse_user(spec: str) -> tuple[int | str, int | str | None]:
    """`-u`/User: (user, group or None), each checked by name_or_id."""
    user_part, sep, group_part = (spec or "0").partition(":")
    user = name_or_id(user_part or "0", "user")
    return user, (name_or_id(group_part, "group") if sep else None)


def resolve_user(layer_dirs: list[str], spec: str, group_add: tuple[str, ...] = (),
                 root_fd: int | None = None) -> ContainerUser:
    """Docker's rules: `name`, `uid`, `name:group`, `uid:gid`; numbers need no entry;
    the user's groups in /etc/group, then each of `group_add`, are supplementary. The
    files are the image's (its layers merged), or with `root_fd` those of a mounted
    root (a running container's, for exec)."""
    user, group = parse_user(spec)
    added = [name_or_id(g, "group") for g in group_add]

    def read(path: str) -> str | None:
        if root_fd is not None:
            return read_root_file(root_fd, path)
        return read_image_file(layer_dirs, path)

    passwd = _entries(read("/etc/passwd"), 4)
    groups = _entries(read("/etc/group"), 3)
    uid, gid, home, name = _passwd_user(passwd, user)
    if group is not None:
        gid = _group_id(groups, group)
    member_of = [_line_id(g, 2, "group", "gid") for g in groups
                 if name and len(g) > 3 and name in g[3].split(",")]
    extra = [g for g in member_of if g != gid] + [_group_id(groups, g) for g in added]
    return ContainerUser(uid, gid, home if uid != 0 or home != "/" else "/root",
                         tuple(dict.fromkeys(extra)))


def _passwd_user(passwd: list[list[str]], user: int | str) -> tuple[int, int, str, str | None]:
    """(uid, gid, home, name) of the user: by uid for a number, by name for a name."""
    if isinstance(user, int):
        entry = next((e for e in passwd if parse_id(e[2]) == user), None)
        if entry is None:
            return user, 0, "/", None
    else:
        entry = next((e for e in passwd if e[0] == user), None)
        if entry is None:
            raise UserLookupError(
                f"unable to find user {user}: no matching entries in passwd file")
    home = entry[5] if len(entry) > 5 else "/"
    return _line_id(entry, 2, "passwd", "uid"), _line_id(entry, 3, "passwd", "gid"), home, \
        entry[0]


def _group_id(groups: list[list[str]], group: int | str) -> int:
    if isinstance(group, int):
        return group
    for g in groups:
        if g[0] == group:
            return _line_id(g, 2, "group", "gid")
    raise UserLookupError(f"unable to find group {group}: no matching entries in group file")


def _line_id(entry: list[str], index: int, file: str, what: str) -> int:
    value = parse_id(entry[index])
    if value is None or not valid_id(value):
        raise UserLookupError(f"the image's /etc/{file} gives {entry[0]!r} the invalid "
                              f"{what} {entry[index]!r}: {ID_RANGE}")
    return value


def _entries(text: str | None, fields: int) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines()
            if line and not line.startswith("#") and line.count(":") >= fields - 1]


# ---- reading the image's files ----

def read_image_file(layer_dirs: list[str], path: str) -> str | None:
    """The text of `path` as the container will see it (the layers merged), or None
    where the image has none. Refused unless a regular file of at most MAX_FILE bytes.
    Files of subordinate ids that the user may not read (an image's 0600 passwd, a
    0700 /etc) are read again as root of the storage namespace (kernel/storage_ns.py),
    as the container's root would read them."""
    try:
        return _read_image_file(layer_dirs, path)
    except UserLookupError as e:
        from rootless.kernel import storage_ns

        if not isinstance(e.__cause__, PermissionError) or storage_ns.inside() \
                or storage_ns.storage_ids() is None:
            raise
        return storage_ns.call_as_root(_read_image_file, layer_dirs, path)


def _read_image_file(layer_dirs: list[str], path: str) -> str | None:
    from rootless.kernel.paths import open_in_layers

    fds: list[int] = []
    try:
        for layer in reversed(layer_dirs):  # topmost first, as overlayfs's lowerdir
            fds.append(os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        try:
            fd = open_in_layers(fds, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return _read_regular(fd, path)
        finally:
            os.close(fd)
    except OSError as e:
        raise UserLookupError(f"cannot read the image's {path}: "
                              f"{(e.strerror or str(e)).lower()}") from e
    finally:
        for fd in fds:
            os.close(fd)


def read_root_file(root_fd: int, path: str) -> str | None:
    """read_image_file of a mounted root (a descriptor of its "/"), resolved in it by
    the one resolver: a symlink in it never leads out, whatever the container made."""
    from rootless.kernel.paths import open_in_root

    try:
        try:
            fd = open_in_root(root_fd, path.lstrip("/"), os.O_PATH)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return _read_regular(fd, path)
        finally:
            os.close(fd)
    except OSError as e:
        raise UserLookupError(f"cannot read the container's {path}: "
                              f"{(e.strerror or str(e)).lower()}") from e


def _read_regular(fd: int, path: str) -> str:
    from rootless.kernel.paths import read_regular

    st = os.fstat(fd)
    kind = _KINDS.get(stat.S_IFMT(st.st_mode)) or (_faked_device(fd) if not st.st_size else "")
    if kind:
        raise UserLookupError(f"the image's {path} is a {kind}, not a regular file: refused")
    try:
        data = read_regular(fd, MAX_FILE)
    except OSError as e:
        if e.errno != errno.EFBIG:
            raise
        raise UserLookupError(f"the image's {path} is larger than {MAX_FILE >> 20} MiB: "
                              "refused") from e
    return data.decode(errors="replace")


def _faked_device(fd: int) -> str:
    """"character device" or "block device" where image/layers.py unpacked a device node
    as an empty file recording what it was (a FUSE overlay shows it as that device);
    asked of empty files only, so `run` loads image/layers.py for no ordinary image."""
    from rootless.image.layers import OVERRIDE_XATTR

    try:  # fgetxattr(2) refuses O_PATH descriptors; their /proc link does not
        value = os.getxattr(f"/proc/self/fd/{fd}", OVERRIDE_XATTR).decode(errors="replace")
    except OSError:
        return ""
    kind = value.split(":")[3] if value.count(":") >= 3 else ""
    return {"char": "character device", "block": "block device"}.get(kind.split("-")[0], "")
