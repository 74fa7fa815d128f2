"""COPY and ADD write into a created (never started) container of the step's parent
image, through `cp`'s helper (engine/cp_session.py): a child that mounts the
container's root in a user namespace of its own and resolves every path with the one
in-root resolver, so a symlink in the image on the way to the destination is followed
inside the image, as docker's builder follows it, never out of it.

The files arrive as one tar stream and are unpacked by `cp`'s extractor with the tar's
owners (engine/cp_archive.Extractor, chown: the ids of --chown, or 0:0, or the
archive's for ADD of a local tar), recorded as override_stat where the user's one id
cannot hold them. Where the copy lands follows docker's rules: a destination that ends
in `/`, or gets several sources, or already is a directory, receives the sources
inside it (a directory's contents, a file under its own name); otherwise a single file
source becomes the destination itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import BinaryIO

from rootless.engine.build_context import BuildError

_O_PATH = os.O_PATH | os.O_CLOEXEC


def _target(store, container_id: str):
    from rootless.engine.container_inspect import spec_read
    from rootless.engine.containers import container_dir
    from rootless.engine.cp_session import Target

    spec, _ = spec_read(container_dir(store, container_id) / "config.json")
    return Target(container_id[:12], None, None, spec)


def copy_into(store, container_id: str, dest: str, into_dir: bool, file_name: str | None,
              feed: Callable[[BinaryIO], None], own_root: bool = False) -> None:
    """Unpack the tar `feed` writes into the container at `dest` (absolute). `into_dir`:
    the destination is a directory whatever it is now; else `file_name` is the tar's one
    file, which becomes `dest` unless `dest` is an existing directory."""
    from rootless.engine.cp_archive import CopyError, Extractor
    from rootless.engine.cp_session import helper_start
    from rootless.kernel.paths import mkdirs_in_root

    def work(root_fd: int, report) -> None:  # the helper, as the container's root
        rel = dest.strip("/")
        rebase = None
        if not into_dir and not _is_dir_in(root_fd, rel):
            parent, _, name = rel.rpartition("/")
            rel, rebase = parent, (file_name, name)
        try:
            dir_fd = mkdirs_in_root(root_fd, rel or ".")
        except OSError as e:
            raise CopyError(f"cannot make the destination {dest}: "
                            f"{os.strerror(e.errno).lower()}") from None
        extractor = Extractor(dir_fd, dest, chown=True, rebase=rebase, own_root=own_root)
        with open(data_r, "rb", closefd=False) as stream:
            extractor.run(stream)
        report({"done": extractor.size})

    data_r, data_w = os.pipe2(os.O_CLOEXEC)
    try:
        helper = helper_start(_target(store, container_id), work, child_closes=(data_w,))
    except BaseException:
        os.close(data_r)
        os.close(data_w)
        raise
    os.close(data_r)
    try:
        with open(data_w, "wb", closefd=False) as out:
            feed(out)
    except BrokenPipeError:
        pass  # the helper failed and says why in its report
    except BaseException:
        helper.kill()
        raise
    finally:
        os.close(data_w)
    _report_of(helper)


def _report_of(helper) -> dict:
    """The helper's report once it has exited; its error as a BuildError. Killed on any
    failure, so no helper outlives the step."""
    from rootless.engine.cp_archive import CopyError

    try:
        done = helper.next_report()
        helper.wait()
        return done
    except CopyError as e:
        helper.kill()
        raise BuildError(str(e)) from None
    except BaseException:
        helper.kill()
        raise


def _is_dir_in(root_fd: int, rel: str) -> bool:
    from rootless.kernel.paths import open_in_root

    if not rel:
        return True
    try:
        fd = open_in_root(root_fd, rel, _O_PATH)
    except OSError:
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def tar_from(store, container_id: str, src: str, out_path: str) -> bool:
    """`src` of a created container as a tar file at `out_path` (a directory's
    contents as `.`, a file under its own name), owners as the image holds them;
    returns whether `src` is a directory. COPY --from's source."""
    from rootless.engine.cp_archive import CopyError, TarWriter
    from rootless.engine.cp_session import helper_start
    from rootless.kernel.paths import open_in_root

    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def work(root_fd: int, report) -> None:
        rel = src.strip("/") or "."
        try:
            fd = open_in_root(root_fd, rel, _O_PATH)
        except OSError:
            raise CopyError(f"failed to compute cache key: \"{src}\" not found") from None
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        writer = TarWriter(out_fd, records=True)
        writer.tree(fd, "." if is_dir else rel.rsplit("/", 1)[-1])
        writer.finish()
        report({"dir": is_dir})

    try:
        helper = helper_start(_target(store, container_id), work)
    finally:
        os.close(out_fd)
    return bool(_report_of(helper).get("dir"))

