"""The local store: CAS blobs, extracted layers, SQLite metadata, locks (store/store.py)."""

from rootless.store.store import Store, default_root

__all__ = ["Store", "default_root"]
