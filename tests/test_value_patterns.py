"""Names and places by their stored values (crm_value, crm/db/words.sql): a substring filter
on one is read as the values it matches, however many distinct values the column has
(crm/selectors/facts.py resolve_patterns), and a search sorted by a searched field finds the
rest of its rows, those whose term is in another field, through them (crm/selectors/ranges.py
split_search_rows). No trigram index of the names' and places' own folds is left to do it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

from crm.params import parse_list_params
from crm.selectors import facts, ranges
from crm.selectors.db import fetch_rows
from crm.selectors.facts import resolve_patterns
from crm.selectors.ranges import values_holding
from tests.test_appuser_list import MakeContact, get

pytestmark = pytest.mark.django_db

# (crm_value keeps the values of rows that other tests committed and removed: names no other
# test has)
NAMES = ("Quaxberger", "Quaxbernhard", "Quaxhuber", "Quaxgruber", "Quaxmaier", "Quaxauer")


@pytest.fixture
def many_values(make_contact: MakeContact) -> Iterator[None]:
    """Six last names and six street numbers, analysed, where a column of more than four
    distinct values counts as one of many."""
    for n, name in enumerate(NAMES):
        make_contact(last_name=name, street_number=f"{n}a")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contactrow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(facts, "LOOSE_SCAN_KEYS", 4)
        yield


def _matching(params: dict[str, str]) -> tuple[str, ...] | None:
    query = parse_list_params({name: [value] for name, value in params.items()})
    return resolve_patterns(query).filters[0].matching


def test_a_name_pattern_is_read_as_its_values_however_many_the_column_has(
    many_values: None,
) -> None:
    assert sorted(_matching({"last_name__icontains": "AXBER"}) or ()) == [
        "Quaxberger",
        "Quaxbernhard",
    ]
    assert _matching({"last_name__endswith": "xgruber"}) == ("Quaxgruber",)
    assert _matching({"last_name__iexact": "quaxauer"}) == ("Quaxauer",)
    assert _matching({"last_name__contains": "Qzzq"}) == ()
    # a column that crm_value does not hold keeps the distinct count's rule
    assert _matching({"address__street_number__icontains": "a"}) is None


def test_more_matching_values_than_the_loose_scan_reads_keep_the_pattern(
    many_values: None,
) -> None:
    assert _matching({"last_name__icontains": "quax"}) is None  # all six


def test_the_list_answers_a_name_pattern_by_its_values(
    api_client: Client, many_values: None
) -> None:
    params = {"last_name__icontains": "XGRUB", "ordering": "last_name"}
    assert _matching(params) == ("Quaxgruber",)  # resolved, not read as the pattern
    response = get(api_client, params)
    assert [r["last_name"] for r in response.json()["results"]] == ["Quaxgruber"]


def test_the_values_that_hold_each_term(make_contact: MakeContact) -> None:
    """What the second part of a search sorted by a searched field reads the names and places
    by: each term's values, in every spelling the search matches (and values that other
    tests' rows left, which hold the term too)."""
    make_contact(first_name="Wienke", city="Wien", street="Wiener Straße", city_code="1230")
    make_contact(last_name="Müller", city="Graz")
    held = values_holding(["wien", "MUELLER", "qqqx", "123"], fetch_rows)
    assert held is not None
    assert "Wien" in held[(0, "address_city")]
    assert "Wiener Straße" in held[(0, "address_street")]
    assert "Wienke" in held[(0, "first_name")]
    assert "Müller" in held[(1, "last_name")]
    assert not any(n == 2 for n, _ in held)
    # only the searched fields: a postal code is never a search's
    assert not any(field == "address_city_code" for _, field in held)


def test_a_term_in_too_many_values_is_not_read_by_them(
    make_contact: MakeContact, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each value is a bound parameter, planned twice: past LOOSE_SCAN_KEYS of one column,
    the sorted search walks the key's index instead (split_search_rows answers None)."""
    for name in ("Quaxa", "Quaxb", "Quaxc"):
        make_contact(first_name=name)
    monkeypatch.setattr(ranges, "LOOSE_SCAN_KEYS", 2)
    assert values_holding(["quax"], fetch_rows) is None
    monkeypatch.setattr(ranges, "LOOSE_SCAN_KEYS", 3)
    assert sorted(values_holding(["quax"], fetch_rows)[(0, "first_name")]) == [  # type: ignore[index]
        "Quaxa",
        "Quaxb",
        "Quaxc",
    ]


def test_the_values_index_has_no_pending_list() -> None:
    """A search of the values read GIN's whole pending list first: 14,600 postal codes there
    made it 9 ms on PostgreSQL 15 (crm/db/words.sql)."""
    rows = fetch_rows(
        "SELECT relname, reloptions FROM pg_class "
        "WHERE relname IN ('crm_value_folded_trgm', 'crm_word_folded_trgm') ORDER BY 1",
        [],
    )
    assert rows == [
        ("crm_value_folded_trgm", ["fastupdate=off"]),
        ("crm_word_folded_trgm", ["fastupdate=off"]),
    ]
