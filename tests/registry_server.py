"""Registries for the tests: Debian's `docker-registry` (the CNCF distribution server)
on 127.0.0.1, open, behind htpasswd Basic auth, or behind token auth with a token server
run here (RS256 JWTs signed with a test key by the `openssl` program, certificate in the
registry's rootcertbundle); and small hand-made HTTP servers for what a real registry
never does (corrupt blobs, oversized manifests, redirects, silence, /v1/search).

Everything runs as the unprivileged test user; nothing is reached over the internet.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pw"
SERVICE, ISSUER = "rootless-test-registry", "rootless-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password: str) -> str:
    """An htpasswd -B line's hash: Python's crypt module over libxcrypt (Debian 12's
    python3.11 has it; no bcrypt module or apache2-utils needed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RegistryServer:
    """`docker-registry serve` on a free port; kind: "open" | "basic" | "token" | "tls"
    (HTTPS with a self-signed certificate for 127.0.0.1, in `self.cert`)."""

    def __init__(self, workdir: Path, kind: str = "open") -> None:
        self.workdir, self.kind = workdir, kind
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tokens: TokenServer | None = None
        self.cert = workdir / "tls-cert.pem"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RegistryServer":
        config = self.workdir / "config.yml"
        config.write_text(self._config())
        log = open(self.workdir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " +
                                   (self.workdir / "registry.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start listening")

    def _config(self) -> str:
        auth = ""
        if self.kind == "basic":
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(f"{USER}:{bcrypt_hash(PASSWORD)}\n")
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
        elif self.kind == "token":
            self.tokens = TokenServer(self.workdir / "token").start()
            auth = (f"auth:\n  token:\n    realm: {self.tokens.url}/token\n"
                    f"    service: {SERVICE}\n    issuer: {ISSUER}\n"
                    f"    rootcertbundle: {self.tokens.cert}\n")
        elif self.kind == "tls":
            key = self.workdir / "tls-key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(key), "-out", str(self.cert), "-days", "2",
                            "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            auth = f"  tls:\n    certificate: {self.cert}\n    key: {key}\n"
        return (f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
                f"  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: test-secret\n{auth}")

    def log(self) -> str:
        return (self.workdir / "registry.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tokens:
            self.tokens.stop()

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """A plain GET on the open registry, for assertions."""
        request = urllib.request.Request(f"http://{self.host}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()


# ---- the token server ----

class TokenServer:
    """The Docker token protocol: GET /token?service=S&scope=repository:NAME:ACTIONS with
    optional Basic credentials -> {"token", "expires_in"}. Anonymous callers get pull
    only; USER/PASSWORD get what they ask; wrong credentials get 401. The next
    `expire_next` tokens are already expired when issued (while saying expires_in 300),
    so the registry refuses them."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = workdir / "key.pem", workdir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                        "-subj", "/CN=rootless test token issuer"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict] = []
        self.expire_next = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "TokenServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{b64url(json.dumps(header).encode())}." \
                        f"{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return f"{signing_input}.{b64url(signature)}"

    def _handler(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    given = base64.b64decode(auth[6:]).decode()
                    if given != f"{USER}:{PASSWORD}":
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = USER
                outer.requests.append({"scope": query.get("scope", []), "user": user})
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":", 2)
                    allowed = actions.split(",") if user else \
                        [a for a in actions.split(",") if a == "pull"]
                    access.append({"type": kind, "name": name, "actions": allowed})
                now = int(time.time())
                if outer.expire_next > 0:
                    outer.expire_next -= 1
                    now -= 7200  # issued two hours ago: long expired, past any leeway
                token = outer.sign({"iss": ISSUER, "sub": user or "", "aud": SERVICE,
                                    "exp": now + 300, "nbf": now - 10, "iat": now,
                                    "jti": hashlib.sha256(os.urandom(8)).hexdigest(),
                                    "access": access})
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


# ---- hand-made servers ----

class FakeServer:
    """An HTTP server answering from `routes`: path (without query) -> a function
    (handler) -> None that writes the whole response. Records every request as
    (method, path, headers)."""

    def __init__(self) -> None:
        self.routes: dict = {}
        self.seen: list[tuple[str, str, dict]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                outer.seen.append((self.command, self.path, dict(self.headers)))
                route = outer.routes.get(path)
                if route is None:
                    reply(self, 404 if path != "/v2/" else 200, b"{}")
                else:
                    route(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _any

        return Handler


def reply(handler, status: int, body: bytes, headers: dict | None = None,
          length: int | None = None) -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    if length is not None and length != len(body):
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class SilentServer:
    """Accepts connections and never answers (a registry that stopped)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.sock.close()


# ---- a tiny image, made here, for the hand-made servers ----

def stalling_blob(data: bytes, seconds: float, started: threading.Event | None = None):
    """A route that promises `data`, sends its first 10 bytes, then goes silent for
    `seconds` (setting `started` once the bytes are out)."""
    def stall(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:10])
        handler.wfile.flush()
        if started:
            started.set()
        time.sleep(seconds)

    return stall


class TinyImage:
    """Layers holding /hello (then /hello1, /hello2, ... one file a layer; gzip, zstd or
    uncompressed), their config and an OCI manifest, as bytes. `layer`/`tar` are the
    first layer's."""

    LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                   "none": "application/vnd.oci.image.layer.v1.tar"}

    def __init__(self, text: bytes = b"hello from a tiny image\n",
                 compression: str = "gzip", layer_count: int = 1,
                 tars: list[bytes] | None = None) -> None:
        self.tars = tars or [self.tar_of({f"hello{i or ''}": text}) for i in range(layer_count)]
        self.layers = [self.compress(tar, compression) for tar in self.tars]
        self.tar, self.layer = self.tars[0], self.layers[0]
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in self.tars]}}).encode()
        self.manifest_data = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": self.LAYER_TYPES[compression],
                        "digest": sha(layer), "size": len(layer)} for layer in self.layers]}
        self.manifest = json.dumps(self.manifest_data).encode()

    @staticmethod
    def tar_of(files: dict[str, bytes]) -> bytes:
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    @staticmethod
    def compress(tar: bytes, compression: str) -> bytes:
        import gzip

        if compression == "gzip":
            return gzip.compress(tar, mtime=0)
        if compression == "zstd":
            return subprocess.run(["zstd", "-q", "-c"], input=tar, check=True,
                                  capture_output=True).stdout
        return tar

    def serve(self, server: FakeServer, repo: str = "tiny", tag: str = "1",
              manifest: bytes | None = None, media_type: str | None = None,
              blobs: dict | None = None) -> None:
        """Routes for the manifest (by tag and digest) and the blobs; `blobs` maps a
        digest to replacement bytes (a corrupt blob)."""
        manifest = self.manifest if manifest is None else manifest
        media_type = media_type or "application/vnd.oci.image.manifest.v1+json"
        digest = sha(manifest)

        def send_manifest(h):
            reply(h, 200, manifest, {"Content-Type": media_type,
                                     "Docker-Content-Digest": digest})

        server.routes[f"/v2/{repo}/manifests/{tag}"] = send_manifest
        server.routes[f"/v2/{repo}/manifests/{digest}"] = send_manifest
        for data in (self.config, *self.layers):
            body = (blobs or {}).get(sha(data), data)
            server.routes[f"/v2/{repo}/blobs/{sha(data)}"] = \
                lambda h, body=body: reply(h, 200, body,
                                           {"Content-Type": "application/octet-stream"})


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def isolate_registry_client(rootless, tmp_path, timeout: str | None = None):
    """`rootless` with its own docker config dir, no registries.json, and optionally a
    registry timeout: what every registry test's `reg` fixture gives."""
    rootless.env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    rootless.env["ROOTLESS_REGISTRIES_CONF"] = str(tmp_path / "registries.json")
    if timeout is not None:
        rootless.env["ROOTLESS_REGISTRY_TIMEOUT"] = timeout
    return rootless
