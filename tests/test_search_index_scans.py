"""How the terms of a search are matched on search_text's trigram index (crm/sql.py
fold_contains_sql): a term alone as LIKE ANY of its spellings; with other terms, a term of
several spellings as its regular expression, so that the index is searched once for all the
terms, not once for each combination of their spellings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.db import connection

from crm.sql import Binder, where_sql

pytestmark = pytest.mark.django_db


def _index_conditions(search: list[str]) -> list[str]:
    """The Index Cond of each trigram index scan of a count of the search's matches."""
    bind = Binder()
    sql = f"SELECT count(*) FROM crm_contactrow WHERE {where_sql([], search, bind)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table: force the index
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", bind.params)
        plan = cursor.fetchone()[0]
    plan = orjson.loads(plan) if isinstance(plan, (str, bytes)) else plan
    return list(_conditions(plan[0]["Plan"]))


def _conditions(node: dict[str, Any]) -> Any:
    if node.get("Index Name") == "crm_contactrow_search_trgm":
        yield node["Index Cond"]
    for child in node.get("Plans", []):
        yield from _conditions(child)


def test_a_term_alone_is_like_any_of_its_spellings() -> None:
    (condition,) = _index_conditions(["daniela"])
    assert "~~ ANY" in condition and "%daeniela%" in condition


def test_terms_together_are_one_search_of_the_index_each() -> None:
    """`daniela` has 9 spellings: as LIKE ANY, each was a search of the index that read the
    phone number's trigrams again (0.4 s at 3M)."""
    conditions = " ".join(_index_conditions(["+491515246502", "daniela"]))
    assert "'da[ae]?niela[ae]?'" in conditions  # its regular expression
    assert "%daeniela%" not in conditions


def test_a_term_tested_row_by_row_comes_after_the_cheaper_filters() -> None:
    """A term without a trigram (`am`) is tested on the rows of the other conditions, and
    after their cheaper filters: as regexp_like(), priced as one operator, PostgreSQL tested
    it first, on every row that the day then rejected (1.4 s at 3M on PostgreSQL 15)."""
    from crm.params import parse_list_params

    query = parse_list_params({"relationship__created__day": ["11"], "search": ["am"]})
    bind = Binder()
    where = where_sql(query.filters, query.search, bind)
    sql = f"SELECT count(*) FROM crm_contactrow WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")  # every condition a filter
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", bind.params)
        plan = cursor.fetchone()[0]
    plan = orjson.loads(plan) if isinstance(plan, (str, bytes)) else plan
    (scan,) = plan[0]["Plan"]["Plans"]
    condition = scan["Filter"]
    assert condition.index("EXTRACT(day") < condition.index("crm_holds(search_text")
