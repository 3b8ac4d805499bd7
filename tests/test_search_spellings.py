"""A search term's spellings written out (crm_search_spellings(), crm/db/schema.sql) match
exactly what its regular expression (crm_search_pattern()) matches, and the planner keeps
one of the two (crm/sql.py fold_contains_sql)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from crm.sql import Binder, fold_contains_sql
from tests.test_appuser_list import MakeContact, get

pytestmark = pytest.mark.django_db

# the letters the spellings are made of, and the ones LIKE and the regex treat specially
ALPHABET = "aaoouueeäöüßÅæsn%_\\.* "


def _words(rng: random.Random, count: int, longest: int) -> list[str]:
    return ["".join(rng.choices(ALPHABET, k=rng.randint(1, longest))) for _ in range(count)]


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_the_written_out_spellings_match_what_the_pattern_matches() -> None:
    rng = random.Random(18)
    terms, texts = _words(rng, 400, 4), _words(rng, 400, 8)
    # each term's spellings and pattern and each text's fold made once, not per pair (the
    # 160,000 pairs took over the 5 s statement timeout on a slower machine)
    differ = _rows(
        "WITH t AS MATERIALIZED (SELECT term, crm_search_spellings(term) AS spellings, "
        "crm_search_pattern(term) AS pattern FROM unnest(%s::text[]) term), "
        "x AS MATERIALIZED (SELECT text, crm_fold(text) AS folded FROM unnest(%s::text[]) text) "
        "SELECT term, text FROM t, x WHERE spellings IS NOT NULL "
        "AND (folded ~ pattern) <> (folded LIKE ANY (spellings))",
        [terms, texts],
    )
    assert differ == []
    (written,), = _rows(
        "SELECT count(*) FROM unnest(%s::text[]) t WHERE crm_search_spellings(t) IS NOT NULL",
        [terms],
    )  # fmt: skip
    assert 0 < written < len(terms)  # both ways of matching were compared and left


@pytest.mark.parametrize(("term", "spellings"), [
    ("Müller", ["%muller%", "%mueller%"]),
    ("koenig", ["%konig%", "%koenig%"]),
    ("50%_a\\", ["%50\\%\\_a\\\\%", "%50\\%\\_aa\\\\%", "%50\\%\\_ae\\\\%"]),
    ("hauptstrasse", None),  # 36 spellings: the regular expression instead
])  # fmt: skip
def test_spellings(term: str, spellings: list[str] | None) -> None:
    assert _rows("SELECT crm_search_spellings(%s)", [term]) == [(spellings,)]


@pytest.mark.parametrize(("term", "match"), [("mueller", "~~ ANY"), ("hauptstrasse", "~")])
def test_the_planner_keeps_one_way_of_matching(term: str, match: str) -> None:
    bind = Binder()
    where = fold_contains_sql("search_text", term, bind)
    plan = "\n".join(
        r[0]
        for r in _rows(f"EXPLAIN SELECT 1 FROM crm_contactrow WHERE {where}", bind.params)  # noqa: S608
    )
    assert f"search_text {match} " in plan and "CASE" not in plan


def test_a_term_of_many_spellings_finds_them(api_client: Client,
                                            make_contact: MakeContact) -> None:  # fmt: skip
    make_contact(last_name="Ring", street="Hauptstraße", city="Wien")
    make_contact(last_name="Ring", street="Haupt Strasse", city="Wien")
    rows = get(api_client, {"search": "hauptstrasse", "ordering": "id"}).json()["results"]
    assert [r["address"]["street"] for r in rows] == ["Hauptstraße"]
