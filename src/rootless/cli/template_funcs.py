"""Values and functions for cli/template.py: Go's printing rules and the function table.

Values are JSON-like Python data. Go's text/template formats them with fmt's %v, so this
module holds the few fmt and encoding/json rules Docker users see in `--format` output:
`[a b]` for lists, `map[k:v]` for dicts (sorted keys), `1e+06` for floats, `<nil>` for a
nil inside a container. Functions raise FuncError; the executor adds the position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable


class FuncError(Exception):
    """A function was called with bad arguments; str() is Go's wording."""


# -- printing ---------------------------------------------------------------------------


def go_type(value: object) -> str:
    """Go's name for the type a JSON-decoded value would have (for error messages)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def go_float(value: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent when large/small."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    from decimal import Decimal  # only here: most templates print no floats

    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exp)  # digits before the decimal point
    prefix = "-" if sign else ""
    e = point - 1
    if e < -4 or e >= 6:  # %v uses precision 6 for this decision
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_str(value: object, top: bool = False) -> str:
    """fmt's %v of a value; `top` prints a nil as text/template does (`<no value>`)."""
    if value is None:
        return "<no value>" if top else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def truth(value: object) -> bool:
    """Go's template truth: false, 0, nil and empty string/list/dict are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def go_quote(text: str) -> str:
    """strconv.Quote: double-quoted, Go escapes, non-printable characters as \\x/\\u."""
    from rootless.cli.printable import escape_controls

    return '"' + escape_controls(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", '"': '"', "'": "'"}


def go_unquote(body: str) -> str:
    """The text of a Go string literal without its quotes; ValueError if malformed."""
    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc in _SIMPLE:
            return _SIMPLE[esc]
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc[0] in "01234567":
            return chr(int(esc, 8))
        raise ValueError(esc)
    return _ESCAPE.sub(one, body)


def go_json(value: object) -> str:
    """Compact JSON as Go's encoding/json writes it (Docker turns HTML escaping off)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_json_string(str(k))}:{go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    raise FuncError(f"json: unsupported type: {go_type(value)}")


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise FuncError(f"json: unsupported value: {go_float(value)}")
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        from decimal import Decimal

        return format(Decimal(repr(value)), "f").removesuffix(".0")
    text = repr(value)
    # Go writes exponents without padding: 1e-07 -> 1e-7.
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{m.group(1)}{m.group(2)}", text)


def _json_string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif code < 0x20 or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# -- printf -----------------------------------------------------------------------------

_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, args: list[object]) -> str:
    """fmt.Sprintf for the verbs --format users write: %s %d %v %q %t %x %f %e %g %c."""
    rest = list(args)
    out, pos = [], 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(rest.pop(0)) if rest else None
        if prec == "*":
            prec = str(rest.pop(0)) if rest else None
        if not rest:
            out.append(f"%!{verb}(MISSING)")
            continue
        text = _format_verb(verb, flags, prec if prec is None else int(prec), rest.pop(0))
        out.append(_pad(text, flags, int(width) if width else 0, verb))
    out.append(fmt[pos:])
    if rest:
        extra = ", ".join(f"{go_type(a)}={go_str(a)}" for a in rest)
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_verb(verb: str, flags: str, prec: int | None, arg: object) -> str:
    if verb in "sv":
        text = go_str(arg)
        return text[:prec] if prec is not None and verb == "s" else text
    if verb == "q":
        return go_quote(arg) if isinstance(arg, str) else go_str(arg)
    if verb == "t" and isinstance(arg, bool):
        return go_str(arg)
    if verb in "dxXobc" and isinstance(arg, int) and not isinstance(arg, bool):
        spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}.get(verb)
        if verb == "c":
            return chr(arg)
        return format(arg, ("+" if "+" in flags else "") + ("#" if "#" in flags else "") + spec)
    if verb in "xX" and isinstance(arg, str):
        text = arg.encode().hex()
        return text.upper() if verb == "X" else text
    if verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
        if verb in "gG" and prec is None:
            return go_float(float(arg))
        p = 6 if prec is None else prec
        return format(float(arg), ("+" if "+" in flags else "") + f".{p}{verb}")
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def _pad(text: str, flags: str, width: int, verb: str) -> str:
    if len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and verb in "dxXobfeEgG":
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign):].rjust(width - len(sign), "0")
    return text.rjust(width)


