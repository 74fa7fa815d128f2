"""rmtree_owned removes what overlayfs and containers leave, and nothing outside."""

import os

from rootless.kernel.remove import rmtree_owned


def test_removes_mode_000_directories(tmp_path):
    (tmp_path / "t/work/work").mkdir(parents=True)
    (tmp_path / "t/work/work/f").write_text("x")
    os.chmod(tmp_path / "t/work/work", 0)
    rmtree_owned(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_symlinks_are_removed_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / "t").mkdir()
    os.symlink(outside, tmp_path / "t/link")
    rmtree_owned(tmp_path / "t")
    assert (outside / "keep").read_text() == "x"


def test_missing_path_is_not_an_error(tmp_path):
    rmtree_owned(tmp_path / "nothing")
