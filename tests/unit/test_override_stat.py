"""override_stat records are read back strictly: a container can write one on its own
files, so a malformed or out-of-range record is ignored (the kernel's values stand)."""

import stat

import pytest

from rootless.image.layers import override_value, parse_override


def test_a_record_written_by_the_unpacker_reads_back():
    assert parse_override(override_value(1000, 42, 0o4755)) == (1000, 42, 0o4755, 0, (0, 0))
    assert parse_override("0:0:0620:char-4-1") == (0, 0, 0o620, stat.S_IFCHR, (4, 1))


@pytest.mark.parametrize("value", [
    "4294967295:0:0644", "0:4294967295:0644", "99999999999:0:0644", "-1:0:0644",
    "0:0:+644", "0:0:0o644", "0:0:0899", "0:0:017777", "0:0:0644:char-x-1",
    "0:0:0644:pipe-1-1", "0:0:0644:char-4096-0", "0:0", "", "٣:0:0644",
])
def test_a_malformed_or_out_of_range_record_is_ignored(value):
    assert parse_override(value) is None
