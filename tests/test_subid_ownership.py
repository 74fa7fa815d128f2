"""With a subordinate range, files keep their owners (issue 9): layers are stored with the
tar's owners mapped into the range, as podman's storage keeps them, so the kernel
overlay shows them, setuid/setgid bits and file capabilities included, and a container
user can write its own files but not root's. Owners the range cannot map refuse the
image with podman's message, or are squashed when asked; everything that reads,
removes or migrates such trees works as the user; commit, export and save write the
container-side owners. A few single-id checks at the end: that mode keeps its
override_stat records exactly as before.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import assert_error, ok, subordinate_start
from test_image_load import Image, oci_archive
from test_layer_unpack import entry, tar_bytes

pytestmark = pytest.mark.container

OVERRIDE = "user.containers.override_stat"
# VFS_CAP_REVISION_2 | effective; permitted = cap_net_raw (13)
CAP_NET_RAW_EP = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
PATHS = ["/srv/apt", "/srv/apt/secret", "/srv/shadow", "/srv/suid", "/srv/sgid",
         "/srv/root644", "/srv/a", "/srv/b", "/srv/lnk", "/srv/fifo", "/home/u",
         "/home/u/own"]
# what `stat -c '%u %g %A'` shows of PATHS in a container, as podman shows them
SHOWN = ["42 0 drwx------", "42 0 -rw-------", "0 42 -rw-r-----", "0 0 -rwsr-xr-x",
         "0 42 -rwxr-sr-x", "0 0 -rw-r--r--", "0 42 -rw-r-----", "0 42 -rw-r-----",
         "1000 1000 lrwxrwxrwx", "1000 100 prw-r-----", "1000 1000 drwxr-xr-x",
         "1000 1000 -rw-r--r--"]
# single-id stores could not record the owner of a symlink or a fifo (no user xattrs
# on them): migrated, they stay the user's, container root
SHOWN_FROM_RECORDS = [*SHOWN[:8], "0 0 lrwxrwxrwx", "0 0 prw-r-----", *SHOWN[10:]]


def owners_layer(busybox_binary: bytes) -> bytes:
    """Many owners: a 0700 directory of uid 42, a group-42 file, setuid and setgid
    files, a hardlink pair, a symlink and a fifo of other users, a device node, a
    home of uid 1000, and a copy of busybox carrying a file capability."""
    capped = tarfile.TarInfo("srv/cap/busybox")  # by that name busybox runs its applets
    capped.size, capped.mode, capped.gid = len(busybox_binary), 0o750, 42
    capped.pax_headers = {"SCHILY.xattr.security.capability":
                          CAP_NET_RAW_EP.decode("utf-8", "surrogateescape")}
    return tar_bytes(
        entry("srv", "dir"), entry("srv/apt", "dir", uid=42, mode=0o700),
        entry("srv/apt/secret", data=b"secret\n", uid=42, mode=0o600),
        entry("srv/shadow", data=b"root:*:1::::::\n", gid=42, mode=0o640),
        entry("srv/suid", data=b"#!/bin/sh\n", mode=0o4755),
        entry("srv/sgid", data=b"#!/bin/sh\n", gid=42, mode=0o2755),
        entry("srv/root644", data=b"root's\n", mode=0o644),
        entry("srv/a", data=b"linked\n", gid=42, mode=0o640),
        entry("srv/b", "hardlink", link="srv/a", gid=42, mode=0o640),
        entry("srv/lnk", "symlink", link="shadow", uid=1000, gid=1000, mode=0o777),
        entry("srv/fifo", "fifo", uid=1000, gid=100, mode=0o640),
        entry("srv/null", "char", major=1, minor=3, gid=6, mode=0o660),
        entry("home", "dir"), entry("home/u", "dir", uid=1000, gid=1000),
        entry("home/u/own", data=b"mine\n", uid=1000, gid=1000),
        entry("srv/cap", "dir"), (capped, busybox_binary))


@pytest.fixture(scope="module")
def owners_archive(image_archives, tmp_path_factory) -> Path:
    """owners:1, busybox's rootfs and the layer above, as an OCI archive."""
    base = image_archives.rootfs.read_bytes()
    with tarfile.open(image_archives.rootfs) as t:
        busybox_binary = t.extractfile("bin/busybox").read()
    image = Image([base, owners_layer(busybox_binary)])
    path = tmp_path_factory.mktemp("owners") / "owners.tar"
    return oci_archive(path, [(image, {"org.opencontainers.image.ref.name": "owners:1"})])


