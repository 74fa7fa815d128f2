"""One record per Dockerfile instruction, made from a parser Raw and checked as Docker does.

instruction() validates flags and argument counts with buildkit's messages
(instructions/parse.go, bflag.go) but expands no variable: values are kept as the words
were written, quotes included, and the executor expands each with expand_word() and the
stage's variables at the step. That is, for each record:
- From.image/platform: expanded with the global ARGs (stages.py does it);
- Env/Label pairs, Arg pairs: keys and values each expand_word'ed;
- Copy/Add sources and dest, chown, chmod, checksum; Workdir.path, User.user,
  Stopsignal.signal, Volume.paths, Expose.ports: each expand_word'ed (Expose: words);
- Run/Cmd/Entrypoint/Healthcheck commands: never expanded (the shell does it);
- Run.mounts: parse_mount(value, expand) at the step;
- heredoc bodies with expand=True: expand_heredoc() for COPY/ADD, the shell for RUN.
"""

from __future__ import annotations

import re

from rootless.build.dockerfile import (
    Heredoc,
    Raw,
    did_you_mean,
    heredoc_markers,
    parse_line,
    split_head,
    strip,
)
from rootless.build.errors import DockerfileError
from rootless.build.mounts import MountError, parse_mount
from rootless.build.units import parse_duration
from rootless.records import record

