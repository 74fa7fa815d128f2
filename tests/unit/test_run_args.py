"""`rootless run` reads its flags as docker does."""

import pytest

from rootless.cli.run import parse, security_options, usage
from rootless.errors import UsageError


def test_combined_short_flags():
    v = parse(["-it", "img", "sh"])
    assert v["interactive"] and v["tty"] and v["image"] == "img" and v["command"] == ["sh"]


def test_flags_after_the_image_belong_to_the_command():
    v = parse(["--rm", "img", "ls", "-la", "--rm"])
    assert v["remove"] and v["command"] == ["ls", "-la", "--rm"]


def test_value_forms():
    v = parse(["-e", "A=1", "-eB=2", "--env=C=3", "--env", "D", "-u1000:100", "img"])
    assert v["env"] == ["A=1", "B=2", "C=3", "D"] and v["user"] == "1000:100"


def test_short_group_ending_in_a_value_flag():
    v = parse(["-itw", "/tmp", "img"])
    assert v["interactive"] and v["tty"] and v["workdir"] == "/tmp"


def test_double_dash_ends_flags():
    assert parse(["--", "-img"])["image"] == "-img"


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown flag: --nope"):
        parse(["--nope", "img"])


def test_missing_image_is_a_usage_error():
    with pytest.raises(UsageError, match="requires at least 1 argument"):
        parse(["--rm"])


def test_value_flag_without_value():
    with pytest.raises(UsageError, match="flag needs an argument: --name"):
        parse(["--name"])


def test_help_lists_every_flag():
    text = usage()
    for flag in ("--rm", "--env-file", "--entrypoint", "--init", "--network", "-v, --volume"):
        assert flag in text


@pytest.mark.parametrize("options, expected", [
    ([], (False, "builtin", False)),
    (["no-new-privileges"], (True, "builtin", False)),
    (["no-new-privileges=true"], (True, "builtin", False)),
    (["no-new-privileges:true"], (True, "builtin", False)),
    (["no-new-privileges=false"], (False, "builtin", False)),
    (["seccomp=unconfined"], (False, "unconfined", False)),
    (["seccomp:unconfined"], (False, "unconfined", False)),
    (["seccomp=/p/a:b.json", "no-new-privileges"], (True, "/p/a:b.json", False)),
    (["fakeroot-stat"], (False, "builtin", True)),
    (["fakeroot-stat=false"], (False, "builtin", False)),
])
def test_security_options_read_as_docker_reads_them(options, expected):
    assert security_options(options) == expected


@pytest.mark.parametrize("option", ["apparmor=unconfined", "seccomp", "seccomp=",
                                    "no-new-privileges=yes", "label:disable",
                                    "fakeroot-stat=yes"])
def test_unsupported_security_option_is_a_usage_error(option):
    with pytest.raises(UsageError, match=f"unsupported --security-opt: {option}"):
        security_options([option])
