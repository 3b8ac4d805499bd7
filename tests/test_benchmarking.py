"""The bench's ablation switches (crm/benchmarking.py) and what they leave behind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.benchmarking import planner_ablation

PAGE = "/crm/appusers?ordering=-relationship__points"


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.django_db(transaction=True)  # the ablation closes the connection around it
def test_no_indexes_applies_to_its_request_only(api_client: Client, settings: Any) -> None:
    settings.BENCH_ABLATIONS = True
    query = "SELECT id FROM crm_contactrow ORDER BY relationship_points DESC, id DESC LIMIT 5"
    assert api_client.get(PAGE).status_code == 200  # plans cached with indexes ...
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(PAGE, HTTP_X_BENCH_ABLATION="no-indexes")
    assert response.status_code == 200
    assert "SET enable_indexscan = off" in [q["sql"] for q in queries]
    assert connection.connection is None  # ... and the ablated connection is gone
    assert "Index" in _plan(query)  # a fresh connection: indexes are back
    assert api_client.get(PAGE).status_code == 200


def test_the_header_is_ignored_unless_the_server_allows_ablations(api_client: Client) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(PAGE, HTTP_X_BENCH_ABLATION="no-indexes")
    assert response.status_code == 200
    assert not any(q["sql"].startswith("SET ") for q in queries)


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


def test_each_serialisation_ablation_gives_the_same_body(
    api_client: Client, settings: Any, make_contact: Any
) -> None:
    """python-json and per-row-queries change how a page is read and written, not what it
    says; per-row-queries reads each contact's address and relationship by a query of its
    own, as the ORM does without select_related."""
    settings.BENCH_ABLATIONS = True
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
