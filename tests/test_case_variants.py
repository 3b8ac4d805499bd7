"""crm/case_variants.py: case-insensitive prefixes as ranges of code points."""

from __future__ import annotations

import pytest
from django.db import connection

from crm import case_variants
from crm.case_variants import MAX_RANGES, exact_prefix_range, prefix_ranges

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case_variants, "_cache", {})


def test_it_gives_every_case_variant_as_a_range_in_sort_order() -> None:
    assert prefix_ranges("mü") == [("MÜ", "MÝ"), ("Mü", "Mý"), ("mÜ", "mÝ"), ("mü", "mý")]
    assert prefix_ranges("mü", descending=True) == [("mü", "mý"), ("mÜ", "mÝ"), ("Mü", "Mý"),
                                                    ("MÜ", "MÝ")]  # fmt: skip


def test_it_knows_the_variants_only_postgresql_maps() -> None:
    """upper() maps the dotless i (U+0131) to I and the long s (U+017F) to S, which
    Python's .lower() of I and S does not give."""
    assert [low for low, _ in prefix_ranges("I") or []] == ["I", "i", "ı"]
    assert [low for low, _ in prefix_ranges("s") or []] == ["S", "s", "ſ"]
    assert prefix_ranges("1-") == [("1-", "1.")]  # no case: one range


def test_a_whole_value_is_a_few_equalities() -> None:
    assert prefix_ranges("ab", whole=True) == [("AB", None), ("Ab", None), ("aB", None),
                                               ("ab", None)]  # fmt: skip
    assert prefix_ranges("wiener", whole=True) == prefix_ranges("wiener")  # cut: a prefix


def test_a_long_prefix_is_cut_to_a_few_ranges() -> None:
    ranges = prefix_ranges("wiener")
    assert ranges is not None and len(ranges) <= MAX_RANGES
    assert all(len(low) == 3 for low, _ in ranges)  # "wien" has 2 x 3 x 2 x 2: "wie" 12


def test_no_ranges_for_nothing_or_without_code_point_order() -> None:
    assert prefix_ranges("") is None
    case_variants._cache[connection.settings_dict["NAME"]] = None  # as on a linguistic collation
    assert prefix_ranges("m") is None


def test_a_prefix_itself_is_one_range_up_to_the_next_encodable_character() -> None:
    assert exact_prefix_range("Mü") == [("Mü", "Mý")]
    assert exact_prefix_range("a\ud7ff") == [("a\ud7ff", "a\ue000")]  # no surrogate
    assert exact_prefix_range("") is None
    case_variants._cache[connection.settings_dict["NAME"]] = None  # as on a linguistic collation
    assert exact_prefix_range("m") is None


def test_the_table_groups_exactly_the_characters_with_the_same_upper() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM crm_case_variant v, unnest(v.variants) other "
            "WHERE upper(other) <> upper(v.char)"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM generate_series(1, 1114111) c "
            "WHERE c NOT BETWEEN 55296 AND 57343 AND upper(chr(c)) <> chr(c) "
            "AND NOT EXISTS (SELECT 1 FROM crm_case_variant v WHERE v.char = chr(c))"
        )
        assert cursor.fetchone()[0] == 0  # every character that upper() changes has a group
