"""login, logout and authenticated pull/push against the real registry behind htpasswd
Basic auth and behind token auth (a token server run by the test, RS256 JWTs)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from helpers import assert_error, ok
from registry_server import PASSWORD, USER, RegistryServer, isolate_registry_client


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-basic"), "basic").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    server = RegistryServer(tmp_path_factory.mktemp("registry-token"), "token").start()
    yield server
    server.stop()


@pytest.fixture
def reg(rootless, tmp_path):
    return isolate_registry_client(rootless, tmp_path, "10")


def config_file(reg) -> Path:
    return Path(reg.env["DOCKER_CONFIG"]) / "config.json"


def login(reg, server, password=PASSWORD):
    return reg("login", "--tls-verify=false", "-u", USER, "--password-stdin", server.host,
               input=password + "\n")


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_stores_base64_credentials_mode_0600(reg, kind, request):
    server = request.getfixturevalue(kind)
    assert ok(login(reg, server)).strip() == "Login Succeeded"
    path = config_file(reg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = json.loads(path.read_text())["auths"][server.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{USER}:{PASSWORD}"


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_with_a_wrong_password_fails_and_stores_nothing(reg, kind, request):
    server = request.getfixturevalue(kind)
    assert_error(login(reg, server, "wrong"), 1, "unauthorized", "incorrect username")
    assert not config_file(reg).exists()


def test_login_keeps_other_keys_of_the_config(reg, basic):
    config_file(reg).parent.mkdir()
    config_file(reg).write_text(json.dumps({"auths": {"other:1": {"auth": "eDp5"}},
                                            "psFormat": "table {{.ID}}"}))
    ok(login(reg, basic))
    data = json.loads(config_file(reg).read_text())
    assert data["psFormat"] == "table {{.ID}}" and "other:1" in data["auths"]


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_push_without_login_is_unauthorized(reg, busybox, kind, request):
    server = request.getfixturevalue(kind)
    assert_error(reg("push", "--tls-verify=false", busybox, f"{server.host}/auth/x:1"), 1,
                 "unauthorized", "rootless login")


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_push_and_pull_after_login(reg, busybox, kind, request, tmp_path):
    server = request.getfixturevalue(kind)
    ok(login(reg, server))
    ref = f"{server.host}/auth/{kind}:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    reg.env["ROOTLESS_ROOT"] = str(tmp_path / "store2")
    assert ok(reg("pull", "-q", "--tls-verify=false", ref)).strip() == ref


def test_stale_bad_credentials_give_a_clear_401(reg, busybox, basic):
    config_file(reg).parent.mkdir()
    bad = base64.b64encode(f"{USER}:nope".encode()).decode()
    config_file(reg).write_text(json.dumps({"auths": {basic.host: {"auth": bad}}}))
    assert_error(reg("pull", "--tls-verify=false", f"{basic.host}/auth/basic:1"), 1,
                 "incorrect username or password")


def test_logout_removes_the_credentials(reg, basic):
    ok(login(reg, basic))
    assert ok(reg("logout", basic.host)).strip() == \
        f"Removing login credentials for {basic.host}"
    assert basic.host not in json.loads(config_file(reg).read_text())["auths"]
    assert ok(reg("logout", basic.host)).strip() == f"Not logged in to {basic.host}"


def test_token_anonymous_pull_and_token_reuse(reg, busybox, token, tmp_path):
    ok(login(reg, token))
    ref = f"{token.host}/auth/anon:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    ok(reg("logout", token.host))
    reg.env["ROOTLESS_ROOT"] = str(tmp_path / "store2")
    before = len(token.tokens.requests)
    ok(reg("pull", "--tls-verify=false", ref))
    asked = token.tokens.requests[before:]
    # one token for the whole pull (manifest, config and layers), asked anonymously
    assert asked == [{"scope": ["repository:auth/anon:pull"], "user": None}]


def test_a_token_the_registry_refuses_ends_the_pull_with_one_line_not_a_loop(
        reg, busybox, token, tmp_path):
    """An expired token straight from the token server: asked for once, refused, and
    the pull ends as unauthorized with nothing in the store."""
    ok(login(reg, token))
    ref = f"{token.host}/auth/expired:1"
    ok(reg("push", "--tls-verify=false", busybox, ref))
    reg.env["ROOTLESS_ROOT"] = str(tmp_path / "store2")
    before = len(token.tokens.requests)
    token.tokens.expire_next = 5
    assert_error(reg("pull", "--tls-verify=false", ref), 1, "unauthorized")
    assert len(token.tokens.requests[before:]) == 1
    assert ok(reg("images", "-q")) == ""


def test_token_anonymous_push_is_refused(reg, busybox, token):
    """must not: an anonymous (pull-only) token is not enough to write."""
    assert_error(reg("push", "--tls-verify=false", busybox, f"{token.host}/auth/nope:1"),
                 1, "unauthorized")
    assert not (token.workdir / "data/docker/registry/v2/repositories/auth/nope").exists()


def test_credential_helper_is_used_when_configured(reg, busybox, basic, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    saved = tmp_path / "helper-store.json"
    helper = bindir / "docker-credential-rltest"
    helper.write_text(f"""#!/usr/bin/env python3
import json, sys
path = {str(saved)!r}
action, data = sys.argv[1], sys.stdin.read()
try:
    db = json.load(open(path))
except FileNotFoundError:
    db = {{}}
if action == "store":
    item = json.loads(data); db[item["ServerURL"]] = item
elif action == "get":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    item = db[data.strip()]
    print(json.dumps({{"Username": item["Username"], "Secret": item["Secret"]}}))
elif action == "erase":
    db.pop(data.strip(), None)
json.dump(db, open(path, "w"))
""")
    helper.chmod(0o755)
    reg.env["PATH"] = f"{bindir}:{os.environ['PATH']}"
    config_file(reg).parent.mkdir()
    config_file(reg).write_text(json.dumps({"credsStore": "rltest"}))
    ok(login(reg, basic))
    assert json.loads(saved.read_text())[basic.host]["Secret"] == PASSWORD
    assert "auth" not in json.loads(config_file(reg).read_text())["auths"].get(basic.host, {})
    ok(reg("push", "--tls-verify=false", busybox, f"{basic.host}/auth/helper:1"))
    ok(reg("logout", basic.host))
    assert basic.host not in json.loads(saved.read_text())
