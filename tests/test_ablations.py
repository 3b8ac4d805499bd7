"""The bench's ablation switches (crm_bench/ablations.py) and what they leave behind.

The test settings install the bench app (tests/settings.py); production's stack, without
its middleware, ignores the header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from crm_bench.ablations import AblationMiddleware, planner_ablation

PAGE = "/crm/appusers?ordering=-relationship__points"
MIDDLEWARE = f"{AblationMiddleware.__module__}.{AblationMiddleware.__name__}"


def _show(*names: str) -> list[str]:
    values = []
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"SHOW {name}")
            values.append(cursor.fetchone()[0])
    return values


def _count_method(response: Any) -> str:
    """How the count was made, from Server-Timing's `count;dur=...;desc="..."`."""
    found = re.search(r'(?:^|, )count;dur=[0-9.]+;desc="([^"]+)"', response["Server-Timing"])
    assert found, response["Server-Timing"]
    return found[1]


def _sets(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("SET ")]


@pytest.fixture
def production_stack() -> Iterator[None]:
    """The middleware of production's settings: the bench's is the only one dropped."""
    assert settings.MIDDLEWARE[-1] == MIDDLEWARE  # last: it wraps the view alone
    with override_settings(MIDDLEWARE=settings.MIDDLEWARE[:-1]):
        yield


@pytest.mark.django_db(transaction=True)  # the ablation closes the connection around it
def test_no_indexes_applies_to_its_request_only(api_client: Client) -> None:
    assert api_client.get(PAGE).status_code == 200  # plans cached with indexes ...
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(PAGE, HTTP_X_BENCH_ABLATION="no-indexes")
    assert response.status_code == 200
    assert "SET enable_indexscan = off" in _sets(queries)
    assert connection.connection is None  # ... and the ablated connection is gone
    # a fresh connection: indexes are back (SHOW, not a plan: on the test's few rows a
    # sequential scan wins anyway, unless an earlier test left the table's statistics big)
    assert _show("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan") == ["on"] * 3
    assert api_client.get(PAGE).status_code == 200


def test_production_ignores_the_header(api_client: Client, production_stack: None) -> None:
    for ablation in ("no-indexes", "per-row-queries", "exact-count"):
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(PAGE, HTTP_X_BENCH_ABLATION=ablation)
        assert response.status_code == 200
        assert not _sets(queries)
        assert not any("FROM crm_address WHERE" in q["sql"] for q in queries)
        assert _count_method(response) == "capped"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/crm/appusers/1"), ("get", "/crm/appusers/export.ndjson"), ("post", "/crm/appusers")],
)
def test_only_the_list_is_ablated(api_client: Client, method: str, path: str) -> None:
    with CaptureQueriesContext(connection) as queries:
        getattr(api_client, method)(path, HTTP_X_BENCH_ABLATION="no-indexes")
    assert not _sets(queries)


@pytest.mark.django_db(transaction=True)
def test_no_indexes_runs_on_a_connection_of_its_own() -> None:
    """Prepared statements keep plans across SET, so no connection may carry them over."""
    connection.ensure_connection()
    before = connection.connection
    with planner_ablation(frozenset({"no-indexes"})):
        inside = connection.connection
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_indexscan")
            assert cursor.fetchone()[0] == "off"
    assert inside is not before
    assert connection.connection is None


def test_exact_count_counts_exactly(api_client: Client, make_contact: Any) -> None:
    """A small table is counted exactly anyway, but capped (crm_count()); the ablation
    asks for the uncapped count, as `count=exact` does, also over a client's `estimate`."""
    make_contact()
    assert _count_method(api_client.get(PAGE)) == "capped"
    for params in ("", "&count=estimate"):
        response = api_client.get(PAGE + params, HTTP_X_BENCH_ABLATION="exact-count")
        assert response.status_code == 200
        assert _count_method(response) == "exact"
        assert response.json()["count"] == 1


def test_each_serialisation_ablation_gives_the_same_body(
    api_client: Client, make_contact: Any
) -> None:
    """python-json and per-row-queries change how a page is read and written, not what it
    says; per-row-queries reads each contact's address and relationship by a query of its
    own, as the ORM does without select_related."""
    # microseconds that are not zero: orjson leaves zero ones out, PostgreSQL writes them
    make_contact(points=5, last_activity=datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))
    make_contact(points=None)  # no relationship: null, by every path
    expected = api_client.get(PAGE).json()
    for ablation, per_table in (("python-json", 0), ("per-row-queries", 2)):
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(PAGE, HTTP_X_BENCH_ABLATION=ablation)
        assert response.json() == expected
        for table in ("crm_address", "crm_customerrelationship"):
            assert sum(f"FROM {table} WHERE" in q["sql"] for q in queries) == per_table
