"""rmtree_owned removes what overlayfs and containers leave, and nothing outside."""

import errno
import os
import resource
import subprocess

import pytest

from rootless.kernel.remove import rmtree_owned


@pytest.fixture(autouse=True)
def deep_trees_removed(tmp_path):
    """pytest's own cleanup of old temporary directories (shutil.rmtree) recurses: a
    tree deeper than ~1000 left here would fail every later session. rm -rf does not."""
    yield
    subprocess.run(["rm", "-rf", "--", str(tmp_path)], check=False)


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


# ---- depth: no recursion, no path strings, a bounded number of descriptors ----

def deep_chain(top, depth: int, name: str = "d") -> None:
    """top/d/d/.../d/f, made by descriptor (the path may be longer than PATH_MAX)."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def test_removes_a_tree_deeper_than_the_recursion_limit(tmp_path):
    deep_chain(tmp_path / "t", 1500)
    rmtree_owned(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_removes_a_tree_whose_paths_are_longer_than_path_max(tmp_path):
    deep_chain(tmp_path / "t", 300, name="n" * 40)  # 12300 characters from the top
    rmtree_owned(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_a_deep_tree_is_removed_within_a_small_open_files_limit(tmp_path):
    deep_chain(tmp_path / "t", 1500)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))
    try:
        rmtree_owned(tmp_path / "t")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not (tmp_path / "t").exists()


# ---- races: a live process swaps directories while the tree is removed ----

@pytest.fixture
def sentinel(tmp_path):
    """A directory outside the tree, owned by the test, that removal must never touch."""
    path = tmp_path / "sentinel"
    (path / "victim").mkdir(parents=True)
    for name in ("keep1", "keep2", "victim/keep3"):
        (path / name).write_text("precious")
    return path


def sentinel_intact(path) -> bool:
    return all((path / name).exists() and (path / name).read_text() == "precious"
               for name in ("keep1", "keep2", "victim/keep3"))


def swap_after_listing(monkeypatch, victim_name: str, swap) -> list[bool]:
    """Run `swap()` right after the first listing that shows `victim_name`: the moment
    between a remover's listing of a directory and its descent into the victim."""
    real_scandir = os.scandir
    done = []

    class Listing:
        def __init__(self, path):
            self.inner = real_scandir(path)
            self.entries = list(self.inner)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def __iter__(self):
            return iter(self.entries)

        def close(self):
            self.inner.close()
            if not done and any(e.name == victim_name for e in self.entries):
                done.append(True)
                swap()

    monkeypatch.setattr(os, "scandir", Listing)
    return done


def test_a_directory_swapped_for_a_symlink_after_listing_is_not_followed(
        tmp_path, sentinel, monkeypatch):
    tree = tmp_path / "t"
    (tree / "a" / "victim").mkdir(parents=True)
    (tree / "a" / "victim" / "f").write_text("x")

    def swap():
        os.rename(tree / "a" / "victim", tmp_path / "moved")
        os.symlink(sentinel, tree / "a" / "victim")

    done = swap_after_listing(monkeypatch, "victim", swap)
    rmtree_owned(tree)
    assert done, "the race was not run"
    assert sentinel_intact(sentinel)
    assert not os.path.lexists(tree)


def test_the_top_swapped_for_a_symlink_before_removal_is_not_followed(
        tmp_path, sentinel, monkeypatch):
    tree = tmp_path / "t"
    (tree / "victim").mkdir(parents=True)

    def swap():
        os.rename(tree, tmp_path / "moved")
        os.symlink(sentinel, tree)

    done = swap_after_listing(monkeypatch, "victim", swap)
    rmtree_owned(tree)  # what it had opened is emptied; the symlink put there unlinked
    assert done, "the race was not run"
    assert sentinel_intact(sentinel)
    assert not os.path.lexists(tree) and not os.listdir(tmp_path / "moved")


def test_a_directory_moved_out_of_the_tree_mid_removal_stops_the_walk(
        tmp_path, monkeypatch):
    """With few descriptors held, ancestors are reopened as `..`: one that is no
    longer the directory it was ends the walk before it can climb outside."""
    from rootless.kernel import tree as walker

    monkeypatch.setattr(walker, "MAX_OPEN", 2)
    deep_chain(tmp_path / "t", 6)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    bottom = tmp_path / "t" / "d" / "d" / "d" / "d" / "d" / "d"

    def move_away():
        os.rename(tmp_path / "t" / "d" / "d", outside / "d")

    done = swap_after_listing(monkeypatch, "f", move_away)
    with pytest.raises(OSError) as failure:
        rmtree_owned(tmp_path / "t")
    assert done and not bottom.exists()
    assert failure.value.errno == errno.ESTALE
    assert (outside / "keep").read_text() == "precious"
