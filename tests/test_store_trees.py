"""Trees in the store, whoever wrote them, never wedge it nor reach outside it.

Images and containers may hold directory trees deeper than Python's recursion limit and
paths longer than PATH_MAX; every command that walks or removes them (run on either
rootfs strategy, rm, run --rm, rmi, image prune, system df, the cleanup of tmp/) works
at any depth. Removal is by descriptor, so a symlink swapped in by a live process never
redirects it outside the tree. And what a killed command leaves in tmp/ never blocks the
next command, which reclaims it, while a command still running keeps its own entries,
whatever pid namespace it runs in.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from helpers import ok, wait_for

DEPTH = 1500  # past Python's recursion limit (1000)
DEEP_FILE = "/deep" + "/d" * (DEPTH - 1) + "/f"
ZEROS = 150 << 20  # long enough to unpack for a command to be caught midway


# ---- making deep trees ----

def add_deep_chain(tar: tarfile.TarFile, depth: int = DEPTH) -> None:
    """deep/d/d/.../d (`depth` directories) holding f = "deep\\n"."""
    name = "deep"
    for level in range(depth):
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        if level < depth - 1:
            name += "/d"
    add_file(tar, name + "/f", b"deep\n")


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def deep_rootfs(image_archives, path: Path) -> Path:
    """The busybox rootfs tar with a DEPTH-deep chain added."""
    shutil.copyfile(image_archives.rootfs, path)
    with tarfile.open(path, "a") as tar:
        add_deep_chain(tar)
    return path


def deep_layer_with_zeros() -> bytes:
    """A layer: the deep chain first, then ZEROS bytes of a file that takes a while."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_deep_chain(tar)
        info = tarfile.TarInfo("zeros")
        info.size, info.mode = ZEROS, 0o644
        tar.addfile(info, io.BytesIO(bytes(ZEROS)))
    return buf.getvalue()


def make_deep_in_container(depth: int = DEPTH) -> str:
    """A shell script for the container: a `depth`-deep chain under /made, a file at
    its bottom."""
    return (f"mkdir /made && cd /made && i=0; while [ $i -lt {depth} ]; do mkdir d "
            "&& cd d || exit 1; i=$((i+1)); done; echo bottom > f && echo made")


def make_long_in_container(depth: int = 30, name: str = "n" * 200,
                           bottom: str = "echo bottom > f") -> str:
    """/made/NAME/NAME/.../f, `depth` levels of 200 characters: longer than PATH_MAX,
    so made by wrapping the tree in one more level each time (`cd` would refuse)."""
    return (f"mkdir -p /made/{name} && cd /made/{name} && {bottom} && cd /made && i=1; "
            f"while [ $i -lt {depth} ]; do mkdir t && mv {name} t/ && mv t {name} || exit 1; "
            "i=$((i+1)); done; echo made")


def store_dirs(store: Path, sub: str) -> list[str]:
    path = store / sub
    return sorted(os.listdir(path)) if path.is_dir() else []


def no_temp(store: Path) -> bool:
    """Nothing in tmp/, and no owner file of a command (store/temp.py) left behind."""
    return store_dirs(store, "tmp") == [] and store_dirs(store, "owners") == []


@pytest.fixture(autouse=True)
def deep_trees_removed(tmp_path):
    """pytest's own cleanup of old temporary directories (shutil.rmtree) recurses: a
    tree deeper than ~1000 left here would fail every later session. rm -rf does not."""
    yield
    subprocess.run(["rm", "-rf", "--", str(tmp_path)], check=False)


@pytest.fixture
def deep_image(rootless, image_archives, tmp_path) -> str:
    ok(rootless("import", str(deep_rootfs(image_archives, tmp_path / "deep.tar")), "deep:1"))
    return "deep:1"


# ---- depth: every command that walks a tree ----

@pytest.mark.container
def test_the_copy_rootfs_of_an_image_holding_a_1500_deep_tree_runs(rootless, deep_image):
    rootless.env["ROOTLESS_ROOTFS"] = "copy"
    assert ok(rootless("run", "--rm", deep_image, "cat", DEEP_FILE)) == "deep\n"


