"""`rootless system df [-v] [--format]`: docker's disk usage table, layers shared by
images counted once, containers by what they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_error, ok

HEADER = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def table(rootless, *args: str) -> dict[str, list[str]]:
    lines = ok(rootless("system", "df", *args)).splitlines()
    assert lines[0].split() == HEADER
    rows = {}
    for line in lines[1:]:
        kind = " ".join(line.split()[:2]) if line.startswith(("Local", "Build")) \
            else line.split()[0]
        rows[kind] = line[len(kind):].split(maxsplit=3)
    return rows


def image_size(rootless, name: str) -> int:
    return json.loads(ok(rootless("image", "inspect", name)))[0]["Size"]


def human(size: int) -> str:
    from rootless.cli.image_views import human_size

    return human_size(size, 4)


def add_container(rootless_env, store: Path, image: str, state: str = "exited",
                  upper: int = 0, rootfs: int = 0, name: str = "c1") -> str:
    """A container row and directory holding `upper` bytes in upper/ and `rootfs` bytes
    in a plain (copied) rootfs/."""
    from rootless.store import Store

    cid = name.encode().hex().ljust(64, "0")
    s = Store.open(store)
    image_id = s.db.execute("SELECT image_id FROM tags WHERE name=?",
                            (f"docker.io/library/{image}",)).fetchone()[0]
    for part, size in (("upper", upper), ("rootfs", rootfs)):
        (store / "containers" / cid / part).mkdir(parents=True)
        if size:
            (store / "containers" / cid / part / "data").write_bytes(b"x" * size)
    with s.db:
        s.db.execute("INSERT INTO containers (id, name, image_id, image_name, created, "
                     "state, command) VALUES (?, ?, ?, ?, 0, ?, 'sh')",
                     (cid, name, image_id, image, state))
    s.close()
    return cid


def test_empty_store(rootless):
    rows = table(rootless)
    assert rows == {"Images": ["0", "0", "0B", "0B"], "Containers": ["0", "0", "0B", "0B"],
                    "Local Volumes": ["0", "0", "0B", "0B"],
                    "Build Cache": ["0", "0", "0B", "0B"]}


def test_unused_image_is_all_reclaimable(rootless, busybox):
    size = human(image_size(rootless, busybox))
    assert table(rootless)["Images"] == ["1", "0", size, f"{size} (100%)"]


def test_shared_layers_counted_once(rootless, busybox, load_variant):
    load_variant("variant", "--env", "V=1")  # busybox's layer, another config
    size = human(image_size(rootless, busybox))
    assert table(rootless)["Images"][:3] == ["2", "0", size]


def test_active_image_is_not_reclaimable(rootless, busybox, store, rootless_env, tmp_path):
    from test_image_load import Image, oci_archive
    from test_layer_unpack import entry, tar_bytes

    path = oci_archive(tmp_path / "small.tar", [
        (Image([tar_bytes(entry("f", data=b"y" * 1000))]),
         {"org.opencontainers.image.ref.name": "small:1"})])
    ok(rootless("load", "-i", str(path)))
    add_container(rootless_env, store, "busybox:latest")
    total = image_size(rootless, busybox) + 1000
    percent = 1000 * 100 // total
    assert table(rootless)["Images"] == ["2", "1", human(total), f"1kB ({percent}%)"]


def test_stopped_containers_are_reclaimable(rootless, busybox, store, rootless_env):
    add_container(rootless_env, store, "busybox:latest", upper=3000)
    add_container(rootless_env, store, "busybox:latest", rootfs=2000, name="copy")
    assert table(rootless)["Containers"] == ["2", "0", "5kB", "5kB (100%)"]


def test_verbose_sections(rootless, busybox, store, rootless_env):
    add_container(rootless_env, store, "busybox:latest", upper=1234)
    lines = ok(rootless("system", "df", "-v")).splitlines()
    titles = [line for line in lines if line.endswith(":") or line.startswith("Build")]
    assert titles == ["Images space usage:", "Containers space usage:",
                      "Local Volumes space usage:", "Build cache usage: 0B"]
    image_header = lines[lines.index("Images space usage:") + 2]
    assert image_header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE",
                                    "SHARED", "SIZE", "UNIQUE", "SIZE", "CONTAINERS"]
    image_row = lines[lines.index("Images space usage:") + 3].split()
    assert image_row[:2] == ["busybox", "latest"] and image_row[-1] == "1"
    assert image_row[-3] == "0B"  # nothing shared
    at = lines.index("Containers space usage:")
    assert lines[at + 2].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    row = lines[at + 3]
    assert row.split()[1:3] == ["busybox:latest", '"sh"'] and "1.23kB" in row
    assert row.split()[-1] == "c1"
    assert "VOLUME NAME" in lines[lines.index("Local Volumes space usage:") + 2]
    assert lines[-1].split()[:3] == ["CACHE", "ID", "CACHE"]


def test_verbose_shared_size(rootless, busybox, load_variant):
    load_variant("variant", "--env", "V=1")
    out = ok(rootless("system", "df", "-v")).splitlines()
    rows = [line.split() for line in out if line.startswith(("busybox", "variant"))]
    size = human(image_size(rootless, busybox))
    assert sorted((r[0], r[-3], r[-2]) for r in rows) == [("busybox", size, "0B"),
                                                          ("variant", size, "0B")]


def test_format(rootless, busybox):
    out = ok(rootless("system", "df", "--format", "{{.Type}}={{.TotalCount}}"))
    assert out.split() == ["Images=1", "Containers=0", "Local", "Volumes=0", "Build",
                           "Cache=0"]
    first = json.loads(ok(rootless("system", "df", "--format", "json")).splitlines()[0])
    assert first["Type"] == "Images" and first["Active"] == "0"


def test_format_with_verbose_is_a_usage_error(rootless):
    assert_error(rootless("system", "df", "-v", "--format", "{{.Type}}"), 125, "--format")


@pytest.mark.container
def test_what_a_real_container_wrote_is_counted(rootless, busybox):
    ok(rootless("run", "--name", "writer", busybox, "sh", "-c",
                "head -c 200000 /dev/zero > /big"))
    containers = table(rootless)["Containers"]
    assert containers[:2] == ["1", "0"]
    size = containers[2]
    assert size.endswith("kB") and 200 <= float(size[:-2]) < 300, containers
