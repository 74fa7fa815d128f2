"""The Dockerfile lexer/parser: text -> parser directives + one Raw record per instruction.

The rules are buildkit's (frontend/dockerfile/parser), which `docker build` uses:
- parser directives (`# syntax=`, `# escape=`, `# check=`) only in the unbroken run of
  directive comments at the very top; the first other line (a comment, an empty line,
  an instruction, an unknown directive) ends them; a repeated one is an error;
- a line whose first non-blank character is `#` is a comment, everywhere; a `#`
  elsewhere is an argument;
- the escape character at the end of a line (blanks after it allowed) continues the
  instruction on the next line; comment lines and blank lines inside a continuation are
  skipped; the leading blanks of continuation lines are kept;
- keywords are case-insensitive; `--name[=value]` flags come right after the keyword;
- RUN/CMD/ENTRYPOINT/SHELL/COPY/ADD/VOLUME arguments that parse as a JSON array are the
  exec (JSON) form; anything else that is not a JSON array of strings is the shell form,
  but a JSON array holding a non-string is an error (Docker's message);
- RUN/COPY/ADD (and an ONBUILD of one of them) in shell form may carry heredocs
  (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`, several per line): the lines after the
  instruction up to the delimiter line are the bodies.

Nothing here expands variables: that happens per stage, with the stage's environment
(expand.py), in the executor. Every malformed input raises DockerfileError naming the
file and line; no input raises anything else.
"""

from __future__ import annotations

import json
import re

from rootless.build.errors import DockerfileError
from rootless.build.expand import ExpandError, heredoc_name, raw_words
from rootless.records import record

KEYWORDS = frozenset({"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                      "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
                      "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})
_JSON_FORM = frozenset({"ADD", "CMD", "COPY", "ENTRYPOINT", "RUN", "SHELL", "VOLUME"})
_HEREDOC_FORM = frozenset({"ADD", "COPY", "RUN"})
_DIRECTIVES = frozenset({"syntax", "escape", "check"})

# Go's unicode.IsSpace, which buildkit trims with (Python's str.strip also strips the
# \x1c-\x1f separators, which Go keeps)
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANKS = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                    + "".join(chr(c) for c in range(0x2000, 0x200b)))
_LEADING_SPACE = re.compile(f"^[{_SPACE}]+")
_TRAILING_SPACE = re.compile(f"[{_SPACE}]+\\Z")
_ANY_SPACE = re.compile(f"[{_SPACE}]+")
_KEYWORD_SPLIT = re.compile(r"[\t\v\f\r ]+")  # buildkit's reWhitespace
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z",
                        re.DOTALL)
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_SURROGATE = re.compile("[\ud800-\udfff]")


@record
class Heredoc:
    name: str  # the delimiter, quotes removed
    body: str  # the lines as written, each with its newline; `<<-`: leading tabs removed
    expand: bool  # False when any part of the delimiter was quoted
    strip_tabs: bool  # `<<-`
    fd: int | None = None  # `3<<EOF`


@record
class Raw:
    keyword: str  # upper case
    flags: tuple  # ((name without "--", value or None), ...) in order, values as written
    args: str  # the rest of the instruction, continuation lines joined as Docker joins them
    json: tuple | None  # the exec form's strings, or None (HEALTHCHECK: after CMD)
    heredocs: tuple  # Heredoc, ...
    line: int  # first line, 1-based
    end_line: int  # last line, heredoc bodies included
    original: str  # the instruction as written, continuation lines joined
    escape: str = "\\"  # the escape directive in effect (ENV/LABEL/ARG word splitting)


@record
class Dockerfile:
    directives: dict  # name (lower case) -> value
    escape: str
    instructions: tuple  # Raw, ...


def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Every instruction of a Dockerfile; DockerfileError for anything Docker refuses."""
    if not text:
        raise DockerfileError(filename, 1, "the Dockerfile cannot be empty")
    scan = _Scanner(text, filename, directives=True)
    found = tuple(scan.instructions())
    if not found:
        raise DockerfileError(filename, max(len(scan.lines), 1), "file with no instructions")
    return Dockerfile(dict(scan.directives), scan.escape, found)


def parse_line(text: str, filename: str, line: int) -> Raw:
    """One instruction (an ONBUILD trigger, heredoc bodies included), reported at `line`."""
    try:
        found = list(_Scanner(text, filename, directives=False).instructions())
    except DockerfileError as e:
        raise DockerfileError(filename, line, e.what) from None
    if len(found) != 1:
        raise DockerfileError(filename, line, "onbuild trigger should be a single expression")
    return found[0]._replace(line=line, end_line=line)


def strip(text: str) -> str:
    """Go's strings.TrimSpace."""
    return _TRAILING_SPACE.sub("", _LEADING_SPACE.sub("", text))


