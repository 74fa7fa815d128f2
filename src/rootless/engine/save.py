"""`docker save` / `podman save`: images of the store into a docker-archive, an OCI
archive or an OCI layout directory.

Save is the one copy routine (transports/copy.py) from the store (StoreSource, blobs
byte-exact) to an archive destination, once per image, all into one sink. The store's
shared lock is held throughout, so an `rmi` cannot remove a blob midway. The target
appears complete or not at all (transports/sink.py): a failed save leaves nothing.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rootless.errors import ImageError, RootlessError, UsageError
from rootless.store import metadata as md

FORMATS = ("docker-archive", "oci-archive", "oci-dir")


class OutputError(RootlessError):
    """The output of `save` cannot be written (exit 1, as docker)."""


def image_save(store, names: list[str], output: str | None,
               fmt: str = "docker-archive") -> None:
    """Write the images `names` mean to `output` (a path; None: standard output) in
    format `fmt`. An image named by id is saved untagged; by REPO:TAG, with that tag; by
    a bare REPO, with every tag of that repository (docker's rule)."""
    if fmt not in FORMATS:
        raise UsageError(f'unsupported format "{fmt}" (want one of: {", ".join(FORMATS)})')
    if not names:
        raise UsageError("save needs at least one image")
    path = _check_output(output, fmt)
    store.clean_temp()
    with store.lock(shared=True):
        images = _resolve_all(store, names)
        with _terminate_cleanly():
            _write(store, images, path, fmt)


def _write(store, images: list[tuple[str, list[str]]], path: Path | None, fmt: str) -> None:
    from rootless.image.transports.copy import copy_image
    from rootless.image.transports.docker_archive import DockerArchiveDestination
    from rootless.image.transports.oci import OCIDestination
    from rootless.image.transports.storage import StoreSource

    sink = _open_sink(path, fmt)
    try:
        if fmt == "docker-archive":
            dest = DockerArchiveDestination(sink, store.tmp_dir)
        else:
            dest = OCIDestination(sink)
        for image_id, refs in images:
            copy_image(StoreSource(store, image_id, refs), dest, refs)
        dest.finish()
        sink.commit()
    except BaseException:
        sink.abort()
        raise


# ---- the output ----

def _check_output(output: str | None, fmt: str) -> Path | None:
    """The target path (None: stdout), refused early when it cannot be written."""
    if output is None:
        if fmt == "oci-dir":
            raise UsageError("the oci-dir format writes a directory: give it with -o DIR")
        if sys.stdout.isatty():
            # docker's words, exit 1
            raise OutputError("cowardly refusing to save to a terminal. Use the -o flag or "
                              "redirect")
        return None
    path = Path(output)
    if _is_stream(path) and fmt != "oci-dir":
        return path
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: no such directory {parent}")
    if fmt == "oci-dir":
        if path.exists() and not path.is_dir():
            raise OutputError(f"cannot write {output}: it exists and is not a directory")
        if path.is_dir() and any(path.iterdir()):
            raise OutputError(f"cannot write {output}: it exists and is not empty")
    elif path.is_dir():
        raise OutputError(f"cannot write {output}: it is a directory (give a file name)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {output}: permission denied on directory {parent}")
    return path


def _open_sink(path: Path | None, fmt: str):
    from rootless.image.transports.sink import DirSink, TarSink

    if path is None:
        return TarSink(stream=sys.stdout.buffer)
    if fmt == "oci-dir":
        return DirSink(path)
    if _is_stream(path):  # -o /dev/stdout, a named pipe: written in place
        try:
            return TarSink(stream=open(path, "wb"), description=str(path))  # noqa: SIM115
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror.lower()}") from None
    try:
        return TarSink(path)
    except ImageError as e:
        raise OutputError(str(e)) from None


def _is_stream(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM (a `timeout`, a killed CI job) unwinds like Ctrl-C, so the temporary
    target is removed rather than left beside the real one."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- names ----

def _resolve_all(store, names: list[str]) -> list[tuple[str, list[str]]]:
    """(image id, normalised names to save it with) per image, in the order given; an
    image named twice is saved once, with the names of both."""
    images: dict[str, list[str]] = {}
    for name in names:
        for image_id, ref in _resolve(store, name):
            refs = images.setdefault(image_id, [])
            if ref and ref not in refs:
                refs.append(ref)
    return list(images.items())


def _resolve(store, name: str) -> list[tuple[str, str | None]]:
    from rootless.engine.images import image_lookup
    from rootless.image.reference import parse_reference

    try:
        ref = parse_reference(name, default_tag=False)
    except ImageError:
        ref = None
    if ref is not None and not ref.tag and not ref.digest:
        # a bare repository: all its tags (docker save); if none, an id prefix maybe
        tagged = [(image_id, tag) for image_id, tags in md.tags_all(store).items()
                  for tag in tags if parse_reference(tag).name == ref.name]
        if tagged:
            return sorted(tagged, key=lambda item: item[1])
    image_id = image_lookup(store, name)
    if ref is not None and not ref.digest:
        tagged_name = str(ref if ref.tag else ref.with_tag("latest"))
        if md.tag_get(store, tagged_name) == image_id:
            return [(image_id, tagged_name)]
    return [(image_id, None)]  # by id, or by digest: no tag, as docker
