"""The copy fallback shows what kernel overlayfs would show."""

import os
import stat
import subprocess

import pytest

from rootless.fs.rootfs import copy_layer


@pytest.fixture(autouse=True)
def deep_trees_removed(tmp_path):
    """pytest's own cleanup of old temporary directories (shutil.rmtree) recurses: a
    tree deeper than ~1000 left here would fail every later session. rm -rf does not."""
    yield
    subprocess.run(["rm", "-rf", "--", str(tmp_path)], check=False)


def layer(tmp_path, name, files):
    root = tmp_path / name
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_text(content)
    return root


def test_upper_layer_file_replaces_the_lower(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(layer(tmp_path, "l1", {"etc/a": "1"}), dest)
    copy_layer(layer(tmp_path, "l2", {"etc/a": "2"}), dest)
    assert (dest / "etc/a").read_text() == "2"


def test_aufs_whiteout_file_deletes_and_is_not_copied(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(layer(tmp_path, "l1", {"etc/a": "1", "etc/b": "1"}), dest)
    copy_layer(layer(tmp_path, "l2", {"etc/.wh.a": ""}), dest)
    assert sorted(os.listdir(dest / "etc")) == ["b"]


def test_char_0_0_whiteout_deletes(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(layer(tmp_path, "l1", {"etc/a": "1"}), dest)
    upper = layer(tmp_path, "l2", {"etc": None})
    os.mknod(upper / "etc/a", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    copy_layer(upper, dest)
    assert not (dest / "etc/a").exists()


def test_opaque_directory_hides_the_lower_contents(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(layer(tmp_path, "l1", {"d/old": "1"}), dest)
    copy_layer(layer(tmp_path, "l2", {"d/.wh..wh..opq": "", "d/new": "2"}), dest)
    assert sorted(os.listdir(dest / "d")) == ["new"]


def test_mode_000_files_and_directories_are_copied_and_keep_their_mode(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    src = layer(tmp_path, "l1", {"d/secret": "s"})
    os.chmod(src / "d/secret", 0)
    os.chmod(src / "d", 0)
    copy_layer(src, dest)
    os.chmod(dest / "d", 0o700)
    assert stat.S_IMODE(os.stat(dest / "d/secret").st_mode) == 0
    assert stat.S_IMODE(os.stat(src / "d").st_mode) == 0  # the layer is left as it was
    os.chmod(src / "d", 0o700)


def test_fifo_is_recreated(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    src = layer(tmp_path, "l1", {"run": None})
    os.mkfifo(src / "run/pipe")
    copy_layer(src, dest)
    assert stat.S_ISFIFO(os.lstat(dest / "run/pipe").st_mode)


def test_a_mode_000_directory_is_copied_with_its_own_mode(tmp_path):
    """Not the mode it was opened up to for the copy."""
    dest = tmp_path / "rootfs"
    dest.mkdir()
    src = layer(tmp_path, "l1", {"d/f": "x"})
    os.chmod(src / "d", 0)
    try:
        copy_layer(src, dest)
        assert stat.S_IMODE(os.stat(dest / "d").st_mode) == 0
    finally:
        os.chmod(src / "d", 0o700)
        os.chmod(dest / "d", 0o700)


def deep_layer(root, depth: int = 1500):
    """root/d/d/.../d/f (made by descriptor: pathlib's mkdir(parents=True) recurses)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
        f.write("bottom")
    os.close(fd)
    return root


def test_a_layer_deeper_than_the_recursion_limit_is_copied(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(deep_layer(tmp_path / "l1"), dest)
    assert (dest / "/".join(["d"] * 1500) / "f").read_text() == "bottom"


def test_a_deep_lower_directory_replaced_by_a_file_is_removed(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    copy_layer(deep_layer(tmp_path / "l1"), dest)
    copy_layer(layer(tmp_path, "l2", {"d": "now a file"}), dest)
    assert (dest / "d").read_text() == "now a file"


def test_ownership_records_are_copied(tmp_path):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    src = layer(tmp_path, "l1", {"etc/shadow": "s"})
    record = b"0:42:0640"
    for path in (src / "etc", src / "etc/shadow"):
        try:
            os.setxattr(path, "user.containers.override_stat", record)
        except OSError:
            pytest.skip("no user xattrs on this filesystem")
    copy_layer(src, dest)
    for path in (dest / "etc", dest / "etc/shadow"):
        assert os.getxattr(path, "user.containers.override_stat") == record


def test_a_sparse_file_is_copied_with_its_holes(tmp_path):
    """16 GiB declared, a few blocks of data: the copy allocates no more than the layer."""
    lower = layer(tmp_path, "lower", {"dir": None})
    with open(lower / "sparse", "wb") as f:
        f.seek(8 << 30)
        f.write(b"middle")
        f.truncate(16 << 30)
    dest = tmp_path / "merged"
    dest.mkdir()
    copy_layer(lower, dest)
    st = os.stat(dest / "sparse")
    assert st.st_size == 16 << 30
    assert st.st_blocks * 512 <= 1 << 20
    with open(dest / "sparse", "rb") as f:
        f.seek(8 << 30)
        assert f.read(6) == b"middle"
        f.seek(0)
        assert f.read(4096) == bytes(4096)
