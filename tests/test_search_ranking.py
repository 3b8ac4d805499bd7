"""Best matches first (crm/selectors/ranked.py): a search without an `ordering` lists its
matches by tier, then by id, on every page, through cursors both ways, and in the export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from crm.selectors import count, facts, ranked
from tests.test_appuser_list import MakeContact, get, ids
from tests.test_export import content

pytestmark = pytest.mark.django_db

# (name, fields): created in this order, so ids ascend in it
CONTACTS = [
    ("street", {"street": "Bergstraße"}),  # 4: inside a word of the street
    ("last", {"last_name": "Berg"}),  # 0: the last name
    ("first prefix", {"first_name": "Bergit"}),  # 2: the start of the first name
    ("city", {"city": "Berg"}),  # 3: a word of the city
    ("last prefix", {"last_name": "Bergmann"}),  # 2: the start of the last name
    ("last word", {"last_name": "van den Berg"}),  # 4: a word of the last name, not all of it
    ("first", {"first_name": "Berg"}),  # 1: the first name
    ("none", {}),
]
RANKED = ["last", "first", "first prefix", "last prefix", "city", "street", "last word"]


@pytest.fixture
def named(make_contact: MakeContact) -> dict[int, str]:
    return {make_contact(**fields).pk: name for name, fields in CONTACTS}


@pytest.fixture(
    params=["kept by the count", "collected", "by first ids", "by tiers", "first tier first"]
)
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Few matches are sorted by the count, which keeps the page's ids, or read once by the
    page and sorted; more, tier by tier, a small tier of a search of one term alone by its
    first ids, the page first from the tiers expected to hold enough rows and then, if they
    fall short, from every tier: all of them, on the same rows."""
    if request.param != "kept by the count":
        monkeypatch.setattr(count, "KEEP_PAGE_IDS", 0)
    if request.param not in ("kept by the count", "collected"):
        monkeypatch.setattr(ranked, "ONE_TERM_COLLECTED", 0)
    if request.param not in ("kept by the count", "collected", "by first ids"):
        monkeypatch.setattr(ranked, "SMALL_RESULT", 0)
        monkeypatch.setattr(ranked, "FIRST_IDS_TIER", 0)
    if request.param == "first tier first":
        monkeypatch.setattr(ranked, "ENOUGH", 0)
    return str(request.param)


@pytest.mark.parametrize(
    ("sizes", "wanted", "read"),
    [
        ([49_000, 10, 300, 5, 3_000_000], 26, 1),  # huber: its last names fill the page
        ([1, 1, 400_000, 5, 3_000_000], 26, 3),  # hub: the names it starts
        ([1, 100, 100, 100, 3_000_000], 26, 5),  # a rare word: down to the rest
        ([600], 26, 1),
        ([100, 100], 26, 2),  # all, however few
    ],
)
def test_a_page_reads_the_tiers_that_hold_enough_rows_first(
    sizes: list[int], wanted: int, read: int
) -> None:
    assert ranked.tiers_to_read(sizes, wanted) == read


@pytest.mark.usefixtures("path")
def test_best_matches_first(api_client: Client, named: dict[int, str]) -> None:
    assert [named[i] for i in ids(get(api_client, {"search": "berg"}))] == RANKED
    # an explicit ordering is kept
    assert [named[i] for i in ids(get(api_client, {"search": "berg", "ordering": "id"}))] == [
        name for name, _ in CONTACTS if name in RANKED
    ]


@pytest.mark.usefixtures("path")
def test_every_page_and_cursor_keeps_the_rank(api_client: Client, named: dict[int, str]) -> None:
    params = {"search": "berg", "page_size": "2"}
    pages = [get(api_client, {**params, "page": str(n)}).json() for n in (1, 2, 3, 4)]
    assert [named[r["id"]] for p in pages for r in p["results"]] == RANKED
    walked, body = [], get(api_client, params).json()
    while True:
        walked += [named[r["id"]] for r in body["results"]]
        if not body["next"]:
            break
        last = body
        body = api_client.get(body["next"]).json()
    assert walked == RANKED
    back = api_client.get(last["next"]).json()
    back = api_client.get(back["previous"]).json()
    assert [named[r["id"]] for r in back["results"]] == RANKED[4:6]


def test_a_count_of_few_matches_keeps_the_ranked_page(
    api_client: Client, named: dict[int, str]
) -> None:
    """The capped count that read every match sorts them by rank too (their tiers' sort
    keys kept, crm/db/count.sql): the page reads its rows by id instead of by the search's
    trigram index again, which was most of the time of a rare name's page."""
    statements: list[str] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        page = get(api_client, {"search": "berg", "page_size": "3", "page": "2"})
    assert [named[i] for i in ids(page)] == RANKED[3:6]
    (read,) = [sql for sql in statements if "json_build_object" in sql]
    assert "WHERE id IN (" in read


def test_a_tier_tests_its_key_ranges_before_the_search(
    api_client: Client, named: dict[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row is tested in the order its conditions are written, and a tier's key prefix is
    far cheaper to test than a term in search_text (ranked.py): in every tier's rows, the
    key ranges come first. (The term is tested in search_text, not read as the values that
    hold it, facts.resolve_held_terms.)"""
    monkeypatch.setattr(facts, "HELD_VALUES", 0)
    monkeypatch.setattr(count, "KEEP_PAGE_IDS", 0)
    monkeypatch.setattr(ranked, "ONE_TERM_COLLECTED", 0)
    monkeypatch.setattr(ranked, "SMALL_RESULT", 0)
    monkeypatch.setattr(ranked, "FIRST_IDS_TIER", 0)
    statements: list[str] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        page = get(api_client, {"search": "berg"})
    assert [named[i] for i in ids(page)] == RANKED
    (read,) = [sql for sql in statements if "json_build_object" in sql]
    tiers = read.split(" AS search_rank, ")[1:]
    assert len(tiers) == 5
    for tier in tiers[:4]:
        assert tier.index("_key LIKE ") < tier.index("search_text")


def test_spellings_and_case_rank_alike(api_client: Client, make_contact: MakeContact) -> None:
    """Tier 0 holds every spelling of the name (they sort alike: one word in crm_word)."""
    street = make_contact(street="Müllerstraße").pk
    names = [make_contact(last_name=n).pk for n in ("MÜLLER", "Mueller", "Muller", "Müller")]
    for search in ("mueller", "muller", "Müller"):
        assert ids(get(api_client, {"search": search})) == [*names, street]


def test_the_export_follows_the_rank(api_client: Client, named: dict[int, str]) -> None:
    response = api_client.get("/crm/appusers/export.ndjson", {"search": "berg"})
    rows = [json.loads(line) for line in content(response).splitlines()]
    assert [named[r["id"]] for r in rows] == RANKED
