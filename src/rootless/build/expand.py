"""Docker's shell-word expansion for Dockerfile arguments (buildkit's shell/lex.go rules).

Not a shell: no command substitution, no globbing, no field splitting of quoted text.
What it does, as buildkit does it:
- single quotes keep everything literal; double quotes keep everything but `$` and the
  escape character, which escapes only `"`, `$` and itself there;
- outside quotes the escape character makes the next character literal; a lone one at
  the end is dropped;
- `$V`, `${V}`, `${V:-w}` `${V-w}` `${V:+w}` `${V+w}` `${V:?m}` `${V?m}`, and the newer
  `${V#p}` `${V##p}` `${V%p}` `${V%%p}` `${V/p/r}` `${V//p/r}` with `*`/`?` patterns;
- an unknown variable expands to "" (never an error, as in docker build).

The variable's value is never re-scanned: a value holding `$X` or quotes stays literal,
so a build arg cannot smuggle an expansion into a later instruction.
"""

from __future__ import annotations

import re

_EOF = ""
_SPECIAL_PARAMS = "@*#?-$!0"


def _isspace(ch: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts the \\x1c-\\x1f separators)."""
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


def _name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


class ExpandError(Exception):
    """A malformed word (unbalanced quote, bad ${...}); callers add file and line."""


def expand_word(word: str, env, escape: str = "\\") -> str:
    """`word` with quotes removed and variables expanded, kept as one word."""
    lexer = _Lexer(word, env, escape)
    return lexer.run(word)[0]


def expand_words(text: str, env, escape: str = "\\") -> list[str]:
    """`text` split on unquoted whitespace, then each part as expand_word would make it.

    A variable's value is split too when it is not inside quotes (Docker's
    ProcessWords); an empty quoted word is dropped, as Docker drops it.
    """
    lexer = _Lexer(text, env, escape)
    return lexer.run(text)[1]


def expand_heredoc(body: str, env) -> str:
    """A heredoc body as COPY/ADD write it when the delimiter was unquoted.

    Quotes stay as written; `$` expansions and backslash escapes apply (Docker always
    uses `\\` here, whatever the escape directive says).
    """
    lexer = _Lexer(body, env, "\\", skip_quotes=True)
    return lexer.run(body)[0]


def raw_words(text: str, escape: str = "\\") -> list[str]:
    """`text` split on unquoted whitespace with quotes, escapes and `$` kept as written.

    What the parser uses to find heredoc markers; never raises (a malformed line has no
    words, as buildkit ignores its error there).
    """
    lexer = _Lexer(text, {}, escape, raw_quotes=True, raw_escapes=True, skip_unset=True)
    try:
        return lexer.run(text)[1]
    except ExpandError:
        return []


class _Words:
    """Word splitting as the lexer goes: text from `$` splits, quoted text does not."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.size = 0  # characters in buf: an empty quoted string adds "" but no word
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _isspace(ch):
            if self.in_word and self.size:
                self.words.append("".join(self.buf))
                self.buf, self.size, self.in_word = [], 0, False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf.append(text)
        self.size += len(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if self.size:
            self.words.append("".join(self.buf))
            self.buf, self.size = [], 0
        return self.words


class _Lexer:
    def __init__(self, text: str, env, escape: str, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False,
                 skip_quotes: bool = False) -> None:
        self.text, self.pos, self.env, self.escape = text, 0, env, escape
        self.raw_quotes, self.raw_escapes = raw_quotes, raw_escapes
        self.skip_unset, self.skip_quotes = skip_unset, skip_quotes

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def run(self, source: str) -> tuple[str, list[str]]:
        try:
            return self.until(_EOF, self.raw_escapes)
        except RecursionError:  # ${a:-${a:-${a:-... thousands deep
            raise ExpandError(f'failed to process "{source}": too deeply nested') from None
        except ExpandError as e:
            raise ExpandError(f'failed to process "{source}": {e}') from None

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """The text up to `stop` (consumed) or the end: (as one word, as words)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        plain = self._plain(stop)
        while self.peek():
            run = plain.match(self.text, self.pos)
            if run:  # ordinary characters in bulk: a megabyte line stays linear
                result.append(run.group())
                words.add_raw(run.group())
                self.pos = run.end()
                continue
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.finish()
            special = self._special(ch)
            if special is not None:
                part = special()
                result.append(part)
                if ch == "$":
                    words.add_string(part)
                else:
                    words.add_raw(part)
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def _plain(self, stop: str) -> re.Pattern:
        """Characters with no meaning here: not special, not blank, not the stop."""
        odd = re.escape("$<'\"" + self.escape + stop)
        return re.compile(f"[^{odd}\\s\x1c-\x1f]+")

    def _special(self, ch: str):
        if ch == "$":
            return self.dollar
        if ch == "<":
            return self.angle
        if not self.skip_quotes:
            if ch == "'":
                return self.single_quote
            if ch == '"':
                return self.double_quote
        return None

    def single_quote(self) -> str:
        quote = self.next()
        out = [quote] if self.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        quote = self.next()
        out = [quote] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "double-quote")
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    continue  # a lone escape at the end: the quote is unbalanced anyway
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def angle(self) -> str:
        """`<<` and the blanks after it stay with the word (a heredoc marker)."""
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        blanks = []
        while self.peek() in ("\t", "\r", " ") and self.peek():
            blanks.append(self.next())
        return "<<" + "".join(blanks)

    def name(self) -> str:
        """A variable name: letters, digits, `_`; or all digits; or one special param."""
        first = self.peek()
        if first and first.isdecimal():
            digits = []
            while self.peek() and self.peek().isdecimal():
                digits.append(self.next())
            return "".join(digits)
        if first and first in _SPECIAL_PARAMS:
            return self.next()
        chars = []
        while self.peek() and _name_char(self.peek()):
            chars.append(self.next())
        return "".join(chars)

    def lookup(self, name: str) -> tuple[str, bool]:
        try:
            value = self.env[name]
        except (KeyError, TypeError):
            return "", False
        return (value if isinstance(value, str) else str(value)), True

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "$" + name
            return value
        self.next()
        if not self.peek():
            raise ExpandError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if not ch:
            raise ExpandError("syntax error: missing '}'")
        if ch == "}":
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self.replace(name)
        if ch in (":", "+", "-", "?", "#", "%"):
            return self.modifier(name, ch)
        raise ExpandError(f"unsupported modifier ({ch or '}'}) in substitution")

    def modifier(self, name: str, ch: str) -> str:
        null_is_unset = ch == ":"
        chs = ch
        if null_is_unset:
            ch = self.next()
            chs += ch
        raw = ch in ("#", "%")
        if null_is_unset and raw:
            raise ExpandError(f"unsupported modifier ({chs}) in substitution")
        word = self._closing("}", raw, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ExpandError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            greedy = word.startswith(ch)
            pattern = word[1:] if greedy else word
            if ch == "%":
                return _trim_suffix(pattern, value, greedy)
            return _trim_prefix(pattern, value, greedy)
        raise ExpandError(f"unsupported modifier ({chs}) in substitution")

    def replace(self, name: str) -> str:
        every = self.peek() == "/"
        if every:
            self.next()
        pattern = self._closing("/", True, "syntax error: missing '/' in ${}")
        replacement = self._closing("}", True, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        return regex.sub(lambda _: replacement, value, count=0 if every else 1)

    def _closing(self, stop: str, raw: bool, missing: str) -> str:
        try:
            return self.until(stop, raw)[0]
        except ExpandError:
            if not self.peek():
                raise ExpandError(missing) from None
            raise


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern:
    """A `*`/`?` shell pattern (no bracket expressions, as buildkit) as a regex."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    index = 0
    while index < len(pattern):
        tok = pattern[index]
        index += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            if index < len(pattern) and pattern[index] in "}/":
                continue  # escaped for the ${...} syntax, not for the pattern
            following = pattern[index] if index < len(pattern) else ""
            index += 1
            if following not in ("*", "?", "\\") or not following:
                raise ExpandError(f"invalid pattern ({pattern}) in substitution: "
                                  f"invalid escape '\\{following}'")
            out.append(re.escape(following))
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy, anchored=True).search(value)
    return value[match.end():] if match else value


def _reverse_pattern(pattern: str) -> str:
    """The pattern backwards, each `\\x` escape kept in front of its character."""
    tokens, index = [], 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            tokens.append(pattern[index:index + 2])
            index += 2
        else:
            tokens.append(pattern[index])
            index += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # a regex finds the leftmost match only: match the reversed pattern on the
    # reversed value (buildkit does the same)
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def heredoc_name(word: str) -> tuple[str, bool] | None:
    """The delimiter of a heredoc marker's word (after `<<` / `<<-`) and whether the body
    expands: (name, expand), or None when the word is not one word.

    Any quoting of the delimiter (`"EOF"`, `'EOF'`, `E"OF"`) turns expansion off, as in
    sh(1); buildkit finds it by lexing the word with and without keeping the quotes.
    """
    plain = _Lexer(word, {}, "\\", skip_unset=True).run(word)[1]
    if len(plain) != 1:
        return None
    kept = _Lexer(word, {}, "\\", raw_quotes=True, skip_unset=True).run(word)[1]
    if len(kept) != 1:
        return None
    quotes = sum(kept[0].count(q) - plain[0].count(q) for q in "'\"")
    return plain[0], quotes == 0
