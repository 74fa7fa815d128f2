""".dockerignore: which context paths the builder never sees (moby/patternmatcher rules).

- one pattern a line; a line starting with `#` (in column 1) is a comment; blank
  lines are skipped; surrounding blanks are trimmed;
- each pattern is cleaned like Go's filepath.Clean (`./a//b/` -> `a/b`, `a/../b` -> `b`)
  and a leading `/` dropped: patterns are relative to the context root, never anchored
  anywhere else (`foo` is only ./foo, `**/foo` is foo at any depth);
- `*` and `?` match within one path segment, `[...]` is a character class, `**` any
  number of segments (zero included), `\\` escapes the next character;
- `!pattern` re-includes what an earlier pattern excluded; the LAST pattern that
  matches a path decides;
- a pattern that matches a directory matches everything under it.

The context walker asks excluded(path) for each entry, and might_include_under(dir)
for an excluded directory: if an exception could re-include something inside, it must
descend anyway (Docker does the same) instead of skipping the whole subtree.
"""

from __future__ import annotations

import re

from rootless.build.errors import DockerfileError
from rootless.build.glob import Glob

_MAX_LINE = 64 * 1024  # Docker reads .dockerignore with a default bufio.Scanner


class DockerIgnore:
    def __init__(self, text: str, filename: str = ".dockerignore") -> None:
        self.patterns: list[_Pattern] = []
        for number, line in enumerate(_lines(text), 1):
            if len(line.encode("utf-8", "surrogateescape")) >= _MAX_LINE:
                raise DockerfileError(filename, number, "bufio.Scanner: token too long")
            pattern = _read_pattern(line)
            if pattern is not None:
                self.patterns.append(_Pattern(pattern, filename, number))

    def excluded(self, path: str) -> bool:
        """True if `path` (context-relative, "/"-separated) is left out of the context."""
        path = _clean(path)
        if path in (".", "/"):
            return False
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[:n]) for n in range(1, len(parents) + 1)]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # cannot change the outcome
            if pattern.matches(path) or any(pattern.matches(p) for p in prefixes):
                matched = not pattern.exclusion
        return matched

    def might_include_under(self, dir: str) -> bool:
        """True if some `!` exception could re-include a path below directory `dir`."""
        segments = [] if _clean(dir) == "." else _clean(dir).split("/")
        return any(p.exclusion and p.could_match_below(segments) for p in self.patterns)


def _lines(text: str) -> list[str]:
    lines = text.removeprefix("\ufeff").split("\n")
    return [line.removesuffix("\r") for line in lines]  # Go's ScanLines drops one \r


def _read_pattern(line: str) -> str | None:
    """ignorefile.ReadAll's cleaning, then PatternMatcher.New's: None for no pattern."""
    if line.startswith("#"):
        return None
    pattern = line.strip()
    if not pattern:
        return None
    invert = pattern.startswith("!")
    if invert:
        pattern = pattern[1:].strip()
    if pattern:
        pattern = _clean(pattern)
        if len(pattern) > 1 and pattern.startswith("/"):
            pattern = pattern[1:]
    return ("!" if invert else "") + pattern


def _clean(path: str) -> str:
    """Go's path.Clean: one slash between parts, no `.` parts, `..` resolved lexically."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


class _Pattern:
    def __init__(self, text: str, filename: str, number: int) -> None:
        text = _clean(text.strip()) if not text.startswith("!") else text
        self.exclusion = text.startswith("!")
        if self.exclusion:
            if text == "!":
                raise DockerfileError(filename, number, 'illegal exclusion pattern: "!"')
            text = _clean(text[1:])
        try:
            self.glob = Glob(text)
            self.segments = [Glob(d) if d != "**" else None for d in text.split("/")]
        except (re.error, ValueError):
            raise DockerfileError(filename, number, f"syntax error in pattern: {text}") from None

    def matches(self, path: str) -> bool:
        return self.glob.match(path)

    def could_match_below(self, segments: list[str]) -> bool:
        """Whether a path inside the directory `segments` could match this pattern."""
        for index, segment in enumerate(segments):
            if index >= len(self.segments):
                return True  # the pattern matches an ancestor: everything below
            glob = self.segments[index]
            if glob is None:
                return True  # `**` reaches any depth
            if not glob.match(segment):
                return False
        return True
