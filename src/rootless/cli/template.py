"""Docker's `--format`: the part of Go's text/template that Docker's documentation uses.

parse() lexes and parses the text into small nodes; Template.execute() walks them over
JSON-like Python data (dict fields are looked up by key, as Go does for maps).
render_rows() adds Docker's list conventions: `table` headers, tab-aligned columns, and
literal `\\t`/`\\n` in the template meaning tab and newline.

Semantics follow Go (pkg.go.dev/text/template): truth of empty values, pipelines passing
the value as the last argument, lazy `and`/`or`, sorted map iteration in `range`.
Simplifications: a field of a missing key or of nil is nil (Go would sometimes error),
and nothing of `define`/`template`/`block` is supported.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Union

from rootless.cli import template_funcs as fn
from rootless.cli.printable import escape_controls
from rootless.errors import UsageError


class TemplateError(UsageError):
    """A --format template failed to parse or to execute."""


# -- lexer ------------------------------------------------------------------------------

class Token(NamedTuple):
    kind: str  # text left right space field var ident string number char pipe ( ) := = , eof
    text: str
    pos: int


_ACTION_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<rawstring>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\[^\n]+?)')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+
        |(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<declare>:=)
  | (?P<op>[|(),=.])
""", re.VERBOSE)

_SPACE = " \t\r\n"
_SPACES = frozenset(_SPACE)  # a set, since `"" in _SPACE` is true
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_UNTERMINATED = {'"': "quoted string", "`": "raw quoted string", "'": "character constant"}


