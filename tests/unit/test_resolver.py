"""kernel/paths.py as the one resolver: the merged view of image layers (whiteouts and
opaque directories as overlayfs reads them), bounded regular-file reads that never block,
and the runtime's mount points resolved through the `Syscalls` seam, with the walk
standing in where the seam (or the kernel) has no openat2.

Beside each "must" a "must not": nothing outside the layers or the root is read or made.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import pytest

from rootless.errors import RuntimeSetupError
from rootless.kernel import paths
from rootless.kernel.recording import RecordingSyscalls
from rootless.runtime import plan as p
from rootless.runtime.executor import Executor

# ---- the merged view of layers ----


class Layers:
    """layer directories under tmp_path, lowest first as the store lists them; `outside`
    holds what no resolution may reach."""

    def __init__(self, tmp_path: Path, count: int) -> None:
        self.dirs = [tmp_path / f"layer{i}" for i in range(count)]
        for d in self.dirs:
            d.mkdir()
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "passwd").write_text("host file")

    def write(self, level: int, rel: str, text: str) -> Path:
        path = self.dirs[level] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def read(self, rel: str) -> str:
        fds = [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in reversed(self.dirs)]
        try:
            fd = paths.open_in_layers(fds, rel)
        finally:
            for f in fds:
                os.close(f)
        try:
            return paths.read_regular(fd, 1 << 20).decode()
        finally:
            os.close(fd)


@pytest.fixture
def layers(tmp_path):
    lay = Layers(tmp_path, 3)
    yield lay
    assert (lay.outside / "passwd").read_text() == "host file"
    assert sorted(os.listdir(lay.outside)) == ["passwd"]


def whiteout(path: Path) -> None:
    """overlayfs's whiteout, or the AUFS marker image/layers.py keeps where mknod of 0:0
    is refused (Linux < 5.8)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except PermissionError:
        (path.parent / f".wh.{path.name}").touch()


def make_opaque(path: Path, aufs: bool) -> None:
    if aufs:
        (path / ".wh..wh..opq").touch()
        return
    try:
        os.setxattr(path, "user.overlay.opaque", b"y")
    except OSError as e:
        pytest.skip(f"no user xattrs here: {e.strerror}")


def test_topmost_layer_with_the_file_wins(layers):
    layers.write(0, "etc/passwd", "lowest")
    layers.write(1, "etc/passwd", "middle")
    assert layers.read("/etc/passwd") == "middle"


def test_lower_layer_file_shows_through_an_upper_directory(layers):
    layers.write(0, "etc/passwd", "lowest")
    layers.write(2, "etc/group", "top")
    assert layers.read("/etc/passwd") == "lowest"


def test_whiteout_hides_the_file_of_lower_layers(layers):
    layers.write(0, "etc/passwd", "lowest")
    (layers.dirs[1] / "etc").mkdir()
    whiteout(layers.dirs[1] / "etc" / "passwd")
    with pytest.raises(FileNotFoundError):
        layers.read("/etc/passwd")


def test_aufs_whiteout_hides_the_file_of_lower_layers(layers):
    layers.write(0, "etc/passwd", "lowest")
    layers.write(1, "etc/.wh.passwd", "")
    with pytest.raises(FileNotFoundError):
        layers.read("/etc/passwd")


def test_whiteout_of_a_directory_hides_everything_below_it(layers):
    layers.write(0, "etc/passwd", "lowest")
    whiteout(layers.dirs[2] / "etc")
    with pytest.raises(FileNotFoundError):
        layers.read("/etc/passwd")


@pytest.mark.parametrize("aufs", [False, True], ids=["xattr", "aufs"])
def test_opaque_directory_hides_lower_layers_contents(layers, aufs):
    layers.write(0, "etc/passwd", "lowest")
    layers.write(1, "etc/group", "middle")
    make_opaque(layers.dirs[1] / "etc", aufs)
    layers.write(2, "etc/hosts", "top")
    with pytest.raises(FileNotFoundError):
        layers.read("/etc/passwd")
    assert layers.read("/etc/group") == "middle"  # the opaque layer's own files stay


