"""The fakeroot: the monitor's answers to a single-id container's trapped calls.

A container with one mapped id gets a seccomp filter whose fakeroot rules
(runtime/seccomp_fakeroot.py) send the chown, chmod, mknod, set*id and get*id families
to a listener descriptor; the container's monitor (engine/monitor.py) polls it, with
those of the container's exec'd processes, and calls `Fakeroot.serve` for each ready
one. Everything here is synchronous and small: the monitor is one poll(2) loop, and a
trapped thread waits until it is answered.

- set*id and setgroups change the calling thread's faked credentials by the kernel's
  rules (runtime/fakeroot_creds.py); the process table (runtime/fakeroot_procs.py)
  keeps them per thread, inherited on fork and kept across exec.
- get*id answer from them: the return value, or the ids written into the thread's
  memory (getresuid, getgroups) through /proc/TID/mem, opened before NOTIF_ID_VALID is
  checked so that a killed thread's reused pid is never written to. A thread without
  faked credentials gets the kernel's own answer (CONTINUE).
- chown, chmod and mknod of devices are recorded on the file (runtime/fakeroot_files.py).
- with --security-opt fakeroot-stat, the stat family answers from those records
  (runtime/fakeroot_stat.py).

Calls of another ABI than the filter's native one (x32 shares x86-64's numbers; the
i386 ABI's 16-bit-id calls) are let through to the kernel (CONTINUE). A bug here must
not stop the container: an unexpected error answers CONTINUE too, and is written to
the log the monitor names.
"""

from __future__ import annotations

import errno
import os
import struct

from rootless.kernel import notify
from rootless.runtime import fakeroot_creds as fc
from rootless.runtime.fakeroot_files import (AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW,
                                             CONTINUE, Caller, FileCall, Files,
                                             write_memory)
from rootless.runtime.fakeroot_procs import IdMap, ProcTable, proc_status

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
X32_SYSCALL_BIT = 0x40000000
CAP_SETGID, CAP_SETUID = 6, 7

# Syscall numbers (asm/unistd_64.h, unistd_32.h, asm-generic/unistd.h), by the name
# each has in x86-64's ABI: i386's 32-bit-id calls answer as theirs.
SYSCALLS = {
    AUDIT_ARCH_X86_64: {
        "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, "mknod": 133,
        "mknodat": 259, "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452,
        "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
        "setresgid": 119, "setgroups": 116, "setfsuid": 122, "setfsgid": 123,
        "getuid": 102, "geteuid": 107, "getgid": 104, "getegid": 108, "getresuid": 118,
        "getresgid": 120, "getgroups": 115,
        "stat": 4, "fstat": 5, "lstat": 6, "newfstatat": 262, "statx": 332},
    AUDIT_ARCH_I386: {
        "chown": 212, "fchown": 207, "lchown": 198, "fchownat": 298, "mknod": 14,
        "mknodat": 297, "chmod": 15, "fchmod": 94, "fchmodat": 306, "fchmodat2": 452,
        "setuid": 213, "setgid": 214, "setreuid": 203, "setregid": 204, "setresuid": 208,
        "setresgid": 210, "setgroups": 206, "setfsuid": 215, "setfsgid": 216,
        "getuid": 199, "geteuid": 201, "getgid": 200, "getegid": 202, "getresuid": 209,
        "getresgid": 211, "getgroups": 205},
    AUDIT_ARCH_AARCH64: {
        "fchownat": 54, "fchown": 55, "mknodat": 33, "fchmod": 52, "fchmodat": 53,
        "fchmodat2": 452, "setregid": 143, "setgid": 144, "setreuid": 145, "setuid": 146,
        "setresuid": 147, "getresuid": 148, "setresgid": 149, "getresgid": 150,
        "setfsuid": 151, "setfsgid": 152, "getgroups": 158, "setgroups": 159,
        "getuid": 174, "geteuid": 175, "getgid": 176, "getegid": 177,
        "newfstatat": 79, "fstat": 80, "statx": 291},
}
_NAMES = {arch: {nr: name for name, nr in table.items()} for arch, table in SYSCALLS.items()}


