"""Old kernels are real users (DESIGN.md, principle 8; issue 9, "Older kernels").

Under ROOTLESS_KERNEL_FLOOR=X.Y every kernel call newer than Linux X.Y fails as it fails
on that kernel (kernel/syscalls.py), and rootless takes the fallback: these tests run as
RHEL 8 (4.18), RHEL 9 (5.14) and Debian 12 (6.1) on today's kernel. Each checks what the
user gets (the container runs, a read-only volume is read-only, no descriptor leaks, a
100-layer image runs) and that the fallback was what did it: what the container sees of
its own mounts, its pid 1's arguments, or the floor's log of the calls it refused
(ROOTLESS_KERNEL_FLOOR_LOG, one "PID FEATURE" line per refusal), since a fallback that
works as well as the call it replaces looks the same from inside.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from helpers import MARKER, MARKER_PATH, ok

pytestmark = pytest.mark.container

RHEL8, RHEL9, DEBIAN12 = "4.18", "5.14", "6.1"
FLOORS = [RHEL8, RHEL9, DEBIAN12]
LAYERS = 100  # on top of busybox's own: ~110 bytes a path, 4096 bytes of mount options
SHORT_NAME = re.compile(r"[A-Z2-7]{26}")  # base32, containers-storage's length


@pytest.fixture
def under(rootless, tmp_path):
    """under(floor) -> refused(): later `rootless` calls run as on Linux `floor`;
    refused() is the set of features the floor has refused them so far."""
    log = tmp_path / "floor.log"

    def use(floor: str):
        rootless.env["ROOTLESS_KERNEL_FLOOR"] = floor
        rootless.env["ROOTLESS_KERNEL_FLOOR_LOG"] = str(log)
        return lambda: ({line.split()[1] for line in log.read_text().splitlines()}
                        if log.exists() else set())

    return use


def root_mount(mountinfo: str) -> str:
    """The line of the container's "/" in its /proc/self/mountinfo."""
    lines = [line for line in mountinfo.splitlines() if line.split()[4:5] == ["/"]]
    assert lines, mountinfo
    return lines[-1]


# ---- a container runs ----

@pytest.mark.parametrize("floor", FLOORS)
def test_a_container_runs_on_the_root_filesystem_the_floor_allows(rootless, busybox, under,
                                                                  floor):
    under(floor)
    out = ok(rootless("run", "--rm", busybox, "sh", "-c",
                      f"cat {MARKER_PATH}; cat /proc/self/mountinfo"))
    assert out.splitlines()[0] == MARKER
    root = root_mount(out)
    if floor == RHEL8:  # no overlayfs in a user namespace before 5.11
        assert " - overlay " not in root, root
    else:  # overlayfs, but no fsconfig lowerdir+ before 6.8: one lowerdir= string
        assert " - overlay " in root and ",lowerdir=" in root, root
        assert "lowerdir+" not in root, root


# ---- mount_setattr (5.12) -> bind remounts ----

def test_a_read_only_volume_is_read_only_without_mount_setattr(rootless, busybox, under,
                                                               tmp_path):
    refused = under(RHEL8)
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "kept").write_text("host data")
    result = rootless("run", "--rm", "-v", f"{volume}:/data:ro", busybox, "sh", "-c",
                      "cat /data/kept; echo changed > /data/kept; touch /data/new")
    assert result.returncode != 0
    assert "host data" in result.stdout
    assert "Read-only file system" in result.stderr, result.stderr
    assert sorted(os.listdir(volume)) == ["kept"]
    assert (volume / "kept").read_text() == "host data"
    assert "mount_setattr" in refused()


def test_sys_and_every_mount_below_it_are_read_only_without_mount_setattr(rootless, busybox,
                                                                          under):
    refused = under(RHEL8)
    out = ok(rootless("run", "--rm", busybox, "cat", "/proc/self/mountinfo"))
    below_sys = [line.split() for line in out.splitlines()
                 if line.split()[4] == "/sys" or line.split()[4].startswith("/sys/")]
    assert below_sys, out
    for fields in below_sys:  # the per-mount options: ro, as mount_setattr's AT_RECURSIVE
        assert "ro" in fields[5].split(","), fields
    assert "mount_setattr" in refused()


# ---- close_range (5.9; CLOSE_RANGE_CLOEXEC 5.11) -> each descriptor ----

def test_no_host_descriptor_reaches_the_container_without_close_range(rootless, busybox,
                                                                     under, tmp_path):
    refused = under(RHEL8)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # ours, inherited by rootless
    try:
        out = ok(rootless("run", "--rm", "--init", busybox, "sh", "-c",
                          "ls /proc/self/fd; echo --; ls /proc/1/fd; echo --;"
                          " tr '\\0' ' ' < /proc/1/cmdline", pass_fds=(fd,)))
    finally:
        os.close(fd)
    own, pid1, cmdline = out.split("--\n")
    assert sorted(own.split()) == ["0", "1", "2", "3"]  # 3: the directory ls reads
    assert sorted(pid1.split()) == ["0", "1", "2"]
    # the exec helper, pid 1 with --init, was told to do without close_range too
    assert "--no-close-range" in cmdline.split(), cmdline
    assert {"close_range", "close_range_cloexec"} & refused()


