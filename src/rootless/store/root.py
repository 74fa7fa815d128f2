"""Where the store is, without opening it: `run` forks its container's monitor before
anything imports SQLite (store/store.py), and the monitor needs only this path."""

from __future__ import annotations

import os


def default_dir() -> str:
    """ROOTLESS_ROOT, else $XDG_DATA_HOME/rootless, else ~/.local/share/rootless."""
    env = os.environ.get("ROOTLESS_ROOT")
    if env:
        return env
    data = os.environ.get("XDG_DATA_HOME")
    if data and os.path.isabs(data):
        return os.path.join(data, "rootless")
    return os.path.join(os.path.expanduser("~"), ".local", "share", "rootless")


def store_root(root: os.PathLike | str | None = None) -> str:
    """The absolute root a Store.open(root) opens, without opening it; spelt as pathlib
    spells it (no "." or empty parts, no trailing slash)."""
    root = os.fspath(root) if root else default_dir()
    if not os.path.isabs(root):
        root = os.path.join(os.getcwd(), root)
    return "/" + "/".join(part for part in root.split("/") if part not in ("", "."))
