"""Where a build's Dockerfile and context come from, as `docker build` takes them:
`CONTEXT` a directory (its Dockerfile unless -f names another, relative to the current
directory), `-` a tar on stdin (a context; compressed or not) or a lone Dockerfile (an
empty context), `-f -` the Dockerfile on stdin beside a directory context.

A tar context is hostile input: it is unpacked by `cp`'s extractor (no entry lands
outside the directory, no device is made) into this command's tmp/ entry in the store,
removed when the build ends or by the next command if this one is killed.
"""

from __future__ import annotations

import os
import sys

from rootless.engine.build_context import BuildError, Context

DOCKERFILE_LIMIT = 8 << 20
IGNORE_LIMIT = 1 << 20


class Source:
    def __init__(self, text: str, name: str, context: Context, temp: str | None) -> None:
        self.dockerfile_text, self.dockerfile_name = text, name
        self.context, self.temp = context, temp

    def close(self) -> None:
        self.context.close()
        if self.temp is not None:
            from rootless.engine.containers import remove_tree

            remove_tree(self.temp)


def load_source(store, context: str, dockerfile: str | None) -> Source:
    if context == "-" and dockerfile == "-":
        raise BuildError("invalid argument: can't use stdin for both build context and "
                         "dockerfile")
    temp = None
    if context == "-":
        temp, text = _stdin_context(store)
        root = temp
    else:
        root = context
        if not os.path.isdir(root):
            raise BuildError(f"unable to prepare context: path {context!r} not found")
        text = None
    try:
        name = "Dockerfile"
        if dockerfile == "-":
            text = _decode(sys.stdin.buffer.read(DOCKERFILE_LIMIT + 1), "-")
        elif text is None:
            path = dockerfile or os.path.join(root, "Dockerfile")
            name = os.path.basename(path)
            text = _read_dockerfile(path, dockerfile or "Dockerfile")
        ignore = _read_ignore(root)
        return Source(text, name, Context(root, ignore), temp)
    except BaseException:
        if temp is not None:
            from rootless.engine.containers import remove_tree

            remove_tree(temp)
        raise


def _stdin_context(store) -> tuple[str, str | None]:
    """stdin as a tar context unpacked into tmp/ (None: no Dockerfile from it), or as a
    Dockerfile with an empty context."""
    data = sys.stdin.buffer.read(DOCKERFILE_LIMIT + 1)
    temp = str(store.temp_path("context"))
    os.mkdir(temp, 0o700)
    if not _looks_like_archive(data):
        return temp, _decode(data, "-")
    from rootless.engine.cp_archive import CopyError, Extractor

    import io

    class _Joined(io.RawIOBase):  # what was read, then the rest of stdin
        def __init__(self) -> None:
            self.head = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:
            n = self.head.readinto(buf)
            return n if n else sys.stdin.buffer.readinto(buf)

    fd = os.open(temp, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        Extractor(fd, "the build context", host=True).run(io.BufferedReader(_Joined()))
    except CopyError as e:
        raise BuildError(f"unable to read the build context from stdin: {e}") from None
    finally:
        os.close(fd)
    return temp, None


def _looks_like_archive(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 262 and data[257:262] == b"ustar"


def _read_dockerfile(path: str, shown: str) -> str:
    from rootless.kernel.paths import read_regular_path

    try:
        data = read_regular_path(path, DOCKERFILE_LIMIT + 1)
    except FileNotFoundError:
        raise BuildError(f"unable to prepare context: unable to evaluate symlinks in "
                         f"Dockerfile path: lstat {os.path.abspath(path)}: no such file or "
                         "directory") from None
    except OSError as e:
        raise BuildError(f"cannot read the Dockerfile {shown}: "
                         f"{(e.strerror or str(e)).lower()}") from None
    return _decode(data, shown)


def _decode(data: bytes, shown: str) -> str:
    if len(data) > DOCKERFILE_LIMIT:
        raise BuildError(f"the Dockerfile {shown} is larger than {DOCKERFILE_LIMIT} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BuildError(f"the Dockerfile {shown} is not UTF-8 text") from None


def _read_ignore(root: str) -> str:
    from rootless.kernel.paths import read_regular_path

    try:
        return read_regular_path(os.path.join(root, ".dockerignore"),
                                 IGNORE_LIMIT).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise BuildError(f"cannot read .dockerignore: {(e.strerror or str(e)).lower()}") \
            from None
