"""Forgiving search on GET /crm/appusers (crm/selectors/suggestions.py): a search that finds
nothing answers the page of the best search like it (`"fuzzy": true`), one that finds very
few offers others (`"suggestions"`), from the words that writes put in crm_word."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client

from crm.selectors.suggestions import _FINDS
from crm.sql import Binder, search_sql
from tests.test_appuser_list import MakeContact, get

pytestmark = pytest.mark.django_db


@pytest.fixture
def names(make_contact: MakeContact) -> None:
    # only these contacts' words (rolled back with the test): the words of rows that other
    # modules committed and removed stay in crm_word (Zurich came before Zürich)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_word")
    for last_name, city in [("Huber", "Wien"), ("Huber", "Graz"), ("Schmidt", "Wien"),
                            ("Meier", "Linz"), ("Maier", "Linz"), ("Müller", "Zürich"),
                            ("Mayer", "Wien"), ("Levi", "Graz"), ("Dubois", "Graz"),
                            ("Tobias", "Graz")]:  # fmt: skip
        make_contact(last_name=last_name, city=city)


def _last_names(body: dict[str, Any]) -> list[str]:
    return [r["last_name"] for r in body["results"]]


@pytest.mark.usefixtures("names")
@pytest.mark.parametrize(("search", "answered", "found"), [
    ("hubr", "Huber", ["Huber", "Huber"]),  # a letter missing
    ("Hubber", "Huber", ["Huber", "Huber"]),  # one too many
    ("schmitt", "Schmidt", ["Schmidt"]),  # sounds alike, one letter apart
    ("meir", "Meier", ["Meier"]),  # sounds like Meier, Maier and Mayer: the closest first
    ("zürrich", "Zürich", ["Müller"]),
    ("hubr wien", "Huber wien", ["Huber"]),  # the known term is kept
    ("Schmdit", "Schmidt", ["Schmidt"]),  # two letters swapped: one typo
    ("lewi", "Levi", ["Levi"]),  # one letter off, but too few trigrams in common
    ("dubios", "Dubois", ["Dubois"]),  # one swap before Tobias, which sounds alike
])  # fmt: skip
def test_a_search_that_finds_nothing_answers_the_best_like_it(
    api_client: Client, search: str, answered: str, found: list[str]
) -> None:
    body = get(api_client, {"search": search, "page_size": "1"}).json()
    assert body["fuzzy"] is True
    assert body["suggestions"][0] == answered
    assert body["count"] == len(found)
    assert _last_names(body) == found[:1]
    if body["next"]:  # the next page goes on with the search it answered
        assert parse_qs(urlsplit(body["next"]).query)["search"] == [answered]
        assert _last_names(api_client.get(body["next"]).json()) == found[1:2]


@pytest.mark.usefixtures("names")
def test_a_search_that_finds_very_few_offers_names_that_sound_alike(api_client: Client) -> None:
    body = get(api_client, {"search": "mayer"}).json()
    assert body["fuzzy"] is False
    assert _last_names(body) == ["Mayer"]
    assert set(body["suggestions"]) == {"Meier", "Maier"}


@pytest.mark.usefixtures("names")
@pytest.mark.parametrize("search", ["wien", "xqzv", "hu", "12345", "müller graz"])
def test_no_offers(api_client: Client, search: str) -> None:
    """A search with enough matches; no word like it; too short; a number; known words whose
    combination matches nothing."""
    body = get(api_client, {"search": search}).json()
    assert (body["fuzzy"], body["suggestions"]) == (False, [])


@pytest.mark.usefixtures("names")
def test_filters_still_apply_to_the_fuzzy_page(api_client: Client) -> None:
    body = get(api_client, {"search": "hubr", "address__city": "Graz"}).json()
    assert body["fuzzy"] is True
    assert [r["address"]["city"] for r in body["results"]] == ["Graz"]


def test_a_new_name_is_offered_once_written(api_client: Client, make_contact: MakeContact) -> None:
    assert get(api_client, {"search": "Ziegelmayr"}).json()["suggestions"] == []
    contact = make_contact(last_name="Ziegler")
    assert get(api_client, {"search": "Ziegler"}).json()["count"] == 1
    contact.last_name = "Ziegelmeier"  # a rename adds its word too
    contact.save()
    body = get(api_client, {"search": "Ziegelmayr"}).json()
    assert body["suggestions"] == ["Ziegelmeier"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT word FROM crm_word WHERE folded LIKE 'zieg%%' ORDER BY 1")
        assert [w for (w,) in cursor.fetchall()] == ["Ziegelmeier", "Ziegler"]


def test_a_word_no_contact_has_any_more_is_not_offered(
    api_client: Client, make_contact: MakeContact
) -> None:
    make_contact(last_name="Huber").delete()
    body = get(api_client, {"search": "hubr"}).json()
    assert (body["fuzzy"], body["suggestions"], body["results"]) == (False, [], [])


@pytest.mark.usefixtures("names")
def test_whether_a_search_finds_contacts_reads_no_more_than_its_matches() -> None:
    """A LIMIT 1 walk of the table, which expects an early match, read all 3M rows for a
    pair of terms that no contact has (0.8 s); a count reads its matches the cheapest way."""
    bind = Binder()
    where = " AND ".join(search_sql(t, bind) for t in ["meier", "müller"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as a big table: not a scan
        cursor.execute(f"EXPLAIN {_FINDS.format(w=where)}", bind.params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    _sample, rest = plan.split("Sample Scan")
    assert "Aggregate" in rest and "Bitmap Index Scan" in rest  # a count, not an EXISTS


@pytest.mark.usefixtures("names")
def test_whether_a_search_finds_contacts_reads_what_holds_its_terms(api_client: Client) -> None:
    """Each term of a search offered is read as the values and ids that hold it, as the list
    reads it (facts.resolve_held_terms), not by search_text's trigram bitmaps: the count of
    an alternative to `müller schmid` ANDed two common words' bitmaps (35-72 ms at 3M)."""
    checks: list[str] = []

    def record(execute: Any, sql: str, params: Any, *args: Any) -> Any:
        if "TABLESAMPLE SYSTEM (0.1)" in sql:  # _FINDS
            checks.append(sql)
        return execute(sql, params, *args)

    with connection.execute_wrapper(record):
        body = get(api_client, {"search": "hubr wien"}).json()
    assert body["suggestions"][0] == "Huber wien"
    assert checks and not [sql for sql in checks if "search_text" in sql]
    assert "last_name IN" in checks[0] and "address_city IN" in checks[0]