class Call:
    """One notification's arguments, decoded for its ABI: ints are 32-bit (the kernel
    reads int and uid_t arguments so, whatever the register's upper half holds)."""

    __slots__ = ("n", "compat")

    def __init__(self, n: notify.Notification) -> None:
        self.n = n
        self.compat = n.arch == AUDIT_ARCH_I386

    def u32(self, i: int) -> int:
        return self.n.args[i] & 0xFFFFFFFF

    def s32(self, i: int) -> int:
        v = self.u32(i)
        return v - (1 << 32) if v & 0x80000000 else v

    def ptr(self, i: int) -> int:
        return self.n.args[i] & (0xFFFFFFFF if self.compat else 0xFFFFFFFFFFFFFFFF)


class Fakeroot:
    """The fakeroot of one container: its process table, its file records, and the
    listeners it serves (the init's, and one per exec'd process)."""

    def __init__(self, directory: str, uid_ranges, gid_ranges, log_path: str = "") -> None:
        from rootless.runtime.fakeroot_owners import owners_read, owners_write

        self.directory = directory
        self.uid_map, self.gid_map = IdMap(uid_ranges), IdMap(gid_ranges)
        self.table = ProcTable(self.uid_map, self.gid_map, None)
        owners = owners_read(directory)
        self.files = Files(owners, lambda: owners_write(directory, owners),
                           self.uid_map, self.gid_map)
        self.log_path = log_path
        self.listeners: set[int] = set()

    @classmethod
    def for_spec(cls, spec: dict, directory: str, log_path: str = "") -> "Fakeroot":
        linux = spec.get("linux") or {}

        def ranges(key: str) -> list[tuple[int, int, int]]:
            return [(m["containerID"], m["hostID"], m["size"]) for m in linux.get(key) or []]

        return cls(directory, ranges("uidMappings"), ranges("gidMappings"), log_path)

    # ---- the monitor's side ----

    def new_run(self, init_pid: int) -> None:
        """A (re)started container: a new pid namespace, no thread of the last run."""
        self.close_listeners()
        try:
            pidns = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
        except OSError:
            pidns = None
        self.table = ProcTable(self.uid_map, self.gid_map, pidns)

    def add_listener(self, fd: int) -> None:
        self.listeners.add(fd)

    def close_listeners(self) -> None:
        for fd in self.listeners:
            os.close(fd)
        self.listeners.clear()

    def serve(self, fd: int, hangup: bool = False) -> bool:
        """Answer the notification waiting on listener `fd`; False once `fd` is done
        (every process using its filter has exited: the caller stops polling it, and
        it is closed here)."""
        if hangup:
            self._drop(fd)
            return False
        try:
            n = notify.recv(fd)
        except OSError:
            self._drop(fd)
            return False
        if n is not None:
            self._answer(fd, n)
        return True

    def _drop(self, fd: int) -> None:
        if fd in self.listeners:
            self.listeners.discard(fd)
            os.close(fd)

    def _answer(self, fd: int, n: notify.Notification) -> None:
        arch = n.arch
        nr = n.nr & ~X32_SYSCALL_BIT if arch == AUDIT_ARCH_X86_64 else n.nr
        name = _NAMES.get(arch, {}).get(nr)
        handler = HANDLERS.get(name) if name else None
        try:
            result = CONTINUE if handler is None else handler(self, fd, Call(n))
        except Exception:  # never the monitor's end: the kernel decides instead
            self._log_failure(name)
            result = CONTINUE
        if result is None:
            return  # the thread is gone: nobody waits for an answer
        try:
            if isinstance(result, tuple):  # (value, 0): returned
                notify.send(fd, n.id, value=result[0])
            elif result == CONTINUE:
                notify.send_continue(fd, n.id)
            else:  # 0, or an errno
                notify.send(fd, n.id, error=result)
        except OSError:  # an answer the kernel refuses: let the kernel answer instead
            self._log_failure(name)
            try:
                notify.send_continue(fd, n.id)
            except OSError:
                pass

    def _log_failure(self, name: str | None) -> None:
        if not self.log_path:
            return
        import traceback

        try:
            with open(self.log_path, "a") as f:
                f.write(f"fakeroot: {name}:\n")
                traceback.print_exc(file=f)
        except OSError:
            pass

    # ---- the ids ----

    def _caller(self, call: Call, real_if_none: bool):
        """(creds or None, status, start) of the calling thread; None if it is gone."""
        found = self.table.lookup(call.n.pid)
        if found is None:
            return None
        start, creds = found
        status = proc_status(call.n.pid)
        if not status:
            return None
        if creds is None and real_if_none:
            creds = self.table.real_creds(status)
        return creds, status, start

    def _changed(self, call: Call, start: int, before: fc.Creds, creds: fc.Creds,
                 status: dict[str, str]) -> None:
        self.table.store(call.n.pid, start, creds, status)
        if creds != before:
            try:
                self.table.save(self.directory)  # before the answer: FUSE checks with it
            except OSError:
                pass

    def get_id(self, fd: int, call: Call, name: str):
        found = self.table.lookup(call.n.pid)
        if found is None or found[1] is None:
            return CONTINUE if found is not None else None
        creds = found[1]
        value = {"getuid": creds.uids[0], "geteuid": creds.uids[1],
                 "getgid": creds.gids[0], "getegid": creds.gids[1]}[name]
        return value, 0

    def get_res_id(self, fd: int, call: Call, uids: bool):
        found = self.table.lookup(call.n.pid)
        if found is None or found[1] is None:
            return CONTINUE if found is not None else None
        ids = found[1].uids if uids else found[1].gids
        return self._write_ids(fd, call, [(call.ptr(i), [ids[i]]) for i in range(3)])

    def get_groups(self, fd: int, call: Call):
        found = self.table.lookup(call.n.pid)
        if found is None or found[1] is None:
            return CONTINUE if found is not None else None
        groups = found[1].groups
        size = call.s32(0)
        if size < 0:
            return errno.EINVAL
        if size == 0:
            return len(groups), 0
        if size < len(groups):
            return errno.EINVAL
        error = self._write_ids(fd, call, [(call.ptr(1), list(groups))] if groups else [])
        return (len(groups), 0) if error == 0 else error

    def _write_ids(self, fd: int, call: Call, writes: list[tuple[int, list[int]]]):
        """Write 32-bit ids into the thread's memory: 0, EFAULT, or None (gone)."""
        return write_memory(fd, call.n, [(address, struct.pack(f"={len(ids)}I", *ids))
                                         for address, ids in writes])

    def set_ids(self, fd: int, call: Call, name: str):
        found = self._caller(call, real_if_none=True)
        if found is None:
            return None
        creds, status, start = found
        before, creds = creds, creds.copy()
        uid_call = "uid" in name
        privileged = creds.uids[1] == 0 and _has_cap(status, CAP_SETUID if uid_call
                                                      else CAP_SETGID)
        ids = creds.uids if uid_call else creds.gids
        if name in ("setuid", "setgid"):
            result = fc.set_id(ids, call.u32(0), privileged)
        elif name in ("setreuid", "setregid"):
            result = fc.set_re_id(ids, call.u32(0), call.u32(1), privileged)
        elif name in ("setresuid", "setresgid"):
            result = fc.set_res_id(ids, call.u32(0), call.u32(1), call.u32(2), privileged)
        else:  # setfsuid, setfsgid: the old fs id, never an error
            result = (fc.set_fs_id(ids, call.u32(0), privileged), 0)
        if result == 0 or isinstance(result, tuple):
            self._changed(call, start, before, creds, status)
        return result

    def set_groups(self, fd: int, call: Call):
        found = self._caller(call, real_if_none=True)
        if found is None:
            return None
        creds, status, start = found
        size = call.s32(0)
        if size < 0 or size > fc.NGROUPS_MAX:
            return errno.EINVAL
        if not (creds.uids[1] == 0 and _has_cap(status, CAP_SETGID)):
            return errno.EPERM
        groups = self._read_ids(fd, call, call.ptr(1), size)
        if not isinstance(groups, tuple):
            return groups
        before, creds = creds, creds.copy()
        result = fc.set_groups(creds, groups, True)
        if result == 0:
            self._changed(call, start, before, creds, status)
        return result

    def _read_ids(self, fd: int, call: Call, address: int, count: int):
        if count == 0:
            return ()
        try:
            mem = os.open(f"/proc/{call.n.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if not notify.id_valid(fd, call.n.id):
                return None
            try:
                data = os.pread(mem, 4 * count, address)
            except (OSError, OverflowError):
                return errno.EFAULT
        finally:
            os.close(mem)
        if len(data) != 4 * count:
            return errno.EFAULT
        return struct.unpack(f"={count}I", data)

    # ---- the files ----

    def file_call(self, fd: int, call: Call, name: str):
        found = self._caller(call, real_if_none=True)
        if found is None:
            return None
        caller = Caller(call.n.pid, found[0], found[1])
        files = self.files
        if name in ("fchown", "fchmod") and call.s32(0) < 0:
            return errno.EBADF  # not AT_FDCWD's working directory: no descriptor at all
        if name in ("chown", "lchown"):
            return files.chown(fd, call.n, caller, _path_call(call, 0, name == "chown"),
                               call.u32(1), call.u32(2))
        if name == "fchown":
            return files.chown(fd, call.n, caller, FileCall(call.u32(0), None, True, True),
                               call.u32(1), call.u32(2))
        if name == "fchownat":
            flags = call.u32(4)
            if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
                return errno.EINVAL
            return files.chown(fd, call.n, caller, _at_call(call, flags), call.u32(2),
                               call.u32(3))
        if name == "chmod":
            return files.chmod(fd, call.n, caller, _path_call(call, 0, True), call.u32(1))
        if name == "fchmod":
            return files.chmod(fd, call.n, caller, FileCall(call.u32(0), None, True, True),
                               call.u32(1))
        if name in ("fchmodat", "fchmodat2"):
            flags = call.u32(3) if name == "fchmodat2" else 0
            if flags & AT_SYMLINK_NOFOLLOW:
                return CONTINUE  # a symlink has no mode of its own: the kernel says so
            return files.chmod(fd, call.n, caller, _at_call(call, flags), call.u32(2))
        if name == "mknod":
            return files.mknod(fd, call.n, caller, _path_call(call, 0, False), call.u32(1),
                               call.u32(2))
        return files.mknod(fd, call.n, caller, _at_call(call, 0, follow=False), call.u32(2),
                           call.u32(3))


def _path_call(call: Call, index: int, follow: bool) -> FileCall:
    return FileCall(AT_FDCWD, call.ptr(index), follow, False)


def _at_call(call: Call, flags: int, follow: bool | None = None) -> FileCall:
    if follow is None:
        follow = not flags & AT_SYMLINK_NOFOLLOW
    return FileCall(call.u32(0), call.ptr(1), follow, bool(flags & AT_EMPTY_PATH))


def _has_cap(status: dict[str, str], cap: int) -> bool:
    try:
        return bool(int(status.get("CapEff", "0"), 16) >> cap & 1)
    except ValueError:
        return False


def _get(name: str):
    return lambda self, fd, call: self.get_id(fd, call, name)


def _set(name: str):
    return lambda self, fd, call: self.set_ids(fd, call, name)


def _file(name: str):
    return lambda self, fd, call: self.file_call(fd, call, name)


def _stat(name: str):
    def handler(self, fd, call):
        from rootless.runtime.fakeroot_stat import stat_call

        return stat_call(self, fd, call, name, call.n.arch == AUDIT_ARCH_X86_64)
    return handler


# Each trapped call and its handler (an explicit table: a name without one answers
# CONTINUE, and a misspelt one fails the unit tests, not a container).
HANDLERS = {
    **{name: _get(name) for name in ("getuid", "geteuid", "getgid", "getegid")},
    "getresuid": lambda self, fd, call: self.get_res_id(fd, call, True),
    "getresgid": lambda self, fd, call: self.get_res_id(fd, call, False),
    "getgroups": lambda self, fd, call: self.get_groups(fd, call),
    **{name: _set(name) for name in ("setuid", "setgid", "setreuid", "setregid",
                                     "setresuid", "setresgid", "setfsuid", "setfsgid")},
    "setgroups": lambda self, fd, call: self.set_groups(fd, call),
    **{name: _file(name) for name in ("chown", "lchown", "fchown", "fchownat", "chmod",
                                      "fchmod", "fchmodat", "fchmodat2", "mknod",
                                      "mknodat")},
    # only with --security-opt fakeroot-stat (runtime/fakeroot_stat.py)
    **{name: _stat(name) for name in ("stat", "lstat", "fstat", "newfstatat", "statx")},
}
