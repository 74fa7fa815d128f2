"""The one error of the Dockerfile front end: where (file and line) and what."""

from __future__ import annotations

from rootless.errors import RootlessError


class DockerfileError(RootlessError):
    """A Dockerfile (or .dockerignore) that Docker would refuse: "<file>:<line>: <what>"."""

    def __init__(self, filename: str, line: int | None, what: str) -> None:
        self.filename, self.line, self.what = filename, line, what
        where = filename if line is None else f"{filename}:{line}"  # None: no one line
        super().__init__(f"{where}: {what}")
