"""`cp` (issue 8): docker's rules for files and directories in both directions, `-` tar
streams, owners with and without -a, running and stopped containers, and the escapes:
a symlink in the container (to `/`, to `../../..`, to a host path) or in a hostile tar
never reads or writes a host file, also while the container swaps a directory and a
symlink during the copies (docker's CVE-2018-15664)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import assert_error, ok, wait_for

SETUP = ("mkdir -p /data/dir/sub && echo file > /data/file && echo top > /data/dir/top && "
         "echo sub > /data/dir/sub/f && ln -s file /data/link && "
         "ln /data/dir/top /data/dir/hard && mkfifo /data/fifo")
KINDS = ["running", "stopped"]
HOST_SECRET = "host secret\n"


class Containers:
    """Containers made for one test: stopped (a run that has exited) or running (run -d:
    its script, then `touch READY`, then sleep)."""

    def __init__(self, rootless, busybox: str) -> None:
        self.rootless, self.busybox = rootless, busybox

    def make(self, kind: str, script: str = SETUP, *options: str, name: str = "ct",
             ready: str = "/ready") -> str:
        if kind == "stopped":
            ok(self.rootless("run", "--name", name, *options, self.busybox, "sh", "-c",
                             script))
            return name
        ok(self.rootless("run", "-d", "--name", name, *options, self.busybox, "sh", "-c",
                         f"{{ {script}\n}} && touch {ready} && exec sleep 1000"))

        def up() -> bool:
            state = self.rootless("inspect", "--format", "{{.State.Status}}", name)
            if state.stdout.strip() != "running":
                logs = self.rootless("logs", name)
                raise AssertionError(f"the container is {state.stdout.strip()}: "
                                     f"{logs.stdout}{logs.stderr}")
            return self.rootless("cp", f"{name}:{ready}", "-").returncode == 0

        wait_for(up, timeout=30, interval=0.1)
        return name


@pytest.fixture
def containers(rootless, busybox) -> Containers:
    return Containers(rootless, busybox)


@pytest.fixture(params=KINDS)
def ctr(request, containers) -> str:
    """A container named ct holding SETUP's tree under /data, running or stopped."""
    return containers.make(request.param)


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def member_data(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(name).read()


def make_tar(*entries: tuple) -> bytes:
    """(name, kind, data_or_link, uid) tuples: kind is "file", "dir", "sym" or "hard"."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
             "hard": tarfile.LNKTYPE}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, value, *owner in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            info.uid = info.gid = owner[0] if owner else 0
            data = None
            if kind == "file":
                info.size = len(value)
                data = io.BytesIO(value)
            elif kind in ("sym", "hard"):
                info.linkname = value
            tar.addfile(info, data)
    return buf.getvalue()


def cp_out(rootless, path: str, name: str = "ct") -> bytes:
    """The tar `cp NAME:PATH -` writes."""
    proc = rootless.popen("cp", f"{name}:{path}", "-", stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return out


def read_in(rootless, path: str, name: str = "ct") -> bytes:
    """The content of the container's file PATH."""
    return member_data(cp_out(rootless, path, name), path.rsplit("/", 1)[-1])


def host_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
            for p in sorted(root.rglob("*"))}


# ---- from the container: docker's rules ----

@pytest.mark.container
def test_a_file_copied_out_to_a_new_name_is_that_file(rootless, ctr, tmp_path):
    ok(rootless("cp", "ct:/data/file", str(tmp_path / "new")))
    assert (tmp_path / "new").read_text() == "file\n"


@pytest.mark.container
def test_a_file_copied_out_into_a_directory_keeps_its_name(rootless, ctr, tmp_path):
    ok(rootless("cp", "ct:/data/file", str(tmp_path)))
    assert (tmp_path / "file").read_text() == "file\n"


@pytest.mark.container
def test_a_file_copied_out_over_a_file_replaces_it(rootless, ctr, tmp_path):
    (tmp_path / "old").write_text("old content that is longer\n")
    ok(rootless("cp", "ct:/data/file", str(tmp_path / "old")))
    assert (tmp_path / "old").read_text() == "file\n"


