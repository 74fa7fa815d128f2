"""One registry over HTTP: the v2 API calls the transports need.

Scheme and TLS: HTTPS verified against the system CA store (requests' certifi bundle is
not used: REQUESTS_CA_BUNDLE / the distribution's /etc/ssl/certs/ca-certificates.crt
come first); a registry marked insecure (registries.json) or a command given
`--tls-verify=false` is tried over HTTPS without verification, then over plain HTTP.

Redirects are followed here, not by requests, so that the Authorization header goes to
the registry only and never to the blob storage a redirect points at (S3, a CDN).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Iterator
from urllib.parse import urljoin, urlsplit

from rootless.errors import ImageError
from rootless.image.manifest import INDEX_TYPES, MANIFEST_TYPES, MAX_MANIFEST, media_type_of
from rootless.image.registry.auth import Auth
from rootless.image.registry.config import RegistriesConf, conf_load

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_INDEX = "index.docker.io"
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)
MAX_REDIRECTS = 5
SYSTEM_CA = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
             "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")


def default_timeout() -> float:
    try:
        return float(os.environ.get("ROOTLESS_REGISTRY_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def system_ca_bundle() -> str | bool:
    explicit = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if explicit:
        return explicit
    return next((path for path in SYSTEM_CA if os.path.isfile(path)), True)


class Registry:
    def __init__(self, host: str, credentials: tuple[str, str] | None = None,
                 tls_verify: bool | None = None, conf: RegistriesConf | None = None) -> None:
        conf = conf or conf_load()
        self.host = host
        self.api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        self.insecure = tls_verify is False or (tls_verify is None and
                                                conf.is_insecure(host))
        self.auth = Auth(host, credentials)
        self.timeout = default_timeout()
        self._base: str | None = None
        self._session = None

    # ---- transport ----

    @property
    def session(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers["User-Agent"] = "rootless/0.1"
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def raw_request(self, method: str, url: str, headers: dict[str, str] | None = None,
                    stream: bool = False, **kwargs):
        """One request, redirects followed by hand: Authorization only to the host
        it was meant for."""
        import requests

        headers = dict(headers or {})
        origin = urlsplit(url).netloc
        verify = False if self.insecure else system_ca_bundle()
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self.session.request(method, url, headers=headers, stream=stream,
                                                timeout=self.timeout, verify=verify,
                                                allow_redirects=False, **kwargs)
            except requests.exceptions.SSLError as e:
                raise ImageError(f"registry {self.host}: TLS failed: {_short(e)} (if the "
                                 "registry is trusted: --tls-verify=false, or list it as "
                                 "insecure in registries.json)") from None
            except requests.exceptions.Timeout:
                raise ImageError(f"registry {self.host}: no answer within "
                                 f"{self.timeout:g} s ({method} {_path(url)})") from None
            except requests.exceptions.RequestException as e:
                raise ImageError(f"registry {self.host}: cannot connect: {_short(e)}") \
                    from None
            if response.status_code not in (301, 302, 303, 307, 308) \
                    or "Location" not in response.headers:
                return response
            response.close()
            url = urljoin(url, response.headers["Location"])
            if urlsplit(url).netloc != origin:
                headers.pop("Authorization", None)
            if response.status_code == 303:
                method, kwargs = "GET", {k: v for k, v in kwargs.items() if k != "data"}
        raise ImageError(f"registry {self.host}: more than {MAX_REDIRECTS} redirects")

    @property
    def base(self) -> str:
        """https://host or, for an insecure registry that has no TLS, http://host."""
        if self._base is None:
            self._base = self._ping()
        return self._base

    def _ping(self) -> str:
        https = f"https://{self.api_host}"
        try:
            self._ping_answer(self.raw_request("GET", f"{https}/v2/"))
            return https
        except ImageError:
            if not self.insecure:
                raise  # a TLS failure's message says how to allow plain HTTP
        http = f"http://{self.api_host}"
        self._ping_answer(self.raw_request("GET", f"{http}/v2/"))
        return http

    def _ping_answer(self, response) -> None:
        """A Basic challenge on /v2/ means every request may carry the credentials
        at once, saving a 401 round trip each (Bearer tokens depend on the scope)."""
        from rootless.image.registry.auth import parse_challenge

        response.close()
        if response.status_code == 401:
            for challenge in parse_challenge(response.headers.get("WWW-Authenticate", "")):
                if challenge.scheme == "basic" and self.auth.challenge is None:
                    self.auth.challenge = challenge

    def request(self, method: str, path: str, scope: str, headers: dict | None = None,
                ok: tuple[int, ...] = (200,), what: str = "", **kwargs):
        """A request to the API at `path` (or an absolute upload URL), authenticated for
        `scope` (a 401 is answered once); a status outside `ok` is an ImageError."""
        url = path if path.startswith(("http://", "https://")) else self.base + path
        headers = dict(headers or {})
        auth = self.auth.header(scope)
        if auth:
            headers["Authorization"] = auth
        response = self.raw_request(method, url, headers=headers, **kwargs)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            if not self.auth.answer(self, challenge, scope):
                raise self._unauthorized()
            headers["Authorization"] = self.auth.header(scope) or ""
            response = self.raw_request(method, url, headers=headers, **kwargs)
            if response.status_code == 401:
                response.close()
                raise self._unauthorized()
        if response.status_code not in ok:
            message = _error_message(response)
            response.close()
            raise ImageError(f"registry {self.host}: {what or method + ' ' + _path(url)}: "
                             f"{message}")
        return response

    def _unauthorized(self) -> ImageError:
        if self.auth.credentials:
            return ImageError(f"registry {self.host}: unauthorized: incorrect username or "
                              f"password, or no access (try: rootless login {self.host})")
        return ImageError(f"registry {self.host}: unauthorized: authentication required "
                          f"(try: rootless login {self.host})")

    # ---- API calls ----

    def check_login(self) -> None:
        """GET /v2/ with the credentials; raises if they are refused."""
        self.request("GET", "/v2/", "", what="login")

    def manifest_get(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest) of a manifest or index; size-capped, and its
        digest checked against the reference or the registry's Docker-Content-Digest."""
        what = f"manifest {repo}:{reference}" if ":" not in reference \
            else f"manifest {repo}@{reference}"
        response = self.request("GET", f"/v2/{repo}/manifests/{reference}", pull(repo),
                                headers={"Accept": ACCEPT}, stream=True, ok=(200,),
                                what=what)
        with response:
            raw = _read_capped(response, what)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            claimed = response.headers.get("Docker-Content-Digest", "")
        if media_type in ("", "application/json", "text/plain"):
            import json

            try:
                data = json.loads(raw)
            except ValueError:
                raise ImageError(f"{what} is not valid JSON") from None
            media_type = media_type_of(data if isinstance(data, dict) else {})
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            raise ImageError(f"{what} has unsupported media type {media_type!r}")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        expected = reference if reference.startswith("sha256:") else claimed
        if expected.startswith("sha256:") and expected != digest:
            raise ImageError(f"{what}: content hashes to {digest}, not {expected}: the "
                             "registry sent a corrupt or tampered manifest")
        return raw, media_type, digest

    def blob_open(self, repo: str, digest: str) -> "BlobReader":
        response = self.request("GET", f"/v2/{repo}/blobs/{digest}", pull(repo),
                                stream=True, what=f"blob {digest[:19]}")
        return BlobReader(response, f"blob {digest[:19]} from {self.host}/{repo}")

    def blob_exists(self, repo: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", push(repo),
                                ok=(200, 404), what=f"blob {digest[:19]}")
        response.close()
        return response.status_code == 200

    def upload_start(self, repo: str, mount: tuple[str, str] | None = None) -> str | None:
        """POST an upload; with `mount` (digest, from-repo) ask for a cross-repository
        mount first: None if the registry mounted it, else the upload URL."""
        params, scope = {}, push(repo)
        if mount:
            params = {"mount": mount[0], "from": mount[1]}
            scope += " " + pull(mount[1])
        response = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope, params=params,
                                ok=(201, 202), what="blob upload")
        response.close()
        if response.status_code == 201 and mount:
            return None
        location = response.headers.get("Location")
        if not location:
            raise ImageError(f"registry {self.host}: upload to {repo} gave no Location")
        return urljoin(self.base + "/", location)

    def upload_chunk(self, repo: str, url: str, data: bytes, offset: int) -> str:
        response = self.request("PATCH", url, push(repo), data=data, ok=(202,),
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Range": f"{offset}-{offset + len(data) - 1}"},
                                what="blob upload chunk")
        response.close()
        return urljoin(url, response.headers.get("Location") or url)

    def upload_finish(self, repo: str, url: str, digest: str, data: bytes = b"") -> None:
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        response = self.request("PUT", url, push(repo), data=data, ok=(201, 204),
                                headers={"Content-Type": "application/octet-stream"},
                                what=f"blob {digest[:19]} upload")
        response.close()

    def manifest_put(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        response = self.request("PUT", f"/v2/{repo}/manifests/{reference}", push(repo),
                                data=raw, headers={"Content-Type": media_type},
                                ok=(200, 201, 202), what=f"manifest {repo}:{reference}")
        response.close()
        return response.headers.get("Docker-Content-Digest") or \
            "sha256:" + hashlib.sha256(raw).hexdigest()

    def tags_list(self, repo: str) -> list[str]:
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list"
        while path:
            response = self.request("GET", path, pull(repo), what=f"tags of {repo}")
            with response:
                data = _json(response, f"tags of {repo}")
                link = response.links.get("next", {}).get("url")
            tags += [t for t in (data.get("tags") or []) if isinstance(t, str)]
            path = urljoin(self.base + path, link) if link else None
        return tags

    def search(self, term: str, limit: int) -> list[dict[str, Any]]:
        host = DOCKER_HUB_INDEX if self.host == DOCKER_HUB else self.api_host
        base = self.base.replace(self.api_host, host, 1)
        response = self.raw_request("GET", f"{base}/v1/search",
                                    params={"q": term, "n": str(limit)})
        with response:
            if response.status_code == 404:
                raise ImageError(f"registry {self.host} does not support search "
                                 "(it has no /v1/search endpoint)")
            if response.status_code != 200:
                raise ImageError(f"registry {self.host}: search: "
                                 f"{_error_message(response)}")
            data = _json(response, "search results")
        results = data.get("results")
        if not isinstance(results, list):
            raise ImageError(f"registry {self.host}: search results have no 'results' list")
        return [r for r in results if isinstance(r, dict)]


def pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


class BlobReader:
    """A blob's HTTP body as a file-like object; network failures become ImageError."""

    def __init__(self, response, what: str) -> None:
        self.response, self.what = response, what
        self.length = int(response.headers.get("Content-Length") or -1)

    def read(self, n: int = -1) -> bytes:
        import requests
        import urllib3

        try:
            return self.response.raw.read(None if n is None or n < 0 else n,
                                          decode_content=False)
        except (urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout):
            raise ImageError(f"{self.what}: the registry stopped sending") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ImageError(f"{self.what} is truncated: the connection ended early "
                             f"({_short(e)})") from None

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_capped(response, what: str) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > MAX_MANIFEST:
        raise ImageError(f"{what} is larger than {MAX_MANIFEST >> 20} MiB: refused")
    chunks: list[bytes] = []
    total = 0
    for chunk in _iter(response, what):
        total += len(chunk)
        if total > MAX_MANIFEST:
            raise ImageError(f"{what} is larger than {MAX_MANIFEST >> 20} MiB: refused")
        chunks.append(chunk)
    return b"".join(chunks)


def _iter(response, what: str) -> Iterator[bytes]:
    import requests

    try:
        yield from response.iter_content(1 << 16)
    except requests.exceptions.RequestException as e:
        raise ImageError(f"{what}: the connection failed: {_short(e)}") from None


def _json(response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ImageError(f"{what}: the registry sent no JSON") from None
    if not isinstance(data, dict):
        raise ImageError(f"{what}: the registry sent no JSON object")
    return data


def _error_message(response) -> str:
    """The registry's own error ({"errors": [{"code", "message"}]}) or the status."""
    try:
        errors = response.json().get("errors")
        first = errors[0]
        return f"{first.get('code', '').lower().replace('_', ' ')}: {first.get('message')}"
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _path(url: str) -> str:
    return urlsplit(url).path


def _short(e: BaseException) -> str:
    import re

    text = str(e)
    ssl = re.search(r"\[SSL[^\]]*\] ([^(]*?)\s*\(_ssl", text)
    if ssl:
        return ssl[1]
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]*)", text)
    if errno:
        return errno[1].strip()
    for marker in ("Caused by ", "(Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:160]


