"""Time limits: every connection runs with statement_timeout; a statement that hits it answers
503 with a clear message, Retry-After and the errors body, and the same worker (here: the
same process and database connection) answers the next request normally.

No test-only view runs pg_sleep: the slow statement is either a real `SELECT pg_sleep(1)`
under `SET LOCAL statement_timeout` fed to the middleware, or the real list query made to
wait on a lock that a second connection holds (statement_timeout counts lock waits too).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.client import RequestFactory

from crm.middleware import (
    TIMEOUT_MESSAGE,
    UNAVAILABLE_MESSAGE,
    DatabaseUnavailableMiddleware,
    database_error_response,
)

API = "/crm/appusers"


def query_canceled() -> OperationalError:
    """A real statement timeout, raised by PostgreSQL."""
    cursor = connection.cursor()
    with pytest.raises(OperationalError) as caught, transaction.atomic():
        cursor.execute("SET LOCAL statement_timeout = 10")
        cursor.execute("SELECT pg_sleep(1)")
    cursor.close()
    return caught.value


def assert_503(response: Any, message: str) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"errors": [{"param": "", "message": message}]}


def test_every_connection_has_the_statement_timeout(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        assert int(cursor.fetchone()[0]) == settings.STATEMENT_TIMEOUT_MS > 0


def test_a_real_statement_timeout_answers_503(db: None) -> None:
    error = query_canceled()
    assert error.__cause__.sqlstate == "57014"  # type: ignore[union-attr]
    assert_503(database_error_response(error), TIMEOUT_MESSAGE)
    middleware = DatabaseUnavailableMiddleware(HttpResponse)
    response = middleware.process_exception(RequestFactory().get(API), error)
    assert_503(response, TIMEOUT_MESSAGE)
    with connection.cursor() as cursor:  # the connection is still good
        cursor.execute("SELECT 1")


def test_a_refused_connection_answers_503(db: None) -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(host="/nonexistent", dbname="x", connect_timeout=1)
    error = OperationalError(str(caught.value))
    error.__cause__ = caught.value
    assert_503(database_error_response(error), UNAVAILABLE_MESSAGE)


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on `table` from a second connection."""
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            other.rollback()


@pytest.fixture
def short_timeout(transactional_db: None) -> Iterator[int]:
    """statement_timeout of 300 ms on the connection the requests use (the settings apply it
    at connect time with `-c statement_timeout`; SET does the same to an open connection)."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 300")
    try:
        yield 300
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


def test_list_query_hitting_the_timeout_answers_503_then_recovers(
    short_timeout: int, api_client: Client, make_contact: Any
) -> None:
    make_contact()
    assert api_client.get(API).status_code == 200
    with table_locked("crm_contactrow"):
        started = time.monotonic()
        response = api_client.get(API)
        elapsed = time.monotonic() - started
        assert_503(response, TIMEOUT_MESSAGE)
        assert elapsed < 3, elapsed
        assert api_client.get("/healthz").status_code == 200  # the database itself is fine
        assert_503(api_client.get(API + "?search=anna&count=exact"), TIMEOUT_MESSAGE)
    for _ in range(3):  # the same connection, the next requests: all normal
        response = api_client.get(API)
        assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_token_lookup_hitting_the_timeout_answers_503(short_timeout: int, user: Any) -> None:
    """The auth middleware's own query (the token lookup) is covered too."""
    from crm.auth import create_token

    client = Client(HTTP_AUTHORIZATION=f"Bearer {create_token(user)}")
    with table_locked("crm_apitoken"):
        assert_503(client.get(API), TIMEOUT_MESSAGE)
    assert client.get(API).status_code == 200