@pytest.mark.container
def test_a_directory_copied_out_to_a_new_name_becomes_that_directory(rootless, ctr,
                                                                     tmp_path):
    ok(rootless("cp", "ct:/data/dir", str(tmp_path / "copy")))
    assert (tmp_path / "copy" / "top").read_text() == "top\n"
    assert (tmp_path / "copy" / "sub" / "f").read_text() == "sub\n"


@pytest.mark.container
def test_a_directory_copied_out_into_a_directory_goes_inside_it(rootless, ctr, tmp_path):
    ok(rootless("cp", "ct:/data/dir", str(tmp_path)))
    assert (tmp_path / "dir" / "sub" / "f").read_text() == "sub\n"


@pytest.mark.container
def test_dir_dot_copies_the_contents_into_an_existing_directory(rootless, ctr, tmp_path):
    ok(rootless("cp", "ct:/data/dir/.", str(tmp_path)))
    assert (tmp_path / "top").read_text() == "top\n"
    assert (tmp_path / "sub" / "f").read_text() == "sub\n"
    assert not (tmp_path / "dir").exists()


@pytest.mark.container
def test_a_trailing_slash_on_a_file_source_is_refused(rootless, ctr, tmp_path):
    result = rootless("cp", "ct:/data/file/", str(tmp_path / "x"))
    assert_error(result, 1, "ct:/data/file/", "not a directory")
    assert not (tmp_path / "x").exists()


@pytest.mark.container
def test_a_missing_source_is_refused_naming_it(rootless, ctr, tmp_path):
    result = rootless("cp", "ct:/data/nothing", str(tmp_path / "x"))
    assert_error(result, 1, "no such container:path: ct:/data/nothing")


@pytest.mark.container
def test_a_file_cannot_make_a_missing_directory_destination(rootless, ctr, tmp_path):
    result = rootless("cp", "ct:/data/file", str(tmp_path / "newdir") + "/")
    assert_error(result, 1, "no such directory")
    assert not (tmp_path / "newdir").exists()


@pytest.mark.container
def test_a_directory_cannot_replace_a_file(rootless, ctr, tmp_path):
    (tmp_path / "f").write_text("kept\n")
    result = rootless("cp", "ct:/data/dir", str(tmp_path / "f"))
    assert_error(result, 1, "cannot copy a directory")
    assert (tmp_path / "f").read_text() == "kept\n"


@pytest.mark.container
def test_a_destination_whose_directory_is_missing_is_refused(rootless, ctr, tmp_path):
    result = rootless("cp", "ct:/data/file", str(tmp_path / "no" / "x"))
    assert_error(result, 1, "invalid output path", "does not exist")


@pytest.mark.container
def test_dash_writes_a_tar_of_the_source_to_stdout(rootless, ctr):
    data = cp_out(rootless, "/data/dir")
    found = members(data)
    assert {"dir", "dir/top", "dir/sub", "dir/sub/f"} <= set(found)
    assert found["dir"].isdir() and (found["dir/top"].uid, found["dir/top"].gid) == (0, 0)
    assert member_data(data, "dir/sub/f") == b"sub\n"


@pytest.mark.container
def test_symlinks_and_hardlinks_are_copied_out_as_links(rootless, ctr, tmp_path):
    ok(rootless("cp", "ct:/data", str(tmp_path / "out")))
    assert (tmp_path / "out" / "link").is_symlink()
    assert (tmp_path / "out" / "link").readlink() == Path("file")
    top, hard = tmp_path / "out" / "dir" / "top", tmp_path / "out" / "dir" / "hard"
    assert top.stat().st_ino == hard.stat().st_ino


@pytest.mark.container
def test_follow_link_copies_what_a_symlink_names(rootless, ctr, tmp_path):
    ok(rootless("cp", "-L", "ct:/data/link", str(tmp_path / "followed")))
    ok(rootless("cp", "ct:/data/link", str(tmp_path / "kept")))
    assert not (tmp_path / "followed").is_symlink()
    assert (tmp_path / "followed").read_text() == "file\n"
    assert (tmp_path / "kept").is_symlink()


@pytest.mark.container
def test_a_fifo_is_copied_as_an_entry_and_never_opened(rootless, ctr, tmp_path):
    # opening a FIFO for reading blocks until a writer comes: the copy would hang
    data = cp_out(rootless, "/data")
    assert members(data)["data/fifo"].isfifo()
    ok(rootless("cp", "ct:/data/fifo", str(tmp_path / "fifo"), timeout=30))
    assert (tmp_path / "fifo").is_fifo()


