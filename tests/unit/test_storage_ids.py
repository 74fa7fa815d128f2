"""How layers of a subordinate range are stored (kernel/storage_ns.StorageIds) and the
storage options that change it (store/options.py), without a namespace."""

import pytest

from rootless.errors import UsageError
from rootless.kernel.idmap import IdMaps, IdRange
from rootless.kernel.storage_ns import RECORDS, StorageIds
from rootless.store import options

MAPS = IdMaps((IdRange(0, 1002, 1), IdRange(1, 165536, 65536)),
              (IdRange(0, 1002, 1), IdRange(1, 165536, 65536)), True)


def test_an_id_is_mapped_from_0_to_the_end_of_the_range():
    ids = StorageIds(MAPS)
    assert ids.mapped(0, 0) and ids.mapped(42, 65536)
    assert not ids.mapped(65537, 0) and not ids.mapped(0, 200000)


def test_squashing_turns_only_the_unmapped_id_into_0():
    assert StorageIds(MAPS, squash=True).squashed(200000, 42) == (0, 42)
    assert StorageIds(MAPS, squash=True).squashed(1000, 70000) == (1000, 0)


def test_the_layer_key_names_the_range_and_differs_from_records_and_other_ranges():
    key = StorageIds(MAPS).key()
    assert key == "ids 0:1002:1,1:165536:65536 / 0:1002:1,1:165536:65536"
    other = IdMaps(MAPS.uids[:1] + (IdRange(1, 231072, 65536),), MAPS.gids, True)
    assert key != RECORDS and key != StorageIds(other).key()
    assert StorageIds(MAPS, squash=True).key() == key  # squashed files are records


def test_the_ids_a_worker_gets_are_the_ones_sent():
    ids = StorageIds(MAPS, squash=True)
    assert StorageIds.from_json(ids.to_json()) == ids


@pytest.mark.parametrize("text, want", [
    ("ignore_chown_errors=true", ("ignore_chown_errors", "true")),
    ("overlay.ignore_chown_errors=false", ("ignore_chown_errors", "false")),
    ('IGNORE_CHOWN_ERRORS="True"', ("ignore_chown_errors", "true")),
])
def test_podmans_spellings_of_the_option_are_taken(text, want):
    assert options.parse_option(text) == want


@pytest.mark.parametrize("text, words", [
    ("ignore_chown_error=true", ["unknown storage option"]),
    ("ignore_chown_errors", ["unknown storage option"]),
    ("ignore_chown_errors=yes please", ["invalid value", "yes please"]),
])
def test_a_bad_storage_option_is_refused_naming_it(text, words):
    with pytest.raises(UsageError) as refused:
        options.parse_option(text)
    assert all(word in str(refused.value) for word in words)


def test_the_flag_adds_to_the_environment_and_the_last_value_wins(monkeypatch):
    monkeypatch.setenv(options.ENV, "ignore_chown_errors=true")
    assert options.storage_flag("ignore_chown_errors")
    options.add_storage_option("ignore_chown_errors=false")
    assert not options.storage_flag("ignore_chown_errors")