# -- functions --------------------------------------------------------------------------


def _want(name: str, args: list[object], count: int) -> None:
    if len(args) != count:
        raise FuncError(f"wrong number of args for {name}: want {count} got {len(args)}")


def _want_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise FuncError(f"{name}: wrong type for value; expected string; got {go_type(value)}")
    return value


def _want_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FuncError(f"{name}: wrong type for value; expected int; got {go_type(value)}")
    return value


def f_len(*args: object) -> int:
    _want("len", list(args), 1)
    value = args[0]
    if isinstance(value, str):
        return len(value.encode())  # Go counts bytes
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    raise FuncError(f"error calling len: len of type {go_type(value)}")


def f_index(*args: object) -> object:
    if not args:
        raise FuncError("wrong number of args for index: want at least 1 got 0")
    value = args[0]
    for key in args[1:]:
        if isinstance(value, dict):
            value = value.get(key) if isinstance(key, str) else _bad_key(key)
        elif isinstance(value, (list, tuple, str)):
            i = _want_int("index", key)
            if not 0 <= i < len(value):
                raise FuncError(f"error calling index: index out of range: {i}")
            value = value[i] if not isinstance(value, str) else value.encode()[i]
        elif value is None:
            raise FuncError("error calling index: index of untyped nil")
        else:
            raise FuncError(f"error calling index: can't index item of type {go_type(value)}")
    return value


def _bad_key(key: object) -> object:
    raise FuncError(f"error calling index: value has type {go_type(key)}; should be string")


def f_slice(*args: object) -> object:
    if not args:
        raise FuncError("wrong number of args for slice: want at least 1 got 0")
    value, bounds = args[0], [_want_int("slice", a) for a in args[1:]]
    if not isinstance(value, (list, tuple, str)):
        raise FuncError(f"error calling slice: can't slice item of type {go_type(value)}")
    if len(bounds) > 2:
        raise FuncError("error calling slice: too many slice indexes: %d" % len(bounds))
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(value)
    if not 0 <= lo <= hi <= len(value):
        raise FuncError(f"error calling slice: invalid slice index: {lo} > {hi}"
                        if lo > hi else f"error calling slice: index out of range: {hi}")
    return value[lo:hi]


def _comparable(name: str, a: object, b: object) -> None:
    number = (int, float)
    ok = (isinstance(a, bool) == isinstance(b, bool)) and (
        (isinstance(a, number) and isinstance(b, number)) or type(a) is type(b))
    if not ok:
        raise FuncError(f"error calling {name}: incompatible types for comparison")


def f_eq(*args: object) -> bool:
    if len(args) < 2:
        raise FuncError("error calling eq: missing argument for comparison")
    first = args[0]
    for other in args[1:]:
        if first is None or other is None:
            if first is other:
                return True
            continue
        if isinstance(first, (list, dict)) or isinstance(other, (list, dict)):
            raise FuncError("error calling eq: non-comparable types")
        _comparable("eq", first, other)
        if first == other:
            return True
    return False


def f_ne(*args: object) -> bool:
    _want("ne", list(args), 2)
    return not f_eq(*args)


def _ordered(name: str, a: object, b: object) -> None:
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise FuncError(f"error calling {name}: invalid type for comparison")
    _comparable(name, a, b)


def _compare(name: str, test: Callable[[object, object], bool]) -> Callable[..., bool]:
    def compare(*args: object) -> bool:
        _want(name, list(args), 2)
        _ordered(name, *args)
        return test(*args)
    return compare


def f_print(*args: object) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(arg))
    return "".join(out)


