"""File capabilities in layers (security.capability in the tar): kept, as namespaced
capabilities whose root is this user, so they work in containers and nowhere else."""

from __future__ import annotations

import os
import struct

import pytest
from helpers import load_one_layer_image, ok

NET_RAW = 13
# VFS_CAP_REVISION_2 | effective; permitted = cap_net_raw; inheritable 0
CAP_NET_RAW_EP = struct.pack("<IIIII", 0x02000001, 1 << NET_RAW, 0, 0, 0)


def cap_tar(image_archives, name: str, cap: bytes = CAP_NET_RAW_EP) -> bytes:
    """The busybox rootfs plus /NAME: busybox again, carrying `cap` (named busybox, so
    that it runs its applets)."""
    import io
    import tarfile

    busybox = tarfile.open(image_archives.rootfs).extractfile("bin/busybox").read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        with tarfile.open(image_archives.rootfs) as base:
            for member in base:
                tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(busybox), 0o755
        info.pax_headers = {"SCHILY.xattr.security.capability":
                            cap.decode("utf-8", "surrogateescape")}
        tar.addfile(info, io.BytesIO(busybox))
    return buf.getvalue()


def load_cap_image(rootless, image_archives, tmp_path) -> str:
    from test_image_load import Image, oci_archive

    image = Image([cap_tar(image_archives, "capbox/busybox")])
    path = oci_archive(tmp_path / "caps.tar",
                       [(image, {"org.opencontainers.image.ref.name": "caps:1"})])
    ok(rootless("load", "-i", str(path)))
    return "caps:1"


def test_a_file_capability_is_stored_as_namespaced_with_this_user_as_root(
        rootless, image_archives, tmp_path, store):
    load_cap_image(rootless, image_archives, tmp_path)
    (layer,) = [p for p in (store / "layers").iterdir() if p.is_dir()]
    value = os.getxattr(layer / "capbox" / "busybox", "security.capability")
    magic, permitted, _, _, _, rootid = struct.unpack("<IIIIII", value)
    assert magic == 0x03000001  # VFS_CAP_REVISION_3, effective
    assert permitted == 1 << NET_RAW and rootid == os.getuid()


@pytest.mark.needs_subids
def test_a_file_capability_takes_effect_for_a_non_root_user_in_the_container(
        rootless, image_archives, tmp_path):
    image = load_cap_image(rootless, image_archives, tmp_path)
    out = ok(rootless("run", "--rm", "-u", "1000", image, "/capbox/busybox", "grep", "CapEff",
                      "/proc/self/status"))
    assert int(out.split()[1], 16) == 1 << NET_RAW
    plain = ok(rootless("run", "--rm", "-u", "1000", image, "grep", "CapEff",
                        "/proc/self/status"))
    assert int(plain.split()[1], 16) == 0


def test_a_file_capability_on_a_file_a_later_entry_replaces_is_dropped(
        rootless, image_archives, tmp_path, store):
    import io
    import tarfile

    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry

    capped = cap_tar(image_archives, "x")
    # the same tar with a plain /x appended after the capped one
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        with tarfile.open(fileobj=io.BytesIO(capped)) as base:
            for member in base:
                tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        info, data = entry("x", data=b"plain\n")
        tar.addfile(info, io.BytesIO(data))
    path = oci_archive(tmp_path / "replaced.tar", [(Image([buf.getvalue()]),
                                                   {"org.opencontainers.image.ref.name": "r:1"})])
    ok(rootless("load", "-i", str(path)))
    (layer,) = [p for p in (store / "layers").iterdir() if p.is_dir()]
    with pytest.raises(OSError):
        os.getxattr(layer / "x", "security.capability")
