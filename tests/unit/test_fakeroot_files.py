"""The fakeroot's file calls on this test's own process (it plays the container's
thread: its /proc/PID/root is "/"): what is recorded where, and that nothing is done
for a notification that is no longer valid (the thread died, its pid may be reused)."""

import ctypes
import errno
import os
import stat

import pytest

from rootless.kernel import notify
from rootless.kernel.notify import Notification
from rootless.kernel.override import OVERRIDE_XATTR
from rootless.runtime import fakeroot_files as ff
from rootless.runtime.fakeroot_creds import UNCHANGED, Creds
from rootless.runtime.fakeroot_owners import owners_read, owners_write
from rootless.runtime.fakeroot_procs import IdMap


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Files of a "container" whose root mount is this test's tmp_path's."""
    try:
        os.setxattr(tmp_path, "user.probe", b"1")
    except OSError:
        pytest.skip("this filesystem has no user xattrs")
    monkeypatch.setattr(ff, "_same_mount", lambda root, fd: True)
    owners: dict = {}
    return ff.Files(owners, lambda: owners_write(str(tmp_path), owners),
                    IdMap([(0, os.getuid(), 1)]), IdMap([(0, os.getgid(), 1)]))


def call(path: str, follow: bool = True):
    buffer = ctypes.create_string_buffer(os.fsencode(path))
    call.keep = buffer  # alive while the handler reads it from /proc/self/mem
    return ff.FileCall(ff.AT_FDCWD, ctypes.addressof(buffer), follow, False)


def root_caller() -> ff.Caller:
    return ff.Caller(os.getpid(), Creds([0] * 4, [0] * 4, ()),
                     {"CapEff": "000001ffffffffff", "Umask": "0022"})


def notification(pid: int | None = None) -> Notification:
    return Notification(1, pid or os.getpid(), 0, 0, (0,) * 6)


def record(path) -> str | None:
    try:
        return os.getxattr(path, OVERRIDE_XATTR).decode()
    except OSError:
        return None


def test_chown_records_the_owner_on_the_file(files, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    target = tmp_path / "f"
    target.write_text("x")
    os.chmod(target, 0o4755)
    assert files.chown(-1, notification(), root_caller(), call(str(target)), 42, 43) == 0
    assert record(target) == "42:43:0755"  # chown(2) cleared the setuid bit
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755  # on disk too


def test_minus_one_keeps_an_id(files, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    target = tmp_path / "f"
    target.write_text("x")
    os.setxattr(target, OVERRIDE_XATTR, b"7:8:0600")
    assert files.chown(-1, notification(), root_caller(), call(str(target)),
                       UNCHANGED, 9) == 0
    assert record(target) == "7:9:0600"


def test_a_symlinks_owner_goes_to_the_sidecar(files, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    os.symlink("/", tmp_path / "link")
    assert files.chown(-1, notification(), root_caller(),
                       call(str(tmp_path / "link"), follow=False), 5, 6) == 0
    key = str(tmp_path / "link").lstrip("/")
    assert owners_read(str(tmp_path))[key] == {"kind": "symlink", "target": "/",
                                               "value": "5:6:0777"}


def test_an_unprivileged_caller_cannot_give_a_file_away(files, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    target = tmp_path / "f"
    target.write_text("x")
    dropped = ff.Caller(os.getpid(), Creds([42] * 4, [42] * 4, ()), {"CapEff": "0"})
    assert files.chown(-1, notification(), dropped, call(str(target)), 42, 42) \
        == errno.EPERM
    assert record(target) is None


def test_mknod_of_a_device_makes_an_empty_file_with_its_record(files, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    path = tmp_path / "null"
    assert files.mknod(-1, notification(), root_caller(), call(str(path), False),
                       stat.S_IFCHR | 0o666, os.makedev(1, 3)) == 0
    st = os.stat(path)
    assert (stat.S_ISREG(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size) == (True, 0, 0)
    os.chmod(path, 0o600)  # to read the record back as this user
    assert record(path) == "0:0:0644:char-1-3"


def test_mknod_of_a_fifo_is_left_to_the_kernel(files, tmp_path):
    assert files.mknod(-1, notification(), root_caller(), call(str(tmp_path / "p"), False),
                       stat.S_IFIFO | 0o644, 0) == ff.CONTINUE


def test_nothing_is_done_once_the_notification_is_no_longer_valid(files, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: False)
    target = tmp_path / "f"
    target.write_text("x")
    assert files.chown(-1, notification(), root_caller(), call(str(target)), 42, 43) is None
    assert files.mknod(-1, notification(), root_caller(), call(str(tmp_path / "n")),
                       stat.S_IFCHR | 0o666, 0x103) is None
    assert record(target) is None and not (tmp_path / "n").exists()


def test_a_dead_thread_gets_no_answer(files, tmp_path):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    target = tmp_path / "f"
    target.write_text("x")
    assert files.chown(-1, notification(pid), root_caller(), call(str(target)), 42, 43) \
        is None
    assert record(target) is None


def test_a_relative_path_is_resolved_from_the_threads_working_directory(
        files, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "id_valid", lambda fd, nid: True)
    (tmp_path / "f").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert files.chown(-1, notification(), root_caller(), call("f"), 3, 4) == 0
    assert record(tmp_path / "f") == "3:4:0644"