@pytest.fixture
def owners(rootless, owners_archive) -> str:
    ok(rootless("load", "-i", str(owners_archive)))
    return "owners:1"


@pytest.fixture(autouse=True)
def images_removed(rootless, store):
    """This test's layers hold files of subordinate ids: removed through rootless, so
    pytest can empty its temporary directories afterwards."""
    yield
    if store_entries(store, "layers") or store_entries(store, "tmp"):
        ids = rootless("ps", "-aq").stdout.split()
        if ids:
            rootless("rm", "-f", *ids)
        rootless("image", "prune", "-a", "-f")
        rootless("volume", "prune", "-f")  # and what failed removals left in tmp/


def stat_lines(rootless, image: str) -> list[str]:
    """`stat -c '%u %g %A'` of PATHS in a container of `image`."""
    out = ok(rootless("run", "--rm", image, "stat", "-c", "%u %g %A", *PATHS))
    return out.splitlines()


def store_entries(store: Path, sub: str) -> list[str]:
    return sorted(os.listdir(store / sub)) if (store / sub).is_dir() else []


def layer_path(store: Path, rel: str) -> Path:
    """`rel` in the one layer of the store that has it."""
    found = [p / rel for p in (store / "layers").iterdir()
             if p.is_dir() and os.path.lexists(p / rel)]
    assert len(found) == 1, found
    return found[0]


# ---- what a container sees ----

@pytest.mark.needs_subids
def test_a_container_sees_the_owners_and_modes_of_the_image(rootless, owners):
    assert stat_lines(rootless, owners) == SHOWN


@pytest.mark.needs_subids
def test_the_store_holds_them_mapped_into_the_range(rootless, owners, store):
    start = subordinate_start("/etc/subuid")
    st = layer_path(store, "srv/apt").lstat()
    assert (st.st_uid, st.st_mode & 0o7777) == (start + 41, 0o700)
    suid = layer_path(store, "srv/suid").lstat()
    assert (suid.st_uid, suid.st_mode & 0o7777) == (os.getuid(), 0o4755)
    with pytest.raises(OSError):  # owners are real: no record left to read
        os.getxattr(layer_path(store, "home/u/own"), OVERRIDE)


@pytest.mark.needs_subids
def test_a_hardlink_pair_is_one_file_with_its_owner_in_the_container(rootless, owners):
    out = ok(rootless("run", "--rm", owners, "stat", "-c", "%i %h %u %g", "/srv/a",
                      "/srv/b"))
    first, second = out.splitlines()
    assert first == second and first.endswith(" 2 0 42")


@pytest.mark.needs_subids
def test_a_device_node_keeps_its_record_on_a_placeholder_of_its_owner(rootless, owners,
                                                                      store):
    """No device node can be made in a user namespace (podman skips them): an empty
    file holds the record, as in single-id mode, with the device's owner and mode."""
    null = layer_path(store, "srv/null")
    assert os.getxattr(null, OVERRIDE) == b"0:6:0660:char-1-3"
    st = null.lstat()
    assert (st.st_gid, st.st_mode & 0o7777) == (subordinate_start("/etc/subgid") + 5, 0o660)


@pytest.mark.needs_subids
def test_a_file_capability_survives_its_files_chown_and_takes_effect(rootless, owners):
    """/srv/cap/busybox is 0:42 0750 with cap_net_raw: uid 1000 in group 42 runs it with
    that capability (set after the chown, which clears capabilities)."""
    out = ok(rootless("run", "--rm", "-u", "1000", "--group-add", "42", owners,
                      "/srv/cap/busybox", "grep", "CapEff", "/proc/self/status"))
    assert int(out.split()[1], 16) == 1 << 13


