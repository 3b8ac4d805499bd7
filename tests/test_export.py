"""The streaming exports: same rows and order as the list API, RFC 4180 CSV with formula
neutralisation, raw NDJSON, strict parameters, constant memory, and no query left behind
when the client goes away."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from crm.auth import create_token
from crm.export import CrlfLineEnds, ExportSql, csv_header
from crm.fields import FIELDS
from crm.seeding import TABLES

# The module-scoped data fixture below only gets the test database if pytest-django
# knows a selected test needs one: without this mark, running this module (or a -k
# selection of it) alone seeded and truncated the developer's own database.
pytestmark = pytest.mark.django_db

LIST = "/crm/appusers"
CSV = "/crm/appusers/export.csv"
NDJSON = "/crm/appusers/export.ndjson"
BOM = b"\xef\xbb\xbf"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def chunks(response: Any) -> Iterator[bytes]:
    return iter(response.streaming_content)


def content(response: Any) -> bytes:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content)


def walk_list(client: Client, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of the list API for `params`, page by page (small pages: many of them)."""
    rows: list[dict[str, Any]] = []
    for page in range(1, 1000):
        response = client.get(LIST, params | {"page_size": "7", "page": str(page)})
        if response.status_code == 404 and page > 1:  # past the last page
            return rows
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
    raise AssertionError("too many pages")


def walk_cursors(client: Client, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of the list API for `params`, following the keyset `next` links."""
    rows: list[dict[str, Any]] = []
    response = client.get(LIST, params | {"page_size": "7"})
    for _ in range(1000):
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body["next"]:
            return rows
        response = client.get(body["next"])
    raise AssertionError("too many pages")


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """A list API row with the registry's flat names, as the exports write it."""
    relationship = row["relationship"] or {}
    flat = {}
    for name in FIELDS:
        head, _, tail = name.partition("__")
        if not tail:
            flat[name] = row[name]
        elif head == "address":
            flat[name] = row["address"][tail]
        else:
            flat[name] = relationship.get(tail)
    return flat


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(TRIGGERS) else value
    return str(value)


def parse_csv(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode(), newline="")))


