"""rootless-oci's argparse-free reading of the verbs engines call most (state, start,
delete, kill, create, run) gives exactly what its argparse parser gives, and leaves
anything unusual to the parser."""

import pytest

from rootless.oci.main import _plain, parser

SAME = [
    ["state", "c1"],
    ["--root", "/r", "state", "a.b.c"],
    ["--root=/r", "--log", "/l", "--log-format=json", "start", "c1"],
    ["--debug", "--systemd-cgroup", "delete", "-f", "c1"],
    ["delete", "--force", "c1"],
    ["kill", "c1"],
    ["kill", "c1", "KILL"],
    ["kill", "-a", "c1", "9"],
    ["--cgroup-manager", "cgroupfs", "--rootless", "true", "kill", "--all", "c1", "TERM"],
    ["create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1"],
    ["create", "-b", "/b", "--preserve-fds", "2", "--no-pivot", "--no-new-keyring", "c1"],
    ["create", "--bundle=/b", "--pid-file=/p", "c1"],
    ["run", "-d", "--keep", "-b", "/b", "c1"],
    ["run", "c1", "--bundle", "/b", "--detach"],
]


@pytest.mark.parametrize("argv", SAME, ids=" ".join)
def test_the_plain_reading_is_the_parsers(argv):
    plain = vars(_plain(argv))
    parsed = vars(parser().parse_args(argv))
    assert {k: v for k, v in parsed.items() if k in plain} == plain


@pytest.mark.parametrize("argv", [
    ["state"], ["state", "a", "b"], ["--help"], ["state", "--help"], ["run", "--bogus", "c"],
    ["create", "--preserve-fds", "x", "c"], ["run", "c", "-b"], ["exec", "c", "true"],
    ["--rootless", "maybe", "state", "c"], ["--log-format", "xml", "state", "c"],
    ["kill", "c", "-9"], ["spec"], ["--unknown", "state", "c"],
])
def test_anything_unusual_goes_to_the_parser(argv):
    assert _plain(argv) is None