@pytest.mark.needs_subids
def test_uid_1000_writes_its_own_files(rootless, owners):
    out = ok(rootless("run", "--rm", "-u", "1000:1000", owners, "sh", "-c",
                      "echo more >> /home/u/own && touch /home/u/new && "
                      "stat -c '%u %g' /home/u/new && cat /home/u/own"))
    assert out == "1000 1000\nmine\nmore\n"


@pytest.mark.needs_subids
def test_uid_1000_that_writes_its_own_files_must_not_write_roots(rootless, owners):
    result = rootless("run", "--rm", "-u", "1000:1000", owners, "sh", "-c",
                      "echo more >> /home/u/own && echo wrote own; echo x > /srv/root644; "
                      "cat /srv/apt/secret")
    assert result.stdout == "wrote own\n", result.stderr
    assert result.stderr.splitlines() == ["sh: can't create /srv/root644: Permission denied",
                                          "cat: can't open '/srv/apt/secret': Permission "
                                          "denied"]


@pytest.mark.needs_subids
def test_the_copy_strategy_shows_the_same_owners(rootless, owners):
    rootless.env["ROOTLESS_ROOTFS"] = "copy"
    assert stat_lines(rootless, owners) == SHOWN


@pytest.mark.needs_subids
def test_podman_shows_the_same_ls_ln(rootless, owners, owners_archive, tmp_path):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    import tempfile

    runroot = tempfile.mkdtemp(prefix="rl-podman-")  # podman wants it short (50)
    podman = ["podman", "--root", str(tmp_path / "proot"), "--runroot", runroot,
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
              "file"]
    env = {**os.environ, "XDG_RUNTIME_DIR": rootless.env["XDG_RUNTIME_DIR"]}
    listing = ["ls", "-lnd", *PATHS]  # no device: neither can make one in a namespace
    try:
        loaded = subprocess.run([*podman, "load", "-i", str(owners_archive)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stderr
        theirs = subprocess.run([*podman, "run", "--rm", "--network", "none",
                                 "localhost/owners:1", *listing], env=env,
                                capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["podman", "unshare", "rm", "-rf", str(tmp_path / "proot"),
                        runroot], env=env, capture_output=True)
    assert theirs.returncode == 0, theirs.stderr
    ours = ok(rootless("run", "--rm", owners, *listing))
    assert _ls_fields(ours) == _ls_fields(theirs.stdout)


def _ls_fields(listing: str) -> list[tuple[str, ...]]:
    """mode, owner, group, size and name of each line (link counts of directories
    differ between storage drivers, owners do not)."""
    rows = []
    for line in listing.splitlines():
        parts = line.split()
        assert len(parts) >= 9, line
        rows.append((parts[0], parts[2], parts[3], parts[4], " ".join(parts[8:])))
    return rows


# ---- ids the range cannot map ----

FAR_LAYER = tar_bytes(entry("ok", data=b"ok\n"), entry("d", "dir"),
                      entry("d/f", data=b"f\n", uid=1000), entry("x", data=b"x\n", uid=200000,
                                                                mode=0o4755))


def out_of_range_archive(tmp_path: Path) -> Path:
    return oci_archive(tmp_path / "far.tar", [(Image([FAR_LAYER]),
                                               {"org.opencontainers.image.ref.name": "far:1"})])


@pytest.mark.needs_subids
@pytest.mark.parametrize("command", ["load", "import"])
def test_an_owner_outside_the_range_refuses_the_image_and_leaves_nothing(
        rootless, store, tmp_path, command):
    """load unpacks in worker processes, import in a child of the command: both in a
    storage namespace, both refused the same way (docker's exit code for a failed
    load, 1), with nothing written kept: the entries made before /x included."""
    if command == "load":
        result = rootless("load", "-i", str(out_of_range_archive(tmp_path)))
    else:
        (tmp_path / "far-rootfs.tar").write_bytes(FAR_LAYER)
        result = rootless("import", str(tmp_path / "far-rootfs.tar"), "far:1")
    assert_error(result, 1, "potentially insufficient UIDs or GIDs available in user "
                            "namespace (requested 200000:0 for /x)", "/etc/subuid")
    assert store_entries(store, "layers") == [] and store_entries(store, "tmp") == []
    assert ok(rootless("images", "-q")) == ""


@pytest.mark.needs_subids
@pytest.mark.parametrize("how", ["flag", "env"])
def test_ignore_chown_errors_squashes_to_root_without_setuid(rootless, store, tmp_path,
                                                             how):
    archive = out_of_range_archive(tmp_path)
    if how == "flag":
        ok(rootless("--storage-opt", "ignore_chown_errors=true", "load", "-i", str(archive)))
    else:
        env = {**rootless.env, "ROOTLESS_STORAGE_OPT": "ignore_chown_errors=true"}
        ok(rootless("load", "-i", str(archive), env=env))
    assert os.getxattr(layer_path(store, "x"), OVERRIDE) == b"200000:0:04755"
    st = layer_path(store, "x").lstat()
    assert (st.st_uid, st.st_mode & 0o7777) == (os.getuid(), 0o755)
    # what the range maps keeps its true owner
    assert layer_path(store, "d/f").lstat().st_uid == subordinate_start("/etc/subuid") + 999


@pytest.mark.needs_subids
def test_a_pull_of_an_owner_outside_the_range_is_refused_and_leaves_no_layer(
        rootless, store, tmp_path):
    """Pushed from a store that squashed it (the registry keeps the tar as it was),
    pulled into another: refused there with the same message, in its worker."""
    from registry_server import RegistryServer, isolate_registry_client

    server = RegistryServer(tmp_path / "registry").start()
    try:
        reg = isolate_registry_client(rootless, tmp_path, "10")
        ref = f"{server.host}/far:1"
        ok(reg("--storage-opt", "ignore_chown_errors=true", "load", "-i",
               str(out_of_range_archive(tmp_path))))
        ok(reg("push", "--tls-verify=false", "far:1", ref))
        second = {**reg.env, "ROOTLESS_ROOT": str(tmp_path / "second")}
        result = reg("pull", "--tls-verify=false", ref, env=second)
        assert_error(result, 1, "potentially insufficient UIDs or GIDs", "200000:0 for /x")
        assert store_entries(tmp_path / "second", "layers") == []
        assert store_entries(tmp_path / "second", "tmp") == []
    finally:
        server.stop()


def test_an_unknown_storage_option_is_refused_by_name(rootless):
    result = rootless("--storage-opt", "ignore_chown_error=true", "images")
    assert_error(result, 125, "unknown storage option", "ignore_chown_error=true")
    bad = rootless("--storage-opt", "ignore_chown_errors=maybe", "images")
    assert_error(bad, 125, "ignore_chown_errors", "maybe")


# ---- removal, as the user, of what belongs to subordinate ids ----

@pytest.mark.needs_subids
def test_rm_and_rmi_after_uid_1000_wrote_files_leave_no_tree(rootless, owners, store):
    ok(rootless("run", "--name", "ctr", "-u", "1000:1000", owners, "sh", "-c",
                "mkdir -p /home/u/deep/er && touch /home/u/deep/er/f && "
                "chmod 700 /home/u/deep && echo x > /home/u/own"))
    assert ok(rootless("rm", "ctr")) == "ctr\n"
    ok(rootless("rmi", owners))
    for sub in ("layers", "containers", "tmp"):
        assert store_entries(store, sub) == [], sub


@pytest.mark.needs_subids
@pytest.mark.parametrize("prune", [("image", "prune", "-a", "-f"),
                                   ("system", "prune", "-a", "-f")])
def test_prune_removes_layers_of_subordinate_ids(rootless, owners, store, prune):
    ok(rootless("run", "--name", "ctr", "-u", "1000", owners, "touch", "/home/u/x"))
    ok(rootless("rm", "ctr"))
    ok(rootless(*prune))
    assert store_entries(store, "layers") == [] and store_entries(store, "containers") == []


# ---- reading the trees: export, commit, save, cp, volumes, passwd ----

def _headers(data: bytes, prefix: str, rename: str | None = None) -> dict:
    """name -> (type, uid, gid, mode, devmajor, devminor, linkname, capability) of
    the entries under `prefix` (renamed to `rename`)."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            name = m.name.rstrip("/").lstrip("./")
            if not (name == prefix or name.startswith(prefix + "/")):
                continue
            if rename:
                name = rename + name[len(prefix):]
            link = m.linkname.replace(prefix, rename, 1) if rename and m.islnk() \
                else m.linkname
            found[name] = (m.type, m.uid, m.gid, m.mode & 0o7777, m.devmajor, m.devminor,
                           link, m.pax_headers.get("SCHILY.xattr.security.capability"))
    return found


def _layers_of_archive(path: Path) -> list[bytes]:
    with tarfile.open(path) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # docker-archive
        return [saved.extractfile(name).read() for name in manifest[0]["Layers"]]


@pytest.mark.needs_subids
def test_export_writes_the_image_owners_modes_devices_links_and_caps(
        rootless, owners, owners_archive, tmp_path):
    ok(rootless("create", "--name", "ctr", owners, "true"))
    ok(rootless("export", "-o", str(tmp_path / "ctr.tar"), "ctr"))
    original = _headers(_image_layers(owners_archive)[-1], "srv")
    exported = _headers((tmp_path / "ctr.tar").read_bytes(), "srv")
    assert exported == original


def _image_layers(archive: Path) -> list[bytes]:
    """The layer tars of the one image of an OCI archive, lowest first."""
    with tarfile.open(archive) as t:
        index = json.load(t.extractfile("index.json"))
        blob = lambda d: t.extractfile(f"blobs/sha256/{d[7:]}").read()  # noqa: E731
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        return [blob(layer["digest"]) for layer in manifest["layers"]]


MADE = ("mkdir /new && cd /new && cp -a /srv/apt aptcopy && "
        "mkdir apt && chown 42:0 apt && chmod 700 apt && "
        "echo s > shadow && chown 0:42 shadow && chmod 640 shadow && "
        "cp /srv/suid suid && chmod 4755 suid && cp /srv/sgid sgid && chown 0:42 sgid && "
        "chmod 2755 sgid && mkdir u && chown 1000:1000 u && echo m > u/own && "
        "chown 1000:1000 u/own && echo l > a && chown 0:42 a && chmod 640 a && ln a b")
MADE_WANT = {"new/aptcopy": (tarfile.DIRTYPE, 42, 0, 0o700),
             "new/aptcopy/secret": (b"0", 42, 0, 0o600),
             "new/apt": (tarfile.DIRTYPE, 42, 0, 0o700), "new/shadow": (b"0", 0, 42, 0o640),
             "new/suid": (b"0", 0, 0, 0o4755), "new/sgid": (b"0", 0, 42, 0o2755),
             "new/u": (tarfile.DIRTYPE, 1000, 1000, 0o755),
             "new/u/own": (b"0", 1000, 1000, 0o644), "new/a": (b"0", 0, 42, 0o640),
             "new/b": (tarfile.LNKTYPE, 0, 42, 0o640)}


@pytest.mark.needs_subids
def test_commit_then_save_writes_the_owners_set_in_the_container(rootless, owners,
                                                                 tmp_path):
    ok(rootless("run", "--name", "ctr", owners, "sh", "-c", MADE))
    ok(rootless("commit", "ctr", "made:1"))
    ok(rootless("save", "-o", str(tmp_path / "made.tar"), "made:1"))
    headers = _headers(_layers_of_archive(tmp_path / "made.tar")[-1], "new")
    got = {name: h[:4] for name, h in headers.items() if name != "new"}
    assert got == MADE_WANT
    assert headers["new/b"][6] == "new/a"


@pytest.mark.needs_subids
def test_a_committed_layer_round_trips_through_save_load_and_export(rootless, owners,
                                                                    tmp_path):
    """load -> run -> commit -> save -> load again -> run stat -> export: the same
    headers at each end (the layer as stored, read back through the namespace)."""
    ok(rootless("run", "--name", "ctr", owners, "sh", "-c", MADE))
    ok(rootless("commit", "ctr", "made:1"))
    ok(rootless("save", "-o", str(tmp_path / "made.tar"), "made:1"))
    saved = _headers(_layers_of_archive(tmp_path / "made.tar")[-1], "new")
    ok(rootless("rm", "ctr"))
    ok(rootless("rmi", "made:1"))
    ok(rootless("load", "-i", str(tmp_path / "made.tar")))
    shown = ok(rootless("run", "--name", "again", "made:1", "stat", "-c", "%u %g %a %n",
                        "/new/apt", "/new/suid", "/new/sgid", "/new/u/own"))
    assert shown.splitlines() == ["42 0 700 /new/apt", "0 0 4755 /new/suid",
                                  "0 42 2755 /new/sgid", "1000 1000 644 /new/u/own"]
    ok(rootless("export", "-o", str(tmp_path / "again.tar"), "again"))
    assert _headers((tmp_path / "again.tar").read_bytes(), "new") == saved


@pytest.mark.needs_subids
def test_diff_of_a_container_reads_files_of_subordinate_ids(rootless, owners):
    ok(rootless("run", "--name", "ctr", "-u", "42", owners, "sh", "-c",
                "touch /srv/apt/new && chmod 600 /srv/apt/new"))
    assert ok(rootless("diff", "ctr")).split("\n")[:3] == ["C /srv", "C /srv/apt",
                                                           "A /srv/apt/new"]


@pytest.mark.needs_subids
def test_cp_from_a_stopped_container_reads_a_0600_file_of_uid_42(rootless, owners,
                                                                 tmp_path):
    ok(rootless("create", "--name", "ctr", owners, "true"))
    ok(rootless("cp", "ctr:/srv/apt/secret", str(tmp_path / "secret")))
    assert (tmp_path / "secret").read_text() == "secret\n"
    archive = rootless.popen("cp", "ctr:/srv/apt", "-", stdout=subprocess.PIPE)
    data, _ = archive.communicate(timeout=60)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        secret = tar.getmember("apt/secret")
    assert (secret.uid, secret.gid, secret.mode) == (42, 0, 0o600)


@pytest.mark.needs_subids
def test_a_new_volume_is_filled_with_the_image_owners(rootless, owners):
    out = ok(rootless("run", "--rm", "-v", "/srv", owners, "stat", "-c", "%u %g %A",
                      "/srv/apt", "/srv/shadow", "/srv/suid"))
    assert out.splitlines() == ["42 0 drwx------", "0 42 -rw-r-----", "0 0 -rwsr-xr-x"]


@pytest.mark.needs_subids
def test_a_passwd_only_root_of_the_range_can_read_names_the_user(rootless, image_archives,
                                                                 tmp_path):
    etc = tar_bytes(entry("etc", "dir"), entry(
        "etc/passwd", data=b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        gid=42, mode=0o640))
    image = Image([image_archives.rootfs.read_bytes(), etc])
    archive = oci_archive(tmp_path / "app.tar",
                          [(image, {"org.opencontainers.image.ref.name": "app:1"})])
    ok(rootless("load", "-i", str(archive)))
    out = ok(rootless("run", "--rm", "-u", "app", "app:1", "/bin/busybox", "sh", "-c",
                      "id -u; stat -c '%u %g' /etc/passwd"))
    assert out == "1000\n0 42\n"


# ---- stores made before: migration, and a range lost ----

@pytest.mark.needs_subids
def test_layers_stored_with_records_are_migrated_on_first_run(rootless, owners_archive,
                                                              store):
    single = {**rootless.env, "ROOTLESS_IDMAP": "single"}
    ok(rootless("load", "-i", str(owners_archive), env=single))
    apt = layer_path(store, "srv/apt")
    assert apt.lstat().st_uid == os.getuid()  # as older versions stored them
    assert os.getxattr(apt, OVERRIDE) == b"42:0:0700"
    assert stat_lines(rootless, "owners:1") == SHOWN_FROM_RECORDS
    assert apt.lstat().st_uid == subordinate_start("/etc/subuid") + 41


@pytest.mark.needs_subids
def test_system_migrate_migrates_a_store_older_than_the_owners_column(
        rootless, owners_archive, store):
    ok(rootless("load", "-i", str(owners_archive), env={**rootless.env,
                                                        "ROOTLESS_IDMAP": "single"}))
    with sqlite3.connect(store / "state.db") as db:  # as schema 6 left it
        db.execute("ALTER TABLE layers DROP COLUMN owners")
        db.execute("UPDATE schema_version SET version=6")
    info = ok(rootless("info", "--format", "{{.layer_owners}}"))
    assert info.startswith("true owners, mapped into the subordinate range ")
    assert "; 2 layers hold records (migrated when used" in info, info
    lines = ok(rootless("system", "migrate")).splitlines()
    assert len(lines) == 2 and all(line.startswith("migrated layer sha256:")
                                   for line in lines)
    assert ok(rootless("system", "migrate")) == ""
    assert "records" not in ok(rootless("info", "--format", "{{.layer_owners}}"))
    suid = layer_path(store, "srv/suid").lstat()
    assert suid.st_mode & 0o7777 == 0o4755
    with pytest.raises(OSError):
        os.getxattr(layer_path(store, "srv/suid"), OVERRIDE)
    assert stat_lines(rootless, "owners:1") == SHOWN_FROM_RECORDS


@pytest.mark.needs_subids
def test_starting_a_container_made_before_migrates_its_layers(rootless, owners_archive,
                                                              store):
    single = {**rootless.env, "ROOTLESS_IDMAP": "single"}
    ok(rootless("load", "-i", str(owners_archive), env=single))
    ok(rootless("create", "--name", "old", "owners:1", "true", env=single))
    apt = layer_path(store, "srv/apt")
    assert apt.lstat().st_uid == os.getuid()
    ok(rootless("start", "old"))
    assert apt.lstat().st_uid == subordinate_start("/etc/subuid") + 41


@pytest.mark.needs_subids
def test_layers_of_a_range_this_user_lost_are_refused_not_shown_wrong(rootless, owners,
                                                                     store):
    single = {**rootless.env, "ROOTLESS_IDMAP": "single"}
    result = rootless("run", "--rm", owners, "true", env=single)
    assert_error(result, 125, "subordinate range", "/etc/subuid")
    removal = rootless("rmi", owners, env=single)
    assert removal.returncode != 0 and "Traceback" not in removal.stderr
    assert "subordinate ids" in removal.stderr, removal.stderr
    # what it could not remove waits in tmp/, for a command that has the range
    ok(rootless("volume", "prune", "-f"))
    assert store_entries(store, "layers") == [] and store_entries(store, "tmp") == []


# ---- the Debian image ----

@pytest.mark.needs_subids
def test_debian_shows_apt_shadow_and_chage_as_podman_does(rootless, debian):
    out = ok(rootless("run", "--rm", debian, "stat", "-c", "%u %g %A",
                      "/var/cache/apt/archives/partial", "/etc/shadow", "/usr/bin/chage"))
    assert out.splitlines() == ["42 0 drwx------", "0 42 -rw-r-----", "0 42 -rwxr-sr-x"]


# ---- single-id mode: records, as before ----

@pytest.mark.needs_single_id
def test_single_id_mode_keeps_the_owners_in_override_stat_records(rootless, owners, store):
    assert os.getxattr(layer_path(store, "srv/apt"), OVERRIDE) == b"42:0:0700"
    assert os.getxattr(layer_path(store, "srv/suid"), OVERRIDE) == b"0:0:04755"
    assert os.getxattr(layer_path(store, "srv/null"), OVERRIDE) == b"0:6:0660:char-1-3"
    suid = layer_path(store, "srv/suid").lstat()
    assert (suid.st_uid, suid.st_mode & 0o7777) == (os.getuid(), 0o755)


@pytest.mark.needs_single_id
def test_single_id_mode_has_nothing_to_migrate(rootless, owners):
    assert ok(rootless("system", "migrate")) == ""
