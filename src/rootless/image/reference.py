"""Image references, normalised as Docker does (distribution/reference):

    busybox                  -> docker.io/library/busybox:latest
    user/img:1               -> docker.io/user/img:1
    host:5000/a/b:tag        -> host:5000/a/b:tag   (a first part with '.', ':' or
    localhost/x              -> localhost/x:latest   'localhost' is a registry host)
    name@sha256:<hex>        -> docker.io/library/name@sha256:<hex> (no default tag)

Anything else is refused with "invalid reference format: ...".
"""

from __future__ import annotations

import re

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
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_TAG_ONLY = re.compile(_TAG)
_HEX64 = re.compile(r"[0-9a-f]{64}")


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
    if _HEX64.fullmatch(text):
        raise ImageError(f"invalid reference format: {text} is a 64-hex image id, "
                         "not a repository name")
    domain, rest = _split_domain(text)
    repo = rest.split("@", 1)[0].split(":", 1)[0]
    if repo.lower() != repo:
        raise ImageError(f"invalid reference format: repository name {repo} must be "
                         "lowercase")
    match = _REFERENCE.fullmatch(f"{domain}/{rest}")
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
    return bool(_TAG_ONLY.fullmatch(text))


def is_reference(text: str) -> bool:
    try:
        parse_reference(text)
    except ImageError:
        return False
    return True