def split_head(line: str, escape: str) -> tuple[str, tuple, str]:
    """(keyword as written, flags, arguments) of one joined instruction line."""
    parts = _KEYWORD_SPLIT.split(strip(line), maxsplit=1)
    if len(parts) < 2:
        return parts[0], (), ""
    words, rest = _builder_flags(parts[1], escape)
    flags = []
    for word in words:
        name, eq, value = word.partition("=")
        flags.append((name[2:], value if eq else None))
    return parts[0], tuple(flags), strip(rest)


def json_args(args: str, filename: str, line: int) -> tuple | None:
    """The exec form's strings when `args` is a JSON array of strings, else None."""
    text = _LEADING_SPACE.sub("", args)
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None  # not JSON: the shell form, as Docker falls back
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise DockerfileError(filename, line, "when using JSON array syntax, arrays must be "
                                              "comprised of strings only")
    # Go decodes a lone surrogate escape as U+FFFD; a Python str would keep it unencodable
    return tuple(_SURROGATE.sub("\ufffd", item) for item in value)


def _not_json(constant: str):
    raise ValueError(constant)  # NaN/Infinity: Python's json extension, not JSON


class _Scanner:
    """buildkit's Parse loop: lines -> joined instruction lines -> Raw records."""

    def __init__(self, text: str, filename: str, directives: bool) -> None:
        self.lines = _split_lines(text.removeprefix("\ufeff"))
        self.filename, self.index = filename, 0
        self.directives: dict[str, str] = {}
        self.looking = directives  # still in the run of directives at the top
        self.escape = "\\"
        self.continuation = _continuation_re(self.escape)

    def instructions(self):
        while self.index < len(self.lines):
            self.index += 1
            start = self.index
            first = _LEADING_SPACE.sub("", _trim_newline(self.lines[start - 1]))
            self._directive(first, start)
            body, more = self._trim_continuation("" if _is_comment(first) else first)
            if not more and not body:
                continue
            parts = [body]
            while more and self.index < len(self.lines):
                self.index += 1
                following = _trim_newline(self.lines[self.index - 1])
                if _is_comment(following) or not _LEADING_SPACE.sub("", following):
                    continue  # comments and blank lines inside a continuation
                body, more = self._trim_continuation(following)
                parts.append(body)
            yield self._instruction("".join(parts), start)

    def _instruction(self, line: str, start: int) -> Raw:
        keyword, flags, args = split_head(line, self.escape)
        upper = keyword.upper()
        if upper not in KEYWORDS:
            raise DockerfileError(self.filename, start, _unknown(keyword))
        form_args = args
        if upper == "HEALTHCHECK":  # HEALTHCHECK [flags] CMD <form>: the form after CMD
            form_args = (_ANY_SPACE.split(args, maxsplit=1) + [""])[1]
        exec_form = None
        if upper in _JSON_FORM or upper == "HEALTHCHECK":
            exec_form = json_args(form_args, self.filename, start)
        heredocs = ()
        if "<<" in line and self._may_have_heredocs(upper, exec_form, args):
            heredocs = self._heredocs(line, start)
        return Raw(upper, flags, args, exec_form, heredocs, start, self.index, strip(line),
                   self.escape)

    def _may_have_heredocs(self, keyword: str, exec_form, args: str) -> bool:
        if keyword == "ONBUILD":  # the trigger's own keyword and form decide
            trigger, _, trigger_args = split_head(args, self.escape)
            keyword = trigger.upper()
            if keyword not in _HEREDOC_FORM:
                return False
            try:
                exec_form = json_args(trigger_args, self.filename, 0)
            except DockerfileError:
                return False
        return keyword in _HEREDOC_FORM and exec_form is None

    def _heredocs(self, line: str, start: int) -> tuple:
        found = []
        for marker in heredoc_markers(line, self.filename, start):
            body = []
            while self.index < len(self.lines):
                text = self.lines[self.index]
                self.index += 1
                candidate = _trim_newline(text)
                if marker.strip_tabs:
                    candidate = candidate.lstrip("\t")
                if candidate == marker.name:
                    break
                body.append(text)
            else:
                raise DockerfileError(self.filename, start, "unterminated heredoc: no line "
                                                            f"{marker.name!r} ends it")
            content = "".join(body)
            if marker.strip_tabs:
                content = _LEADING_TABS.sub("", content)
            found.append(marker._replace(body=content))
        return tuple(found)

    def _directive(self, line: str, number: int) -> None:
        if not self.looking:
            return
        match = _DIRECTIVE.match(_LEADING_SPACE.sub("", line[1:])) if line[:1] == "#" else None
        name = match.group(1).lower() if match else ""
        if name not in _DIRECTIVES:
            self.looking = False
            return
        if name in self.directives:
            raise DockerfileError(self.filename, number,
                                  f"only one {name} parser directive can be used")
        value = match.group(2)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(self.filename, number, f"invalid escape token '{value}' "
                                                             "does not match ` or \\")
            self.escape, self.continuation = value, _continuation_re(value)
        self.directives[name] = value

    def _trim_continuation(self, line: str) -> tuple[str, bool]:
        """(the line without a trailing escape, whether the instruction continues)."""
        match = self.continuation.search(line)
        if not match:
            return line, False
        return line[:match.start()] + (match.group(1) or ""), True


