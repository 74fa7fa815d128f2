"""Image references, normalised as Docker does (distribution/reference):

    busybox                  -> docker.io/library/busybox:latest
    user/img:1               -> docker.io/user/img:1
    host:5000/a/b:tag        -> host:5000/a/b:tag   (a first part with '.', ':' or
    localhost/x              -> localhost/x:latest   'localhost' is a registry host)
    name@sha256:<hex>        -> docker.io/library/name@sha256:<hex> (no default tag)

Anything else is refused with "invalid reference format: ...".
"""

from __future__ import annotations

from rootless.errors import ImageError
from rootless.records import record

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = (rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
              rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_compiled: dict[str, object] = {}
# what the common references are made of (`busybox`, `debian:12`), read without `re`
_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HEX = frozenset("0123456789abcdef")


def _pattern(source: str):
    """`source` compiled when first needed: `re` (~4 ms of imports with enum and
    functools) is not loaded by a `run` of a plain `name[:tag]`."""
    if source not in _compiled:
        import re

        _compiled[source] = re.compile(source)
    return _compiled[source]


@record
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The repository: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar_name(self) -> str:
        """The repository as docker prints it: busybox, user/img, host:5000/a/b."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        return self.path if "/" in rest else rest

    def familiar(self) -> str:
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> "Reference":
        return self._replace(tag=tag, digest=None)


def parse_reference(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise; a reference with neither tag nor digest gets `latest` unless
    `default_tag` is False."""
    if not isinstance(text, str) or not text:
        raise ImageError("invalid reference format: empty image name")
    if len(text) == 64 and all(c in _HEX for c in text):
        raise ImageError(f"invalid reference format: {text} is a 64-hex image id, "
                         "not a repository name")
    plain = _plain_reference(text)
    if plain is not None:
        return plain if plain.tag or not default_tag else plain._replace(tag=DEFAULT_TAG)
    domain, rest = _split_domain(text)
    repo = rest.split("@", 1)[0].split(":", 1)[0]
    if repo.lower() != repo:
        raise ImageError(f"invalid reference format: repository name {repo} must be "
                         "lowercase")
    match = _pattern(_REFERENCE).fullmatch(f"{domain}/{rest}")
    if not match:
        raise ImageError(f"invalid reference format: {text}")
    ref = Reference(match["domain"], match["path"], match["tag"], match["digest"])
    if len(ref.name) > NAME_MAX:
        raise ImageError(f"invalid reference format: repository name {ref.name[:40]}... "
                         f"longer than {NAME_MAX} characters")
    if ref.digest:
        _check_digest(ref.digest, text)
    if default_tag and not ref.tag and not ref.digest:
        ref = ref._replace(tag=DEFAULT_TAG)
    return ref


def _plain_reference(text: str) -> Reference | None:
    """An official image's `name` or `name:tag` in ASCII (what most `run`s name), as the
    grammar reads it; None for anything else, which the grammar then reads."""
    name, sep, tag = text.partition(":")
    if not (name and all(c in _LOWER_DIGITS for c in name)) or \
            len(DEFAULT_DOMAIN) + len(OFFICIAL_PREFIX) + len(name) + 1 > NAME_MAX:
        return None
    if sep and not (0 < len(tag) <= 128 and tag[0] not in ".-"
                    and all(c in _TAG_CHARS for c in tag)):
        return None
    return Reference(DEFAULT_DOMAIN, OFFICIAL_PREFIX + name, tag or None, None)


def _split_domain(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, text
    else:
        domain = first
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def _check_digest(digest: str, text: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm == "sha256" and len(hexpart) != 64:
        raise ImageError(f"invalid reference format: {text} (a sha256 digest has 64 hex "
                         "digits)")
    if algorithm not in ("sha256", "sha512"):
        raise ImageError(f"invalid reference format: {text} (unsupported digest "
                         f"algorithm {algorithm})")


def is_tag(text: str) -> bool:
    return bool(_pattern(_TAG).fullmatch(text))


def is_reference(text: str) -> bool:
    try:
        parse_reference(text)
    except ImageError:
        return False
    return True
