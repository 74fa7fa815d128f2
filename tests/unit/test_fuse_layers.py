"""How the FUSE overlay merges layers (fs/fuse_layers.py) and when a container gets it
(fs/strategy.py), on plain directories: no mount, no namespace."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rootless.fs.fuse_layers import Layers
from rootless.fs.strategy import OWNERS, SPECIAL, owners_matter, scan_records
from rootless.kernel.override import OVERRIDE_XATTR
from rootless.kernel.paths import OPAQUE_XATTR


def tree(root: Path, spec: dict) -> Path:
    """Make `spec` ({path: "dir" | "whiteout" | "opaque" | text}) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for path, what in spec.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if what == "dir":
            target.mkdir(exist_ok=True)
        elif what == "whiteout":
            os.mknod(target, stat.S_IFCHR, 0)
        elif what == "opaque":
            target.mkdir(exist_ok=True)
            os.setxattr(target, OPAQUE_XATTR, b"y")
        else:
            target.write_text(what)
    return root


@pytest.fixture
def stack(tmp_path):
    def make(upper: dict, *lowers: dict) -> Layers:
        paths = [str(tree(tmp_path / f"lower{i}", spec)) for i, spec in enumerate(lowers)]
        return Layers(str(tree(tmp_path / "upper", upper)), str(tree(tmp_path / "work", {})),
                      paths)
    return make


def merged(layers: Layers, rel: str = "") -> dict:
    chain = layers.merge_chain(rel, tuple(range(len(layers.fds))))
    return {name: (e.layer, e.dirs) for name, e in layers.merge(rel, chain).entries.items()}


def test_upper_whiteout_hides_the_image_file(stack):
    layers = stack({"gone": "whiteout"}, {"gone": "x", "kept": "y"})
    assert merged(layers) == {"kept": (1, ())}


def test_aufs_whiteout_of_a_layer_hides_the_file_below_it(stack):
    layers = stack({}, {".wh.gone": ""}, {"gone": "x", "kept": "y"})
    assert merged(layers) == {"kept": (2, ())}


def test_whiteout_does_not_hide_an_entry_of_its_own_layer(stack):
    layers = stack({}, {"name": "top", ".wh.name": ""}, {"name": "below"})
    assert merged(layers) == {"name": (1, ())}


def test_directories_of_the_same_name_merge_topmost_first(stack):
    layers = stack({"d": "dir"}, {"d/a": "1"}, {"d/b": "2"})
    assert merged(layers) == {"d": (0, (0, 1, 2))}
    assert merged(layers, "d") == {"a": (1, ()), "b": (2, ())}


def test_a_file_above_ends_the_merge_of_a_directory(stack):
    layers = stack({}, {"d": "dir"}, {"d": "a file"}, {"d": "dir"})
    assert merged(layers)["d"] == (1, (1,))


def test_an_opaque_directory_hides_what_the_layers_below_hold(stack):
    layers = stack({"d": "opaque", "d/new": "n"}, {"d/old": "o"})
    chain = layers.merge_chain("d", (0, 1))
    assert chain == (0,)
    assert list(layers.merge("d", chain).entries) == ["new"]


def test_aufs_opaque_marker_makes_a_layer_directory_opaque(stack):
    layers = stack({}, {"d/.wh..wh..opq": "", "d/new": "n"}, {"d/old": "o"})
    assert layers.merge_chain("d", (1, 2)) == (1,)


def test_lower_names_are_those_the_image_shows_below_upper(stack):
    layers = stack({"up": "u"}, {"a": "1", "b": "whiteout"}, {"b": "2", "c": "3"})
    listing = layers.merge("", (0, 1, 2))
    assert listing.lower == {"a", "c"}


# ---- which containers get the FUSE overlay ----

def layer_with_record(tmp_path: Path, record: str, is_dir: bool = False,
                      chain: str = "chain") -> Path:
    layer = tmp_path / "layers" / chain
    target = layer / "etc" / "thing"
    target.parent.mkdir(parents=True)
    target.mkdir() if is_dir else target.write_text("x")
    os.setxattr(target, OVERRIDE_XATTR, record.encode())
    return layer


def test_a_record_of_another_owner_is_found(tmp_path):
    assert scan_records(str(layer_with_record(tmp_path, "1000:1000:0755", True))) == OWNERS


def test_a_setuid_record_is_special(tmp_path):
    assert scan_records(str(layer_with_record(tmp_path, "0:0:04755"))) == SPECIAL


def test_a_device_record_is_special(tmp_path):
    assert scan_records(str(layer_with_record(tmp_path, "0:0:0600:char-1-3"))) == SPECIAL


def test_a_directory_keeps_its_setgid_bit_on_disk_so_it_is_not_special(tmp_path):
    assert scan_records(str(layer_with_record(tmp_path, "0:0:02775", True))) == 0


def test_a_user_other_than_root_needs_the_recorded_owners(tmp_path):
    assert owners_matter(tmp_path, [], 1000) == "the container's user is 1000, not root"


def test_root_needs_them_for_setuid_programs_only(tmp_path):
    owners = layer_with_record(tmp_path, "1000:1000:0755", True, chain="owners")
    setuid = layer_with_record(tmp_path, "0:0:04755", chain="setuid")
    assert owners_matter(tmp_path, [owners], 0) == ""
    assert "setuid" in owners_matter(tmp_path, [owners, setuid], 0)
