"""Removing trees that overlayfs and containers leave behind.

overlayfs creates `work/work` with mode 000; a container may chmod its own files to 000
too. We own them, so making a directory searchable again before emptying it is always
allowed. Written on os.scandir/unlink/rmdir rather than shutil.rmtree: `rootless run
--rm` removes a tree on every run, and importing shutil (with bz2 and lzma) costs more
than the removal. Symlinks are unlinked, never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def rmtree_owned(path: Path | str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(path)
        return
    _empty_dir(os.fspath(path), mode)
    os.rmdir(path)


def _empty_dir(path: str, mode: int) -> None:
    if mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)
    with os.scandir(path) as entries:
        children = [(e.path, e.is_dir(follow_symlinks=False)) for e in entries]
    for child, is_dir in children:
        if is_dir:
            try:
                _empty_dir(child, os.lstat(child).st_mode)
                os.rmdir(child)
            except FileNotFoundError:
                pass
        else:
            try:
                os.unlink(child)
            except FileNotFoundError:
                pass