_BOOL, _STR, _STRS = "bool", "str", "strs"
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # buildkit's reWhitespace
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")
_HEREDOC_WORD = re.compile(r"[0-9]*<<-?[\t\n\f\r ]*[^<]+\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_GO_SPACE = re.compile(r"[\t\n\v\f\r \x85\xa0]+")
_NETWORKS = ("default", "none", "host")
_SECURITY = ("sandbox", "insecure")


@record
class From:
    raw: Raw
    image: str
    name: str | None  # "AS name", lower-cased
    platform: str | None


@record
class Run:
    raw: Raw
    command: tuple  # exec form: the argv; shell form: (the command line,)
    shell_form: bool
    mounts: tuple  # the --mount values as written: parse_mount() them at the step
    network: str | None  # default|none|host, None when not given
    security: str | None  # sandbox|insecure, None when not given


@record
class Cmd:
    raw: Raw
    command: tuple
    shell_form: bool


@record
class Entrypoint:
    raw: Raw
    command: tuple
    shell_form: bool


@record
class Shell:
    raw: Raw
    shell: tuple


@record
class Env:
    raw: Raw
    pairs: tuple  # ((key, value), ...), both unexpanded words


@record
class Label:
    raw: Raw
    pairs: tuple


@record
class Maintainer:
    raw: Raw
    name: str


@record
class Expose:
    raw: Raw
    ports: tuple


@record
class Volume:
    raw: Raw
    paths: tuple


@record
class User:
    raw: Raw
    user: str


@record
class Workdir:
    raw: Raw
    path: str


@record
class Stopsignal:
    raw: Raw
    signal: str


@record
class Arg:
    raw: Raw
    pairs: tuple  # ((name, default or None), ...), unexpanded


@record
class Copy:
    raw: Raw
    sources: tuple  # context (or --from) paths; heredoc sources are in `heredocs`
    dest: str
    from_: str | None
    chown: str | None
    chmod: str | None
    link: bool
    parents: bool
    exclude: tuple
    heredocs: tuple  # Heredoc sources: each becomes a file named after its delimiter


@record
class Add:
    raw: Raw
    sources: tuple
    dest: str
    chown: str | None
    chmod: str | None
    checksum: str | None
    keep_git_dir: bool
    link: bool
    heredocs: tuple
    unpack: bool | None = None  # --unpack: None = Docker's default (local tars unpack)
    exclude: tuple = ()


@record
class Onbuild:
    raw: Raw
    trigger: Raw
    expression: str = ""  # the trigger as stored in the image's OnBuild list


@record
class Healthcheck:
    raw: Raw
    command: tuple | None  # None for HEALTHCHECK NONE
    shell_form: bool  # True: Test is ["CMD-SHELL", command[0]], else ["CMD", *command]
    interval: float | None  # seconds; None when not given (0 when given as 0)
    timeout: float | None
    start_period: float | None
    start_interval: float | None
    retries: int | None


def instruction(raw: Raw, filename: str):
    """The record for `raw`; DockerfileError "<file>:<line>: <what>" if Docker refuses it."""
    build = _BUILDERS.get(raw.keyword)
    if build is None:
        raise DockerfileError(filename, raw.line, f"unknown instruction: {raw.keyword}")
    try:
        return build(raw, filename)
    except MountError as e:
        raise DockerfileError(filename, raw.line, str(e)) from None


def _fail(raw: Raw, filename: str, what: str) -> DockerfileError:
    return DockerfileError(filename, raw.line, what)


def _flags(raw: Raw, filename: str, allowed: dict) -> dict:
    """The flag values by name, checked as buildkit's BFlags.Parse checks them."""
    values: dict = {}
    for name, value in raw.flags:
        kind = allowed.get(name)
        if kind is None:
            raise _fail(raw, filename, f"unknown flag: --{name}" + did_you_mean(
                name, sorted(allowed), case_sensitive=True))
        if name in values and kind != _STRS:
            raise _fail(raw, filename, f"duplicate flag specified: --{name}")
        if kind == _BOOL:
            if value == "":
                raise _fail(raw, filename, f"missing a value on flag: --{name}")
            if (value or "true").lower() not in ("true", "false"):
                raise _fail(raw, filename,
                            f"expecting boolean value for flag --{name}, not: {value}")
            values[name] = (value or "true").lower() == "true"
        elif value is None:
            raise _fail(raw, filename, f"missing a value on flag: --{name}")
        elif kind == _STRS:
            values[name] = values.get(name, ()) + (value,)
        else:
            values[name] = value
    return values


def _no_flags(raw: Raw, filename: str) -> None:
    _flags(raw, filename, {})


def _words(raw: Raw) -> list[str]:
    return _WHITESPACE.split(raw.args) if raw.args else []


def _one(raw: Raw, filename: str) -> str:
    if not raw.args:
        raise _fail(raw, filename, f"{raw.keyword} requires exactly one argument")
    _no_flags(raw, filename)
    return raw.args


def _command(raw: Raw) -> tuple[tuple, bool]:
    if raw.json is not None:
        return raw.json, False
    return ((raw.args,), True) if raw.args else ((), False)


def _from(raw: Raw, filename: str) -> From:
    args = _words(raw)
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _fail(raw, filename, f'invalid name for build stage: "{args[2]}", name '
                                       "can't start with a number or contain symbols")
    elif len(args) != 1:
        raise _fail(raw, filename, "FROM requires either one or three arguments")
    flags = _flags(raw, filename, {"platform": _STR})
    return From(raw, args[0], name, flags.get("platform"))


def _run(raw: Raw, filename: str) -> Run:
    flags = _flags(raw, filename, {"mount": _STRS, "network": _STR, "security": _STR})
    network, security = flags.get("network"), flags.get("security")
    if network is not None and network not in _NETWORKS:
        raise _fail(raw, filename, f'invalid network mode "{network}"')
    if security is not None and security not in _SECURITY:
        raise _fail(raw, filename, f'security "{security}" is not valid')
    mounts = flags.get("mount", ())
    for value in mounts:
        parse_mount(value)  # everything but the $-values is checked now
    command, shell_form = _command(raw)
    if not command and not raw.heredocs:
        raise _fail(raw, filename, "RUN requires at least one argument")
    return Run(raw, command, shell_form, mounts, network, security)


def _cmd(raw: Raw, filename: str) -> Cmd:
    _no_flags(raw, filename)
    return Cmd(raw, *_command(raw))


def _entrypoint(raw: Raw, filename: str) -> Entrypoint:
    _no_flags(raw, filename)
    return Entrypoint(raw, *_command(raw))


def _shell(raw: Raw, filename: str) -> Shell:
    _no_flags(raw, filename)
    if not raw.args or raw.json == ():
        raise _fail(raw, filename, "SHELL requires at least one argument")
    if raw.json is None:
        raise _fail(raw, filename, "SHELL requires the arguments to be in JSON form")
    return Shell(raw, raw.json)


def parse_words(rest: str, escape: str) -> list[str]:
    """buildkit's parseWords: blank-separated words, quotes and escapes kept as written."""
    words, buf, quote, blank_ok = [], [], "", False
    pos, end, in_word = 0, len(rest), False
    while pos < end:
        ch = rest[pos]
        pos += 1
        blank = ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"  # Go's unicode.IsSpace
        if not in_word:
            if blank:
                continue
            in_word = True
        if not quote and blank:
            if blank_ok or buf:
                words.append("".join(buf))
            buf, blank_ok, in_word = [], False, False
            continue
        if not quote and ch in "'\"":
            quote, blank_ok = ch, True
        elif quote and ch == quote:
            quote = ""
        elif ch == escape and quote != "'":
            if pos == end:
                continue  # an escape at the very end is dropped
            buf.append(ch)
            ch = rest[pos]
            pos += 1
        buf.append(ch)
    if in_word and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _pairs(raw: Raw, filename: str) -> tuple:
    """ENV/LABEL: `K V...` (the old form) or `K=V K2="v 2"...` pairs, unexpanded."""
    _no_flags(raw, filename)
    words = parse_words(raw.args, raw.escape)
    if not words:
        raise _fail(raw, filename, f"{raw.keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(raw.args, maxsplit=1)
        if len(parts) < 2:
            raise _fail(raw, filename, f"{raw.keyword} must have two arguments")
        return ((parts[0], parts[1]),)
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise _fail(raw, filename, f"syntax error - can't find = in \"{word}\". Must be "
                                       "of the form: name=value")
        if not key:
            raise _fail(raw, filename, f"{raw.keyword} names can not be blank")
        pairs.append((key, value))
    return tuple(pairs)


def _env(raw: Raw, filename: str) -> Env:
    return Env(raw, _pairs(raw, filename))


def _label(raw: Raw, filename: str) -> Label:
    return Label(raw, _pairs(raw, filename))


def _arg(raw: Raw, filename: str) -> Arg:
    _no_flags(raw, filename)
    words = parse_words(raw.args, raw.escape)
    if not words:
        raise _fail(raw, filename, "ARG requires at least one argument")
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if eq and not key:
            raise _fail(raw, filename, "ARG names can not be blank")
        pairs.append((key, value if eq else None))
    return Arg(raw, tuple(pairs))


def _maintainer(raw: Raw, filename: str) -> Maintainer:
    return Maintainer(raw, _one(raw, filename))


def _expose(raw: Raw, filename: str) -> Expose:
    if not raw.args:
        raise _fail(raw, filename, "EXPOSE requires at least one argument")
    _no_flags(raw, filename)
    return Expose(raw, tuple(sorted(_words(raw))))


def _volume(raw: Raw, filename: str) -> Volume:
    paths = raw.json if raw.json is not None else tuple(_words(raw))
    if not paths:
        raise _fail(raw, filename, "VOLUME requires at least one argument")
    _no_flags(raw, filename)
    paths = tuple(strip(path) for path in paths)
    if "" in paths:
        raise _fail(raw, filename, "VOLUME specified can not be an empty string")
    return Volume(raw, paths)


def _user(raw: Raw, filename: str) -> User:
    return User(raw, _one(raw, filename))


def _workdir(raw: Raw, filename: str) -> Workdir:
    return Workdir(raw, _one(raw, filename))


def _stopsignal(raw: Raw, filename: str) -> Stopsignal:
    return Stopsignal(raw, _one(raw, filename))


def _sources_and_dest(raw: Raw, filename: str) -> tuple[tuple, str, tuple]:
    args = raw.json if raw.json is not None else tuple(_words(raw))
    if len(args) < 2:
        raise _fail(raw, filename, f"{raw.keyword} requires at least two arguments, but only "
                                   "one was provided. Destination could not be determined")
    dest = args[-1]
    if raw.json is None and _HEREDOC_WORD.match(dest):
        raise _fail(raw, filename, f"{raw.keyword} cannot accept a heredoc as a destination")
    by_name = {doc.name: doc for doc in raw.heredocs}
    sources, docs = [], []
    for source in args[:-1]:
        marker = _heredoc_marker(source) if raw.json is None else None
        if marker is None:
            sources.append(source)
        else:  # a marker the parser found no body for is Docker's empty file
            docs.append(by_name.get(marker) or _empty_heredoc(source, marker))
    return tuple(sources), dest, tuple(docs)


def _heredoc_marker(word: str) -> str | None:
    if not _HEREDOC_WORD.match(word):
        return None
    try:
        markers = heredoc_markers(word, "", 0)
    except DockerfileError:
        return None
    return markers[0].name if markers else None


def _empty_heredoc(word: str, name: str) -> Heredoc:
    return Heredoc(name, "", "'" not in word and '"' not in word, "<<-" in word, None)


def _copy(raw: Raw, filename: str) -> Copy:
    flags = _flags(raw, filename, {"chown": _STR, "from": _STR, "chmod": _STR, "link": _BOOL,
                                   "exclude": _STRS, "parents": _BOOL})
    sources, dest, docs = _sources_and_dest(raw, filename)
    return Copy(raw, sources, dest, flags.get("from"), flags.get("chown"), flags.get("chmod"),
                flags.get("link", False), flags.get("parents", False),
                flags.get("exclude", ()), docs)


def _add(raw: Raw, filename: str) -> Add:
    flags = _flags(raw, filename, {"chown": _STR, "chmod": _STR, "link": _BOOL,
                                   "keep-git-dir": _BOOL, "checksum": _STR, "unpack": _BOOL,
                                   "exclude": _STRS})
    sources, dest, docs = _sources_and_dest(raw, filename)
    return Add(raw, sources, dest, flags.get("chown"), flags.get("chmod"),
               flags.get("checksum"), flags.get("keep-git-dir", False),
               flags.get("link", False), docs, flags.get("unpack"), flags.get("exclude", ()))


def _onbuild(raw: Raw, filename: str) -> Onbuild:
    if not raw.args:
        raise _fail(raw, filename, "ONBUILD requires at least one argument")
    _no_flags(raw, filename)
    keyword = split_head(raw.args, raw.escape)[0].upper()
    if keyword == "ONBUILD":
        raise _fail(raw, filename, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("MAINTAINER", "FROM"):
        raise _fail(raw, filename, f"{keyword} isn't allowed as an ONBUILD trigger")
    # what docker stores in the image: the trigger as written, heredoc bodies after it
    expression = raw.args + "".join(f"\n{doc.body}{doc.name}" for doc in raw.heredocs)
    trigger = parse_line(expression, filename, raw.line)
    instruction(trigger, filename)  # a trigger Docker would refuse later fails now
    return Onbuild(raw, trigger, expression)


def _healthcheck(raw: Raw, filename: str) -> Healthcheck:
    if not raw.args:
        raise _fail(raw, filename, "HEALTHCHECK requires at least one argument")
    flags = _flags(raw, filename, {"interval": _STR, "timeout": _STR, "start-period": _STR,
                                   "start-interval": _STR, "retries": _STR})
    kind, _, rest = _first_word(raw.args)
    kind = kind.upper()
    if kind == "NONE":
        if rest:
            raise _fail(raw, filename, "HEALTHCHECK NONE takes no arguments")
        return Healthcheck(raw, None, False, None, None, None, None, None)
    if kind != "CMD":
        raise _fail(raw, filename, f'unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = raw.json if raw.json is not None else ((rest,) if rest else ())
    if not command:
        raise _fail(raw, filename, "missing command after HEALTHCHECK CMD")
    times = [_interval(raw, filename, flags, name)
             for name in ("interval", "timeout", "start-period", "start-interval")]
    return Healthcheck(raw, command, raw.json is None, *times, _retries(raw, filename, flags))


def _first_word(text: str) -> tuple[str, str, str]:
    parts = _GO_SPACE.split(text, maxsplit=1)
    return parts[0], " ", (parts[1] if len(parts) > 1 else "")


def _interval(raw: Raw, filename: str, flags: dict, name: str) -> float | None:
    text = flags.get(name)
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise _fail(raw, filename, str(e)) from None
    if seconds != 0 and seconds < 1e-3:
        raise _fail(raw, filename, f'interval "{name}" cannot be less than 1ms')
    return seconds


def _retries(raw: Raw, filename: str, flags: dict) -> int | None:
    text = flags.get("retries")
    if not text:
        return None
    if not _INTEGER.match(text):
        raise _fail(raw, filename, f'strconv.ParseInt: parsing "{text}": invalid syntax')
    retries = int(text, 10)
    if not -2**31 <= retries < 2**31:
        raise _fail(raw, filename, f'strconv.ParseInt: parsing "{text}": value out of range')
    if retries < 0:
        raise _fail(raw, filename, f"--retries cannot be negative ({retries})")
    return retries


_BUILDERS = {"FROM": _from, "RUN": _run, "CMD": _cmd, "ENTRYPOINT": _entrypoint,
             "SHELL": _shell, "ENV": _env, "LABEL": _label, "MAINTAINER": _maintainer,
             "EXPOSE": _expose, "VOLUME": _volume, "USER": _user, "WORKDIR": _workdir,
             "STOPSIGNAL": _stopsignal, "ARG": _arg, "COPY": _copy, "ADD": _add,
             "ONBUILD": _onbuild, "HEALTHCHECK": _healthcheck}