def test_file_in_an_upper_layer_hides_a_lower_directory(layers):
    layers.write(0, "etc/passwd", "lowest")
    layers.write(1, "etc", "a file now")
    with pytest.raises(NotADirectoryError):
        layers.read("/etc/passwd")


def test_symlink_resolves_in_the_merged_view_across_layers(layers):
    layers.write(0, "usr/share/passwd", "from the lowest layer")
    (layers.dirs[2] / "etc").mkdir()
    (layers.dirs[2] / "etc" / "passwd").symlink_to("/usr/share/passwd")
    assert layers.read("/etc/passwd") == "from the lowest layer"


def test_absolute_symlink_to_a_host_file_stays_in_the_image(layers):
    (layers.dirs[2] / "etc").mkdir()
    (layers.dirs[2] / "etc" / "passwd").symlink_to(layers.outside / "passwd")
    with pytest.raises(FileNotFoundError):  # not the host's file
        layers.read("/etc/passwd")
    layers.write(0, str(layers.outside / "passwd").lstrip("/"), "the image's own")
    assert layers.read("/etc/passwd") == "the image's own"


def test_dotdot_and_relative_symlinks_cannot_climb_out_of_the_layers(layers):
    (layers.dirs[1] / "up").symlink_to("../../../../../../outside")
    with pytest.raises(FileNotFoundError):
        layers.read("up/passwd")
    with pytest.raises(FileNotFoundError):
        layers.read("../../outside/passwd")


def test_symlink_loop_in_the_layers_is_eloop(layers):
    (layers.dirs[0] / "a").symlink_to("b")
    (layers.dirs[1] / "b").symlink_to("a")
    with pytest.raises(OSError) as e:
        layers.read("a")
    assert e.value.errno == errno.ELOOP


def test_the_walk_never_follows_a_proc_fd_magic_link(tmp_path):
    """runc's CVE-2024-21626: /proc/self/fd/N of a leaked directory descriptor leads out
    of any root (as the working directory after pivot_root, `/` is the root). openat2
    refuses it (RESOLVE_NO_MAGICLINKS); so must the walk, not read it as a path."""
    leaked = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    root = os.open("/", os.O_PATH | os.O_DIRECTORY)
    paths.use_openat2(False)
    try:
        with pytest.raises(OSError) as e:
            paths.open_in_root(root, f"/proc/self/fd/{leaked}", os.O_PATH)
        assert e.value.errno == errno.ELOOP
    finally:
        paths.use_openat2(None)
        os.close(root)
        os.close(leaked)


# ---- reading: regular files only, bounded ----

def opath(path: Path) -> int:
    return os.open(path, os.O_PATH | os.O_NOFOLLOW)


