"""WWW-Authenticate parsing and the token cache: one token per scope, reused until it
is about to expire, then asked for again."""

import time

from rootless.image.registry.auth import Auth, Challenge, Token, parse_challenge


def test_bearer_challenge_with_quoted_parameters():
    [c] = parse_challenge('Bearer realm="https://auth.docker.io/token",'
                          'service="registry.docker.io",scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io", "scope": "repository:a/b:pull,push"}


def test_basic_challenge_and_several_challenges():
    challenges = parse_challenge('Basic realm="Registry Realm", Bearer realm="https://x/t"')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params["realm"] == "Registry Realm"


def test_escaped_quote_in_a_parameter():
    [c] = parse_challenge(r'Bearer realm="https://x/t",error="a \"quoted\" word"')
    assert c.params["error"] == 'a "quoted" word'


def test_token_is_reused_for_its_scope_only_and_not_after_expiry():
    auth = Auth("reg", None)
    auth.challenge = Challenge("bearer", {"realm": "https://x/t"})
    auth.tokens["repository:a:pull"] = Token("tok", time.time() + 100)
    assert auth.header("repository:a:pull") == "Bearer tok"
    assert auth.header("repository:b:pull") is None
    auth.tokens["repository:a:pull"] = Token("tok", time.time() - 1)
    assert auth.header("repository:a:pull") is None


def test_basic_is_sent_only_with_credentials():
    auth = Auth("reg", None)
    auth.challenge = Challenge("basic", {})
    assert auth.header("any") is None
    auth = Auth("reg", ("u", "p"))
    auth.challenge = Challenge("basic", {})
    assert auth.header("any") == "Basic dTpw"