def _split_lines(text: str) -> list[str]:
    """Lines with their "\\n" (Go's bufio scanner as buildkit configures it)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return _LEADING_SPACE.sub("", line)[:1] == "#"


def _continuation_re(escape: str) -> re.Pattern:
    # the escape character last on the line (blanks after it allowed), unless escaped by
    # the character before it -- buildkit's regex, which also lets it stand alone
    e = re.escape(escape)
    return re.compile(f"([^{e}]){e}[ \t]*\\Z|^{e}[ \t]*\\Z")


def _builder_flags(line: str, escape: str) -> tuple[list[str], str]:
    """The leading `--flag` words of `line` (quotes and escapes removed), and the rest."""
    words: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos] in _BLANKS:
            pos += 1
        if pos >= end:
            return words, ""
        if not line.startswith("--", pos):
            return words, line[pos:]
        word, blank_ok, pos = _flag_word(line, pos, escape)
        if pos >= end:
            if word != "--" and (blank_ok or word):
                words.append(word)
            return words, ""
        if word == "--":
            return words, line[pos:]
        if blank_ok or word:
            words.append(word)


def _flag_word(line: str, pos: int, escape: str) -> tuple[str, bool, int]:
    """One flag word from `pos`: (text, whether it had quotes, where it ended)."""
    out: list[str] = []
    quote, blank_ok, end = "", False, len(line)
    while pos < end:
        ch = line[pos]
        if not quote and ch in _BLANKS:
            break
        pos += 1
        if ch == quote:
            quote = ""
            continue
        if not quote and ch in "'\"":
            quote, blank_ok = ch, True
            continue
        if ch == escape:
            if pos == end:
                quote = ""
                continue  # a lone escape at the end is dropped
            ch = line[pos]
            pos += 1
        out.append(ch)
    return "".join(out), blank_ok, pos


def heredoc_markers(line: str, filename: str, number: int) -> list[Heredoc]:
    markers = []
    for word in raw_words(line):  # buildkit lexes markers with `\`, whatever the directive
        match = _HEREDOC.match(word)
        if not match or not match.group(3):
            continue
        try:
            named = heredoc_name(match.group(3))
        except ExpandError as e:
            raise DockerfileError(filename, number, str(e)) from None
        if named is None:
            continue
        fd = int(match.group(1)) if match.group(1) else None
        markers.append(Heredoc(named[0], "", named[1], match.group(2) == "-", fd))
    return markers


def _unknown(keyword: str) -> str:
    return f"unknown instruction: {keyword}" + did_you_mean(keyword, sorted(KEYWORDS))


def did_you_mean(word: str, options, case_sensitive: bool = False) -> str:
    """buildkit's suggestion: " (did you mean X?)" for the option fewer than 3 edits away
    (in the case the user wrote), or "" when none is or `word` is itself an option."""
    best, distance = "", 3
    key = word if case_sensitive else word.lower()
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == key:
            return ""
        d = _levenshtein(key, candidate)
        if d < distance:
            best, distance = candidate, d
    if best and not case_sensitive and word == word.upper():
        best = best.upper()
    return f" (did you mean {best}?)" if best else ""


def _levenshtein(a: str, b: str) -> int:
    if len(a) > 64:  # no keyword is within 3 edits of a long word
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
