"""GET /crm/appusers/baseline, the naive DRF version (crm_bench/baseline.py, installed by the
test settings): same answers as the optimised list on small data, and the N+1 queries that
make it the yardstick."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from openapi_spec_validator import validate

from crm.models import AppUser
from crm_bench.openapi import PATH, schema_with_baseline

OPTIMISED, BASELINE = "/crm/appusers", PATH


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """The `user` fixture hashes a password; the default hasher costs ~1 s per test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contacts(make_contact: Callable[..., AppUser]) -> list[AppUser]:
    rows = [
        ("Anna", "Berger", "Wien", 10, date(1980, 1, 2)),
        ("Ben", "adler", "Graz", None, None),
        ("Clara", "Berger", "Wien", 3, date(1991, 7, 14)),
        ("Dora", "Zimmer", "Linz", 10, date(1980, 12, 31)),
        ("Emil", "Huber", "Wiener Neustadt", 0, date(2001, 2, 3)),
        ("Fritz", "Adler", "Graz", None, date(1980, 6, 6)),
        ("Gerda", "Mayr", "Wien", 7, None),
        ("Hans", "Berger", "Salzburg", 3, date(1975, 3, 9)),
        ("Ida", "Kern", "Wien", 12, date(1999, 9, 9)),
        ("Jakob", "Egger", "Linz", 1, date(1980, 1, 2)),
        ("Karl", "Huber", "Graz", 7, date(1968, 4, 30)),
    ]
    made = []
    for i, (first, last, city, points, born) in enumerate(rows):
        activity = datetime(2024, 1 + i, 1 + i, i, tzinfo=UTC)
        made.append(make_contact(first_name=first, last_name=last, city=city, points=points,
                                 birthday=born, last_activity=activity))  # fmt: skip
    return made


def _page(client: Client, url: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _normalised(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its timestamps as datetimes: the two lists format fractions differently."""

    def value(key: str, v: Any) -> Any:
        if isinstance(v, dict):
            return _normalised(v)
        if key in ("created", "last_updated", "last_activity") and v is not None:
            return datetime.fromisoformat(v)
        return v

    return {key: value(key, v) for key, v in row.items()}


@pytest.mark.parametrize("params", [
    {},
    {"page_size": 4, "page": 2},
    {"page_size": 4, "page": 3},
    {"ordering": "-relationship__points,id", "page_size": 5},
    {"ordering": "relationship__points,-id", "page_size": 5, "page": 2},
    {"ordering": "gender,-phone_number"},  # (names: code point there, dictionary order here)
    {"ordering": "-birthday,id"},
    {"address__city__icontains": "WIEN", "ordering": "-address__country,id"},
    {"last_name__iexact": "berger", "first_name__in": "Anna,Hans,Ida"},
    {"birthday__year": 1980, "relationship__points__gte": 1},
    {"relationship__points__range": "3,10", "birthday__isnull": "false"},
    {"relationship__points__isnull": "true"},
    {"relationship__last_activity__month": 3},
    {"search": "berger wien"},
])  # fmt: skip
def test_same_answers_as_the_optimised_list(api_client: Client, contacts: list[AppUser],
                                            params: dict[str, Any]) -> None:  # fmt: skip
    optimised = _page(api_client, OPTIMISED, {"page": 1, **params})
    baseline = _page(api_client, BASELINE, params)
    assert optimised["results"]  # every case selects something
    assert [r["id"] for r in baseline["results"]] == [r["id"] for r in optimised["results"]]
    assert baseline["count"] == optimised["count"]
    assert [_normalised(r) for r in baseline["results"]] == [
        _normalised(r) for r in optimised["results"]]  # fmt: skip
    assert (baseline["next"] is None) == (optimised["next"] is None)
    assert (baseline["previous"] is None) == (optimised["previous"] is None)


def _queries(client: Client, page_size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        _page(client, BASELINE, {"page_size": page_size})
    return len(captured.captured_queries)


def test_baseline_issues_n_plus_one_queries(api_client: Client, contacts: list[AppUser]) -> None:
    small, large = _queries(api_client, 2), _queries(api_client, 10)
    # Per row: one query for its address, one for its relationship (also when there is none).
    assert large - small == 2 * (10 - 2)
    # session + user + COUNT(*) + the page of contacts, then the N+1
    assert small == 4 + 2 * 2


@pytest.mark.parametrize("field", ["created", "birthday", "relationship__last_activity"])
@pytest.mark.parametrize("year", ["0", "-343", "10000", "99999999999"])
def test_a_year_the_orm_cannot_build_is_a_400(
    api_client: Client, contacts: list[AppUser], field: str, year: str
) -> None:
    """Found by the long fuzz run: Django builds datetime(year, 1, 1) and raised a 500."""
    response = api_client.get(BASELINE, {f"{field}__year": year})
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["param"] == f"{field}__year"


def test_years_at_the_edges_still_filter(api_client: Client, contacts: list[AppUser]) -> None:
    for year in ("1", "9999"):
        assert api_client.get(BASELINE, {"created__year": year}).status_code == 200


def test_answers_have_the_documented_shapes(api_client: Client, contacts: list[AppUser]) -> None:
    """As the bench documents the baseline (crm_bench/openapi.py): a valid OpenAPI 3.1
    document with it, its page's fields, and its errors in the project's body."""
    schema = schema_with_baseline()
    validate(schema)
    page = schema["components"]["schemas"]["BaselinePage"]
    assert set(_page(api_client, BASELINE, {})) == set(page["properties"])
    response = api_client.get(BASELINE, {"page": "99"})
    assert response.status_code == 404
    assert set(response.json()) == {"errors"}
