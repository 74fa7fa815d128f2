"""Faked credentials, and the kernel's rules for changing them (credentials(7)).

With one mapped id every process of a container really is that one id; the fakeroot
keeps, per thread, the ids it pretends the thread has, and changes them as the kernel
would change real ones. The rules here are those of kernel/sys.c (setuid(2),
setreuid(2), setresuid(2), setfsuid(2), setgroups(2)):

- a thread "privileged" for the uid calls holds CAP_SETUID (for the gid calls and
  setgroups, CAP_SETGID): here, its faked effective uid is 0 and the real thread has the
  capability in its effective set (`--cap-drop SETUID` holds). It may set any id.
- an unprivileged one may only move among its real, effective and saved ids: setuid(u)
  needs u to be its real or saved uid and then sets only the effective (and fs) uid;
  setreuid's real may be the old real or effective, its effective any of the three;
  setresuid's three each one of the old three; setgroups is refused (EPERM).
- (uid_t)-1 means "unchanged" where the call allows it; as a value to set it is
  invalid (EINVAL). setfsuid never fails: it returns the old fs id and changes it only
  when allowed. The fs ids follow the effective ones.

So a process that dropped root (setresuid(42, 42, 42)) cannot take it back, exactly
the property apt's sandbox checks ("Could restore a gid to root, privilege dropping did
not work"). Capability bookkeeping beyond that (PR_SET_KEEPCAPS, file capabilities,
setuid binaries on exec) is not emulated: a faked euid other than 0 is never privileged.
"""

from __future__ import annotations

import errno

UNCHANGED = 0xFFFFFFFF  # (uid_t)-1
NGROUPS_MAX = 65536  # include/uapi/linux/limits.h


class Creds:
    """One thread's faked ids: uids and gids as [real, effective, saved, fs]."""

    __slots__ = ("uids", "gids", "groups")

    def __init__(self, uids: list[int], gids: list[int], groups: tuple[int, ...]) -> None:
        self.uids = list(uids)
        self.gids = list(gids)
        self.groups = tuple(groups)

    def copy(self) -> "Creds":
        return Creds(self.uids, self.gids, self.groups)

    def as_list(self) -> list:
        return [list(self.uids), list(self.gids), list(self.groups)]

    @classmethod
    def from_list(cls, value: list) -> "Creds":
        uids, gids, groups = value
        return cls(uids, gids, tuple(groups))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Creds) and self.as_list() == other.as_list()

    def __repr__(self) -> str:
        return f"Creds(uids={self.uids}, gids={self.gids}, groups={list(self.groups)})"


def set_id(ids: list[int], new: int, privileged: bool) -> int:
    """setuid(2)/setgid(2) on `ids` (changed in place); 0 or the errno."""
    if new == UNCHANGED:
        return errno.EINVAL
    if privileged:
        ids[:] = [new, new, new, new]
    elif new in (ids[0], ids[2]):
        ids[1] = ids[3] = new
    else:
        return errno.EPERM
    return 0


def set_re_id(ids: list[int], real: int, effective: int, privileged: bool) -> int:
    """setreuid(2)/setregid(2)."""
    old = list(ids)
    if real != UNCHANGED and not privileged and real not in (old[0], old[1]):
        return errno.EPERM
    if effective != UNCHANGED and not privileged and effective not in old[:3]:
        return errno.EPERM
    if real != UNCHANGED:
        ids[0] = real
    if effective != UNCHANGED:
        ids[1] = effective
    if real != UNCHANGED or (effective != UNCHANGED and effective != old[0]):
        ids[2] = ids[1]
    ids[3] = ids[1]
    return 0


def set_res_id(ids: list[int], real: int, effective: int, saved: int,
               privileged: bool) -> int:
    """setresuid(2)/setresgid(2)."""
    old = ids[:3]
    for value in (real, effective, saved):
        if value != UNCHANGED and not privileged and value not in old:
            return errno.EPERM
    for index, value in enumerate((real, effective, saved)):
        if value != UNCHANGED:
            ids[index] = value
    ids[3] = ids[1]
    return 0


def set_fs_id(ids: list[int], new: int, privileged: bool) -> int:
    """setfsuid(2)/setfsgid(2): the old fs id, always; changed only when allowed."""
    old = ids[3]
    if new != UNCHANGED and (privileged or new in ids):
        ids[3] = new
    return old


def set_groups(creds: Creds, groups: tuple[int, ...], privileged: bool) -> int:
    """setgroups(2)."""
    if len(groups) > NGROUPS_MAX or UNCHANGED in groups:
        return errno.EINVAL
    if not privileged:
        return errno.EPERM
    creds.groups = tuple(sorted(groups))  # the kernel sorts them (groups_sort)
    return 0


def in_group(creds: Creds, gid: int) -> bool:
    """in_group_p(): the fs gid or a supplementary group."""
    return gid == creds.gids[3] or gid in creds.groups