def parse_ndjson(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\n") or raw == b""
    return [json.loads(line) for line in raw.decode().split("\n")[:-1]]


@pytest.fixture
def contacts(make_contact: Any) -> None:
    """A small, varied set: missing relationships and birthdays, ties, awkward text."""
    cities = ["Wien", "Graz", "Linz", "Salzburg", "Innsbruck"]
    names = ["Anna", "Bernd", "Clara", "Dario", "Eva", "Émile", "Zoë", "anna", "Ōtsuka"]
    for i in range(40):
        make_contact(
            first_name=names[i % len(names)],
            last_name=["Muster", "Bauer", "Huber", "Öller"][i % 4],
            city=cities[i % len(cities)],
            street=["Hauptstraße", "Ring, Ecke Gasse", 'Am "Platz"', "Zeile\nzwei"][i % 4],
            points=None if i % 6 == 0 else (i * 37) % 11 * 10,
            birthday=None if i % 5 == 0 else date(1970 + i % 30, 1 + i % 12, 1 + i % 28),
            last_activity=datetime(2024, 1 + i % 12, 1 + i % 27, i % 24, tzinfo=UTC),
            gender="FMXU"[i % 4],
        )


PARAM_SETS = [
    {},
    {"ordering": "-relationship__points,last_name"},
    {"ordering": "relationship__last_activity"},
    {"ordering": "-birthday,first_name"},
    {"address__city__in": "Wien,Graz", "ordering": "first_name"},
    {"search": "anna"},
    {"search": "wien muster"},
    {"relationship__id__isnull": "true"},
    {"relationship__points__range": "20,70", "ordering": "-id"},
    {"first_name__istartswith": "a", "birthday__isnull": "false", "ordering": "-created"},
    {"relationship__last_activity__month": "3"},
    {"address__street__contains": '"'},
]


@pytest.mark.parametrize("params", PARAM_SETS, ids=lambda p: "&".join(p) or "all")
def test_exports_match_walking_the_list(
    api_client: Client, contacts: None, params: dict[str, str]
) -> None:
    expected = [flatten(row) for row in walk_list(api_client, params)]
    assert [flatten(row) for row in walk_cursors(api_client, params)] == expected
    assert expected or params.get("relationship__id__isnull") is None

    ndjson = parse_ndjson(content(api_client.get(NDJSON, params)))
    assert ndjson == expected  # same rows, same order, same values and types

    table = parse_csv(content(api_client.get(CSV, params)))
    assert table[0] == list(FIELDS)
    assert table[1:] == [[csv_cell(row[name]) for name in FIELDS] for row in expected]


def test_some_parameter_sets_are_not_trivial(api_client: Client, contacts: None) -> None:
    sizes = [len(walk_list(api_client, p)) for p in PARAM_SETS]
    assert sizes[0] == 40 and all(0 < n < 40 for n in sizes[4:])


def test_csv_is_rfc_4180(api_client: Client, make_contact: Any) -> None:
    make_contact(street="Zeile\nzwei", city='Am "Platz"', last_name="Ring, Ecke", points=None)
    make_contact(first_name="", birthday=None)
    raw = content(api_client.get(CSV))
    assert not raw.startswith(BOM)
    assert b'"Zeile\nzwei"' in raw  # a line break inside a value stays as it is, quoted
    assert b'"Am ""Platz"""' in raw and b'"Ring, Ecke"' in raw
    rest = raw.replace(b'"Zeile\nzwei"', b"")
    assert rest.count(b"\n") == rest.count(b"\r\n") == 3  # header + 2 records, all CRLF
    header, first, second = parse_csv(raw)
    row = dict(zip(header, second, strict=True))
    assert row["first_name"] == "" and row["birthday"] == ""  # empty string, NULL
    assert b',"",' in raw  # ... which stay distinguishable in the bytes
    assert dict(zip(header, first, strict=True))["relationship__points"] == ""


def test_bom_for_excel(api_client: Client, make_contact: Any) -> None:
    make_contact(first_name="Ärger")
    raw = content(api_client.get(CSV, {"bom": "true"}))
    assert raw.startswith(BOM + b"id,first_name,")
    assert parse_csv(raw[len(BOM) :])[1][1] == "Ärger"
    assert not content(api_client.get(CSV, {"bom": "false"})).startswith(BOM)
    response = api_client.get(CSV, {"bom": "yes"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["param"] == "bom"


FORMULAS = {
    "first_name": '=HYPERLINK("http://evil.example","click")',
    "last_name": "+1+1",
    "street": "-2+3",
    "city": "@SUM(A1:A9)",
    "street_number": "\t7",
    "city_code": "\r1010",
}


def test_csv_neutralises_formulas_ndjson_stays_raw(api_client: Client, make_contact: Any) -> None:
    contact = make_contact(points=-5, phone_number="+436641234567", customer_id="C-1", **FORMULAS)
    header, row = parse_csv(content(api_client.get(CSV)))
    cells = dict(zip(header, row, strict=True))
    assert cells["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert cells["last_name"] == "'+1+1"
    assert cells["address__street"] == "'-2+3"
    assert cells["address__city"] == "'@SUM(A1:A9)"
    assert cells["address__street_number"] == "'\t7"
    assert cells["address__city_code"] == "'\r1010"
    assert cells["phone_number"] == "'+436641234567"  # the documented trade-off
    assert cells["customer_id"] == "C-1"  # only a leading trigger counts
    assert cells["relationship__points"] == "-5"  # numbers are never prefixed
    assert cells["id"] == str(contact.id)

    (line,) = parse_ndjson(content(api_client.get(NDJSON)))
    assert line["first_name"] == FORMULAS["first_name"]
    assert line["address__city_code"] == "\r1010"
    assert line["phone_number"] == "+436641234567"
    assert line["relationship__points"] == -5


def test_headers(api_client: Client, make_contact: Any) -> None:
    make_contact()
    response = api_client.get(CSV)
    assert response["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert re.fullmatch(
        r'attachment; filename="contacts-\d{8}-\d{6}\.csv"', response["Content-Disposition"]
    )
    assert response["Cache-Control"] == "no-store"
    content(response)
    response = api_client.get(NDJSON)
    assert response["Content-Type"] == "application/x-ndjson"
    assert re.fullmatch(
        r'attachment; filename="contacts-\d{8}-\d{6}\.ndjson"', response["Content-Disposition"]
    )
    assert len(parse_ndjson(content(response))) == 1


def test_no_rows_is_a_header_only_csv_and_an_empty_ndjson(api_client: Client, db: None) -> None:
    assert content(api_client.get(CSV)) == ",".join(FIELDS).encode() + b"\r\n"
    assert content(api_client.get(NDJSON)) == b""


@pytest.mark.parametrize("path", [CSV, NDJSON])
@pytest.mark.parametrize("param", ["page", "page_size", "cursor", "count"])
def test_paging_parameters_are_refused(api_client: Client, path: str, param: str) -> None:
    response = api_client.get(path, {param: "1"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "param": param,
            "message": f"{param} does not apply to an export, which streams "
            "every matching row; remove it",
        }
    ]


@pytest.mark.parametrize("path", [CSV, NDJSON])
def test_invalid_parameters_are_all_listed(api_client: Client, path: str) -> None:
    response = api_client.get(path, {"page": "2", "nope": "1", "id__gt": "x", "ordering": "-nope"})
    assert response.status_code == 400
    assert [e["param"] for e in response.json()["errors"]] == ["page", "nope", "id__gt", "ordering"]


def test_bom_is_a_csv_parameter_only(api_client: Client) -> None:
    response = api_client.get(NDJSON, {"bom": "true"})
    assert response.status_code == 400
    assert "is not a known parameter" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("path", [CSV, NDJSON])
def test_anonymous_gets_401_and_a_bearer_token_works(
    path: str, user: Any, make_contact: Any
) -> None:
    make_contact()
    response = Client().get(path)
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"].startswith("authentication required")
    response = Client().get(path, headers={"Authorization": f"Bearer {create_token(user)}"})
    assert len(content(response).splitlines()) in (1, 2)


def test_post_is_not_allowed(api_client: Client) -> None:
    assert api_client.post(CSV).status_code == 405


# -- large exports -------------------------------------------------------------------------

SEEDED = 100_000


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[int]:
    """SEEDED contacts from the seeder, committed once for this module's slow tests (whose
    own transactions see them) and truncated afterwards."""
    with django_db_blocker.unblock():
        call_command("seed", users=SEEDED, truncate=True, stdout=io.StringIO())
        try:
            yield SEEDED
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.slow
@pytest.mark.parametrize("path", [CSV, NDJSON])
def test_large_export_streams_in_constant_memory(
    api_client: Client, seeded: int, path: str
) -> None:
    content(api_client.get(path, {"id": "1"}))  # warm up: imports, URLconf, connection
    tracemalloc.start()
    rss_before = rss_peak = _rss_bytes()
    started = time.perf_counter()
    response = api_client.get(path, {"ordering": "-relationship__points"})
    total = lines = 0
    first_chunk = None
    for n, chunk in enumerate(chunks(response)):
        if first_chunk is None:
            first_chunk = time.perf_counter() - started
        total += len(chunk)
        lines += chunk.count(b"\n")
        if n % 50 == 0:
            rss_peak = max(rss_peak, _rss_bytes())
    elapsed = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    response.close()
    assert lines == seeded + (1 if path == CSV else 0)
    assert total > 20_000_000  # the export is far bigger than the memory it used
    assert traced_peak < 1_000_000, traced_peak  # a few 64 KiB chunks, not the rows
    assert rss_peak - rss_before < 20_000_000, rss_peak - rss_before
    assert first_chunk is not None and first_chunk < 1.0, first_chunk  # generous for CI
    print(
        f"{path}: {total / 1e6:.1f} MB, {seeded / elapsed:,.0f} rows/s, first chunk "
        f"{first_chunk * 1000:.0f} ms, traced peak {traced_peak / 1e3:.0f} kB, "
        f"RSS growth {(rss_peak - rss_before) / 1e6:.1f} MB"
    )


def _activity(pid: int) -> list[tuple[str, str]]:
    """What our backend is doing, seen from another connection."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid])
            return cursor.fetchall()
    finally:
        other.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # autocommit, as in production: see below
def test_client_disconnect_cancels_the_copy(api_client: Client, seeded: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    for path in (CSV, NDJSON):  # one test: the flush after it empties the tables
        response = api_client.get(path)
        stream = chunks(response)
        received = sum(len(next(stream)) for _ in range(3))
        assert 0 < received < 1_000_000
        ((state, query),) = _activity(pid)
        assert state == "active" and query.startswith("COPY")  # it would go on without us

        # What the WSGI server does when the client goes away. It also fires
        # request_finished, whose close_old_connections() would close a connection that
        # is inside a transaction (hence this test runs in autocommit mode).
        response.close()

        ((state, query),) = _activity(pid)  # the same backend, still connected ...
        # ... the COPY cancelled and rolled back; psycopg then drops its prepared statements
        assert (state, query) in {("idle", "ROLLBACK"), ("idle", "DEALLOCATE ALL")}
        with connection.cursor() as cursor:  # the connection is usable again
            cursor.execute(
                "SELECT count(*), current_setting('statement_timeout') FROM crm_contactrow"
            )
            assert cursor.fetchone() == (seeded, "5s")  # SET LOCAL ended with the export


def test_crlf_conversion_is_independent_of_chunk_boundaries() -> None:
    raw = b'id,x\n1,"a\nb"\n2,"say ""hi""\n"\n3,\n4,""\n'
    expected = b'id,x\r\n1,"a\nb"\r\n2,"say ""hi""\n"\r\n3,\r\n4,""\r\n'
    for i in range(len(raw) + 1):
        for j in range(i, len(raw) + 1):
            convert = CrlfLineEnds()
            assert b"".join(convert(part) for part in (raw[:i], raw[i:j], raw[j:])) == expected


def test_csv_header_is_what_copy_would_write(db: None) -> None:
    with connection.cursor() as cursor:
        columns = ", ".join(f'1 AS "{name}"' for name in FIELDS)
        with cursor.cursor.copy(f"COPY (SELECT {columns}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            written = b"".join(bytes(data) for data in copy)
    assert CrlfLineEnds()(written.splitlines(keepends=True)[0]) == csv_header()
    assert csv_header(bom=True) == BOM + csv_header()


def test_a_failure_after_the_first_rows_aborts_the_stream_visibly(
    api_client: Client, make_contact: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first bytes the status is sent: a failure then raises out of the body's
    iterator, and the WSGI server aborts the connection, so the client's chunked body lacks
    its final chunk (docs/export.md). It is never swallowed into a short file that looks
    complete."""
    make_contact()
    failing = ExportSql(
        "SELECT CASE WHEN g < 50000 THEN repeat('x', 100) ELSE (1 / (g - g))::text END"
        " FROM generate_series(1, 60000) g",
        [],
        "FORMAT csv",
    )
    monkeypatch.setattr("crm.export.csv_sql", lambda query: failing)
    response = api_client.get(CSV)
    assert response.status_code == 200
    stream = chunks(response)
    assert next(stream).startswith(csv_header())
    with pytest.raises(Exception, match="division by zero"):
        for _ in stream:
            pass


@pytest.mark.parametrize("url", [CSV, NDJSON])
def test_a_statement_that_fails_before_its_first_row_answers_the_errors_body(
    api_client: Client, make_contact: Any, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """The export's SELECT is planned with its values before the response starts, so an
    error of the statement is a JSON answer, not a 200 whose stream breaks."""
    make_contact()
    broken = ExportSql("SELECT no_such_column FROM crm_contactrow", [], "FORMAT csv")
    monkeypatch.setattr(f"crm.export.{'csv' if url == CSV else 'ndjson'}_sql", lambda q: broken)
    api_client.raise_request_exception = False
    response = api_client.get(url)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json" and response.json()["errors"]
