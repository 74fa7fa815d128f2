"""`run --label K=V`, `--label-file F` and `--cidfile F`, read as the docker CLI reads them.

Imported only when one of those flags is given: `rootless run` start-up pays nothing
for them otherwise.
"""

from __future__ import annotations

import os

from rootless.errors import RootlessError, UsageError

_WHITESPACE = " \t"
_FILE_LIMIT = 1 << 20  # a label file is the user's own, but a FIFO or /dev/zero never ends


def labels_read(files: tuple[str, ...] | list[str],
                flags: tuple[str, ...] | list[str]) -> dict[str, str]:
    """--label-file lines first, then --label values, later ones winning (docker's
    ReadKVStrings + ConvertKVStringsToMap); `K` alone is the label K with value ""."""
    items: list[str] = []
    for path in files:
        items += label_file_read(path)
    for value in flags:
        label_check(value)
        items.append(value)
    labels: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def label_check(value: str) -> None:
    """docker's opts.ValidateLabel, with the CLI's flag-error wording."""
    key = value.partition("=")[0].strip(_WHITESPACE)
    problem = (f"invalid label '{value}': empty name" if not key else
               f"label '{key}' contains whitespaces" if any(c in key for c in _WHITESPACE)
               else None)
    if problem:
        raise UsageError(f'invalid argument "{value}" for "-l, --label" flag: {problem}')


def label_file_read(path: str) -> list[str]:
    """docker's parseKeyValueFile: blank lines and `#` comments skipped, leading
    whitespace trimmed, a UTF-8 BOM dropped; a key with whitespace is refused."""
    lines = []
    text = _read_bounded(path).removeprefix("\ufeff")
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key:
            raise UsageError(f"poorly formatted environment: no variable name on line "
                             f"'{line}' (in {path})")
        key = key.lstrip(_WHITESPACE)
        if any(c in key for c in _WHITESPACE):
            raise UsageError(f"poorly formatted environment: variable '{key}' contains "
                             f"whitespaces (in {path})")
        lines.append(f"{key}={value}" if sep else line)
    return lines


def _read_bounded(path: str) -> str:
    import errno

    from rootless.kernel.paths import read_regular_path

    try:
        data = read_regular_path(path, _FILE_LIMIT)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise UsageError(f"label file {path} is larger than 1 MiB") from None
        raise UsageError(f"cannot read label file {path}: "
                         f"{(e.strerror or str(e)).lower()}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"label file {path} contains invalid utf8 bytes") from None


class CidFile:
    """docker's --cidfile: an existing file is refused before anything is made; the
    file is created at once (O_EXCL: not through a symlink planted meanwhile), gets
    the full id when the container exists, and is removed if it never does."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> "CidFile":
        if self.path is None:
            return self
        exists = RootlessError(f"container ID file found, make sure the other container "
                               f"isn't running or delete {self.path}")
        if os.path.lexists(self.path):
            raise exists
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              0o666)
        except FileExistsError:
            raise exists from None
        except OSError as e:
            raise RootlessError(f"failed to create the container ID file: "
                                f"{(e.strerror or str(e)).lower()}: {self.path}") from None
        return self

    def write(self, container_id: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, container_id.encode())
        finally:
            os.close(self.fd)
            self.fd = None
        self.path = None  # written: it stays

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            mine = os.fstat(self.fd)
            now = os.lstat(self.path)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                os.unlink(self.path)  # still the file made here, not one swapped in
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None
