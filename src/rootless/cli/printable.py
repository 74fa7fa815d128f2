"""Text from images made safe for a terminal.

An image's Cmd, history, labels and names are written by whoever built it; printed raw,
an escape sequence in them can rewrite the user's screen, set the window title, or (on
some terminals) answer back as if typed. So every value that reaches a table or a
template's output goes through `escape_controls`, which writes control characters the
way Go's strconv.Quote does (\\x1b, \\u009b, \\n) and leaves everything printable alone.
"""

from __future__ import annotations

_NAMED = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
          "\v": r"\v"}


def escape_char(ch: str) -> str:
    """One non-printable character as Go writes it in a quoted string."""
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(text: str, keep: str = "") -> str:
    """`text` with every non-printable character escaped, except those in `keep`."""
    if text.isprintable():  # the common case, in C
        return text
    return "".join(ch if ch.isprintable() or ch == " " or ch in keep else escape_char(ch)
                   for ch in text)