@pytest.mark.container
def test_a_running_containers_proc_and_sys_are_copied_empty(rootless, containers):
    containers.make("running", "true")
    found = members(cp_out(rootless, "/"))
    assert "./proc" in found and "./sys" in found
    assert not [name for name in found if name.startswith(("./proc/", "./sys/"))]
    assert "./etc/hosts" in found and found["./dev/null"].ischr()


# ---- into the container: docker's rules ----

@pytest.mark.container
def test_a_file_copied_in_to_a_new_name_is_that_file(rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")
    ok(rootless("cp", str(tmp_path / "src"), "ct:/data/new"))
    assert read_in(rootless, "/data/new") == b"in\n"


@pytest.mark.container
def test_a_file_copied_in_into_a_directory_keeps_its_name(rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")
    ok(rootless("cp", str(tmp_path / "src"), "ct:/data/dir"))
    assert read_in(rootless, "/data/dir/src") == b"in\n"


@pytest.mark.container
def test_a_file_copied_in_over_a_file_replaces_it(rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")
    ok(rootless("cp", str(tmp_path / "src"), "ct:/data/file"))
    assert read_in(rootless, "/data/file") == b"in\n"


@pytest.mark.container
def test_a_directory_copied_in_to_a_new_name_becomes_that_directory(rootless, ctr,
                                                                    tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_text("deep\n")
    ok(rootless("cp", str(tmp_path / "d"), "ct:/data/copy"))
    assert read_in(rootless, "/data/copy/e/f") == b"deep\n"


@pytest.mark.container
def test_a_directory_copied_in_into_a_directory_goes_inside_it(rootless, ctr, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("in d\n")
    ok(rootless("cp", str(tmp_path / "d"), "ct:/data/dir"))
    assert read_in(rootless, "/data/dir/d/f") == b"in d\n"


@pytest.mark.container
def test_dir_dot_copied_in_adds_the_contents_to_a_directory(rootless, ctr, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "g").write_text("g\n")
    ok(rootless("cp", str(tmp_path / "d") + "/.", "ct:/data/dir"))
    found = members(cp_out(rootless, "/data/dir"))
    assert {"dir/g", "dir/top", "dir/sub/f"} <= set(found) and "dir/d" not in found


@pytest.mark.container
def test_a_destination_whose_directory_is_missing_in_the_container_is_refused(
        rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")
    result = rootless("cp", str(tmp_path / "src"), "ct:/nowhere/x")
    assert_error(result, 1, "no such container:path: ct:/nowhere")


@pytest.mark.container
def test_a_trailing_slash_on_a_file_destination_is_refused(rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")
    result = rootless("cp", str(tmp_path / "src"), "ct:/data/file/")
    assert_error(result, 1, "no such directory: ct:/data/file/")
    assert read_in(rootless, "/data/file") == b"file\n"


@pytest.mark.container
def test_a_missing_local_source_is_refused(rootless, ctr, tmp_path):
    result = rootless("cp", str(tmp_path / "absent"), "ct:/data")
    assert_error(result, 1, "absent", "no such file or directory")


@pytest.mark.container
def test_files_copied_in_belong_to_the_containers_root(rootless, ctr, tmp_path):
    (tmp_path / "src").write_text("in\n")  # owned by the user, not uid 0, on the host
    ok(rootless("cp", str(tmp_path / "src"), "ct:/data/owned"))
    entry = members(cp_out(rootless, "/data/owned"))["owned"]
    assert (entry.uid, entry.gid) == (0, 0)


@pytest.mark.container
def test_symlinks_and_hardlinks_are_copied_in_as_links(rootless, ctr, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("f\n")
    (tmp_path / "d" / "l").symlink_to("/etc/shadow")
    (tmp_path / "d" / "h").hardlink_to(tmp_path / "d" / "f")
    ok(rootless("cp", str(tmp_path / "d"), "ct:/data/links"))
    found = members(cp_out(rootless, "/data/links"))
    assert found["links/l"].issym() and found["links/l"].linkname == "/etc/shadow"
    assert {found["links/f"].islnk(), found["links/h"].islnk()} == {True, False}


@pytest.mark.container
def test_dash_extracts_a_tar_from_stdin_into_a_directory(rootless, ctr):
    tar = make_tar(("t", "dir", None), ("t/x", "file", b"from stdin\n"))
    ok(rootless("cp", "-", "ct:/data", input=tar))
    assert read_in(rootless, "/data/t/x") == b"from stdin\n"


@pytest.mark.container
def test_dash_into_a_file_is_refused(rootless, ctr):
    result = rootless("cp", "-", "ct:/data/file", input=make_tar(("x", "file", b"x")))
    assert_error(result, 1, 'destination "ct:/data/file" must be a directory')


@pytest.mark.container
def test_archive_mode_keeps_the_owners_the_tar_names(rootless, ctr):
    tar = make_tar(("o", "dir", None, 1000), ("o/f", "file", b"owned\n", 1000))
    ok(rootless("cp", "-a", "-", "ct:/data", input=tar))
    found = members(cp_out(rootless, "/data/o"))
    assert (found["o/f"].uid, found["o/f"].gid, found["o"].uid) == (1000, 1000, 1000)


@pytest.mark.container
def test_without_archive_mode_the_tars_owners_are_not_kept(rootless, ctr):
    tar = make_tar(("o", "dir", None, 1000), ("o/f", "file", b"owned\n", 1000))
    ok(rootless("cp", "-", "ct:/data", input=tar))
    found = members(cp_out(rootless, "/data/o"))
    assert (found["o/f"].uid, found["o/f"].gid, found["o"].uid) == (0, 0, 0)


@pytest.mark.container
@pytest.mark.needs_subids
def test_archive_mode_owners_are_the_kernels_owners_in_the_container(rootless,
                                                                     containers):
    # the container's own stat(1) answers, once the file is there
    containers.make("running", "(while [ ! -e /tmp/o/f ]; do sleep 0.05; done; "
                    "stat -c %u:%g /tmp/o/f > /tmp/owner) &")
    tar = make_tar(("o", "dir", None, 1000), ("o/f", "file", b"owned\n", 1000))
    ok(rootless("cp", "-a", "-", "ct:/tmp", input=tar))
    wait_for(lambda: rootless("cp", "ct:/tmp/owner", "-").returncode == 0)
    wait_for(lambda: read_in(rootless, "/tmp/owner") == b"1000:1000\n")


# ---- running and stopped containers ----

@pytest.mark.container
def test_a_running_container_sees_what_cp_wrote_and_cp_reads_what_it_wrote(
        rootless, containers, tmp_path):
    containers.make("running", "(while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                    "tr a-z A-Z < /tmp/go > /tmp/answer) &")
    (tmp_path / "go").write_text("ping\n")
    ok(rootless("cp", str(tmp_path / "go"), "ct:/tmp/go"))
    wait_for(lambda: rootless("cp", "ct:/tmp/answer", "-").returncode == 0)
    wait_for(lambda: read_in(rootless, "/tmp/answer") == b"PING\n")


@pytest.mark.container
@pytest.mark.parametrize("kind", KINDS)
def test_cp_into_a_volume_lands_in_the_volume(rootless, containers, busybox, kind,
                                              tmp_path):
    containers.make(kind, "true", "-v", "cpvol:/vol")
    (tmp_path / "v").write_text("in the volume\n")
    ok(rootless("cp", str(tmp_path / "v"), "ct:/vol/"))
    out = ok(rootless("run", "--rm", "-v", "cpvol:/vol", busybox, "cat", "/vol/v"))
    assert out == "in the volume\n"


@pytest.mark.container
@pytest.mark.parametrize("strategy", ["overlay", "copy"])
def test_a_stopped_container_gets_the_copy_in_its_own_filesystem(rootless, containers,
                                                                 strategy, tmp_path):
    rootless.env["ROOTLESS_ROOTFS"] = strategy
    containers.make("stopped", "rm -rf /home && mkdir /home && touch /home/old")
    (tmp_path / "new").write_text("new\n")
    ok(rootless("cp", str(tmp_path / "new"), "ct:/home/"))
    ok(rootless("cp", str(tmp_path / "new"), "ct:/etc/new"))
    diff = ok(rootless("diff", "ct")).splitlines()
    assert "A /home/new" in diff and "A /etc/new" in diff
    found = members(cp_out(rootless, "/home"))
    assert set(found) == {"home", "home/old", "home/new"}  # the image's /home/user: hidden


@pytest.mark.container
@pytest.mark.parametrize("kind", KINDS)
def test_a_read_only_root_is_not_written(rootless, containers, kind, tmp_path):
    containers.make(kind, "true", "--read-only", "--tmpfs", "/run", ready="/run/ready")
    (tmp_path / "f").write_text("f\n")
    result = rootless("cp", str(tmp_path / "f"), "ct:/etc/f")
    assert_error(result, 1, "read-only file system")


@pytest.mark.container
def test_container_cp_is_the_same_command(rootless, containers, tmp_path):
    containers.make("stopped")
    ok(rootless("container", "cp", "ct:/data/file", str(tmp_path / "f")))
    assert (tmp_path / "f").read_text() == "file\n"


@pytest.mark.container
@pytest.mark.parametrize("quiet", [False, True])
def test_a_terminal_is_told_how_much_was_copied_unless_quiet(rootless, containers,
                                                              tmp_path, quiet):
    import os
    import pty

    containers.make("stopped")
    master, slave = pty.openpty()
    try:
        proc = rootless.popen("cp", *(["-q"] if quiet else []), "ct:/data/file",
                              str(tmp_path / "f"), stdin=subprocess.DEVNULL, stdout=slave)
        os.close(slave)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert err.decode() == ("" if quiet else f"Successfully copied 5B to {tmp_path / 'f'}\n")


@pytest.mark.parametrize("args, words", [
    (("a", "b"), "must specify at least one container source"),
    (("c1:/a", "c2:/b"), "copying between containers is not supported"),
    (("ghost:/a", "/tmp"), "no such container: ghost"),
])
def test_copies_that_name_no_single_container_are_refused(rootless, args, words):
    assert_error(rootless("cp", *args), 1, words)


# ---- escapes ----

def _escape_links(host_dir: Path) -> dict[str, str]:
    return {"root": "/", "climb": "../../../../../../../..", "host": str(host_dir)}


@pytest.fixture
def host_dir(tmp_path) -> Path:
    """A host directory with a canary, at a path that exists only on the host."""
    path = tmp_path / "host-only"
    path.mkdir()
    (path / "canary").write_text(HOST_SECRET)
    return path


@pytest.mark.container
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("link", ["root", "climb", "host"])
def test_a_symlink_in_the_source_never_reads_a_host_file(rootless, containers, host_dir,
                                                         kind, link, tmp_path):
    target = _escape_links(host_dir)[link]
    containers.make(kind, f"mkdir -p /data && ln -s {target} /data/esc")
    via_parent = "/data/esc/" + str(host_dir / "canary").lstrip("/")
    if link == "host":
        via_parent = "/data/esc/canary"
    for args in (("ct:" + via_parent, str(tmp_path / "out")),
                 ("-L", "ct:" + via_parent, str(tmp_path / "out"))):
        assert_error(rootless("cp", *args), 1, "no such container:path")
        assert not (tmp_path / "out").exists()
    if link == "host":  # the final symlink, followed: still inside the container
        assert_error(rootless("cp", "-L", "ct:/data/esc", str(tmp_path / "out")), 1,
                     "no such container:path")
    result = rootless("cp", "ct:" + via_parent, "-")
    assert HOST_SECRET not in result.stdout
    assert_error(result, 1, "no such container:path")


@pytest.mark.container
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("link", ["root", "climb", "host"])
def test_a_symlink_in_the_destination_never_writes_a_host_file(rootless, containers,
                                                               host_dir, kind, link,
                                                               tmp_path):
    target = _escape_links(host_dir)[link]
    containers.make(kind, f"mkdir -p /data && ln -s {target} /data/esc")
    (tmp_path / "payload").write_text("payload\n")
    before = host_tree(host_dir)
    into = "ct:/data/esc/" + str(host_dir).lstrip("/")
    if link == "host":
        into = "ct:/data/esc"
    assert_error(rootless("cp", str(tmp_path / "payload"), into + "/payload"), 1,
                 "no such container:path")
    # the final component a symlink: followed once, as docker does, inside the root
    result = rootless("cp", str(tmp_path / "payload"), "ct:/data/esc")
    if link == "host":
        assert_error(result, 1, "no such container:path")
    else:
        ok(result)
    assert_error(rootless("cp", "-", into, input=make_tar(("payload", "file", b"x"))),
                 1, "must be a directory")
    assert host_tree(host_dir) == before


@pytest.mark.container
@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_swapping_a_directory_and_a_symlink_to_root_during_copies_never_reaches_the_host(
        rootless, containers, host_dir, resolver, tmp_path):
    # /race/d is, in turn, a directory holding a decoy at the host's canary path and a
    # symlink to /: resolved on the host, /race/d/<host path>/canary would be the canary
    script = (f"mkdir -p /race/dir{host_dir} && echo decoy > /race/dir{host_dir}/canary && "
              "ln -s / /race/lnk && mv /race/dir /race/d && "
              "{ while :; do mv /race/d /race/x; mv /race/lnk /race/d; "
              "mv /race/x /race/lnk; done & }")
    containers.make("running", script)
    env = dict(rootless.env, **({"ROOTLESS_NO_OPENAT2": "1"} if resolver == "walk" else {}))
    before = host_tree(host_dir)
    (tmp_path / "payload").write_text("payload\n")
    for i in range(25):
        out = tmp_path / f"out{i}"
        result = rootless("cp", f"ct:/race/d{host_dir}/canary", str(out), env=env)
        if result.returncode == 0:
            assert out.read_text() == "decoy\n"
        else:
            assert_error(result, 1, "ct:/race/d")
        result = rootless("cp", str(tmp_path / "payload"), f"ct:/race/d{host_dir}/", env=env)
        assert result.returncode == 0 or "ct:/race/d" in result.stderr, result.stderr
        assert host_tree(host_dir) == before
    assert (host_dir / "canary").read_text() == HOST_SECRET


# ---- a hostile tar on stdin ----

@pytest.mark.container
def test_a_tar_on_stdin_cannot_climb_out_with_dotdot(rootless, containers):
    containers.make("stopped", "mkdir -p /data/in")
    result = rootless("cp", "-", "ct:/data/in", input=make_tar(("../../escaped", "file", b"x")))
    assert_error(result, 1, "invalid tar archive", "climbs above")
    assert "escaped" not in str(members(cp_out(rootless, "/")).keys())


@pytest.mark.container
def test_a_tar_on_stdin_with_an_absolute_name_lands_inside_the_destination(rootless,
                                                                         containers):
    containers.make("stopped", "mkdir -p /data/in")
    ok(rootless("cp", "-", "ct:/data/in", input=make_tar(("/abs", "file", b"abs\n"))))
    assert read_in(rootless, "/data/in/abs") == b"abs\n"
    assert_error(rootless("cp", "ct:/abs", "-"), 1, "no such container:path")


@pytest.mark.container
@pytest.mark.parametrize("target", ["/", "../../..", "HOST"])
def test_a_tar_on_stdin_cannot_write_through_its_own_symlink(rootless, containers,
                                                            host_dir, target):
    containers.make("stopped", "mkdir -p /data/in")
    link = str(host_dir) if target == "HOST" else target
    before = host_tree(host_dir)
    tar = make_tar(("s", "sym", link), ("s/pwned", "file", b"pwned\n"),
                   ("s" + str(host_dir) + "/pwned", "file", b"pwned\n"))
    ok(rootless("cp", "-", "ct:/data/in", input=tar))
    assert host_tree(host_dir) == before
    names = set(members(cp_out(rootless, "/")))
    assert not {"./pwned", "./data/pwned"} & names  # nothing beside the destination
    assert all(n.startswith("./data/in/") for n in names if n.endswith("/pwned"))


@pytest.mark.container
def test_a_tar_on_stdin_cannot_hardlink_a_file_it_did_not_bring(rootless, containers):
    containers.make("stopped", "mkdir -p /data/in")
    result = rootless("cp", "-", "ct:/data/in", input=make_tar(("h", "hard", "etc/passwd")))
    assert_error(result, 1, "hardlink", "not an earlier file")
    assert_error(rootless("cp", "ct:/data/in/h", "-"), 1, "no such container:path")
