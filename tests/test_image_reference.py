"""image/reference.py: Docker's normalisation of image names."""

from __future__ import annotations

import pytest

from rootless.errors import ImageError
from rootless.image.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest",
     "busybox:latest"),
    ("user/img", "docker.io/user/img:latest", "user/img:latest"),
    ("user/img:v1.0-rc_2", "docker.io/user/img:v1.0-rc_2", "user/img:v1.0-rc_2"),
    ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ("quay.io/org/repo", "quay.io/org/repo:latest", "quay.io/org/repo:latest"),
    ("127.0.0.1:5000/a", "127.0.0.1:5000/a:latest", "127.0.0.1:5000/a:latest"),
    ("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a:latest"),
    ("Registry.Example.com/a", "Registry.Example.com/a:latest",
     "Registry.Example.com/a:latest"),
    ("a__b/c.d-e", "docker.io/a__b/c.d-e:latest", "a__b/c.d-e:latest"),
    ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}",
     f"busybox:1@{DIGEST}"),
])
def test_normalisation(text, full, familiar):
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_parts():
    ref = parse_reference("host:5000/a/b:tag")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", "tag", None)
    assert ref.name == "host:5000/a/b"
    assert ref.familiar_name == "host:5000/a/b"
    assert parse_reference("busybox").familiar_name == "busybox"


@pytest.mark.parametrize("text", ["busybox:1", "library/a/b:2", "user/img@" + DIGEST,
                                  "host:5000/x:y", "docker.io/library/busybox@" + DIGEST])
def test_engine_familiar_matches_reference(text):
    from rootless.engine.images import _familiar

    ref = parse_reference(text)
    assert _familiar(str(ref)) == ref.familiar()


def test_no_default_tag_when_asked():
    assert parse_reference("busybox", default_tag=False).tag is None


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("Busybox", "must be lowercase"),
    ("user/Img", "must be lowercase"),
    ("busybox:", "invalid reference format"),
    ("busybox:tag with space", "invalid reference format"),
    (":latest", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-a", "invalid reference format"),
    ("a-", "invalid reference format"),
    ("busybox:" + "t" * 129, "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("ab" * 32, "64-hex image id"),
    ("a/" * 130 + "b", "longer than 255"),
])
def test_invalid(text, words):
    with pytest.raises(ImageError, match=words) as e:
        parse_reference(text)
    assert str(e.value).startswith("invalid reference format")
