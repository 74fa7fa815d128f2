"""commit's layer items: an opaque directory is written whole, once, even where sorting
puts a sibling between it and its contents (`cron`, `cron-daemon-common`, `cron/x`:
'-' and '.' sort before '/'), as apt's installs make them."""

from types import SimpleNamespace

from rootless.engine.commit import layer_items
from rootless.engine.container_tree import Change


def view(opaque: set[str], paths: list[str]):
    return SimpleNamespace(entries={p: SimpleNamespace(opaque=p in opaque) for p in paths})


def test_an_opaque_directory_s_entries_are_written_once():
    paths = ["doc/cron", "doc/cron-common", "doc/cron.d", "doc/cron/README", "doc/cron/x"]
    found = [Change("A", p) for p in sorted(paths)]
    items = layer_items(found, view({"doc/cron"}, paths))
    names = [p for p, kind in items if kind == "entry"]
    assert sorted(names) == sorted(paths) and len(names) == len(set(names))
    assert ("doc/cron", "opaque") in items
