"""The fakeroot's seccomp rules: which syscalls a single-id container's filter sends to
its monitor (or fakes), added to the container's OCI section before it is compiled.

With one mapped id the kernel refuses every owner but that one: chown to another id
fails (EINVAL), set*id to another id fails, setgroups(2) is denied outright, and mknod
of a device needs CAP_MKNOD of the initial namespace. Package managers do all of these
(apt's `_apt` sandbox, dpkg's owners, statoverrides). So in single-id mode the filter
answers them itself, in one of two ways:

- "notify": SECCOMP_RET_USER_NOTIF for the chown and chmod families, mknod(at), the
  set*id family with setgroups and setfs*id, and the get*id family; the listener goes to
  the container's monitor, whose fakeroot (runtime/fakeroot.py) keeps each process's
  faked credentials and records owners, modes and device nodes as override_stat
  metadata in the container's upper layer. Needs seccomp user notification with
  CONTINUE (Linux 5.5) and a monitor to answer (`rootless run`, `exec`, restarts).
- "errno": where notification is unavailable (older kernels, ROOTLESS_KERNEL_FLOOR
  below 5.5, or nobody to answer): the chown and set*id families, setgroups and mknod of
  devices return 0 and do nothing (Charliecloud's --force=seccomp). Nothing is recorded
  and get*id still answer the kernel's ids, so a program that checks after dropping
  privileges (apt) sees that it did not.

Only names the section lets through unconditionally are taken over: a profile that
denies chown keeps denying it. The 32-bit-id twins (chown32, setuid32, ...) are the
i386 ABI's; the fakeroot answers the old 16-bit calls with CONTINUE, as unfiltered.

`--security-opt seccomp=unconfined` and `--privileged` mean no filter at all, as in
docker and podman (which has no fakeroot to keep): no fakeroot either. They are what
nested containers need (docker's profile refuses new user namespaces), and a fakeroot
would fake the set*id calls a nested runtime makes to ids its own namespace really
maps. ROOTLESS_FAKEROOT=notify|errno puts the fakeroot's rules back (over an
allow-everything default) for a package manager there; ROOTLESS_FAKEROOT=off drops them
everywhere.
"""

from __future__ import annotations

import os
import stat

_CHOWN = ("chown", "fchown", "lchown", "fchownat")
_SET_IDS = ("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
            "setgroups", "setfsuid", "setfsgid")
_GET_IDS = ("getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups")
_CHMOD = ("chmod", "fchmod", "fchmodat", "fchmodat2")
_MKNOD = ("mknod", "mknodat")
# with --security-opt fakeroot-stat (runtime/fakeroot_stat.py): the native ABI's stat
# family (i386's stat64 family is left to the kernel)
STAT = ("stat", "lstat", "fstat", "newfstatat", "statx")


def _with_32(names: tuple[str, ...]) -> tuple[str, ...]:
    return names + tuple(n + "32" for n in names if n not in ("fchownat",))


NOTIFIED = _with_32(_CHOWN) + _MKNOD + _CHMOD + _with_32(_SET_IDS) + _with_32(_GET_IDS)
FAKED = _with_32(_CHOWN) + _with_32(_SET_IDS)  # errno mode; mknod(at) too, devices only
_S_IFMT = 0o170000  # stat.S_IFMT is a function in Python
_LETS_THROUGH = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
MODES = ("notify", "errno", "")
ENV = "ROOTLESS_FAKEROOT"


def fakeroot_mode(single_id: bool, served: bool,
                  unconfined: bool = False) -> tuple[str, str]:
    """(mode, why): "notify", "errno" or "" (no fakeroot). `served`: the caller hands
    the listener to a monitor that answers it; `unconfined`: the container has no
    seccomp filter (--privileged, seccomp=unconfined)."""
    if not single_id:
        return "", "subordinate ids: files keep real owners, no fakeroot"
    forced = os.environ.get(ENV, "")
    if forced == "off":
        return "", f"set by {ENV}=off"
    if unconfined and forced not in ("notify", "errno"):
        return "", ("no seccomp filter (--privileged or seccomp=unconfined): no fakeroot, "
                    f"as podman (set {ENV}=notify for one)")
    from rootless.kernel.notify import unavailable

    why = unavailable()
    if forced == "errno" or (forced != "notify" and why is not None):
        reason = f"set by {ENV}=errno" if forced == "errno" else why
        return "errno", f"faked success, nothing recorded: {reason}"
    if not served:
        return "errno", "faked success, nothing recorded: no monitor answers this process"
    return "notify", "seccomp user notification, answered by the container's monitor"


def with_fakeroot(section: dict | None, mode: str, stat_answers: bool = False) -> dict | None:
    """`section` (None: no filter, unconfined) with the fakeroot's rules for `mode`;
    `stat_answers` (notify only) sends the stat family to the monitor too."""
    if not mode:
        return section
    base = section or {"defaultAction": "SCMP_ACT_ALLOW"}
    wanted = set(NOTIFIED if mode == "notify" else FAKED)
    if mode == "notify" and stat_answers:
        wanted |= set(STAT)
    if mode == "errno":
        wanted |= set(_MKNOD)
    rules, taken = [], set()
    for rule in base.get("syscalls") or []:
        mine = [n for n in rule["names"] if n in wanted]
        if mine and rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args"):
            taken.update(mine)
            rest = [n for n in rule["names"] if n not in wanted]
            if rest:
                rules.append({**rule, "names": rest})
            continue
        rules.append(rule)
    if base["defaultAction"] in _LETS_THROUGH:
        named = {n for rule in rules for n in rule["names"]}
        taken |= wanted - named
    if mode == "notify":
        rules.append({"names": sorted(taken), "action": "SCMP_ACT_NOTIFY"})
    else:
        rules += _errno_rules(taken)
    return {**base, "syscalls": rules}


def _errno_rules(taken: set[str]) -> list[dict]:
    """ERRNO(0) for the calls faked whole; mknod(at) of a device faked, of anything else
    allowed (libseccomp compares the masked type: S_IFMT of the mode argument)."""
    rules = [{"names": sorted(taken - set(_MKNOD)), "action": "SCMP_ACT_ERRNO",
              "errnoRet": 0}]
    for name, index in (("mknod", 1), ("mknodat", 2)):
        if name not in taken:
            continue
        for kind in (stat.S_IFCHR, stat.S_IFBLK):
            rules.append({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 0,
                          "args": [_type_is(index, kind)]})
        for kind in (0, stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
            rules.append({"names": [name], "action": "SCMP_ACT_ALLOW",
                          "args": [_type_is(index, kind)]})
    return [r for r in rules if r["names"]]


def _type_is(index: int, kind: int) -> dict:
    return {"index": index, "value": _S_IFMT, "valueTwo": kind,
            "op": "SCMP_CMP_MASKED_EQ"}