@pytest.mark.container
def test_rm_removes_a_container_that_made_a_1500_deep_tree(rootless, busybox, store):
    assert ok(rootless("run", "--name", "ctr", busybox, "sh", "-c",
                       make_deep_in_container())) == "made\n"
    assert ok(rootless("rm", "ctr")) == "ctr\n"
    assert ok(rootless("ps", "-aq")) == ""
    assert store_dirs(store, "containers") == [] and no_temp(store)


@pytest.mark.container
@pytest.mark.parametrize("strategy", ["overlay", "copy"])
def test_run_rm_removes_a_1500_deep_tree_the_container_made(rootless, busybox, store,
                                                             strategy):
    rootless.env["ROOTLESS_ROOTFS"] = strategy
    assert ok(rootless("run", "--rm", busybox, "sh", "-c",
                       make_deep_in_container())) == "made\n"
    assert store_dirs(store, "containers") == [] and no_temp(store)


@pytest.mark.container
def test_rm_removes_a_tree_whose_paths_are_longer_than_path_max(rootless, busybox, store):
    ok(rootless("run", "--name", "ctr", busybox, "sh", "-c", make_long_in_container()))
    assert ok(rootless("rm", "ctr")) == "ctr\n"
    assert store_dirs(store, "containers") == [] and no_temp(store)


@pytest.mark.container
@pytest.mark.needs_subids
def test_a_1500_deep_tree_of_subordinate_ids_is_removed(rootless, busybox, store):
    """Files of a non-root user in the container belong to subordinate ids on the
    host: removed from inside a user namespace, by the same iterative remover."""
    assert ok(rootless("run", "--rm", "-u", "1000", busybox, "sh", "-c",
                       f"cd /tmp && {make_deep_in_container()}".replace("/made", "made"))
              ) == "made\n"
    assert store_dirs(store, "containers") == [] and no_temp(store)


@pytest.mark.container
def test_system_df_counts_what_a_container_wrote_below_path_max(rootless, busybox):
    ok(rootless("run", "--name", "ctr", busybox, "sh", "-c",
                make_long_in_container(bottom="head -c 300000 /dev/zero > f")))
    out = ok(rootless("system", "df", "--format", "{{.Type}} {{.Size}}"))
    size = dict(line.rsplit(" ", 1) for line in out.splitlines())["Containers"]
    assert size.endswith("kB") and float(size[:-2]) >= 300, out


@pytest.mark.parametrize("remove", [("rmi", "deep:1"), ("image", "prune", "-a", "-f")],
                         ids=["rmi", "prune"])
def test_removing_an_image_holding_a_1500_deep_tree_leaves_nothing_behind(
        rootless, deep_image, store, image_archives, remove):
    ok(rootless(*remove))
    assert store_dirs(store, "layers") == [] and no_temp(store)
    ok(rootless("import", str(image_archives.rootfs), "next:1"))


# ---- what killed commands leave in tmp/ ----

def test_a_1500_deep_leftover_of_a_dead_command_does_not_block_the_next_import(
        rootless, store, image_archives):
    ok(rootless("images"))  # makes the store
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    with tarfile.open(fileobj=io.BytesIO(_chain_tar()), mode="r") as tar:
        tar.extractall(store / "tmp" / f"layer-{dead}-0123456789ab")
    ok(rootless("import", str(image_archives.rootfs), "next:1"))
    assert no_temp(store)


def _chain_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_deep_chain(tar)
    return buf.getvalue()


def test_the_leftovers_of_an_owner_that_is_gone_are_reclaimed(rootless, store,
                                                              image_archives):
    """Hand-made as a killed command leaves them: its owner file (nobody holds its
    lock any more), a layer half unpacked with a mode 000 directory, a blob."""
    ok(rootless("images"))
    token = "4242x0badf00d"
    tmp = store / "tmp"
    (store / "owners").mkdir(exist_ok=True)
    (store / "owners" / token).write_bytes(b"")
    (tmp / f"layer-{token}-0123456789ab" / "etc" / "locked").mkdir(parents=True)
    (tmp / f"layer-{token}-0123456789ab" / "etc" / "locked").chmod(0)
    (tmp / f"blob-{token}-0123456789ab").write_bytes(b"partial")
    ok(rootless("import", str(image_archives.rootfs), "next:1"))
    assert no_temp(store)


@pytest.fixture(scope="module")
def deep_zeros_layer() -> bytes:
    return deep_layer_with_zeros()


