"""The fakeroot's credential rules (credentials(7), setresuid(2)) and its process table:
what a container's program sees after dropping privileges, checked without a kernel."""

import errno
import os
import threading

import pytest

from rootless.runtime import fakeroot_creds as fc
from rootless.runtime.fakeroot_procs import IdMap, ProcTable, creds_of, proc_status

NO = fc.UNCHANGED


def root() -> fc.Creds:
    return fc.Creds([0, 0, 0, 0], [0, 0, 0, 0], (0,))


def test_root_may_set_every_id():
    c = root()
    assert fc.set_res_id(c.uids, 42, 43, 44, privileged=True) == 0
    assert c.uids == [42, 43, 44, 43]  # the fs uid follows the effective one


def test_a_process_that_dropped_root_cannot_take_it_back():
    c = root()
    assert fc.set_res_id(c.uids, 42, 42, 42, privileged=True) == 0
    assert fc.set_id(c.uids, 0, privileged=False) == errno.EPERM
    assert fc.set_res_id(c.uids, NO, 0, NO, privileged=False) == errno.EPERM
    assert fc.set_re_id(c.uids, 0, NO, privileged=False) == errno.EPERM
    assert c.uids == [42, 42, 42, 42]


def test_a_temporary_seteuid_may_return_to_the_saved_root():
    c = root()
    assert fc.set_res_id(c.uids, NO, 42, NO, privileged=True) == 0  # seteuid(42)
    assert c.uids == [0, 42, 0, 42]
    assert fc.set_res_id(c.uids, NO, 0, NO, privileged=False) == 0  # seteuid(0)
    assert c.uids == [0, 0, 0, 0]


def test_unprivileged_setuid_changes_only_the_effective_id():
    c = fc.Creds([42, 7, 43, 7], [0] * 4, ())
    assert fc.set_id(c.uids, 43, privileged=False) == 0
    assert c.uids == [42, 43, 43, 43]
    assert fc.set_id(c.uids, 7, privileged=False) == errno.EPERM  # neither real nor saved


def test_setreuid_sets_the_saved_id_as_the_kernel_does():
    c = fc.Creds([42, 43, 44, 43], [0] * 4, ())
    assert fc.set_re_id(c.uids, NO, 44, privileged=False) == 0
    assert c.uids == [42, 44, 44, 44]  # effective changed to other than the real: saved
    assert fc.set_re_id(c.uids, 44, NO, privileged=False) == 0
    assert c.uids == [44, 44, 44, 44]


def test_minus_one_is_not_an_id_to_set():
    assert fc.set_id(root().uids, NO, privileged=True) == errno.EINVAL


def test_setfsuid_returns_the_old_fs_id_and_changes_it_only_when_allowed():
    c = fc.Creds([42, 42, 42, 42], [0] * 4, ())
    assert fc.set_fs_id(c.uids, 0, privileged=False) == 42
    assert c.uids[3] == 42
    assert fc.set_fs_id(c.uids, NO, privileged=False) == 42  # the query form


def test_setgroups_needs_privilege_and_sane_sizes():
    c = root()
    assert fc.set_groups(c, (42, 4), privileged=False) == errno.EPERM
    assert fc.set_groups(c, (NO,), privileged=True) == errno.EINVAL
    assert fc.set_groups(c, (0,) * (fc.NGROUPS_MAX + 1), privileged=True) == errno.EINVAL
    assert fc.set_groups(c, (42, 4), privileged=True) == 0
    assert c.groups == (4, 42)


