"""kernel/paths.py: resolution inside a root, with openat2 and with the O_NOFOLLOW walk.

Every test runs twice (the `resolver` fixture): once with openat2(RESOLVE_IN_ROOT) and
once with the user-space walk forced, and beside each "must" is a "must not": nothing
outside the root is read, created or followed.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from rootless.kernel import paths


@pytest.fixture(params=["openat2", "walk"])
def resolver(request):
    if request.param == "openat2" and not paths._probe_openat2():
        pytest.skip("this kernel has no openat2")
    paths.use_openat2(request.param == "openat2")
    yield request.param
    paths.use_openat2(None)


@pytest.fixture
def world(tmp_path: Path):
    """root/ (the root we resolve in) and outside/ (must never be touched)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root passwd")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield root, outside, fd
    os.close(fd)
    assert sorted(os.listdir(outside)) == ["secret"], "something was created outside"
    assert (outside / "secret").read_text() == "host secret"


def read_in_root(fd: int, path: str) -> str:
    f = paths.open_in_root(fd, path, os.O_RDONLY)
    with os.fdopen(f) as stream:
        return stream.read()


def test_plain_path_opens_inside_root(resolver, world):
    root, _, fd = world
    assert read_in_root(fd, "etc/passwd") == "root passwd"


def test_absolute_path_is_relative_to_root(resolver, world):
    _, _, fd = world
    assert read_in_root(fd, "/etc/passwd") == "root passwd"


def test_dotdot_at_root_stays_at_root(resolver, world):
    _, _, fd = world
    assert read_in_root(fd, "../../../../etc/passwd") == "root passwd"


def test_absolute_symlink_resolves_inside_root(resolver, world):
    root, outside, fd = world
    (root / "link").symlink_to(outside)  # the host path of outside/
    (root / "etc2").symlink_to("/etc")
    assert read_in_root(fd, "etc2/passwd") == "root passwd"
    with pytest.raises(FileNotFoundError):
        read_in_root(fd, "link/secret")  # must not reach the real outside/secret


def test_relative_symlink_cannot_climb_out(resolver, world):
    root, _, fd = world
    (root / "up").symlink_to("../../../../../outside")
    with pytest.raises(FileNotFoundError):
        read_in_root(fd, "up/secret")
    (root / "up2").symlink_to("../../../../etc")
    assert read_in_root(fd, "up2/passwd") == "root passwd"


def test_final_symlink_followed_inside_root(resolver, world):
    root, _, fd = world
    (root / "pw").symlink_to("/etc/passwd")
    assert read_in_root(fd, "pw") == "root passwd"


def test_final_symlink_not_followed_with_nofollow(resolver, world):
    root, _, fd = world
    (root / "pw").symlink_to("/etc/passwd")
    with pytest.raises(OSError) as e:
        paths.open_in_root(fd, "pw", os.O_RDONLY | os.O_NOFOLLOW)
    assert e.value.errno == errno.ELOOP


def test_symlink_loop_is_eloop(resolver, world):
    root, _, fd = world
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with pytest.raises(OSError) as e:
        read_in_root(fd, "a/x")
    assert e.value.errno == errno.ELOOP


def test_file_as_directory_is_enotdir(resolver, world):
    _, _, fd = world
    with pytest.raises(NotADirectoryError):
        read_in_root(fd, "etc/passwd/x")


def test_magic_link_does_not_escape(resolver, world):
    root, _, fd = world
    (root / "p").symlink_to("/proc/self/root")
    with pytest.raises(OSError):
        read_in_root(fd, "p/etc/hostname")  # not the host's /etc/hostname


def test_create_through_dangling_symlink_stays_inside(resolver, world):
    root, outside, fd = world
    (root / "d").symlink_to(f"{outside}/new")
    with pytest.raises(OSError):
        paths.open_in_root(fd, "d", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                           0o644)
    assert not (outside / "new").exists()


def test_open_creates_file_in_resolved_parent(resolver, world):
    root, _, fd = world
    (root / "cfg").symlink_to("/etc")
    new = paths.open_in_root(fd, "cfg/new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(new)
    assert (root / "etc" / "new").is_file()


def test_parent_fd_does_not_follow_last_component(resolver, world):
    root, _, fd = world
    (root / "etc" / "pw").symlink_to("/etc/passwd")
    dirfd, name = paths.parent_fd_in_root(fd, "/etc/pw")
    try:
        assert name == "pw"
        assert os.readlink(name, dir_fd=dirfd) == "/etc/passwd"
        assert os.path.samestat(os.fstat(dirfd), os.stat(root / "etc"))
    finally:
        os.close(dirfd)


def test_parent_fd_follows_symlinked_parent_inside(resolver, world):
    root, outside, fd = world
    (root / "a").symlink_to(str(outside))
    dirfd, name = paths.parent_fd_in_root(fd, "a/secret", create=True)
    try:
        st = os.fstat(dirfd)
        assert os.path.samestat(st, os.stat(root / outside.relative_to("/")))
        assert not os.path.samestat(st, os.stat(outside))
    finally:
        os.close(dirfd)


def test_parent_fd_of_root_or_dotdot_is_refused(resolver, world):
    _, _, fd = world
    for path in ("", "/", "a/.."):
        with pytest.raises(IsADirectoryError):
            paths.parent_fd_in_root(fd, path)


def test_parent_fd_missing_parent(resolver, world):
    _, _, fd = world
    with pytest.raises(FileNotFoundError):
        paths.parent_fd_in_root(fd, "no/such/file")


def test_mkdirs_makes_missing_dirs_with_exact_mode(resolver, world):
    root, _, fd = world
    old = os.umask(0o077)
    try:
        made = paths.mkdirs_in_root(fd, "x/y/z", 0o755)
    finally:
        os.umask(old)
    os.close(made)
    for path in (root / "x", root / "x/y", root / "x/y/z"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755


def test_mkdirs_through_dangling_symlink_creates_inside(resolver, world):
    root, outside, fd = world
    (root / "lnk").symlink_to(f"{outside}/made")
    os.close(paths.mkdirs_in_root(fd, "lnk/sub"))
    assert (root / outside.relative_to("/") / "made" / "sub").is_dir()
    assert not (outside / "made").exists()


def test_mkdirs_existing_returns_directory_fd(resolver, world):
    root, _, fd = world
    made = paths.mkdirs_in_root(fd, "etc")
    try:
        assert os.path.samestat(os.fstat(made), os.stat(root / "etc"))
    finally:
        os.close(made)


def test_mkdirs_over_a_file_is_enotdir(resolver, world):
    _, _, fd = world
    with pytest.raises(NotADirectoryError):
        paths.mkdirs_in_root(fd, "etc/passwd/sub")


def test_env_forces_the_walk(monkeypatch):
    monkeypatch.setenv("ROOTLESS_NO_OPENAT2", "1")
    paths.use_openat2(None)
    try:
        assert paths.has_openat2() is False
    finally:
        paths.use_openat2(None)


def test_components_drop_empty_and_dot():
    assert paths.components("/a//b/./c/") == ["a", "b", "c"]
    assert paths.components("../a") == ["..", "a"]
