"""Removing trees that overlayfs and containers leave behind.

overlayfs creates `work/work` with mode 000; a container may chmod its files to 000 too.
We own them, so making a directory searchable again before retrying is always allowed.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def rmtree_owned(path: Path) -> None:
    def fix_and_retry(func, failed: str, exc_info) -> None:
        err = exc_info[1]
        if not isinstance(err, PermissionError):
            if isinstance(err, FileNotFoundError):
                return
            raise err
        parent = os.path.dirname(failed)
        for target in (parent, failed):
            try:
                mode = os.lstat(target).st_mode
                if stat.S_ISDIR(mode):
                    os.chmod(target, stat.S_IMODE(mode) | stat.S_IRWXU)
            except OSError:
                pass
        if func is os.rmdir or func is os.unlink:
            func(failed)
        elif os.path.isdir(failed) and not os.path.islink(failed):
            shutil.rmtree(failed, onerror=fix_and_retry)
        else:
            os.unlink(failed)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=fix_and_retry)