def test_apts_privilege_drop_passes_its_own_checks():
    """apt-pkg/contrib/fileutl.cc DropPrivileges, as the fakeroot sees it: each call is
    privileged while the faked euid is 0."""
    c = root()
    nobody = 65534
    assert fc.set_groups(c, (nobody,), privileged=c.uids[1] == 0) == 0
    assert fc.set_res_id(c.gids, NO, nobody, NO, privileged=c.uids[1] == 0) == 0  # setegid
    assert fc.set_id(c.gids, nobody, privileged=c.uids[1] == 0) == 0  # setgid
    assert fc.set_id(c.uids, 42, privileged=c.uids[1] == 0) == 0  # setuid(_apt)
    assert (c.uids, c.gids, c.groups) == ([42] * 4, [nobody] * 4, (nobody,))
    # "Could restore a gid to root, privilege dropping did not work"
    assert fc.set_id(c.gids, 0, privileged=c.uids[1] == 0) == errno.EPERM
    assert fc.set_res_id(c.gids, NO, 0, NO, privileged=c.uids[1] == 0) == errno.EPERM
    assert fc.set_id(c.uids, 0, privileged=c.uids[1] == 0) == errno.EPERM


# ---- the process table ----

def table_with_me(creds: fc.Creds) -> ProcTable:
    table = ProcTable(IdMap([(0, os.getuid(), 1)]), IdMap([(0, os.getgid(), 1)]),
                      os.stat("/proc/self/ns/pid").st_ino)
    start, _ = table.lookup(os.getpid())
    table.store(os.getpid(), start, creds, proc_status(os.getpid()))
    return table


def test_a_child_inherits_its_parents_faked_ids():
    table = table_with_me(fc.Creds([42] * 4, [43] * 4, (44,)))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        os._exit(0)
    try:
        _, creds = table.lookup(pid)
        assert creds == fc.Creds([42] * 4, [43] * 4, (44,))
    finally:
        os.write(w, b"x")
        os.waitpid(pid, 0)


def test_a_new_thread_inherits_its_leaders_faked_ids():
    table = table_with_me(fc.Creds([42] * 4, [43] * 4, ()))
    found = {}
    thread = threading.Thread(target=lambda: found.update(
        creds=table.lookup(threading.get_native_id())[1]))
    thread.start()
    thread.join()
    assert found["creds"] == fc.Creds([42] * 4, [43] * 4, ())


def test_an_entry_of_a_reused_pid_is_never_taken():
    table = table_with_me(fc.Creds([42] * 4, [42] * 4, ()))
    start, _, nstid = table.entries[os.getpid()]
    # what a reused pid looks like: another start time, another /proc inode
    table.entries[os.getpid()] = (start + 1, fc.Creds([7] * 4, [7] * 4, ()), nstid)
    table.inodes[os.getpid()] = -1
    assert table.lookup(os.getpid())[1] is None  # a stranger's entry, and no parent's


def test_the_real_ids_are_the_containers_through_its_map():
    table = table_with_me(root())
    creds = table.real_creds({"Uid": f"{os.getuid()} {os.getuid()} 5 {os.getuid()}",
                              "Gid": f"{os.getgid()} " * 4, "Groups": f"{os.getgid()} 99999"})
    assert creds == fc.Creds([0, 0, 65534, 0], [0, 0, 0, 0], (0, 65534))


def test_the_published_table_answers_the_fuse_overlay(tmp_path):
    table = table_with_me(fc.Creds([42] * 4, [43] * 4, (44,)))
    table.save(str(tmp_path))
    assert creds_of(str(tmp_path), os.getpid()) == fc.Creds([42] * 4, [43] * 4, (44,))
    assert creds_of(str(tmp_path / "none"), os.getpid()) is None


def test_the_published_table_answers_by_the_containers_thread_ids_too(tmp_path):
    """Keyed by NSpid's last id, looked up in the container's own procfs (here ours:
    this test runs in one pid namespace, where both ids are the same)."""
    table = table_with_me(fc.Creds([42] * 4, [43] * 4, ()))
    table.save(str(tmp_path))
    pid = os.fork()
    if pid == 0:  # a child inherits, found through the container's /proc
        found = creds_of(str(tmp_path), os.getpid(), "/proc/self/root/proc")
        os._exit(0 if found == fc.Creds([42] * 4, [43] * 4, ()) else 1)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.parametrize("size", [0, 1])
def test_groups_are_sorted_as_the_kernel_keeps_them(size):
    c = root()
    assert fc.set_groups(c, (9, 3, 5)[size:], privileged=True) == 0
    assert list(c.groups) == sorted((9, 3, 5)[size:])
