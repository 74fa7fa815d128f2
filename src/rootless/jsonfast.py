"""`loads` and `dumps` as the json module's, on its C accelerator alone (`_json`).

`import json` costs ~6 ms, a sixth of `rootless run -d`: its decoder and encoder modules
import `re`, which brings enum, functools and collections (scripts/bench). The work is
done by the C scanner and encoder either way; json.decoder/json.encoder only configure
them and skip whitespace with regular expressions. Here they are configured as
json.loads/json.dumps configure them by default, and whitespace is skipped with str
methods, so the results are the same objects and the same text.

Whatever this does not do itself goes to the json module, imported then: a document
that fails to parse (so the error is json's own JSONDecodeError, with its message),
bytes that are not UTF-8, and `indent`.
"""

from __future__ import annotations

import _json

_WHITESPACE = " \t\n\r"  # JSON's (RFC 8259, 2)


class _Decoding:
    """What _json.make_scanner reads from a json.JSONDecoder(), as its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_Decoding())


def loads(data: str | bytes | bytearray):
    """json.loads(data); ValueError (json.JSONDecodeError) for what is not JSON, and
    for a document nested deeper than the interpreter's recursion limit (json raises
    RecursionError, which callers that expect ValueError would let through)."""
    text = data
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            text = ""  # json's encoding detection (UTF-16, UTF-32), or its error
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError):  # no value at `start`, or a bad one
        return _json_module().loads(data)
    except RecursionError:
        raise ValueError("JSON document nested too deeply") from None
    if text[end:].strip(_WHITESPACE):  # extra data after the value
        return _json_module().loads(data)
    return value


def dumps(value, *, sort_keys: bool = False, separators: tuple[str, str] | None = None,
          indent: int | str | None = None, ensure_ascii: bool = True) -> str:
    """json.dumps(value, ...) for these arguments (TypeError for what JSON cannot
    hold, ValueError for a circular reference, as json's)."""
    if indent is not None:  # json's C encoder never indents: its Python one does
        return _json_module().dumps(value, sort_keys=sort_keys, separators=separators,
                                    indent=indent, ensure_ascii=ensure_ascii)
    item_separator, key_separator = separators or (", ", ": ")
    encode_string = (_json.encode_basestring_ascii if ensure_ascii
                     else _json.encode_basestring)
    if isinstance(value, str):
        return encode_string(value)
    encoder = _json.make_encoder({}, _unserialisable, encode_string, None, key_separator,
                                 item_separator, sort_keys, False, True)
    return "".join(encoder(value, 0))


def _unserialisable(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_module():
    import json

    return json
