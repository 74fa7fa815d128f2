"""Old kernels (DESIGN.md, principle 8): the kernel floor makes the Syscalls seam's real
class answer as the old kernel would (ENOSYS, EINVAL, EPERM), and the runtime takes
each fallback where the call fails so: bind remounts for mount_setattr, each descriptor
for close_range, short links for lowerdir+, the walk for openat2. Recorded calls and
real descriptors; real containers under each floor are in tests/test_kernel_floor.py."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from rootless.errors import RuntimeSetupError
from rootless.kernel import constants as k
from rootless.kernel import mountinfo, paths
from rootless.kernel.recording import RecordingSyscalls
from rootless.kernel.syscalls import RealSyscalls
from rootless.runtime import plan as p
from rootless.runtime.executor import Executor
from rootless.runtime.helper import helper_argv
from rootless.runtime.overlay_options import short_link_remove, short_name
from rootless.runtime.start_process import _cloexec_from_3

MAX_FD = 0xFFFFFFFF  # close_range of nothing: the call, with no effect


@pytest.fixture
def floor(monkeypatch, tmp_path):
    """floor(X.Y) -> refused(): the kernel floor for this test; refused() lists what it
    refused (ROOTLESS_KERNEL_FLOOR_LOG)."""
    log = tmp_path / "floor.log"
    monkeypatch.setenv("ROOTLESS_KERNEL_FLOOR_LOG", str(log))

    def set_floor(value: str):
        monkeypatch.setenv("ROOTLESS_KERNEL_FLOOR", value)
        return lambda: [line.split()[1] for line in log.read_text().splitlines()]

    yield set_floor
    paths.use_openat2(None)  # probed again without the floor


def errno_of(call) -> int:
    with pytest.raises(OSError) as e:
        call()
    return e.value.errno


# ---- the real class under the floor: each call fails as its old kernel fails it ----

def _pidfd_setns(sys: RealSyscalls) -> None:
    fd = os.pidfd_open(os.getpid())
    try:
        sys.setns(fd, k.CLONE_NEWUTS)
    finally:
        os.close(fd)


REFUSALS = [  # (floor, feature, errno, the call)
    ("5.5", "openat2", errno.ENOSYS,
     lambda s: s.openat2(k.AT_FDCWD, "/", os.O_PATH, 0, 0)),
    ("5.11", "mount_setattr", errno.ENOSYS,
     lambda s: s.mount_setattr(-1, "", k.AT_EMPTY_PATH, 0)),
    ("5.8", "close_range", errno.ENOSYS, lambda s: s.close_range(MAX_FD, MAX_FD)),
    ("5.10", "close_range_cloexec", errno.EINVAL,
     lambda s: s.close_range(MAX_FD, MAX_FD, k.CLOSE_RANGE_CLOEXEC)),
    ("5.1", "fsopen", errno.ENOSYS, lambda s: s.fsopen("tmpfs")),
    ("6.7", "lowerdir_plus", errno.EINVAL,
     lambda s: s.fsconfig(-1, k.FSCONFIG_SET_STRING, "lowerdir+", "/l")),
    ("5.10", "userns_overlay", errno.EPERM,
     lambda s: s.mount("overlay", "/nonexistent", "overlay", 0, "lowerdir=/l")),
    ("5.2", "pidfd_open", errno.ENOSYS, lambda s: s.pidfd_open(os.getpid())),
    ("5.7", "setns_pidfd", errno.EINVAL, _pidfd_setns),
]


@pytest.mark.parametrize("at, feature, err, call", REFUSALS, ids=[r[1] for r in REFUSALS])
def test_under_the_floor_a_newer_call_fails_as_on_that_kernel(floor, at, feature, err, call):
    refused = floor(at)
    assert errno_of(lambda: call(RealSyscalls())) == err
    assert refused() == [feature]


def test_before_6_5_lowerdir_plus_is_taken_and_refused_at_the_create_step(floor):
    """overlayfs took fsconfig parameters in 6.5; before, the VFS passed any key on as a
    legacy option string, and overlayfs refused the unknown one when creating."""
    refused = floor("6.1")
    sys = RealSyscalls()
    sys.fsconfig(-1, k.FSCONFIG_SET_STRING, "lowerdir+", "/l")  # no error: no check yet
    assert errno_of(lambda: sys.fsconfig(-1, k.FSCONFIG_CMD_CREATE)) == errno.EINVAL
    assert refused() == ["lowerdir_plus", "lowerdir_plus"]


def test_at_the_release_that_brought_it_the_call_is_made(floor):
    refused = floor("5.9")
    RealSyscalls().close_range(MAX_FD, MAX_FD)  # 5.9 has close_range
    assert errno_of(lambda: RealSyscalls().close_range(MAX_FD, MAX_FD,
                                                       k.CLOSE_RANGE_CLOEXEC)) == errno.EINVAL
    assert refused() == ["close_range_cloexec"]


def test_a_whiteout_cannot_be_made_before_5_8_but_a_fifo_can(floor, tmp_path):
    floor("5.7")
    layer = tmp_path / "layer"
    layer.mkdir()
    dirfd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sys = RealSyscalls()
        assert errno_of(lambda: sys.mknod("w", stat.S_IFCHR, 0, dirfd)) == errno.EPERM
        sys.mknod("fifo", stat.S_IFIFO | 0o600, 0, dirfd)
    finally:
        os.close(dirfd)
    assert os.listdir(layer) == ["fifo"]


# ---- openat2 (5.6) -> the walk, which refuses every procfs magic link as openat2 ----

def test_below_5_6_the_resolver_walks_and_the_floor_refused_openat2(floor, tmp_path):
    refused = floor("4.18")
    paths.use_openat2(None)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("/real")
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.open_in_root(root, "link", os.O_PATH | os.O_DIRECTORY)
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "real"))
        os.close(fd)
    finally:
        os.close(root)
    assert not paths.has_openat2()
    assert "openat2" in refused()


@pytest.mark.parametrize("magic", ["proc/self/cwd", "proc/self/root", "proc/self/exe",
                                   "proc/self/ns/mnt"])
def test_the_walk_refuses_procfs_magic_links_of_mode_0777(magic):
    """/proc/PID/cwd, root, exe and ns/* are 0777 like any symlink: RESOLVE_NO_MAGICLINKS
    refuses them, so the walk must, not resolve their text (runc CVE-2024-21626)."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY)
    paths.use_openat2(False)
    try:
        assert errno_of(lambda: paths.open_in_root(root, magic, os.O_PATH)) == errno.ELOOP
    finally:
        paths.use_openat2(None)
        os.close(root)


def test_the_walk_still_follows_procfs_plain_links():
    root = os.open("/", os.O_PATH | os.O_DIRECTORY)
    paths.use_openat2(False)
    try:
        fd = paths.open_in_root(root, "proc/self/status", os.O_RDONLY)  # /proc/self: "PID"
        os.close(fd)
    finally:
        paths.use_openat2(None)
        os.close(root)


# ---- mount_setattr (5.12) -> bind remounts with the flags each mount has ----

MOUNT_FLAGS = k.MS_NOSUID | k.MS_NODEV  # what statvfs says: locked in a user namespace
REMOUNT = k.MS_REMOUNT | k.MS_BIND


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "data" / "sub" / "deeper").mkdir(parents=True)
    return root


def run_steps(sys: RecordingSyscalls, root: Path, *steps) -> None:
    Executor(sys).run((p.BindRootfs(str(root)), *steps))


def remounts(sys: RecordingSyscalls) -> list[int]:
    return [c[4] for c in sys.calls if c[0] == "mount" and c[4] & k.MS_REMOUNT]


@pytest.mark.parametrize("point", ["/", "/proc", "/dev"])
def test_a_mounts_own_flags_are_read_with_statvfs(point):
    options = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == point:
            options = set(line.split()[5].split(","))  # the last (top) mount there
    if not options:
        pytest.skip(f"{point} is not a mount point here")
    want = sum(flag for name, flag in (("ro", k.MS_RDONLY), ("nosuid", k.MS_NOSUID),
                                       ("nodev", k.MS_NODEV), ("noexec", k.MS_NOEXEC))
               if name in options)
    fd = os.open(point, os.O_PATH)
    try:
        assert RealSyscalls().mount_flags(fd) == want
    finally:
        os.close(fd)


def test_without_mount_setattr_a_read_only_bind_is_remounted_with_its_own_flags(rootfs,
                                                                               tmp_path):
    sys = RecordingSyscalls(fail={"mount_setattr": errno.ENOSYS, "openat2": errno.ENOSYS},
                            mount_flags=MOUNT_FLAGS)
    run_steps(sys, rootfs, p.BindMount(str(tmp_path), "/data", readonly=True))
    assert remounts(sys) == [REMOUNT | MOUNT_FLAGS | k.MS_RDONLY]


def test_the_remounts_reach_every_mount_below_a_recursive_bind(rootfs, tmp_path):
    sys = RecordingSyscalls(fail={"mount_setattr": errno.ENOSYS, "openat2": errno.ENOSYS},
                            mount_flags=MOUNT_FLAGS, submounts=("sub", "sub/deeper"))
    run_steps(sys, rootfs, p.BindMount(str(tmp_path), "/data", readonly=True,
                                       flags=k.MOUNT_ATTR_NOEXEC))
    assert remounts(sys) == [REMOUNT | MOUNT_FLAGS | k.MS_RDONLY | k.MS_NOEXEC] * 3


def test_a_read_only_root_is_remounted_alone():
    sys = RecordingSyscalls(fail={"mount_setattr": errno.ENOSYS}, mount_flags=MOUNT_FLAGS,
                            submounts=("proc",))
    Executor(sys).run((p.ReadonlyRoot(),))
    assert remounts(sys) == [REMOUNT | MOUNT_FLAGS | k.MS_RDONLY]
    assert "submounts" not in sys.names()


def test_with_mount_setattr_nothing_is_remounted(rootfs, tmp_path):
    sys = RecordingSyscalls(fail={"openat2": errno.ENOSYS})
    run_steps(sys, rootfs, p.BindMount(str(tmp_path), "/data", readonly=True))
    assert remounts(sys) == []
    assert [c[3:] for c in sys.calls if c[0] == "mount_setattr"] == [
        (0x1000 | k.AT_RECURSIVE, k.MOUNT_ATTR_RDONLY, 0)]


def test_a_refusal_other_than_enosys_is_not_papered_over_by_a_remount(rootfs, tmp_path):
    sys = RecordingSyscalls(fail={"mount_setattr": errno.EPERM, "openat2": errno.ENOSYS})
    with pytest.raises(RuntimeSetupError, match="operation not permitted"):
        run_steps(sys, rootfs, p.BindMount(str(tmp_path), "/data", readonly=True))
    assert remounts(sys) == []


# ---- close_range (5.9; CLOSE_RANGE_CLOEXEC 5.11) -> each descriptor ----

@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EINVAL])
def test_without_close_range_every_descriptor_is_marked_close_on_exec(err):
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        assert _cloexec_from_3(RecordingSyscalls(fail={"close_range": err})) is False
        assert not os.get_inheritable(w)
    finally:
        os.close(r)
        os.close(w)


def test_with_close_range_the_helper_uses_it_too():
    sys = RecordingSyscalls()
    assert _cloexec_from_3(sys) is True
    assert sys.calls == [("close_range", 3, MAX_FD, k.CLOSE_RANGE_CLOEXEC)]


def test_without_close_range_the_exec_helper_is_told_so():
    step = p.Exec(("true",), ())
    assert "--no-close-range" not in helper_argv(step, 9)
    argv = helper_argv(step, 9, close_range=False)
    assert argv[:argv.index("--")] == ["rootless-init", "--no-close-range", "--report-fd",
                                       "9"]


# ---- fsconfig lowerdir+ (6.8) -> one lowerdir= of short links ----

class CwdRecording(RecordingSyscalls):
    """Also records the working directory each mount is made from."""

    def mount(self, source, target, fstype, flags=0, data=None):
        self.calls.append(("cwd", os.getcwd()))
        super().mount(source, target, fstype, flags, data)


def tall_overlay(tmp_path: Path, count: int, store: str = "store") -> p.MountOverlay:
    layers = tmp_path / store / "layers"
    lower = [str(layers / f"{i:064x}") for i in range(count, 0, -1)]  # topmost first
    for path in lower:
        os.makedirs(path)
    (tmp_path / "merged").mkdir()
    return p.MountOverlay(str(tmp_path / "merged"), tuple(lower), str(tmp_path / "c" / "up"),
                          str(tmp_path / "c" / "work"))


def test_without_lowerdir_plus_many_layers_mount_through_short_links(tmp_path):
    step = tall_overlay(tmp_path, 120)
    sys = CwdRecording(fail={"fsconfig": errno.EINVAL})
    here = os.getcwd()
    Executor(sys).run((step,))
    (cwd,) = [c[1] for c in sys.calls if c[0] == "cwd"]
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    links = Path(step.lower[0]).parent / "l"
    assert cwd == str(links) and os.getcwd() == here
    names = mount[5].split(",")[0].removeprefix("lowerdir=").split(":")
    assert names == [short_name(Path(lower).name) for lower in step.lower]
    assert all(len(name) == 26 for name in names)
    assert len(mount[5]) < 4096
    assert [os.readlink(links / n) for n in names] == [f"../{Path(x).name}" for x in step.lower]


class CreateRefused(RecordingSyscalls):
    """A kernel before 6.5: every fsconfig key taken, the create step refusing."""

    def fsconfig(self, fd, cmd, key=None, value=None, aux=0):
        super().fsconfig(fd, cmd, key, value, aux)
        if cmd == k.FSCONFIG_CMD_CREATE:
            raise OSError(errno.EINVAL, "overlayfs: unrecognized mount option")


def test_a_create_step_that_refuses_lowerdir_plus_gets_one_mount(tmp_path):
    step = tall_overlay(tmp_path, 2)
    sys = CreateRefused()
    Executor(sys).run((step,))
    assert sys.names()[-2:] == ["fsconfig", "mount"]
    assert "fsmount" not in sys.names()
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    assert mount[5].startswith(f"lowerdir={':'.join(step.lower)},")


def test_a_few_layers_mount_by_their_own_paths_and_make_no_links(tmp_path):
    step = tall_overlay(tmp_path, 3)
    sys = RecordingSyscalls(fail={"fsconfig": errno.EINVAL})
    Executor(sys).run((step,))
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    assert mount[5].startswith(f"lowerdir={':'.join(step.lower)},")
    assert not (Path(step.lower[0]).parent / "l").exists()


def test_a_store_path_with_a_colon_mounts_through_short_links(tmp_path):
    step = tall_overlay(tmp_path, 2, store="odd:store")
    sys = RecordingSyscalls(fail={"fsopen": errno.ENOSYS})
    Executor(sys).run((step,))
    (mount,) = [c for c in sys.calls if c[0] == "mount"]
    assert ":store" not in mount[5].split(",")[0]


def test_a_wrong_short_link_is_replaced_before_use(tmp_path):
    step = tall_overlay(tmp_path, 120)
    links = Path(step.lower[0]).parent / "l"
    links.mkdir()
    wrong = links / short_name(Path(step.lower[0]).name)
    wrong.symlink_to("../elsewhere")
    Executor(RecordingSyscalls(fail={"fsconfig": errno.EINVAL})).run((step,))
    assert os.readlink(wrong) == f"../{Path(step.lower[0]).name}"


def test_a_removed_layer_takes_its_short_link_along(tmp_path):
    step = tall_overlay(tmp_path, 120)
    Executor(RecordingSyscalls(fail={"fsconfig": errno.EINVAL})).run((step,))
    layers = Path(step.lower[0]).parent
    short_link_remove(str(layers), Path(step.lower[0]).name)
    assert len(os.listdir(layers / "l")) == 119
    assert short_name(Path(step.lower[0]).name) not in os.listdir(layers / "l")


def test_too_many_layers_even_as_short_links_are_refused_by_name(tmp_path):
    step = tall_overlay(tmp_path, 160)
    with pytest.raises(RuntimeSetupError, match="160 layers are too many.*even as short"):
        Executor(RecordingSyscalls(fail={"fsconfig": errno.EINVAL})).run((step,))


# ---- the mount tree below a mount, from mountinfo ----

MOUNTINFO = r"""22 1 0:20 / / rw - ext4 /dev/vda rw
30 22 0:25 / /data rw - ext4 /dev/vda rw
31 30 0:26 / /data/a\040b rw - tmpfs t rw
32 31 0:27 / /data/a\040b/c rw - tmpfs t rw
33 22 0:28 / /database rw - tmpfs t rw
34 30 0:29 / /data/d rw - tmpfs t rw
"""


def test_the_mounts_below_one_are_found_by_id_parents_first():
    mounts = mountinfo.parse(MOUNTINFO)
    assert mountinfo.below(mounts, 30) == ["a b", "d", "a b/c"]
    assert mountinfo.below(mounts, 22) == ["data", "database", "data/a b", "data/d",
                                           "data/a b/c"]
    assert mountinfo.below(mounts, 99) == []


def test_a_descriptors_mount_id_is_its_fdinfo_mnt_id():
    fd = os.open("/proc", os.O_PATH)
    try:
        top = mountinfo.mount_id(fd)
        assert top in {mid for mid, _, point in mountinfo.parse(
            Path("/proc/self/mountinfo").read_text()) if point == "/proc"}
    finally:
        os.close(fd)


# ---- what `system info` lists ----

def test_under_rhel_8s_floor_every_fallback_is_listed(floor, tmp_path):
    from rootless.kernel.features import FALLBACKS, kernel_missing

    floor("4.18")
    assert [m.feature for m in kernel_missing(str(tmp_path))] == list(FALLBACKS)


def test_under_debian_12s_floor_only_lowerdir_plus_is_listed(floor, tmp_path):
    from rootless.kernel.features import kernel_missing

    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    if release < (6, 8):
        pytest.skip(f"this kernel ({os.uname().release}) lacks more than the floor")
    floor("6.1")
    (missing,) = kernel_missing(str(tmp_path))
    assert missing.line().startswith("overlayfs lowerdir+ (Linux 6.8): one lowerdir= ")