def f_printf(*args: object) -> str:
    if not args:
        raise FuncError("wrong number of args for printf: want at least 1 got 0")
    return go_sprintf(_want_str("printf", args[0]), list(args[1:]))


def f_join(*args: object) -> str:
    _want("join", list(args), 2)
    items, sep = args
    if not isinstance(items, (list, tuple)):
        raise FuncError(f"join: wrong type for value; expected []string; got {go_type(items)}")
    return _want_str("join", sep).join(go_str(i) for i in items)


def f_split(*args: object) -> list[str]:
    _want("split", list(args), 2)
    text, sep = _want_str("split", args[0]), _want_str("split", args[1])
    return list(text) if sep == "" else text.split(sep)


def f_title(*args: object) -> str:
    """strings.Title: upper-case the first letter of each word."""
    _want("title", list(args), 1)
    text = _want_str("title", args[0])
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def f_pad(*args: object) -> str:
    _want("pad", list(args), 3)
    text = _want_str("pad", args[0])
    if text == "":
        return text
    return " " * _want_int("pad", args[1]) + text + " " * _want_int("pad", args[2])


def f_truncate(*args: object) -> str:
    _want("truncate", list(args), 2)
    text, n = _want_str("truncate", args[0]), _want_int("truncate", args[1])
    return text if len(text) < n else text[:max(n, 0)]


def _unary(name: str, fn: Callable[[object], object]) -> Callable[..., object]:
    def call(*args: object) -> object:
        _want(name, list(args), 1)
        return fn(args[0])
    return call


FUNCS: dict[str, Callable[..., object]] = {
    "index": f_index, "slice": f_slice, "len": f_len,
    "not": _unary("not", lambda v: not truth(v)),
    "eq": f_eq, "ne": f_ne,
    "lt": _compare("lt", lambda a, b: a < b), "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b), "ge": _compare("ge", lambda a, b: a >= b),
    "print": f_print, "printf": f_printf,
    "println": lambda *args: " ".join(go_str(a) for a in args) + "\n",
    "json": _unary("json", go_json), "join": f_join, "split": f_split, "title": f_title,
    "lower": _unary("lower", lambda v: _want_str("lower", v).lower()),
    "upper": _unary("upper", lambda v: _want_str("upper", v).upper()),
    "pad": f_pad, "truncate": f_truncate,
}
# `and` and `or` are evaluated lazily by the executor, as Go >= 1.18 does.
SPECIAL = ("and", "or")

# Docker renders a table's header with these: its own functions pass the title through.
HEADER_FUNCS = dict(FUNCS, **{name: (lambda v, *rest: v) for name in (
    "json", "join", "split", "title", "lower", "upper", "pad", "truncate")})


# -- tabwriter --------------------------------------------------------------------------


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's text/tabwriter (padchar ' ', no flags) as `docker ps` uses it.

    A cell is text ended by a tab; the last cell of a line is not aligned. Consecutive
    lines that have a cell in column k form a block whose cells share one width.
    """
    cells = [line.split("\t") for line in lines]
    out: list[str] = []
    _tab_block(cells, 0, len(cells), [], minwidth, padding, out)
    return out


def _tab_block(cells: list[list[str]], line0: int, line1: int, widths: list[int],
               minwidth: int, padding: int, out: list[str]) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(cells[this]) - 1:
            this += 1
            continue
        _tab_lines(cells, line0, this, widths, out)
        line0, width = this, minwidth
        while this < line1 and column < len(cells[this]) - 1:
            width = max(width, len(cells[this][column]) + padding)
            this += 1
        _tab_block(cells, line0, this, [*widths, width], minwidth, padding, out)
        line0 = this
    _tab_lines(cells, line0, line1, widths, out)


def _tab_lines(cells: list[list[str]], line0: int, line1: int, widths: list[int],
               out: list[str]) -> None:
    for row in cells[line0:line1]:
        text = "".join(c.ljust(widths[j]) if j < len(widths) else c
                       for j, c in enumerate(row))
        out.append(text)
