"""Registry authentication: the WWW-Authenticate challenge of a 401, then Basic
credentials or a Bearer token from the realm the challenge names (the Docker token
protocol: GET realm?service=S&scope=repository:NAME:ACTIONS, with Basic credentials
when the user has logged in). Tokens are kept per scope until shortly before
`expires_in` runs out, so a pull asks the token server once, not once per blob.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from rootless.errors import ImageError

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
MIN_TOKEN_LIFE = 60  # the token spec: a missing expires_in means 60 s


class Challenge(NamedTuple):
    scheme: str  # "basic" | "bearer" | other, lower-case
    params: dict[str, str]


def parse_challenge(header: str) -> list[Challenge]:
    """`Bearer realm="https://auth/token",service="reg",scope="..."` -> challenges."""
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        scheme, _, rest = rest.partition(" ")
        params: dict[str, str] = {}
        while True:
            match = _PARAM.match(rest)
            if not match:
                break
            value = match[2] if match[2] is not None else match[3]
            params[match[1].lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[match.end():]
        challenges.append(Challenge(scheme.strip(",").lower(), params))
        rest = rest.strip().lstrip(",").strip()
    return [c for c in challenges if c.scheme]


class Token(NamedTuple):
    value: str
    expires: float


class Auth:
    """The auth state of one registry: its challenge, the user's credentials and the
    tokens obtained so far."""

    def __init__(self, registry: str, credentials: tuple[str, str] | None) -> None:
        self.registry = registry
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self.tokens: dict[str, Token] = {}
        self.token_requests = 0

    def header(self, scope: str) -> str | None:
        """The Authorization header to send for `scope`, if one is known already."""
        if self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            return _basic(self.credentials) if self.credentials else None
        token = self.tokens.get(scope)
        if token and token.expires > time.time():
            return f"Bearer {token.value}"
        return None

    def answer(self, client, header: str, scope: str) -> bool:
        """After a 401 carrying `header`: get what it asks for. False if there is nothing
        new to try (no credentials for Basic, an unknown scheme)."""
        challenges = parse_challenge(header or "")
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or \
            next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is None:
            return False
        self.challenge = chosen
        if chosen.scheme == "basic":
            return self.credentials is not None
        self.tokens[scope] = self._fetch_token(client, chosen, scope)
        return True

    def _fetch_token(self, client, challenge: Challenge, scope: str) -> Token:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise ImageError(f"registry {self.registry}: its Bearer challenge has no usable "
                             f"realm ({realm!r})")
        params = [("service", challenge.params["service"])] \
            if challenge.params.get("service") else []
        params += [("scope", s) for s in scope.split()]  # one parameter per scope
        headers = {"Authorization": _basic(self.credentials)} if self.credentials else {}
        self.token_requests += 1
        response = client.raw_request("GET", realm, params=params, headers=headers)
        if response.status_code == 401:
            raise ImageError(f"registry {self.registry}: unauthorized: incorrect username or "
                             "password (try: rootless login "
                             f"{self.registry})")
        if response.status_code != 200:
            raise ImageError(f"registry {self.registry}: token server {realm} answered "
                             f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise ImageError(f"registry {self.registry}: token server {realm} sent no "
                             "JSON") from None
        value = data.get("token") or data.get("access_token") if isinstance(data, dict) \
            else None
        if not isinstance(value, str) or not value:
            raise ImageError(f"registry {self.registry}: token server {realm} sent no token")
        life = data.get("expires_in")
        life = life if isinstance(life, int) and life > 0 else MIN_TOKEN_LIFE
        # keep a margin so a token is not used in the last seconds of its life
        return Token(value, time.time() + max(life - 10, life / 2))


def _basic(credentials: tuple[str, str]) -> str:
    import base64

    user, secret = credentials
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
