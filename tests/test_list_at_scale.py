"""The list against the ORM at a size that reaches the planner's strategies for big groups
and many distinct values (30,000 seeded contacts: groups of 15,000 ties, columns of 30,000
distinct values, walks past their budgets), with queries drawn by the bench's survey from
the whole grammar (crm/lib/survey.py): every filter and lookup, searches, 0-3 sort keys in
mixed directions, page numbers and cursor walks. The small hand-made data set of
tests/test_appuser_list_properties.py covers the edge values; this one covers the sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from crm.fields import RANK
from crm.lib.survey import SurveyQuery, draw_queries, sample_rows
from crm.models import AppUser
from crm.params import parse_list_params
from crm.seeding import TABLES
from tests.test_appuser_list_properties import FIELDS, ranked, search_matches, sort_rows

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

CONTACTS = 30_000
QUERIES = 120
SEED = 17
URL = "/crm/appusers"
SEARCHED = ["first_name", "last_name", "customer_id", "phone_number", "address__street",
            "address__city"]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[int, dict[str, Any]]]:
    """The seeded contacts (for the search and sort oracle: id -> every field)."""
    with django_db_blocker.unblock():
        call_command("seed", users=CONTACTS, truncate=True)
        try:
            yield {r["id"]: r for r in AppUser.objects.values(*FIELDS)}
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(TABLES)}")


@pytest.fixture(scope="module")
def queries(seeded: dict[int, dict[str, Any]], django_db_blocker: Any) -> list[SurveyQuery]:
    with django_db_blocker.unblock():
        return draw_queries(sample_rows(SEED), QUERIES, SEED)


def _orm_lookup(name: str, lookup: str) -> str:
    return name if lookup == "exact" else f"{name}__{lookup}"


def oracle(params: dict[str, list[str]], rows: dict[int, dict[str, Any]]) -> list[int]:
    """The ids the list must answer, in order: the ORM's filters over the source tables, the
    search and the sort of tests/test_appuser_list_properties.py."""
    parsed = parse_list_params(params)
    contacts = AppUser.objects.all()
    for f in parsed.filters:
        if f.lookup == "sortprefix":  # implied by the name's own prefix filter
            continue
        value = tuple(f.value) if f.lookup == "range" else f.value
        contacts = contacts.filter(**{_orm_lookup(f.field.key_of or f.field.name, f.lookup): value})
    ids = set(contacts.values_list("id", flat=True))
    found = [r for i, r in rows.items() if i in ids]
    if parsed.search:
        found = [r for r in found if search_matches(r, parsed.search)]
    if parsed.ordering[0].field is RANK:
        return ranked(found, parsed.search, list(rows.values()))
    return sort_rows(found, ["-" * k.descending + (k.field.key_of or k.field.name)
                             for k in parsed.ordering])  # fmt: skip


def _as_answered(params: dict[str, list[str]], body: dict[str, Any]) -> dict[str, list[str]]:
    """`params`, or for a fuzzy page (the search matched nothing: the page of its first
    suggestion instead, crm/selectors/suggestions.py) with that suggestion as the search."""
    if body.get("fuzzy"):
        return {**params, "search": [body["suggestions"][0]]}
    return params


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_random_queries_of_the_whole_grammar_match_the_orm(
    api_client: Client, seeded: dict[int, dict[str, Any]], queries: list[SurveyQuery]
) -> None:
    wrong = []
    for query in queries:
        params = parse_qs(query.query_string, keep_blank_values=True)
        size = int(params["page_size"][0])
        if query.page is not None:
            response = api_client.get(f"{URL}?{query.query_string}&page={query.page}")
            first = response.json() if response.status_code == 200 else {}
            expected = oracle(_as_answered(params, first), seeded)
            start = (query.page - 1) * size
            if query.page > 1 and start >= len(expected):
                got: Any = response.status_code
                want: Any = 404
            else:
                got = [r["id"] for r in first["results"]]
                want = expected[start : start + size]
        else:
            link: str | None = f"{URL}?{query.query_string}"
            got, want = [], None
            for _ in range(1 + query.steps):
                if link is None:
                    break
                body = api_client.get(link).json()
                if want is None:
                    expected = oracle(_as_answered(params, body), seeded)
                    want = expected[: size * (1 + query.steps)]
                got += [r["id"] for r in body["results"]]
                link = _path(body["next"]) if body["next"] else None
        if got != want:
            wrong.append((query.query_string, query.page, len(expected)))
    assert not wrong, f"{len(wrong)} of {len(queries)} differ from the ORM: {wrong[:5]}"
