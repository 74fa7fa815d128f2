"""`rootless build` beside the real thing: the same Dockerfile built by `podman build`
gives an image with the same config fields and the same files; and the reference's
ONBUILD flow in the Debian image, its web server installed with apt by a user with no
subordinate ids, serving the site a child image added."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ok

pytestmark = pytest.mark.container

COMPARED = """\
ARG BASE=busybox:latest
FROM $BASE AS build
RUN mkdir /out && echo compiled > /out/app && chmod 755 /out/app
FROM $BASE
LABEL org.example.k=v
ENV APP_HOME=/srv/app PATH=/srv/app:$PATH
WORKDIR $APP_HOME
COPY --from=build /out/app ./app
COPY --chown=10:20 --chmod=640 conf.txt /etc/app.conf
ADD data.tar.gz /srv/data/
EXPOSE 8080/tcp 53/udp
VOLUME /var/cache/app
USER 10:20
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"""
FIELDS = ("Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
          "StopSignal", "Healthcheck", "OnBuild", "Shell")


def _compared_context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "d" / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(COMPARED)
    (ctx / "conf.txt").write_text("conf\n")
    (ctx / "d" / "sub" / "x").write_text("x\n")
    with tarfile.open(ctx / "data.tar.gz", "w:gz") as tar:
        tar.add(ctx / "d", arcname=".")
    shutil.rmtree(ctx / "d")
    return ctx


def _image_from_archive(archive: Path) -> tuple[dict, dict[str, tuple]]:
    """(config, the merged files of its layers: path -> (type, mode, uid, gid, digest))."""
    files: dict[str, tuple] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        for name in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                for m in layer:
                    path = m.name.lstrip("./").rstrip("/")
                    base = path.rsplit("/", 1)[-1]
                    if base.startswith(".wh."):
                        files.pop(path.replace(".wh.", "", 1), None)
                        continue
                    data = layer.extractfile(m).read() if m.isreg() else b""
                    files[path] = (m.type, m.mode & 0o7777, m.uid, m.gid,
                                   hashlib.sha256(data).hexdigest())
    return config, files


def _podman(tmp_path: Path, env: dict[str, str]):
    runroot = tempfile.mkdtemp(prefix="rl-podman-")  # podman wants it short
    base = ["podman", "--root", str(tmp_path / "proot"), "--runroot", runroot,
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend",
            "file"]

    def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True,
                              timeout=timeout)

    def cleanup() -> None:
        subprocess.run(["podman", "unshare", "rm", "-rf", str(tmp_path / "proot"), runroot],
                       env=env, capture_output=True)
    return podman, cleanup


@pytest.mark.needs_subids  # podman cannot unpack busybox's 1000-owned /home/user without
def test_podman_build_makes_the_same_config_and_files(rootless, busybox, image_archives,
                                                      tmp_path):
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    ctx = _compared_context(tmp_path)
    env = {**os.environ, "XDG_RUNTIME_DIR": rootless.env["XDG_RUNTIME_DIR"]}
    podman, cleanup = _podman(tmp_path, env)
    theirs_archive = tmp_path / "theirs.tar"
    try:
        pulled = podman("pull", f"oci-archive:{image_archives.oci}")
        assert pulled.returncode == 0, pulled.stderr
        built = podman("build", "--format", "docker", "-t", "cmp", str(ctx), timeout=600)
        assert built.returncode == 0, built.stderr
        saved = podman("save", "--format", "docker-archive", "-o", str(theirs_archive), "cmp")
        assert saved.returncode == 0, saved.stderr
    finally:
        cleanup()
    ok(rootless("build", "-q", "-t", "cmp", str(ctx), timeout=300))
    ours_archive = tmp_path / "ours.tar"
    ok(rootless("save", "-o", str(ours_archive), "cmp"))
    ours, our_files = _image_from_archive(ours_archive)
    theirs, their_files = _image_from_archive(theirs_archive)
    for field in FIELDS:
        assert ours["config"].get(field) == theirs["config"].get(field), field
    assert sorted(ours["config"]["Env"]) == sorted(theirs["config"]["Env"])
    their_labels = dict(theirs["config"]["Labels"])
    their_labels.pop("io.buildah.version", None)
    assert ours["config"]["Labels"] == their_labels
    for path in ("srv/app", "srv/app/app", "etc/app.conf", "srv/data", "srv/data/sub",
                 "srv/data/sub/x"):
        assert our_files.get(path) == their_files.get(path), path


def _mirror_reachable() -> bool:
    try:
        socket.create_connection(("deb.debian.org", 80), timeout=10).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_onbuild_site_is_served_by_a_web_server_installed_with_apt(rootless, debian,
                                                                    tmp_path):
    if not _mirror_reachable():
        pytest.skip("deb.debian.org:80 is not reachable from this host")
    base = tmp_path / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(
        "FROM debian:bookworm\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends lighttpd \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "RUN printf 'server.document-root = \"/var/www/html\"\\nserver.port = env.PORT\\n"
        "index-file.names = (\"index.html\")\\n' > /etc/lighttpd/site.conf\n"
        "ONBUILD ADD website.tar /var/www/html/\n"
        'CMD ["lighttpd", "-D", "-f", "/etc/lighttpd/site.conf"]\n')
    ok(rootless("build", "-t", "web-base", str(base), timeout=900))  # run's default network
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM web-base\n")
    page = tmp_path / "index.html"
    page.write_text("<h1>built by onbuild</h1>\n")
    with tarfile.open(child / "website.tar", "w") as tar:
        tar.add(page, arcname="index.html")
    out = ok(rootless("build", "-t", "web-site", str(child)))
    assert "Executing 1 build trigger" in out
    port = _free_port()
    ok(rootless("run", "-d", "--name", "site", "--network", "host", "-e", f"PORT={port}",
                "web-site"))
    body = None
    deadline = time.monotonic() + 30
    while body is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                body = reply.read().decode()
        except OSError:
            time.sleep(0.2)
    ok(rootless("rm", "-f", "site"))
    assert body == "<h1>built by onbuild</h1>\n"
