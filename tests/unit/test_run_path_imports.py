"""`rootless run` does its work without the standard modules whose imports cost it most
(re with enum and functools, json, contextlib, signal, shlex, typing): jsonfast, the
reference's plain-name path and hand-written parsers stand in for them, and each
replacement answers exactly as the module it replaces."""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys

import pytest

from rootless import jsonfast
from rootless.engine.run import shell_join
from rootless.errors import ImageError
from rootless.image import reference
from rootless.net.files import NetworkFiles, resolv_conf

# what the command imports before it forks the container's monitor, and what the monitor
# imports before its container starts (engine/monitor.py, _wait_for_container)
BEFORE_THE_MONITOR = """
import rootless.cli.main, rootless.cli.run, rootless.engine.monitor_fork, rootless.store.root
import rootless.engine.monitor, rootless.engine.cgroups, rootless.engine.container_settings
import rootless.kernel.procs, rootless.kernel.notify, rootless.runtime.annotations
import rootless.runtime.run, rootless.runtime.seccomp_fakeroot, rootless.runtime.seccomp
"""
# and what the command imports to create the container
CREATING = BEFORE_THE_MONITOR + """
import rootless.engine.run, rootless.store.store, rootless.engine.containers
import rootless.engine.images, rootless.engine.spec, rootless.engine.users
import rootless.net.files, rootless.fs.strategy, rootless.fs.probe, rootless.fs.rootfs
from rootless.image.reference import parse_reference
parse_reference("busybox:latest")
"""
HEAVY = {"re", "enum", "json", "contextlib", "signal", "shlex", "typing", "pathlib",
         "functools", "collections", "array"}


def _imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_monitor_is_forked_and_ready_without_the_costly_modules():
    loaded = _imported(BEFORE_THE_MONITOR)
    assert "rootless.runtime.run" in loaded  # the check ran what it means to
    assert not loaded & HEAVY, loaded & HEAVY


def test_the_container_is_created_without_the_costly_modules():
    loaded = _imported(CREATING)
    assert "rootless.store.store" in loaded  # the check ran what it means to
    assert not loaded & HEAVY, loaded & HEAVY


def test_the_store_loads_sqlite_without_functools_and_caches_statements():
    loaded = _imported("""
from rootless.store.store import sqlite3
db = sqlite3.connect(":memory:")
assert [db.execute("SELECT ?", (i % 3,)).fetchone()[0] for i in range(6)] == [0, 1, 2] * 2
import functools
assert functools.lru_cache.__module__ == "functools"  # the real one, for whoever asks
""")
    assert "_sqlite3" in loaded


DOCUMENTS = ['{}', '[]', ' {"a": [1, 2.5, -3e10, true, false, null, "x\\u00e9\\ud83d\\ude00"]} ',
             '"s"', '1', 'NaN', '[Infinity,-Infinity]', '{"a":1,"a":2}', '  [1,2]  \n',
             b'{"bytes": "\xc3\xa9"}', b'\xef\xbb\xbf{"bom":1}', '{"k": {"k": {"k": 1}}}',
             '{"a": "x"}'.encode("utf-16")]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_jsonfast_loads_as_json_does(document):
    assert repr(jsonfast.loads(document)) == repr(json.loads(document))


@pytest.mark.parametrize("document", ["", "  ", "{", "[1,]", '{"a":1} x', b"\xff",
                                      '"\x00"', '{"a" 1}', "[1] [2]"])
def test_jsonfast_refuses_what_json_refuses_with_its_error(document):
    with pytest.raises(ValueError) as ours:
        jsonfast.loads(document)
    with pytest.raises(ValueError) as theirs:
        json.loads(document)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


VALUES = [{}, [], {"b": 1, "a": [1.5, 1e300, float("inf"), None, True, 'é\n"', {"z": {}}]},
          "str\u2028", 3, 2.0, [1, [2, [3]]], {"x": (1, 2)}, {1: "int key", 2.5: 0}]
OPTIONS = [{}, {"sort_keys": True}, {"separators": (",", ":")}, {"ensure_ascii": False},
           {"sort_keys": True, "separators": (",", ":")}, {"indent": 2}]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("value", VALUES)
def test_jsonfast_dumps_as_json_does(value, options):
    assert jsonfast.dumps(value, **options) == json.dumps(value, **options)


def test_jsonfast_refuses_a_document_nested_too_deeply_as_bad_input():
    with pytest.raises(ValueError, match="nested too deeply"):
        jsonfast.loads("[" * 100000 + "]" * 100000)


def test_jsonfast_refuses_what_json_cannot_hold():
    circular: list = []
    circular.append(circular)
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonfast.dumps({"a": object()})
    with pytest.raises(ValueError, match="Circular reference"):
        jsonfast.dumps(circular)


def _grammar_only(text: str, default_tag: bool):
    saved, reference._plain_reference = reference._plain_reference, lambda text: None
    try:
        return reference.parse_reference(text, default_tag)
    finally:
        reference._plain_reference = saved


def _outcome(parse, text: str, default_tag: bool):
    try:
        return "ok", parse(text, default_tag)
    except ImageError as e:
        return "error", str(e)


@pytest.mark.parametrize("text", ["busybox", "busybox:latest", "debian:12", "a" * 230,
                                  "a" * 240, "x:" + "a" * 128, "x:" + "a" * 129, "x:.a",
                                  "x:-a", "x:_a", "x:A.b-c", "b" * 64, "a" * 64, "Busybox",
                                  "busybox:", ":tag", "bu_sy", "x:é"])
def test_a_plain_name_is_read_as_the_grammar_reads_it(text):
    for default_tag in (True, False):
        assert (_outcome(reference.parse_reference, text, default_tag) ==
                _outcome(_grammar_only, text, default_tag))


def test_any_short_reference_is_read_as_the_grammar_reads_it():
    chars = "abz09:._-/@A"
    rng = random.Random(7)
    for _ in range(20000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 10)))
        assert (_outcome(reference.parse_reference, text, True) ==
                _outcome(_grammar_only, text, True)), text


def test_shell_join_quotes_as_shlex_does():
    chars = "ab Z09_@%+=:,./-'\"$\\\t\néß\u00a0日١"
    rng = random.Random(11)
    for _ in range(20000):
        args = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))
                for _ in range(rng.randint(0, 4))]
        assert shell_join(args) == shlex.join(args), args


def test_resolv_conf_takes_each_keyword_from_its_own_line(monkeypatch):
    host = ("# a comment\nnameserver 127.0.0.53\n  nameserver 10.1.2.3 # lab\n"
            "nameserver\nsearch lab.example example.org\ndomain x\noptions ndots:2 edns0\n"
            "nameserverX 1.1.1.1\n")
    monkeypatch.setattr("rootless.net.files._read", lambda path: host)
    files = NetworkFiles(network="none")
    assert resolv_conf(files) == ("nameserver 10.1.2.3\nsearch lab.example example.org x\n"
                                  "options ndots:2 edns0\n")