def kill_when_unpacking(proc: subprocess.Popen, store: Path) -> None:
    """SIGKILL the command (alone: its helpers die with it) once the deep chain of its
    layer is unpacked in tmp/ and the big file is under way."""
    def unpacking() -> bool:
        return any((layer / "zeros").exists() for layer in (store / "tmp").glob("layer-*"))

    wait_for(unpacking, timeout=60, interval=0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_an_import_killed_midway_leaves_nothing_the_next_import_trips_on(
        rootless, store, tmp_path, deep_zeros_layer):
    layer = tmp_path / "layer.tar"
    layer.write_bytes(deep_zeros_layer)
    proc = rootless.popen("import", str(layer), "deep:1", stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    kill_when_unpacking(proc, store)
    ok(rootless("import", str(layer), "deep:1"))
    assert ok(rootless("images", "-q"))
    assert no_temp(store)


def test_a_load_killed_midway_leaves_nothing_the_next_load_trips_on(
        rootless, store, tmp_path, deep_zeros_layer):
    from test_image_load import Image, oci_archive

    archive = oci_archive(tmp_path / "deep.oci.tar", [
        (Image([deep_zeros_layer]), {"org.opencontainers.image.ref.name": "deep:1"})])
    proc = rootless.popen("load", "-i", str(archive), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    kill_when_unpacking(proc, store)
    ok(rootless("load", "-i", str(archive)))
    assert ok(rootless("images", "-q"))
    assert no_temp(store)


def test_a_pull_killed_midway_leaves_nothing_the_next_pull_trips_on(
        rootless, store, tmp_path, fake, deep_zeros_layer):
    from registry_server import TinyImage, isolate_registry_client

    reg = isolate_registry_client(rootless, tmp_path, "5")
    TinyImage(tars=[deep_zeros_layer], compression="none").serve(fake)
    proc = reg.popen("pull", "--tls-verify=false", f"{fake.host}/tiny:1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when_unpacking(proc, store)
    ok(reg("pull", "--tls-verify=false", f"{fake.host}/tiny:1"))
    assert ok(reg("images", "-q"))
    assert no_temp(store)


def test_a_live_command_in_another_pid_namespace_keeps_its_temporary_entries(
        rootless, store, image_archives):
    """Two commands on one store whose pids cannot see each other (a second node on
    an NFS home; here a pid namespace): neither removes the other's work."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    data = image_archives.rootfs.read_bytes()
    first = rootless.popen("import", "-", "first:1", stdin=subprocess.PIPE)
    first.stdin.write(data[:len(data) // 2])
    first.stdin.flush()
    wait_for(lambda: any(name.startswith("import-") for name in store_dirs(store, "tmp")))
    second = subprocess.run(
        ["unshare", "--user", "--map-current-user", "--pid", "--fork",
         str(Path(sys.executable).parent / "rootless"), "import",
         str(image_archives.rootfs), "second:1"],
        env=rootless.env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    first.stdin.write(data[len(data) // 2:])
    first.stdin.close()
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert sorted(ok(rootless("images", "--format", "{{.Repository}}")).split()) == [
        "first", "second"]
    assert no_temp(store)


def kill_rm_midway(rootless, store: Path, many: str) -> None:
    """`rm c`, SIGKILLed once it has begun removing the 40000 files of `many` (a path
    in the container)."""
    (cid,) = store_dirs(store, "containers")
    path = store / "containers" / cid / "upper" / many.lstrip("/")
    if not path.is_dir():
        path = store / "containers" / cid / "rootfs" / many.lstrip("/")
    proc = rootless.popen("rm", "ctr", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def removal_started() -> bool:
        try:
            return len(os.listdir(path)) < 40000
        except FileNotFoundError:
            return True  # moved out of containers/ to be removed
        except PermissionError:
            return False  # files of subordinate ids: listed once renamed away

    wait_for(removal_started, timeout=60, interval=0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


MAKE_MANY = "mkdir {0} && cd {0} && seq 40000 | xargs touch"


@pytest.mark.container
def test_an_rm_killed_midway_leaves_no_directory_without_a_container(
        rootless, busybox, store, image_archives):
    ok(rootless("run", "--name", "ctr", busybox, "sh", "-c", MAKE_MANY.format("/many")))
    kill_rm_midway(rootless, store, "/many")
    assert ok(rootless("ps", "-aq")) == ""  # its row went first
    assert store_dirs(store, "containers") == []
    ok(rootless("import", str(image_archives.rootfs), "next:1"))  # reclaims the rest
    assert no_temp(store)


@pytest.mark.container
@pytest.mark.needs_subids
def test_an_rm_killed_midway_through_files_of_subordinate_ids_is_finished_later(
        rootless, busybox, store, image_archives):
    """What only a user namespace can remove does not block an import, which leaves
    it; the next rm, which can, reclaims it."""
    ok(rootless("run", "-u", "1000", "--name", "ctr", busybox, "sh", "-c",
                MAKE_MANY.format("/tmp/many")))
    kill_rm_midway(rootless, store, "/tmp/many")
    assert store_dirs(store, "containers") == []
    ok(rootless("import", str(image_archives.rootfs), "next:1"))
    ok(rootless("run", "--name", "c2", "next:1", "true"))
    ok(rootless("rm", "c2"))
    assert store_dirs(store, "containers") == [] and no_temp(store)


# ---- races: a live process swaps directories for symlinks while rm removes ----

RACER = textwrap.dedent("""
    # Once removal of X has begun (its link count drops as its subdirectories go),
    # replace each directory still there with a symlink to SENTINEL, the directory
    # itself moved to ASIDE, from the end of the listing: a remover that goes in
    # listing order meets directories it listed as such that are symlinks by the time
    # it reaches them; one that goes the other way races the swaps entry by entry.
    import os, sys
    x = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    sentinel, aside = sys.argv[2], os.open(sys.argv[3], os.O_RDONLY | os.O_DIRECTORY)
    order = [n for n in reversed(os.listdir(x)) if n.startswith("d")]
    links = os.fstat(x).st_nlink
    print("racing", flush=True)
    while os.fstat(x).st_nlink >= links:
        pass
    for name in order:
        try:
            os.rename(name, name, src_dir_fd=x, dst_dir_fd=aside)
            os.symlink(sentinel, name, dir_fd=x)
        except OSError:
            pass
""")
DIRS = 2000
MAKE_X = (f"mkdir /x && cd /x && seq 0 {DIRS - 1} | sed 's/^/d/' | xargs mkdir && "
          f"seq 0 {DIRS - 1} | sed 's|.*|d&/keep d&/f1|' | xargs touch")


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A directory of the test's, outside the store, that no removal may touch; it
    holds the names the container's directories hold."""
    path = tmp_path / "sentinel"
    (path / "sub").mkdir(parents=True)
    for name in ("keep", "f1", "sub/keep"):
        (path / name).write_text("precious")
    return path


def sentinel_files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def race_while_removing(rootless, store, sentinel, *rm_args: str) -> None:
    """Container `ctr` made /x holding DIRS directories; while `rm` removes it, the
    racer replaces them with symlinks to the sentinel."""
    (cid,) = store_dirs(store, "containers")
    x = store / "containers" / cid / "upper" / "x"
    if not x.is_dir():
        x = store / "containers" / cid / "rootfs" / "x"
    aside = sentinel.parent / "aside"
    aside.mkdir()
    before = sentinel_files(sentinel)
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(x), str(sentinel), str(aside)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert racer.stdout.readline() == "racing\n"
        result = rootless("rm", *rm_args, "ctr")
        racer.wait(timeout=30)
    finally:
        racer.kill()
    assert sentinel_files(sentinel) == before
    assert result.returncode == 0, result.stderr
    assert store_dirs(store, "containers") == []
    assert os.listdir(aside), "the race was not run"


@pytest.mark.container
def test_rm_of_a_container_whose_directories_are_swapped_for_symlinks_stays_inside(
        rootless, busybox, store, sentinel):
    ok(rootless("run", "--name", "ctr", busybox, "sh", "-c", MAKE_X))
    race_while_removing(rootless, store, sentinel)


@pytest.mark.container
def test_rm_f_of_a_running_container_whose_directories_are_swapped_stays_inside(
        rootless, busybox, store, sentinel):
    proc = rootless.popen("run", "--name", "ctr", busybox, "sh", "-c",
                          f"{MAKE_X} && echo ready && sleep 600")
    assert proc.stdout.readline() == b"ready\n"
    race_while_removing(rootless, store, sentinel, "-f")
