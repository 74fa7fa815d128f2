"""image/layers.py: unpacking layer tars, and the hostile-tar corpus.

Every tar is built here, in memory. Each hostile case states its defined outcome (see
the docstring of rootless.image.layers) and checks that nothing appeared outside the
layer: `outside/` next to the layer directory must stay exactly as it was. The whole
module runs with openat2 and with the O_NOFOLLOW walk (the `resolver` fixture).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from rootless.errors import ImageError
from rootless.image.layers import OPAQUE_XATTR, OVERRIDE_XATTR, unpack_layer
from rootless.kernel import paths

MTIME = 1_700_000_000


# ---- building tars ----

def entry(name: str, kind: str = "file", data: bytes = b"", mode: int | None = None,
          uid: int = 0, gid: int = 0, link: str = "", major: int = 0, minor: int = 0,
          mtime: int = MTIME) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE,
                 "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}.get(kind, kind)
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.uid, info.gid, info.mtime = uid, gid, mtime
    info.linkname = link
    info.devmajor, info.devminor = major, minor
    if kind == "file":
        info.size = len(data)
        return info, data
    return info, None


def tar_bytes(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# ---- fixtures ----

@pytest.fixture(params=["openat2", "walk"], autouse=True)
def resolver(request):
    if request.param == "openat2" and not paths._probe_openat2():
        pytest.skip("this kernel has no openat2")
    paths.use_openat2(request.param == "openat2")
    yield request.param
    paths.use_openat2(None)


class Layer:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "layer"
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "victim").write_text("untouched")
        self.dir.mkdir()

    def unpack(self, data: bytes):
        return unpack_layer(io.BytesIO(data), self.dir, "layer test")

    def path(self, rel: str) -> Path:
        return self.dir / rel

    def override(self, rel: str) -> str | None:
        try:
            return os.getxattr(self.path(rel), OVERRIDE_XATTR, follow_symlinks=False).decode()
        except OSError:
            return None

    def mode(self, rel: str) -> int:
        return os.lstat(self.path(rel)).st_mode


@pytest.fixture
def layer(tmp_path: Path):
    lay = Layer(tmp_path)
    yield lay
    # the "must not" of every test: nothing outside the layer changed
    assert sorted(os.listdir(lay.outside)) == ["victim"]
    assert (lay.outside / "victim").read_text() == "untouched"


# ---- ordinary layers ----

def test_files_dirs_symlinks_and_metadata(layer):
    layer.unpack(tar_bytes(entry("etc", "dir"), entry("etc/hosts", data=b"127.0.0.1 x\n"),
                           entry("bin", "dir", mode=0o700),
                           entry("bin/tool", data=b"#!", mode=0o755),
                           entry("bin/alias", "symlink", link="tool")))
    assert layer.path("etc/hosts").read_bytes() == b"127.0.0.1 x\n"
    assert stat.S_IMODE(layer.mode("bin/tool")) == 0o755
    assert stat.S_IMODE(layer.mode("bin")) == 0o700
    assert os.readlink(layer.path("bin/alias")) == "tool"
    assert os.lstat(layer.path("etc/hosts")).st_mtime == MTIME
    assert os.lstat(layer.path("bin")).st_mtime == MTIME
    assert layer.override("etc/hosts") is None  # 0:0 and the same mode: nothing to record


def test_diff_id_is_sha256_of_the_uncompressed_tar(layer):
    data = tar_bytes(entry("a", data=b"x" * 5000))
    result = layer.unpack(gzip.compress(data))
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.size == 5000


def test_plain_tar_diff_id_includes_trailing_padding(layer):
    data = tar_bytes(entry("a", data=b"1")) + b"\0" * 10240
    assert layer.unpack(data).diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not shutil.which("zstd"), reason="no zstd program")
def test_zstd_layer(layer):
    data = tar_bytes(entry("z", data=b"zstd!"))
    compressed = subprocess.run(["zstd", "-c", "-q"], input=data, capture_output=True,
                                check=True).stdout
    blob = layer.dir.parent / "blob.zst"
    blob.write_bytes(compressed)
    with open(blob, "rb") as f:
        result = unpack_layer(f, layer.dir, "layer test")
    assert layer.path("z").read_bytes() == b"zstd!"
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_missing_parents_are_made_0755(layer):
    layer.unpack(tar_bytes(entry("a/b/c", data=b"deep")))
    assert layer.path("a/b/c").read_bytes() == b"deep"
    assert stat.S_IMODE(layer.mode("a")) == 0o755


def test_read_only_directory_is_filled_then_made_read_only(layer):
    layer.unpack(tar_bytes(entry("ro", "dir", mode=0o555), entry("ro/f", data=b"in")))
    assert layer.path("ro/f").read_bytes() == b"in"
    assert stat.S_IMODE(layer.mode("ro")) == 0o555


def test_fifo_is_a_fifo(layer):
    layer.unpack(tar_bytes(entry("run/pipe", "fifo", mode=0o600)))
    assert stat.S_ISFIFO(layer.mode("run/pipe"))


def test_layer_root_is_0755(layer):
    layer.unpack(tar_bytes(entry("./", "dir", mode=0o700), entry("f", data=b"")))
    assert stat.S_IMODE(os.stat(layer.dir).st_mode) == 0o755


# ---- ownership and special bits ----

def test_foreign_owner_recorded_in_override_stat(layer):
    layer.unpack(tar_bytes(entry("home", "dir"), entry("home/u", "dir", uid=1000, gid=1000),
                           entry("home/u/f", data=b"", uid=1000, gid=100, mode=0o640)))
    assert layer.override("home/u/f") == "1000:100:0640"
    assert layer.override("home/u") == "1000:1000:0755"
    assert os.lstat(layer.path("home/u/f")).st_uid == os.getuid()


def test_a_file_nobody_may_read_keeps_its_owner(layer):
    """A user xattr needs write permission, the owner's too: the record goes on before
    the 0000 mode (Debian's /etc/gshadow is 0:42 0640; a commit of a dpkg-new file is 0)."""
    layer.unpack(tar_bytes(entry("etc", "dir"), entry("etc/gshadow", data=b"", gid=42,
                                                      mode=0)))
    assert stat.S_IMODE(layer.mode("etc/gshadow")) == 0
    os.chmod(layer.path("etc/gshadow"), 0o400)  # to read the record back as this user
    assert layer.override("etc/gshadow") == "0:42:00"


def test_setuid_and_setgid_stripped_on_disk_and_recorded(layer):
    layer.unpack(tar_bytes(entry("su", data=b"", mode=0o4755),
                           entry("sg", data=b"", mode=0o2755)))
    assert stat.S_IMODE(layer.mode("su")) == 0o755
    assert stat.S_IMODE(layer.mode("sg")) == 0o755
    assert layer.override("su") == "0:0:04755"
    assert layer.override("sg") == "0:0:02755"


def test_setgid_directory_keeps_its_bit_but_not_setuid(layer):
    layer.unpack(tar_bytes(entry("shared", "dir", mode=0o2775),
                           entry("odd", "dir", mode=0o4755)))
    assert stat.S_IMODE(layer.mode("shared")) == 0o2775
    assert layer.override("shared") is None
    assert stat.S_IMODE(layer.mode("odd")) == 0o755
    assert layer.override("odd") == "0:0:04755"


def test_sticky_bit_kept(layer):
    layer.unpack(tar_bytes(entry("tmp", "dir", mode=0o1777)))
    assert stat.S_IMODE(layer.mode("tmp")) == 0o1777


def test_char_device_becomes_empty_file_with_override(layer):
    layer.unpack(tar_bytes(entry("dev/null", "char", mode=0o666, major=1, minor=3)))
    st = os.lstat(layer.path("dev/null"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert layer.override("dev/null") == "0:0:0666:char-1-3"


def test_block_device_becomes_empty_file_with_override(layer):
    layer.unpack(tar_bytes(entry("dev/sda", "block", mode=0o660, gid=6, major=8,
                                 minor=0)))
    assert stat.S_ISREG(layer.mode("dev/sda"))
    assert layer.override("dev/sda") == "0:6:0660:block-8-0"


def test_device_node_never_made_on_disk(layer):
    layer.unpack(tar_bytes(entry("mem", "char", mode=0o666, major=1, minor=1)))
    assert not stat.S_ISCHR(layer.mode("mem"))


# ---- whiteouts ----

def test_whiteout_becomes_char_device_0_0(layer):
    layer.unpack(tar_bytes(entry("etc/.wh.passwd", data=b"")))
    st = os.lstat(layer.path("etc/passwd"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not layer.path("etc/.wh.passwd").exists()


def test_opaque_marker_sets_xattr_on_directory(layer):
    layer.unpack(tar_bytes(entry("var", "dir"), entry("var/.wh..wh..opq", data=b""),
                           entry("var/keep", data=b"k")))
    assert os.getxattr(layer.path("var"), OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(layer.path("var"))) == ["keep"]


def test_whiteout_does_not_hide_same_layer_entry(layer):
    layer.unpack(tar_bytes(entry("f", data=b"mine"), entry(".wh.f", data=b"")))
    assert layer.path("f").read_bytes() == b"mine"


def test_entry_after_whiteout_replaces_it(layer):
    layer.unpack(tar_bytes(entry(".wh.f", data=b""), entry("f", data=b"new")))
    assert layer.path("f").read_bytes() == b"new"


def test_aufs_bookkeeping_skipped(layer):
    layer.unpack(tar_bytes(entry(".wh..wh.plnk", "dir"), entry(".wh..wh.aufs", data=b"")))
    assert os.listdir(layer.dir) == []


def test_whiteout_naming_nothing_refused(layer):
    for name in (".wh.", "a/.wh.."):
        with pytest.raises(ImageError, match="names no entry"):
            layer.unpack(tar_bytes(entry(name, data=b"")))


# ---- duplicates and replacements ----

def test_duplicate_file_later_wins(layer):
    layer.unpack(tar_bytes(entry("f", data=b"first"), entry("f", data=b"second")))
    assert layer.path("f").read_bytes() == b"second"


def test_directory_over_directory_keeps_contents(layer):
    layer.unpack(tar_bytes(entry("d", "dir", mode=0o755), entry("d/f", data=b"x"),
                           entry("d", "dir", mode=0o700)))
    assert layer.path("d/f").read_bytes() == b"x"
    assert stat.S_IMODE(layer.mode("d")) == 0o700


def test_file_replaced_by_directory(layer):
    layer.unpack(tar_bytes(entry("x", data=b"file"), entry("x", "dir"),
                           entry("x/inner", data=b"i")))
    assert layer.path("x").is_dir()
    assert layer.path("x/inner").read_bytes() == b"i"


def test_directory_replaced_by_file(layer):
    layer.unpack(tar_bytes(entry("x", "dir"), entry("x/inner", data=b"i"),
                           entry("x", data=b"file now")))
    assert layer.path("x").read_bytes() == b"file now"


def test_symlink_replaced_by_directory(layer):
    layer.unpack(tar_bytes(entry("s", "symlink", link=str(layer.outside)), entry("s", "dir"),
                           entry("s/f", data=b"inside")))
    assert layer.path("s").is_dir() and not layer.path("s").is_symlink()
    assert layer.path("s/f").read_bytes() == b"inside"


# ---- hostile names ----

def test_dotdot_climbing_above_root_refused(layer):
    for name in ("../victim", "a/../../victim", "/../victim", "../outside/victim"):
        with pytest.raises(ImageError, match="climbs above the layer root"):
            layer.unpack(tar_bytes(entry(name, data=b"pwned")))


def test_dotdot_inside_root_is_resolved(layer):
    layer.unpack(tar_bytes(entry("a/../b", data=b"b")))
    assert layer.path("b").read_bytes() == b"b"


def test_absolute_path_lands_inside(layer):
    victim = str(layer.outside / "victim")
    layer.unpack(tar_bytes(entry(victim, data=b"pwned"), entry("/etc/x", data=b"x")))
    assert layer.path(victim.lstrip("/")).read_bytes() == b"pwned"
    assert layer.path("etc/x").read_bytes() == b"x"


# ---- hostile symlinks ----

def test_symlink_pointing_outside_is_stored_verbatim(layer):
    target = str(layer.outside / "victim")
    layer.unpack(tar_bytes(entry("abs", "symlink", link=target),
                           entry("rel", "symlink", link="../outside/victim")))
    assert os.readlink(layer.path("abs")) == target
    assert os.readlink(layer.path("rel")) == "../outside/victim"


def test_file_over_symlink_replaces_link_not_target(layer):
    layer.unpack(tar_bytes(entry("abs", "symlink", link=str(layer.outside / "victim")),
                           entry("abs", data=b"pwned"),
                           entry("rel", "symlink", link="../outside/victim"),
                           entry("rel", data=b"pwned")))
    assert layer.path("abs").read_bytes() == b"pwned"
    assert not layer.path("abs").is_symlink()
    assert layer.path("rel").read_bytes() == b"pwned"


def test_symlinked_parent_lands_inside_layer(layer):
    layer.unpack(tar_bytes(entry("a", "symlink", link=str(layer.outside)),
                           entry("a/victim", data=b"pwned"),
                           entry("a/new", data=b"pwned")))
    inside = layer.path(str(layer.outside).lstrip("/"))
    assert (inside / "victim").read_bytes() == b"pwned"
    assert (inside / "new").read_bytes() == b"pwned"
    assert layer.path("a").is_symlink()


def test_relative_symlinked_parent_cannot_climb(layer):
    layer.unpack(tar_bytes(entry("up", "symlink", link="../../../../../../outside"),
                           entry("up/victim", data=b"pwned")))
    assert layer.path("outside/victim").read_bytes() == b"pwned"


def test_symlink_chain_to_etc_lands_inside(layer):
    layer.unpack(tar_bytes(entry("etc", "symlink", link="/"),
                           entry("x", "symlink", link="etc/etc/etc"),
                           entry("x/passwd", data=b"mine")))
    assert layer.path("passwd").read_bytes() == b"mine"


def test_whiteout_through_symlinked_parent_lands_inside(layer):
    layer.unpack(tar_bytes(entry("a", "symlink", link=str(layer.outside)),
                           entry("a/.wh.victim", data=b"")))
    inside = layer.path(str(layer.outside).lstrip("/"))
    assert stat.S_ISCHR(os.lstat(inside / "victim").st_mode)


# ---- hostile hardlinks ----

def test_hardlink_inside_layer(layer):
    layer.unpack(tar_bytes(entry("f", data=b"same"), entry("g", "hardlink", link="f")))
    assert os.stat(layer.path("f")).st_ino == os.stat(layer.path("g")).st_ino


def test_hardlink_to_missing_target_refused(layer):
    with pytest.raises(ImageError, match="not in this layer"):
        layer.unpack(tar_bytes(entry("g", "hardlink", link="nothing")))


def test_hardlink_climbing_out_refused(layer):
    with pytest.raises(ImageError, match="climbs above the layer root"):
        layer.unpack(tar_bytes(entry("g", "hardlink", link="../outside/victim")))


def test_hardlink_to_absolute_host_path_refused(layer):
    with pytest.raises(ImageError, match="not in this layer"):
        layer.unpack(tar_bytes(entry("g", "hardlink", link=str(layer.outside / "victim"))))
    assert os.stat(layer.outside / "victim").st_nlink == 1


def test_hardlink_through_symlinked_parent_to_host_refused(layer):
    with pytest.raises(ImageError, match="not in this layer"):
        layer.unpack(tar_bytes(entry("l", "symlink", link=str(layer.outside)),
                               entry("g", "hardlink", link="l/victim")))
    assert os.stat(layer.outside / "victim").st_nlink == 1


def test_hardlink_to_symlink_pointing_outside_links_the_symlink(layer):
    layer.unpack(tar_bytes(entry("s", "symlink", link=str(layer.outside / "victim")),
                           entry("g", "hardlink", link="s")))
    assert os.readlink(layer.path("g")) == str(layer.outside / "victim")
    assert os.stat(layer.outside / "victim").st_nlink == 1


def test_hardlink_to_directory_refused(layer):
    with pytest.raises(ImageError, match="is a directory"):
        layer.unpack(tar_bytes(entry("d", "dir"), entry("g", "hardlink", link="d")))


# ---- broken input ----

def test_not_a_tar_refused(layer):
    with pytest.raises(ImageError, match="not a valid tar"):
        layer.unpack(b"this is not a tar archive at all" * 40)


def test_truncated_tar_refused(layer):
    data = tar_bytes(entry("big", data=b"x" * 100_000))
    with pytest.raises(ImageError):
        layer.unpack(data[:20_000])


def test_corrupt_gzip_refused(layer):
    data = bytearray(gzip.compress(tar_bytes(entry("a", data=os.urandom(5000)))))
    data[100:110] = b"\0" * 10
    with pytest.raises(ImageError, match="layer test"):
        layer.unpack(bytes(data))


def test_truncated_gzip_refused(layer):
    data = gzip.compress(tar_bytes(entry("a", data=os.urandom(50_000))))
    with pytest.raises(ImageError, match="corrupt or truncated"):
        layer.unpack(data[: len(data) // 2])


def test_unsupported_entry_type_refused(layer):
    with pytest.raises(ImageError, match="unsupported tar type"):
        layer.unpack(tar_bytes(entry("vol", b"V")))


def test_entry_under_a_file_refused(layer):
    with pytest.raises(ImageError, match="not a directory"):
        layer.unpack(tar_bytes(entry("f", data=b""), entry("f/g", data=b"")))


def test_xattrs_in_tar_are_dropped(layer):
    info, data = entry("f", data=b"x")
    info.pax_headers = {"SCHILY.xattr.user.overlay.redirect": "/etc",
                        "SCHILY.xattr.security.capability": "\x01"}
    layer.unpack(tar_bytes((info, data)))
    assert [n for n in os.listxattr(layer.path("f")) if n.startswith("user.overlay")] == []


def test_symlink_loop_as_parent_refused(layer):
    with pytest.raises(ImageError, match="cannot be unpacked"):
        layer.unpack(tar_bytes(entry("a", "symlink", link="b"), entry("b", "symlink", link="a"),
                               entry("a/f", data=b"x")))


def test_empty_symlink_target_refused(layer):
    with pytest.raises(ImageError, match="cannot be unpacked"):
        layer.unpack(tar_bytes(entry("s", "symlink", link="")))


def test_name_too_long_refused(layer):
    with pytest.raises(ImageError, match="cannot be unpacked"):
        layer.unpack(tar_bytes(entry("x" * 300, data=b"")))


def test_mode_000_directories_are_filled_then_closed(layer):
    layer.unpack(tar_bytes(entry("locked", "dir", mode=0o000),
                           entry("locked/inner", "dir", mode=0o000),
                           entry("locked/inner/f", data=b"deep"),
                           entry("alias", "symlink", link="locked/inner")))
    assert stat.S_IMODE(layer.mode("locked")) == 0o000
    os.chmod(layer.path("locked"), 0o700)
    assert stat.S_IMODE(layer.mode("locked/inner")) == 0o000
    os.chmod(layer.path("locked/inner"), 0o700)
    assert layer.path("locked/inner/f").read_bytes() == b"deep"
