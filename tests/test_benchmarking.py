"""The bench's ablation switches (crm/benchmarking.py) and what they leave behind."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return str(cursor.fetchone()[0])


def test_no_indexes_applies_to_the_request_and_is_undone_after(
    api_client: Client, settings: Any
) -> None:
    settings.BENCH_ABLATIONS = True
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/crm/appusers", HTTP_X_BENCH_ABLATION="no-indexes")
    assert response.status_code == 200
    statements = [q["sql"] for q in queries]
    assert "SET enable_indexscan = off" in statements
    assert statements[-1] == "RESET enable_bitmapscan"
    assert _setting("enable_indexscan") == _setting("enable_bitmapscan") == "on"


def test_the_header_is_ignored_unless_the_server_allows_ablations(api_client: Client) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/crm/appusers", HTTP_X_BENCH_ABLATION="no-indexes")
    assert response.status_code == 200
    assert not any(q["sql"].startswith("SET ") for q in queries)
