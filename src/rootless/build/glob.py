"""One .dockerignore pattern, matched as moby/patternmatcher matches it.

patternmatcher sorts a cleaned pattern into four kinds: exact (no wildcard), prefix
(`dir/**`, `name**`), suffix (`**` then only plain characters: `**/foo`, and also
`**foo`, which matches `xfoo`), and a regular expression for the rest (`*` and `?` stay
in one path segment, `**/` is any number of directories, `[...]` a class, `\\` escapes).

Go's regexp engine (RE2) is linear; Python's backtracks, and `*a*a*a*b` against a long
name of `a`s would run for hours. A pattern with three or more wildcards is therefore
matched by a small NFA (the set of pattern positions alive after each character), which
is linear in the path; simpler patterns keep the faster compiled regex.
"""

from __future__ import annotations

import re
import warnings

_ESCAPED = frozenset(".+()|{}$")  # what patternmatcher escapes; the rest goes through
_NFA_FROM = 3  # wildcards from which a backtracking regex could explode


class Glob:
    """A cleaned pattern; ValueError (Go's ErrBadPattern) if it is malformed."""

    def __init__(self, pattern: str) -> None:
        check_syntax(pattern)
        self.pattern = pattern
        self.kind = _kind(pattern)
        self.regex = self.tokens = None
        self.dfa: dict = {}  # (NFA states, character) -> NFA states: a lazy DFA, as RE2's
        if self.kind == "regexp":
            if pattern.count("*") >= _NFA_FROM:
                self.tokens = _tokens(pattern)
            else:
                self.regex = _compile(_to_regex(pattern))

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.pattern
        if self.kind == "prefix":
            return path.startswith(self.pattern[:-2])
        if self.kind == "suffix":
            suffix = self.pattern[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        if self.regex is not None:
            return self.regex.match(path) is not None
        return _nfa_match(self.tokens, path, self.dfa)


def check_syntax(pattern: str) -> None:
    """Go's filepath.Match syntax check: every `[` closed and not empty, no trailing `\\`."""
    index, end = 0, len(pattern)
    while index < end:
        ch = pattern[index]
        index += 1
        if ch == "\\":
            if index >= end:
                raise ValueError(pattern)
            index += 1
        elif ch == "[":
            index = _class_end(pattern, index)


def _class_end(pattern: str, index: int) -> int:
    """The index after the `]` closing the class whose body starts at `index`."""
    end, count = len(pattern), 0
    if index < end and pattern[index] == "^":
        index += 1
    while True:
        if index >= end:
            raise ValueError(pattern)
        ch = pattern[index]
        if ch == "]" and count:
            return index + 1
        if ch in "-]" and not count:  # Go: a range needs a low end; `[]` is empty
            raise ValueError(pattern)
        if ch == "\\":
            index += 1
            if index >= end:
                raise ValueError(pattern)
        index += 1
        count += 1


def _kind(pattern: str) -> str:
    """patternmatcher's detectedType, decided the way its compile loop decides it."""
    kind, index, end, step = "exact", 0, len(pattern), 0
    while index < end:
        ch = pattern[index]
        index += 1
        if ch == "*" and pattern.startswith("*", index):
            index += 1
            if pattern.startswith("/", index):
                index += 1
            kind = "prefix" if index >= end and kind == "exact" else "regexp"
            if step == 0:
                kind = "suffix"
        elif ch in "*?[]" or (ch == "\\" and index < end):
            kind = "regexp"
            index += 1 if ch == "\\" else 0
        step += 1
    return kind


def _to_regex(pattern: str) -> str:
    """patternmatcher's regex for `pattern`, anchored with `\\Z` (a `$` would also match
    before a trailing newline)."""
    out, index, end, in_class = ["^"], 0, len(pattern), False
    while index < end:
        ch = pattern[index]
        index += 1
        if ch == "*":
            if pattern.startswith("*", index):
                index += 1
                if pattern.startswith("/", index):
                    index += 1
                out.append(".*" if index >= end else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            out.append(re.escape(pattern[index]) if index < end else "\\\\")
            index += 1
        elif ch in "[]":
            out.append(ch)
            in_class = ch == "["
        elif ch == "^":
            out.append("^" if in_class else "\\^")  # Go would read an anchor: never matches
        else:
            out.append("\\" + ch if ch in _ESCAPED else ch)
    return "".join(out) + "\\Z"


def _compile(regex: str) -> re.Pattern:
    with warnings.catch_warnings():  # "[[", "&&" in a class: a FutureWarning, not an error
        warnings.simplefilter("ignore")
        return re.compile(regex, re.DOTALL)


def _tokens(pattern: str) -> list[tuple[str, object]]:
    """The pattern as NFA steps: lit, any, class, star, dstar (`**/`), dend (`**` last)."""
    tokens: list[tuple[str, object]] = []
    index, end = 0, len(pattern)
    while index < end:
        ch = pattern[index]
        index += 1
        if ch == "*" and pattern.startswith("*", index):
            index += 1
            if pattern.startswith("/", index):
                index += 1
            tokens.append(("dend", None) if index >= end else ("dstar", None))
        elif ch == "*":
            tokens.append(("star", None))
        elif ch == "?":
            tokens.append(("any", None))
        elif ch == "\\":
            tokens.append(("lit", pattern[index]))
            index += 1
        elif ch == "[":
            close = _class_end(pattern, index)
            tokens.append(("class", _compile(pattern[index - 1:close])))
            index = close
        else:
            tokens.append(("lit", ch))
    return _simplified(tokens)


def _simplified(tokens: list) -> list:
    """`**` and `***` are one `*`; `**/**/` one `**/`; `**/` before a last `**` is that
    `**`: the same language with fewer states."""
    out: list = []
    for token in tokens:
        if out and token[0] in ("star", "dstar") and out[-1][0] == token[0]:
            continue
        if out and token[0] == "dend" and out[-1][0] == "dstar":
            out[-1] = token
            continue
        out.append(token)
    return out


def _nfa_match(tokens: list, path: str, dfa: dict) -> bool:
    """Whether `path` matches, in one pass over it. State i < m: before token i; m: done;
    m + 1 + i: inside the `.*` of a `**/` at token i, waiting for a `/` to leave it.
    Each (state set, character) step is computed once and kept in `dfa`."""
    m = len(tokens)
    current = dfa.get(None)
    if current is None:
        current = dfa[None] = frozenset(_closure(tokens, {0}))
    for ch in path:
        following = dfa.get((current, ch))
        if following is None:
            if len(dfa) > 10_000:  # bound the memory a hostile pattern can take
                dfa.clear()
            following = dfa[(current, ch)] = _advance(tokens, current, ch)
        current = following
        if not current:
            return False
    return m in current


def _advance(tokens: list, current: frozenset, ch: str) -> frozenset:
    m = len(tokens)
    following: set[int] = set()
    for state in current:
        if state > m:
            following.add(state)
            if ch == "/":
                following.add(state - m)  # (m + 1 + i) -> i + 1
        elif state < m:
            _step(tokens, state, ch, m, following)
    return frozenset(_closure(tokens, following))


def _step(tokens: list, state: int, ch: str, m: int, following: set) -> None:
    kind, arg = tokens[state]
    if (kind == "lit" and ch == arg or kind == "any" and ch != "/"
            or kind == "class" and arg.match(ch)):
        following.add(state + 1)
    elif kind == "star" and ch != "/" or kind == "dend":
        following.add(state)
    elif kind == "dstar":
        following.add(m + 1 + state)
        if ch == "/":
            following.add(state + 1)


def _closure(tokens: list, states: set) -> set:
    """`states` and what they reach without a character (any wildcard may match none)."""
    todo, seen, m = list(states), set(states), len(tokens)
    while todo:
        state = todo.pop()
        if state < m and tokens[state][0] in ("star", "dstar", "dend") and state + 1 not in seen:
            seen.add(state + 1)
            todo.append(state + 1)
    return seen
