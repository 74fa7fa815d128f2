"""The copy fallback shows what kernel overlayfs would show."""

import os
import stat

from rootless.fs.rootfs import copy_layer


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