def _lex(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        trim_left = text.startswith("{{-", start) and text[start + 3:start + 4] in _SPACES
        before = text[pos:start]
        tokens.append(Token("text", before.rstrip(_SPACE) if trim_left else before, pos))
        pos = _lex_action(text, start, start + (4 if trim_left else 2), tokens)
    tokens.append(Token("text", text[pos:], pos))
    return [t for t in tokens if t.kind != "text" or t.text] + [Token("eof", "", len(text))]


def _lex_action(text: str, start: int, pos: int, tokens: list[Token]) -> int:
    """Lex one action from pos (after `{{` and trim marker); return where text resumes."""
    if text.startswith("/*", pos):
        comment = _COMMENT.match(text, pos)
        if not comment:
            raise _parse_error(text, start, "unclosed comment")
        return _lex_right(text, start, comment.end(), tokens, after_comment=True)
    tokens.append(Token("left", "{{", start))
    while True:
        if text.startswith("}}", pos) or (text.startswith("-}}", pos)
                                          and text[pos - 1:pos] in _SPACES):
            return _lex_right(text, start, pos, tokens)
        m = _ACTION_TOKEN.match(text, pos)
        if not m:
            if pos >= len(text):
                raise _parse_error(text, start, "unclosed action")
            if text[pos] in _UNTERMINATED:
                raise _parse_error(text, pos, "unterminated " + _UNTERMINATED[text[pos]])
            raise _parse_error(text, pos, f'unexpected "{text[pos]}" in command')
        kind = m.lastgroup or ""
        if kind in ("op", "declare"):
            kind = m.group()
        tokens.append(Token(kind, m.group(), m.start()))
        pos = m.end()


def _lex_right(text: str, start: int, pos: int, tokens: list[Token],
               after_comment: bool = False) -> int:
    trim = False
    rest = text[pos:]
    if after_comment:
        stripped = rest.lstrip(_SPACE)
        if stripped.startswith("-}}") and len(stripped) < len(rest):
            trim, pos = True, pos + len(rest) - len(stripped)
        elif not rest.startswith("}}"):
            raise _parse_error(text, start, "comment ends before closing delimiter")
    elif rest.startswith("-}}"):
        trim = True
    if trim:
        pos += 1
    if not after_comment:
        while tokens and tokens[-1].kind == "space":
            tokens.pop()
        tokens.append(Token("right", "}}", pos))
    pos += 2
    if trim:
        pos = len(text) - len(text[pos:].lstrip(_SPACE))
    return pos


def _parse_error(text: str, pos: int, message: str) -> TemplateError:
    line = text.count("\n", 0, pos) + 1
    return TemplateError(f"template: line {line}: {message}")


# -- nodes ------------------------------------------------------------------------------
# NamedTuples, not dataclasses: importing dataclasses (and so inspect) would cost more
# than the whole interpreter.

class Text(NamedTuple):
    pos: int
    text: str


class Operand(NamedTuple):
    pos: int
    kind: str  # dot field var ident literal pipe
    value: Any  # variable name, function name, literal value, or Pipe
    fields: list[str]  # .A.B after the operand: (...).A.B, $x.A, .A.B on dot


class Command(NamedTuple):
    pos: int
    args: list[Operand]
    source: str  # the command's text, for error messages


class Pipe(NamedTuple):
    pos: int
    commands: list[Command]
    decl: list[str]  # $x := ... or $i, $v := ... (range)
    assign: bool  # `=` rather than `:=`


class Action(NamedTuple):
    pos: int
    pipe: Pipe


class Block(NamedTuple):
    pos: int
    kind: str  # if with range
    pipe: Pipe
    body: list[Node]
    orelse: list[Node]


class Jump(NamedTuple):
    pos: int
    kind: str  # break continue


Node = Union[Text, Action, Block, Jump]


# -- parser -----------------------------------------------------------------------------

_KEYWORDS = ("if", "else", "end", "range", "with", "break", "continue",
             "define", "template", "block")
_LITERAL_WORDS = {"true": True, "false": False, "nil": None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.vars = ["$"]
        self.loops = 0

    def error(self, message: str, tok: Token | None = None) -> TemplateError:
        return _parse_error(self.text, (tok or self.peek()).pos, message)

    def peek(self, skip_space: bool = False) -> Token:
        i = self.i
        while skip_space and self.tokens[i].kind == "space":
            i += 1
        return self.tokens[i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def skip_space(self) -> None:
        while self.peek().kind == "space":
            self.i += 1

    def expect(self, kind: str, context: str) -> Token:
        self.skip_space()
        tok = self.next()
        if tok.kind != kind:
            raise self.error(f"unexpected {_describe(tok)} in {context}", tok)
        return tok

    def parse(self) -> list[Node]:
        nodes, stop = self.parse_list()
        if stop is not None:
            raise self.error(f"unexpected {{{{{stop.text}}}}}", stop)
        return nodes

    def parse_list(self) -> tuple[list[Node], Token | None]:
        """Nodes up to EOF, or to an {{end}} / {{else}} (returned, consumed up to it)."""
        nodes: list[Node] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                return nodes, None
            if tok.kind == "text":
                nodes.append(Text(tok.pos, tok.text))
                continue
            word = self.peek(skip_space=True)
            if word.kind == "ident" and word.text in ("end", "else"):
                self.skip_space()
                self.i += 1
                return nodes, word
            nodes.append(self.parse_action(tok, word))

    def parse_action(self, left: Token, word: Token) -> Node:
        if word.kind == "ident" and word.text in ("if", "with", "range"):
            self.skip_space()
            self.i += 1
            return self.parse_block(word)
        if word.kind == "ident" and word.text in ("break", "continue"):
            self.skip_space()
            self.i += 1
            if not self.loops:
                raise self.error(f"{{{{{word.text}}}}} outside {{{{range}}}}", word)
            self.expect("right", word.text)
            return Jump(word.pos, word.text)
        if word.kind == "ident" and word.text in ("define", "template", "block"):
            raise self.error(f"{{{{{word.text}}}}} is not supported", word)
        pipe = self.parse_pipe("command", "right")
        self.next()
        return Action(left.pos, pipe)

    def parse_block(self, word: Token) -> Block:
        saved = len(self.vars)
        pipe = self.parse_pipe(word.text, "right", max_decl=2 if word.text == "range" else 1)
        self.next()
        self.loops += word.text == "range"
        body, stop = self.parse_list()
        self.loops -= word.text == "range"
        orelse: list[Node] = []
        if stop is not None and stop.text == "else":
            chained = self.peek(skip_space=True)
            if word.text != "range" and chained.kind == "ident" and chained.text == word.text:
                # {{else if p}} ... {{end}} is {{else}}{{if p}} ... {{end}}{{end}}.
                self.skip_space()
                self.i += 1
                nested = self.parse_block(chained)  # sees this block's variables, as in Go
                del self.vars[saved:]
                return Block(word.pos, word.text, pipe, body, [nested])
            self.expect("right", "else")
            orelse, stop = self.parse_list()
            if stop is not None and stop.text == "else":
                raise self.error("expected {{end}}; found {{else}}", stop)
        if stop is None:
            raise self.error(f"unexpected EOF: {{{{{word.text}}}}} has no {{{{end}}}}", word)
        self.expect("right", "end")
        del self.vars[saved:]
        return Block(word.pos, word.text, pipe, body, orelse)

    def parse_pipe(self, context: str, end: str, max_decl: int = 1) -> Pipe:
        self.skip_space()
        start = self.peek()
        decl, assign = self.parse_decl(max_decl)
        commands: list[Command] = []
        while True:
            self.skip_space()
            commands.append(self.parse_command(context, end))
            if self.peek().kind != "|":
                break
            self.next()
        for n, cmd in enumerate(commands[1:], 2):
            if cmd.args[0].kind in ("literal", "dot"):
                raise self.error(f"non executable command in pipeline stage {n}")
        if assign:
            for name in decl:
                if name not in self.vars:
                    raise self.error(f"undefined variable \"{name}\"", start)
        else:
            self.vars.extend(decl)
        return Pipe(start.pos, commands, decl, assign)

    def parse_decl(self, max_decl: int) -> tuple[list[str], bool]:
        names: list[str] = []
        save = self.i
        while self.peek().kind == "var":
            names.append(self.next().text)
            self.skip_space()
            if self.peek().kind in (":=", "="):
                if len(names) > max_decl:
                    raise self.error("too many declarations in command")
                assign = self.next().kind == "="
                return names, assign
            if self.peek().kind != "," or len(names) >= 2:
                break
            self.next()
            self.skip_space()
        self.i = save
        return [], False

    def parse_command(self, context: str, end: str) -> Command:
        start = self.peek()
        args: list[Operand] = []
        while True:
            tok = self.peek()
            if tok.kind in (end, "|"):
                break
            if tok.kind == "space":
                self.skip_space()
                continue
            if args and self.tokens[self.i - 1].kind != "space":
                raise self.error(f"missing space before {_describe(tok)}", tok)
            args.append(self.parse_operand())
        if not args:
            raise self.error("missing value for " + context, self.peek())
        if args[0].kind == "literal" and args[0].value is None and len(args) == 1:
            raise self.error("nil is not a command", start)
        source = self.text[start.pos:self.peek().pos].strip()
        return Command(start.pos, args, source)

    def parse_operand(self) -> Operand:
        tok = self.next()
        kind = tok.kind
        if kind == "field":
            op = Operand(tok.pos, "field", None, [tok.text[1:]])
        elif kind == ".":
            op = Operand(tok.pos, "dot", None, [])
        elif kind == "var":
            if tok.text not in self.vars:
                raise self.error(f"undefined variable \"{tok.text}\"", tok)
            op = Operand(tok.pos, "var", tok.text, [])
        elif kind == "ident" and tok.text in _LITERAL_WORDS:
            op = Operand(tok.pos, "literal", _LITERAL_WORDS[tok.text], [])
        elif kind == "ident":
            if tok.text not in fn.FUNCS and tok.text not in fn.SPECIAL:
                raise self.error(f"function \"{tok.text}\" not defined", tok)
            op = Operand(tok.pos, "ident", tok.text, [])
        elif kind in ("string", "rawstring", "number", "char"):
            op = Operand(tok.pos, "literal", self.literal(tok), [])
        elif kind == "(":
            op = Operand(tok.pos, "pipe", self.parse_pipe("parenthesized pipeline", ")"), [])
            self.next()
        else:
            raise self.error(f"unexpected {_describe(tok)} in operand", tok)
        while self.peek().kind == "field":
            if op.kind == "literal":
                raise self.error(f"unexpected {_describe(self.peek())} in operand")
            op.fields.append(self.next().text[1:])
        return op

    def literal(self, tok: Token) -> Any:
        text = tok.text
        try:
            if tok.kind == "rawstring":
                return text[1:-1]
            if tok.kind == "string":
                return fn.go_unquote(text[1:-1])
            if tok.kind == "char":
                return ord(fn.go_unquote(text[1:-1]))
            clean = text.replace("_", "")
            if re.fullmatch(r"[+-]?0[xXbBoO].*", clean):
                return int(clean, 0)
            if re.fullmatch(r"[+-]?[0-9]+", clean):
                return int(clean, 8 if re.fullmatch(r"[+-]?0[0-7]+", clean) else 10)
            return float(clean)
        except (ValueError, UnicodeDecodeError):
            raise self.error(f"bad {tok.kind} syntax: {text}", tok) from None


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "EOF"
    if tok.kind == "right":
        return '"}}"'
    return '"' + tok.text + '"'


def parse(text: str) -> Template:
    """Parse a Go template; raises TemplateError naming the line and the problem."""
    return Template(text, _Parser(text).parse())


# -- executor ---------------------------------------------------------------------------

class _Break(Exception):  # {{break}}, caught by the innermost range
    pass


class _Continue(Exception):  # {{continue}}
    pass


class Template:
    def __init__(self, text: str, nodes: list[Node]) -> None:
        self.text = text
        self.nodes = nodes

    def execute(self, value: Any) -> str:
        """Render the template with `.` and `$` set to value; raises TemplateError."""
        out: list[str] = []
        _Exec(self.text, fn.FUNCS, out).run(self.nodes, value, [("$", [value])])
        return "".join(out)

    def execute_lenient(self, value: Any, funcs: dict[str, Any]) -> str:
        """Render what renders, stop quietly at an error (Docker does so for headers)."""
        out: list[str] = []
        try:
            _Exec(self.text, funcs, out).run(self.nodes, value, [("$", [value])])
        except TemplateError:
            pass
        return "".join(out)


# Variables in scope, innermost last; each value sits in a box so that `$x = v` in a
# nested block changes the variable its enclosing block sees, as in Go.
Scope = list[tuple[str, list[Any]]]


class _Exec:
    def __init__(self, text: str, funcs: dict[str, Any], out: list[str]) -> None:
        self.text = text
        self.funcs = funcs
        self.out = out

    def error(self, node: Node, message: str, source: str = "") -> TemplateError:
        line = self.text.count("\n", 0, node.pos) + 1
        at = f" at <{source}>:" if source else ":"
        return TemplateError(f"template: line {line}:{at} {message}")

    def run(self, nodes: list[Node], dot: Any, scope: Scope) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot, scope)
                if not node.pipe.decl:  # image text never reaches a terminal raw
                    self.out.append(escape_controls(fn.go_str(value, top=True), "\n\t"))
            elif isinstance(node, Block):
                self.block(node, dot, scope)
            elif isinstance(node, Jump):
                raise _Break() if node.kind == "break" else _Continue()

    def block(self, node: Block, dot: Any, scope: Scope) -> None:
        inner = list(scope)
        if node.kind == "range":
            self.range(node, dot, inner)
            return
        value = self.pipe(node.pipe, dot, inner)
        if fn.truth(value):
            self.run(node.body, value if node.kind == "with" else dot, inner)
        else:
            self.run(node.orelse, dot, inner)

    def range(self, node: Block, dot: Any, scope: Scope) -> None:
        pipe = node.pipe
        value = self.pipe(Pipe(pipe.pos, pipe.commands, [], False), dot, scope)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise self.error(node, f"range can't iterate over {fn.go_str(value)}")
        for key, item in items:
            names = pipe.decl
            pairs = [(names[-1], item)] if len(names) == 1 else list(zip(names, (key, item)))
            bound: Scope = [(name, [val]) for name, val in pairs]
            if pipe.assign:
                for name, val in pairs:
                    self.assign(scope, name, val)
                bound = []
            try:
                self.run(node.body, item, scope + bound)
            except _Break:
                break
            except _Continue:
                continue
        if not items:
            self.run(node.orelse, dot, scope)

    def assign(self, scope: Scope, name: str, value: Any) -> None:
        next(box for n, box in reversed(scope) if n == name)[0] = value

    def pipe(self, pipe: Pipe, dot: Any, scope: Scope) -> Any:
        value: Any = _NONE
        for cmd in pipe.commands:
            value = self.command(cmd, dot, scope, value)
        if pipe.decl and pipe.assign:
            self.assign(scope, pipe.decl[0], value)
        elif pipe.decl:
            scope.append((pipe.decl[0], [value]))
        return value

    def command(self, cmd: Command, dot: Any, scope: Scope, final: Any) -> Any:
        first, rest = cmd.args[0], cmd.args[1:]
        if first.kind == "ident":
            return self.call(cmd, first.value, rest, dot, scope, final)
        if first.kind == "field" and (rest or final is not _NONE):
            receiver = dot
            for name in first.fields[:-1]:
                receiver = self.field(receiver, name, cmd)
            method = _methods(receiver).get(first.fields[-1])
            if method is not None:  # Go calls a method with the command's arguments
                args = [self.operand(a, dot, scope, cmd) for a in rest]
                return self._method(cmd, first.fields[-1], method, receiver,
                                    args + ([final] if final is not _NONE else []))
        if rest or final is not _NONE:
            name = cmd.source.split()[0]
            raise self.error(cmd, f"can't give argument to non-function {name}", cmd.source)
        return self.operand(first, dot, scope, cmd)

    def call(self, cmd: Command, name: str, args: list[Operand], dot: Any,
             scope: Scope, final: Any) -> Any:
        values = [lambda a=a: self.operand(a, dot, scope, cmd) for a in args]
        if final is not _NONE:
            values.append(lambda: final)
        if name in fn.SPECIAL:
            if not values:
                raise self.error(cmd, f"wrong number of args for {name}: want at least 1 got 0",
                                 cmd.source)
            for get in values:
                value = get()
                if fn.truth(value) == (name == "or"):
                    return value
            return value
        arguments = [get() for get in values]
        try:
            return self.funcs[name](*arguments)
        except (fn.FuncError, TypeError, ValueError, OverflowError) as e:
            message = str(e)
            if not message.startswith(("error calling", "wrong number")):
                message = f"error calling {name}: {message.removeprefix(name + ': ')}"
            raise self.error(cmd, message, cmd.source) from None

    def operand(self, op: Operand, dot: Any, scope: Scope, cmd: Command) -> Any:
        if op.kind in ("field", "dot"):
            value = dot
        elif op.kind == "var":
            value = next(box for n, box in reversed(scope) if n == op.value)[0]
        elif op.kind == "ident":
            value = self.call(cmd, op.value, [], dot, scope, _NONE)
        elif op.kind == "pipe":
            value = self.pipe(op.value, dot, list(scope))
        else:
            value = op.value
        for name in op.fields:
            value = self.field(value, name, cmd)
        return value

    def _method(self, cmd: Command, name: str, method: Any, receiver: Any,
                args: list[Any]) -> Any:
        want = method.__code__.co_argcount - 1
        if len(args) != want:
            raise self.error(cmd, f"wrong number of args for {name}: want {want} got "
                                  f"{len(args)}", cmd.source)
        return method(receiver, *args)

    def field(self, value: Any, name: str, cmd: Command) -> Any:
        if value is None:
            return None
        if name in _methods(value):  # a method given no arguments: Go calls it
            return self._method(cmd, name, _methods(value)[name], value, [])
        if isinstance(value, dict):
            try:
                return value[name]
            except KeyError:
                return None
        raise self.error(cmd, f"can't evaluate field {name} in type {fn.go_type(value)}",
                         cmd.source)


_NONE = object()  # "no value piped in", distinct from None


def _methods(value: Any) -> dict[str, Any]:
    """The Go methods a row offers its template beside its fields (`{{.Label "k"}}` of
    `network ls`): a dict subclass's `go_methods`, name -> function(row, *args)."""
    return getattr(type(value), "go_methods", {}) if isinstance(value, dict) else {}


def render(text: str, value: Any) -> str:
    """parse(text).execute(value)."""
    return parse(text).execute(value)


# -- docker's list formatting -----------------------------------------------------------

class _Headers(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""  # Go's map[string]string gives "" for a missing key


def render_rows(text: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> list[str]:
    """Docker's --format for lists: one line per row; `table ...` adds a header line and
    aligns tab-separated cells; `json` prints each row as one JSON object."""
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    if text.strip() == "json":
        return [fn.go_json(row) for row in rows]
    table = text == "table" or text.startswith("table ")
    if not table:
        template = parse(text)
        return [template.execute(row) for row in rows]
    body = text[len("table"):].strip(" ")
    if not body:
        body = "\t".join("{{." + key + "}}" for key in headers)
    template = parse(body)
    lines = [template.execute_lenient(_Headers(headers), fn.HEADER_FUNCS)]
    lines += [template.execute(row) for row in rows]
    return fn.tabwrite("\n".join(lines).split("\n"))
