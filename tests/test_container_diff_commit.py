"""`diff`, `export` and `commit` of a stopped container (issue 8), with both rootfs
strategies: kernel overlay (upper/ over the image's layers) and the private copy."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from helpers import assert_error, ok

STRATEGIES = ["overlay", "copy"]

# made in a busybox container: a new file, a changed one, a deleted one, a directory
# replaced (overlayfs makes it opaque), a hardlink, a symlink
CHANGES = ("echo new > /new.txt && echo hi > /etc/greeting && rm /bin/ls && rm -rf /home && mkdir /home && "
           "touch /home/fresh && ln /new.txt /new-link && ln -s /etc/greeting /sym")


def _made(rootless, busybox, strategy: str, script: str = CHANGES, name: str = "ct") -> str:
    rootless.env["ROOTLESS_ROOTFS"] = strategy
    ok(rootless("run", "--name", name, busybox, "sh", "-c", script))
    return name


def _tar_members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def _tar_file(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(name).read()


# ---- diff ----

@pytest.mark.container
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_diff_lists_added_changed_and_deleted_paths_as_docker_does(rootless, busybox,
                                                                   strategy):
    _made(rootless, busybox, strategy)
    lines = ok(rootless("diff", "ct")).splitlines()
    assert "A /new.txt" in lines and "A /etc/greeting" in lines
    assert "D /bin/ls" in lines and "C /bin" in lines and "C /etc" in lines
    assert "A /sym" in lines and "A /new-link" in lines
    assert lines == ["C /bin", "D /bin/ls", "C /etc", "A /etc/greeting", "C /home",
                     "A /home/fresh", "D /home/user", "A /new-link", "A /new.txt", "A /sym"]


@pytest.mark.container
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_diff_shows_a_replaced_directory_as_changed_with_its_new_content(rootless, busybox,
                                                                         strategy):
    _made(rootless, busybox, strategy,
          "mkdir -p /srv/old && touch /srv/old/a", name="base")
    ok(rootless("commit", "base", "withsrv"))
    rootless("rm", "base")
    ok(rootless("run", "--name", "ct", "withsrv", "sh", "-c",
                "rm -rf /srv && mkdir /srv && touch /srv/fresh"))
    lines = ok(rootless("diff", "ct")).splitlines()
    assert lines == ["C /srv", "A /srv/fresh", "D /srv/old"]


@pytest.mark.container
def test_diff_of_an_unchanged_container_prints_nothing(rootless, busybox):
    ok(rootless("run", "--name", "ct", busybox, "true"))
    assert ok(rootless("diff", "ct")).splitlines() == []


@pytest.mark.container
def test_container_diff_is_the_same_command(rootless, busybox):
    _made(rootless, busybox, "overlay")
    assert ok(rootless("container", "diff", "ct")) == ok(rootless("diff", "ct"))


@pytest.mark.container
def test_a_running_container_can_be_diffed_exported_and_committed(rootless, busybox):
    ok(rootless("run", "-d", "--name", "live", busybox, "sh", "-c",
                "echo made > /made.txt; echo ready; exec sleep 1000"))
    from helpers import wait_for

    wait_for(lambda: "ready" in ok(rootless("logs", "live")))
    assert "A /made.txt" in ok(rootless("diff", "live")).splitlines()
    exported = rootless.popen("export", "live")
    members = _tar_members(exported.communicate(timeout=60)[0])
    assert "made.txt" in members
    image = ok(rootless("commit", "live", "live-image")).strip()
    assert image.startswith("sha256:")
    assert ok(rootless("inspect", "--format", "{{.State.Status}}", "live")).strip() == \
        "running"  # paused for the commit, and resumed
    assert ok(rootless("run", "--rm", "live-image", "cat", "/made.txt")) == "made\n"


def test_diff_of_an_unknown_container_is_one_line_exit_1(rootless):
    assert_error(rootless("diff", "nope"), 1, "no such container: nope")


# ---- export ----

@pytest.mark.container
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_export_holds_the_containers_view(rootless, busybox, strategy, tmp_path):
    _made(rootless, busybox, strategy)
    out = tmp_path / "c.tar"
    ok(rootless("export", "ct", "-o", str(out)))
    members = _tar_members(out.read_bytes())
    listing = ok(rootless("run", "--rm", busybox, "sh", "-c",
                          "find / -xdev | grep -v '^/proc' | grep -v '^/sys' | grep -v "
                          "'^/dev'"))
    assert "bin/ls" not in members and "home/fresh" in members and "bin/sh" in members
    assert "srv" not in members
    assert _tar_file(out.read_bytes(), "etc/greeting") == b"hi\n"
    assert members["sym"].issym() and members["sym"].linkname == "/etc/greeting"
    assert members["new-link"].islnk() or members["new.txt"].islnk()
    assert "/bin/busybox" in listing  # the image's own files are all there
    assert [p for p in members if p.startswith("bin/") and not members[p].isdir()]


@pytest.mark.container
def test_export_to_stdout_equals_export_to_a_file(rootless, busybox, tmp_path):
    _made(rootless, busybox, "overlay")
    out = tmp_path / "c.tar"
    ok(rootless("export", "ct", "-o", str(out)))
    proc = rootless.popen("container", "export", "ct")
    data, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(_tar_members(data)) == sorted(_tar_members(out.read_bytes()))


@pytest.mark.container
def test_export_to_a_terminal_is_refused_as_docker_does(rootless, busybox):
    import os
    import pty

    ok(rootless("run", "--name", "ct", busybox, "true"))
    leader, follower = pty.openpty()
    try:
        proc = rootless.popen("export", "ct", stdout=follower)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 1
    assert b"cowardly refusing to save to a terminal" in err


def test_export_of_an_unknown_container_leaves_no_file(rootless, tmp_path):
    out = tmp_path / "c.tar"
    assert_error(rootless("export", "nope", "-o", str(out)), 1, "no such container")
    assert list(tmp_path.glob("*c.tar*")) == []


# ---- commit ----

@pytest.mark.container
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_commit_makes_an_image_that_sees_the_changes(rootless, busybox, strategy):
    _made(rootless, busybox, strategy)
    image_id = ok(rootless("commit", "ct", "changed:1")).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    seen = ok(rootless("run", "--rm", "changed:1", "sh", "-c",
                       "cat /etc/greeting; ls /bin/ls 2>&1; ls /home; cat /new-link"))
    assert seen.splitlines()[0] == "hi"
    assert "No such file" in seen.splitlines()[1]
    assert seen.splitlines()[2:] == ["fresh", "new"]


@pytest.mark.container
def test_commit_of_a_replaced_directory_hides_the_old_content(rootless, busybox):
    _made(rootless, busybox, "overlay", "mkdir -p /srv/old && touch /srv/old/a", name="bs")
    ok(rootless("commit", "bs", "withsrv"))
    ok(rootless("run", "--name", "ct", "withsrv", "sh", "-c",
                "rm -rf /srv && mkdir /srv && touch /srv/fresh"))
    ok(rootless("commit", "ct", "replaced"))
    assert ok(rootless("run", "--rm", "replaced", "ls", "/srv")) == "fresh\n"


@pytest.mark.container
@pytest.mark.needs_subids
def test_commit_keeps_an_owner_set_in_the_container(rootless, busybox, tmp_path):
    _made(rootless, busybox, "overlay", "echo x > /owned && chown 1000:1001 /owned && "
          "chmod 640 /owned")
    ok(rootless("commit", "ct", "owned"))
    out = tmp_path / "owned.tar"
    ok(rootless("save", "-o", str(out), "owned"))
    with tarfile.open(out) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # docker-archive
        layer = saved.extractfile(manifest[0]["Layers"][-1]).read()
    member = _tar_members(layer)["owned"]
    assert (member.uid, member.gid, member.mode) == (1000, 1001, 0o640)


@pytest.mark.container
def test_commit_records_cmd_message_and_author(rootless, busybox):
    ok(rootless("run", "--name", "ct", busybox, "touch", "/x"))
    ok(rootless("commit", "-a", "Jane <jane@example.com>", "-m", "a message",
                "-c", 'CMD ["echo","x"]', "-c", "ENV A=b", "ct", "noted"))
    info = json.loads(ok(rootless("image", "inspect", "noted")))[0]
    assert info["Config"]["Cmd"] == ["echo", "x"]
    assert "A=b" in info["Config"]["Env"]
    assert info["Author"] == "Jane <jane@example.com>"
    assert ok(rootless("run", "--rm", "noted")) == "x\n"
    history = ok(rootless("history", "--no-trunc", "--format",
                          "{{.CreatedBy}}|{{.Comment}}", "noted")).splitlines()
    assert history[0] == "touch /x|a message"


@pytest.mark.container
def test_commit_without_changes_keeps_the_containers_command(rootless, busybox):
    ok(rootless("run", "--name", "ct", busybox, "echo", "hello"))
    image_id = ok(rootless("container", "commit", "ct")).strip()
    assert ok(rootless("run", "--rm", image_id)) == "hello\n"


@pytest.mark.container
def test_commit_with_a_bad_change_is_one_line_and_makes_nothing(rootless, busybox):
    ok(rootless("run", "--name", "ct", busybox, "touch", "/x"))
    before = ok(rootless("images", "-q", "-a"))
    assert_error(rootless("commit", "-c", "FROM x", "ct", "bad"), 1,
                 "not a valid change command")
    assert ok(rootless("images", "-q", "-a")) == before


@pytest.mark.container
def test_commit_with_an_invalid_image_name_is_one_line_and_makes_nothing(rootless,
                                                                        busybox):
    ok(rootless("run", "--name", "ct", busybox, "touch", "/x"))
    before = ok(rootless("images", "-q", "-a"))
    result = rootless("commit", "ct", "Bad Name!")
    assert_error(result, 1)
    assert "reference" in result.stderr or "invalid" in result.stderr
    assert ok(rootless("images", "-q", "-a")) == before


def test_commit_of_an_unknown_container_is_one_line_exit_1(rootless):
    assert_error(rootless("commit", "nope", "x"), 1, "no such container: nope")