# ---- fsconfig lowerdir+ (6.8) -> lowerdir= of short links ----

@pytest.fixture(scope="module")
def tall_image(image_archives, tmp_path_factory) -> Path:
    """busybox and LAYERS layers above it, each adding /layers/NNN; the last one also
    deletes /layers/050 (a whiteout)."""
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    layers = [image_archives.rootfs.read_bytes()]
    for i in range(1, LAYERS + 1):
        entries = [entry("layers", "dir"), entry(f"layers/{i:03d}", data=f"{i}\n".encode())]
        if i == LAYERS:
            entries.append(entry("layers/.wh.050"))
        layers.append(tar_bytes(*entries))
    config = {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
    image = Image(layers, config=config)
    path = tmp_path_factory.mktemp("tall") / "tall.oci.tar"
    return oci_archive(path, [(image, {"org.opencontainers.image.ref.name": "tall:latest"})])


@pytest.mark.parametrize("floor", FLOORS)
def test_an_image_of_a_hundred_layers_runs(rootless, under, tall_image, floor):
    refused = under(floor)
    ok(rootless("load", "-i", str(tall_image), timeout=300))
    out = ok(rootless("run", "--rm", "tall:latest", "sh", "-c",
                      "ls /layers | wc -l; cat /layers/001 /layers/100; ls /layers/050;"
                      " cat /proc/self/mountinfo"))
    count, first, last, *rest = out.splitlines()
    assert (count.strip(), first, last) == (str(LAYERS - 1), "1", str(LAYERS))
    root = root_mount(out)
    if floor == RHEL8:  # the whiteouts are .wh. files: no mknod of 0:0 before 5.8
        assert " - overlay " not in root, root
        assert "whiteout_mknod" in refused()
    else:  # each layer one short link (layers/l/), 27 bytes of options
        lowerdir = re.search(r",lowerdir=([^,]*)", root)
        assert lowerdir, root
        assert [SHORT_NAME.fullmatch(name) is not None
                for name in lowerdir.group(1).split(":")] == [True] * (LAYERS + 1), root
        assert "lowerdir_plus" in refused()


def test_removing_an_image_removes_its_short_links(rootless, under, tall_image, store):
    under(DEBIAN12)
    ok(rootless("load", "-i", str(tall_image), timeout=300))
    ok(rootless("run", "--rm", "tall:latest", "true"))
    links = store / "layers" / "l"
    assert len(os.listdir(links)) == LAYERS + 1
    ok(rootless("rmi", "tall:latest"))
    assert os.listdir(links) == []


# ---- system info ----

LACKS = {  # what each floor lacks of what rootless uses, as `system info` names it
    RHEL8: ["openat2 (Linux 5.6)", "mount_setattr (Linux 5.12)", "close_range (Linux 5.9)",
            "CLOSE_RANGE_CLOEXEC (Linux 5.11)", "(fsopen, fsmount, move_mount) (Linux 5.2)",
            "overlayfs lowerdir+ (Linux 6.8)", "overlayfs in a user namespace (Linux 5.11)",
            "pidfd_open (Linux 5.3)", "setns on a pidfd (Linux 5.8)",
            "unprivileged whiteout mknod (Linux 5.8)"],
    RHEL9: ["overlayfs lowerdir+ (Linux 6.8)"],
    DEBIAN12: ["overlayfs lowerdir+ (Linux 6.8)"],
}


@pytest.mark.parametrize("floor", FLOORS)
def test_system_info_names_what_the_floor_lacks_and_what_stands_in(rootless, under, floor):
    under(floor)
    fallbacks = json.loads(ok(rootless("system", "info", "--format",
                                       "{{json .kernel_fallbacks}}")))
    assert len(fallbacks) == len(LACKS[floor]), fallbacks
    for lack, line in zip(LACKS[floor], fallbacks, strict=True):
        assert lack in line and ": " in line, (lack, line)  # then what is used instead
    text = ok(rootless("system", "info"))
    assert f"kernel_floor: {floor} (ROOTLESS_KERNEL_FLOOR)" in text
    assert "\n".join(f"  - {line}" for line in fallbacks) in text


def test_system_info_without_a_floor_lists_no_fallbacks_on_a_current_kernel(rootless):
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    if release < (6, 8):
        pytest.skip(f"this kernel ({os.uname().release}) lacks lowerdir+ itself")
    text = ok(rootless("system", "info"))
    assert "kernel_floor: none" in text
    assert "kernel_fallbacks: none" in text
