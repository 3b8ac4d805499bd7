"""A counted result kept for the pages that follow (crm/selectors/results.py), and served
only while the read model is the one it was counted on (crm/db/version.sql): transactional
tests, since a list read inside a transaction keeps nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.models import AppUser
from crm.pagination import SALT
from crm.params import parse_list_params
from crm.selectors import results

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/crm/appusers?first_name=Anna&ordering=-relationship__points&page_size=10"


@pytest.fixture
def contacts(make_contact: Callable[..., AppUser]) -> list[AppUser]:
    """35 Annas with points 0..34 (the list's 4 pages), and others that do not match."""
    for n in range(5):
        make_contact(first_name="Berta", points=n)
    return [make_contact(first_name="Anna", points=n) for n in range(35)]


def _writer() -> psycopg.Connection:
    """A second, real connection to the test database, whose transaction stays open."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or None,
        port=settings["PORT"] or None, password=settings["PASSWORD"] or None,
    )  # fmt: skip


def _get(client: Client, path: str) -> tuple[dict[str, Any], str, list[str]]:
    """The body, the count's method (Server-Timing) and the statements run."""
    with CaptureQueriesContext(connection) as statements:
        response = client.get(path)
    assert response.status_code == 200, response.content
    method = re.search(r'count;dur=[\d.]+;desc="([^"]*)"', response["Server-Timing"])
    assert method, response["Server-Timing"]
    return response.json(), method[1], [q["sql"] for q in statements.captured_queries]


def _next(body: dict[str, Any]) -> str:
    parts = urlsplit(body["next"])
    return f"{parts.path}?{parts.query}"


def _cursor(link: str) -> Any:
    """What a `next` link's cursor holds (its signature carries the second it was signed in,
    so two links to the same page differ when a second passed between them)."""
    (raw,) = parse_qs(urlsplit(link).query)["cursor"]
    return signing.loads(raw, salt=SALT)


def _points(body: dict[str, Any]) -> list[int]:
    return [row["relationship"]["points"] for row in body["results"]]


def test_the_pages_after_a_counted_first_page_take_its_ids(
    api_client: Client, contacts: list[AppUser]
) -> None:
    first, method, _ = _get(api_client, LIST)
    assert (first["count"], method) == (35, "capped")
    second, method, statements = _get(api_client, _next(first))
    assert (second["count"], method) == (35, "kept")
    assert _points(second) == list(range(24, 14, -1))
    by_number, method, _ = _get(api_client, LIST + "&page=3")
    assert (method, _points(by_number)) == ("kept", list(range(14, 4, -1)))
    results.clear()
    anew, method, counted = _get(api_client, _next(first))
    assert method == "capped"
    assert anew["results"] == second["results"]
    assert _cursor(anew["next"]) == _cursor(second["next"])
    assert any("crm_count(" in sql for sql in counted)
    assert not any("crm_count(" in sql for sql in statements)  # the version's read instead


def test_a_write_between_two_pages_is_counted_on_the_next(
    api_client: Client, contacts: list[AppUser]
) -> None:
    first, _, _ = _get(api_client, LIST)
    contacts[0].delete()  # points 0: on the last page
    second, method, _ = _get(api_client, _next(first))
    assert (second["count"], method) == (34, "capped")


def test_a_writer_in_flight_while_a_page_is_counted_keeps_it_from_being_kept(
    api_client: Client, contacts: list[AppUser]
) -> None:
    """A write not yet committed when the first page is counted is not in its count; once
    it commits, the next page must count it."""
    with _writer() as writer:
        writer.execute(
            "UPDATE crm_contactrow SET first_name = 'Berta' WHERE id = %s", [contacts[34].pk]
        )
        first, _, _ = _get(api_client, LIST)
        assert first["count"] == 35  # the write is in flight
        writer.commit()
    second, method, _ = _get(api_client, _next(first))
    assert (second["count"], method) == (34, "capped")


def test_a_version_is_settled_only_when_no_writer_is_in_flight(contacts: list[AppUser]) -> None:
    settled = results.settled_version()
    assert settled is not None
    contacts[0].delete()
    after = results.settled_version()
    assert after is not None and after > settled
    with _writer() as writer:
        writer.execute("DELETE FROM crm_contactrow WHERE id = %s", [contacts[1].pk])
        assert results.settled_version() is None
        writer.rollback()
    assert results.settled_version() is not None


def test_a_kept_result_is_keyed_by_the_values_a_term_was_read_as() -> None:
    """A term's values come from the database (crm/selectors/facts.py resolve_held_terms),
    as a pattern's do: a name that holds it, written in between, makes another result."""
    query = parse_list_params({"search": ["王"]})
    one = replace(query, held={"王": {"last_name": ("王", "王伟"), "first_name": ("王军",)}})
    same = replace(query, held={"王": {"first_name": ("王军",), "last_name": ("王伟", "王")}})
    more = replace(
        query, held={"王": {"last_name": ("王", "王伟", "李王"), "first_name": ("王军",)}}
    )
    assert results.result_key(one) == results.result_key(same) != results.result_key(more)
