"""The local store: CAS blobs, extracted layers, SQLite metadata, locks (store/store.py).

`Store` and `default_root` are loaded when first asked for (PEP 562), so that importing
a light module of the package (store/root.py) does not import SQLite."""

__all__ = ["Store", "default_root"]


def __getattr__(name: str):
    if name in __all__:
        from rootless.store import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
