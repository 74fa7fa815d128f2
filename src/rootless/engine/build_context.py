"""The build context: the directory (or the tar on stdin, unpacked) a Dockerfile's
COPY and ADD read from, seen through its .dockerignore.

Sources are paths relative to the context's root, resolved inside it as docker's
builder resolves them (a symlink on the way is followed inside the context, never out
of it; `..` cannot climb above it), with Go's filepath.Match wildcards per component.
What .dockerignore excludes does not exist for COPY. Entries below a source are walked
by descriptor and sent as they are (a symlink stays a symlink).

Each selection has a digest of the names, types, modes, link targets and contents it
would copy (the build cache's key for COPY/ADD, as docker hashes the files it copies),
and is written as one tar stream for the container's extractor (engine/build_copy.py),
with every owner set to the --chown ids (0:0 by default) and --chmod applied.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import tarfile
from typing import NamedTuple

from rootless.errors import RootlessError

_O_PATH = os.O_PATH | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BuildError(RootlessError):
    """A build failed at a step (exit 1, as docker build)."""

    exit_code = 1


class Entry(NamedTuple):
    name: str  # in the tar, relative to where the copy lands
    rel: str  # context-relative path of the file
    st: os.stat_result
    link: str  # a symlink's target


class Selection(NamedTuple):
    """One COPY/ADD source after globbing: its context path and what it is."""
    rel: str
    is_dir: bool
    base: str  # its last component: the name a file takes at the destination


class Context:
    def __init__(self, root: str, ignore_text: str = "") -> None:
        from rootless.build.ignore import DockerIgnore

        self.root = root
        try:
            self.fd = os.open(root, _O_PATH | os.O_DIRECTORY)
        except OSError as e:
            raise BuildError(f"unable to prepare context: path {root!r} not found") from None
        self.ignore = DockerIgnore(ignore_text)

    def close(self) -> None:
        os.close(self.fd)

    # ---- sources ----

    def select(self, source: str, allow_wildcards: bool = True) -> list[Selection]:
        """The context entries `source` names (a glob may name several); none is an
        error, with docker's words."""
        rel = _clean(source)
        if rel is None:
            raise BuildError(f"forbidden path outside the build context: {source}")
        if allow_wildcards and _has_magic(rel):
            found = [self._selection(path) for path in self._glob(rel)]
        else:
            found = [self._selection(rel)] if self._exists(rel) else []
        found = [s for s in found if s is not None]
        if not found:
            raise BuildError(f"failed to compute cache key: \"/{rel}\" not found: not found "
                             "in the build context or excluded by .dockerignore")
        return found

    def _selection(self, rel: str) -> Selection | None:
        if rel and self.ignore.excluded(rel):
            return None
        st = self._stat(rel)
        if st is None:
            return None
        return Selection(rel, stat.S_ISDIR(st.st_mode), rel.rsplit("/", 1)[-1] or ".")

    def _exists(self, rel: str) -> bool:
        return self._stat(rel) is not None

    def _stat(self, rel: str) -> os.stat_result | None:
        from rootless.kernel.paths import open_in_root

        try:
            fd = open_in_root(self.fd, rel or ".", _O_PATH)
        except OSError:
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def _glob(self, pattern: str) -> list[str]:
        """Go's filepath.Glob inside the context: each component matched in its dir."""
        paths = [""]
        for part in pattern.split("/"):
            nxt = []
            for base in paths:
                if not _has_magic(part):
                    cand = f"{base}/{part}" if base else part
                    if self._exists(cand):
                        nxt.append(cand)
                    continue
                for name in sorted(self._listdir(base)):
                    if _go_match(part, name):
                        nxt.append(f"{base}/{name}" if base else name)
            paths = nxt
        return paths

    def _listdir(self, rel: str) -> list[str]:
        from rootless.kernel.paths import open_in_root

        try:
            fd = open_in_root(self.fd, rel or ".", _DIR & ~os.O_NOFOLLOW)
        except OSError:
            return []
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    # ---- entries ----

    def entries(self, sel: Selection, top: str) -> list[Entry]:
        """`sel` and (for a directory) everything below it not ignored, named below
        `top` ("" for a directory's contents at the destination itself)."""
        from rootless.kernel.paths import open_in_root

        fd = open_in_root(self.fd, sel.rel or ".", _O_PATH)
        try:
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode):
                return [Entry(top, sel.rel, st, _readlink(fd, st))]
            found: list[Entry] = [Entry(top, sel.rel, st, "")] if top else []
            self._walk(fd, sel.rel, top, found)
            return found
        finally:
            os.close(fd)

    def _walk(self, fd: int, rel: str, top: str, found: list[Entry]) -> None:
        dir_fd = os.open(".", _DIR, dir_fd=fd)
        try:
            for name in sorted(os.listdir(dir_fd)):
                path = f"{rel}/{name}" if rel else name
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                skip = self.ignore.excluded(path)
                if skip and not (stat.S_ISDIR(st.st_mode)
                                 and self.ignore.might_include_under(path)):
                    continue
                tar_name = f"{top}/{name}" if top else name
                if not skip:
                    link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else ""
                    found.append(Entry(tar_name, path, st, link))
                if stat.S_ISDIR(st.st_mode):
                    sub = os.open(name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
                    try:
                        self._walk(sub, path, tar_name, found)
                    finally:
                        os.close(sub)
        finally:
            os.close(dir_fd)

    def digest(self, entries: list[Entry]) -> str:
        h = hashlib.sha256()
        for e in entries:
            h.update(f"{e.name}\0{stat.S_IFMT(e.st.st_mode)}\0{stat.S_IMODE(e.st.st_mode)}"
                     f"\0{e.link}\0{e.st.st_size}\0".encode())
            if stat.S_ISREG(e.st.st_mode):
                with self._open_file(e.rel) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
        return "sha256:" + h.hexdigest()

    def _open_file(self, rel: str):
        from rootless.kernel.paths import open_in_root

        fd = open_in_root(self.fd, rel, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        return open(fd, "rb")

    def write_tar(self, entries: list[Entry], out, owner: tuple[int, int],
                  chmod: int | None) -> None:
        """The entries as a tar on the binary stream `out` (not closed)."""
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            links: dict[tuple[int, int], str] = {}
            for e in entries:
                info = entry_info(e, owner, chmod)
                key = (e.st.st_dev, e.st.st_ino)
                if stat.S_ISREG(e.st.st_mode) and e.st.st_nlink > 1 and key in links:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, links[key], 0
                    tar.addfile(info)
                    continue
                if stat.S_ISREG(e.st.st_mode):
                    links[key] = e.name
                    with self._open_file(e.rel) as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


def entry_info(e: Entry, owner: tuple[int, int], chmod: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(e.name)
    mode = e.st.st_mode
    info.mode = stat.S_IMODE(mode) if chmod is None else chmod
    info.uid, info.gid = owner
    info.mtime = int(e.st.st_mtime)
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, e.link
        info.mode = 0o777
    elif stat.S_ISREG(mode):
        info.size = e.st.st_size
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        raise BuildError(f"cannot copy {e.rel}: not a regular file, directory, symlink or "
                         "fifo")
    return info


def _readlink(fd: int, st: os.stat_result) -> str:
    return os.readlink("", dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""


def _clean(source: str) -> str | None:
    """A context path, cleaned as Go's path.Clean; None if it leaves the context."""
    parts: list[str] = []
    for part in source.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _go_match(pattern: str, name: str) -> bool:
    """filepath.Match for one component ('*' never matches a '/')."""
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))