def test_read_regular_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    fd = opath(tmp_path / "fifo")
    try:
        with pytest.raises(OSError) as e:
            paths.read_regular(fd, 100)  # an open(2) for reading would block forever
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_read_regular_refuses_a_socket_and_a_device(tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    for path in (tmp_path / "sock", Path("/dev/null")):
        fd = opath(path)
        try:
            with pytest.raises(OSError) as e:
                paths.read_regular(fd, 100)
            assert e.value.errno == errno.EINVAL
        finally:
            os.close(fd)
    sock.close()


def test_read_regular_refuses_a_file_over_the_limit(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 101)
    fd = opath(tmp_path / "big")
    try:
        with pytest.raises(OSError) as e:
            paths.read_regular(fd, 100)
        assert e.value.errno == errno.EFBIG
        (tmp_path / "big").write_bytes(b"x" * 100)
        assert paths.read_regular(fd, 100) == b"x" * 100
    finally:
        os.close(fd)


# ---- the runtime's resolutions go through the seam ----

@pytest.fixture
def rootfs(tmp_path):
    root, outside = tmp_path / "rootfs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    yield root, outside, fd
    os.close(fd)
    assert os.listdir(outside) == [], "something was made outside the rootfs"


def executor(sys: RecordingSyscalls, root_fd: int) -> Executor:
    ex = Executor(sys)
    ex.root_fd = root_fd
    return ex


def test_mount_points_are_resolved_through_the_seams_openat2(rootfs):
    root, _, fd = rootfs
    (root / "mnt").mkdir()
    paths.use_openat2(None)
    if not paths.has_openat2():
        pytest.skip("this kernel has no openat2")

    def real_openat2(dirfd, path, flags, mode, resolve):
        sys.calls.append(("openat2", path, resolve))
        return paths._shim_openat2(dirfd, path, flags, mode, resolve)

    sys = RecordingSyscalls()
    sys.openat2 = real_openat2
    executor(sys, fd).run((p.BindMount(str(root), "/mnt"),))
    assert ("openat2", "mnt", paths._IN_ROOT) in sys.calls
    assert [c[0] for c in sys.calls if c[0] == "mount"] == ["mount"]


@pytest.mark.parametrize("floor", ["seam", "walk"])
def test_without_openat2_the_walk_makes_mount_points_inside_the_root(rootfs, floor):
    root, outside, fd = rootfs
    (root / "mnt").symlink_to(outside)  # the host path of outside/, taken inside the root
    sys = RecordingSyscalls(fail={"openat2": errno.ENOSYS} if floor == "seam" else {})
    paths.use_openat2(None if floor == "seam" else False)
    try:
        executor(sys, fd).run((p.BindMount(str(root), "/mnt/data"),))
    finally:
        paths.use_openat2(None)
    assert (root / str(outside).lstrip("/") / "data").is_dir()
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    assert mount[2].startswith("/proc/self/fd/")
    if floor == "walk":
        assert "openat2" not in sys.names()


def test_without_openat2_a_symlink_where_none_may_be_is_refused(rootfs):
    root, outside, fd = rootfs
    (root / "proc").symlink_to(outside)
    sys = RecordingSyscalls(fail={"openat2": errno.ENOSYS})
    with pytest.raises(RuntimeSetupError, match="refusing to mount proc on /proc"):
        executor(sys, fd).run((p.MountFilesystem("proc", "/proc", "proc"),))
    assert "mount" not in sys.names()


# ---- user ids in an OCI spec ----

def test_spec_user_ids_are_integers_from_0_to_4294967294():
    def set_user(user: dict) -> p.SetUser:
        steps = p.process_steps({"args": ["sh"], "user": user}, single_id=False, init=False)
        return next(s for s in steps if isinstance(s, p.SetUser))

    for value in (4294967295, -1, 2**32, "0", 1.0, True, None):
        for user in ({"uid": value, "gid": 0}, {"uid": 0, "gid": value},
                     {"uid": 0, "gid": 0, "additionalGids": [value]}):
            with pytest.raises(RuntimeSetupError, match="invalid"):
                set_user(user)
    top = set_user({"uid": 4294967294, "gid": 5, "additionalGids": [6, 7]})
    assert (top.uid, top.gid, top.additional_gids) == (4294967294, 5, (6, 7))


@pytest.mark.parametrize("step", [p.SetUser(4294967295, 0), p.SetUser(0, -1),
                                  p.SetUser(0, 0, (4294967295,))])
def test_executor_refuses_to_become_minus_one(step):
    # the check comes before any call: Python would pass -1 on as "unchanged"
    with pytest.raises(RuntimeSetupError, match="invalid id"):
        Executor(RecordingSyscalls()).run((step,))


def test_keep_groups_annotation_leaves_the_groups_alone_with_subids():
    spec = {"root": {"path": "/r"}, "process": {"args": ["sh"], "user": {"uid": 1}},
            "annotations": {p.KEEP_GROUPS_ANNOTATION: "1"}}
    (user,) = [s for s in p.build_plan(spec, single_id=False).steps
               if isinstance(s, p.SetUser)]
    assert user.set_groups is False
    del spec["annotations"][p.KEEP_GROUPS_ANNOTATION]
    (user,) = [s for s in p.build_plan(spec, single_id=False).steps
               if isinstance(s, p.SetUser)]
    assert user.set_groups is True


# ---- deep trees: the walk holds a bounded number of descriptors ----

DEPTH = 1500


@pytest.fixture
def walk_only():
    paths.use_openat2(False)
    yield
    paths.use_openat2(None)


@pytest.fixture
def few_descriptors():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def remove_deep(path: Path) -> None:
    """pytest's own clean-up recurses: remove what the test made deep, by descriptor."""
    from rootless.kernel.remove import rmtree_owned

    rmtree_owned(path)


def test_walk_makes_a_tree_deeper_than_the_descriptor_limit(tmp_path, walk_only,
                                                             few_descriptors):
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.mkdirs_in_root(root, "/".join(["d"] * DEPTH))
        os.close(fd)
        fd = paths.open_in_root(root, "/".join(["d"] * DEPTH) + "/f",
                                os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    finally:
        os.close(root)
    assert os.path.exists(tmp_path / "/".join(["d"] * 40))
    remove_deep(tmp_path / "d")


def test_walk_climbs_back_out_of_a_deep_tree_by_name(tmp_path, walk_only, few_descriptors):
    """`..` past the levels the walk still holds reopens them from the root."""
    deep = "/".join(["d"] * 100)
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        os.close(paths.mkdirs_in_root(root, deep))
        (tmp_path / "d" / "marker").write_text("top")
        up = "/".join([".."] * 99)
        fd = paths.open_in_root(root, f"{deep}/{up}/marker", os.O_RDONLY)
        assert os.read(fd, 10) == b"top"
        os.close(fd)
    finally:
        os.close(root)
    remove_deep(tmp_path / "d")


def test_walk_does_not_follow_a_directory_swapped_for_a_symlink_while_climbing(
        tmp_path, walk_only, monkeypatch):
    """A level the walk closed and must reopen by name is checked again: a symlink
    swapped in for one of its directories fails the walk; it is never followed."""
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "marker").write_text("host")
    deep = "/".join(["d"] * 40)
    root = os.open(tmp_path / "root", os.O_PATH | os.O_DIRECTORY)
    real_reopen = paths._reopen

    def swap_then_reopen(*args, **kwargs):
        level2 = tmp_path / "root" / "d" / "d"
        if not level2.is_symlink():
            os.rename(level2, tmp_path / "root" / "moved")
            os.symlink(tmp_path / "outside", level2)
        return real_reopen(*args, **kwargs)

    monkeypatch.setattr(paths, "_reopen", swap_then_reopen)
    try:
        os.close(paths.mkdirs_in_root(root, deep))
        with pytest.raises(OSError) as err:
            paths.open_in_root(root, deep + "/" + "/".join([".."] * 38) + "/marker",
                               os.O_RDONLY)
        assert err.value.errno == errno.ESTALE
    finally:
        os.close(root)


# ---- id maps of an OCI spec are read strictly ----

@pytest.mark.parametrize("entry", [
    {"containerID": 0, "hostID": 1000, "size": "1"},
    {"containerID": True, "hostID": 1000, "size": 1},
    {"containerID": 0, "hostID": 4294967295, "size": 1},
    {"containerID": -1, "hostID": 1000, "size": 1},
    {"containerID": 0, "hostID": 1000, "size": 0},
    {"containerID": 4294967290, "hostID": 1000, "size": 10},
    "0 1000 1",
])
def test_spec_id_mappings_are_read_strictly(entry):
    from rootless.kernel.idmap import maps_from_spec

    good = {"containerID": 0, "hostID": os.getgid(), "size": 1}
    with pytest.raises(RuntimeSetupError):
        maps_from_spec({"uidMappings": [entry], "gidMappings": [good]})
