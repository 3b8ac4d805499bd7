"""Hostile values in every parameter of GET /crm/appusers: SQL fragments, unicode oddities,
100 kB values, repeated parameters. Never a 5xx; a 4xx always names the parameter in the
errors body; a 200 never returns rows the filter does not mean; the tables stay intact.

Every filter name (each field with each of its lookups, and the bare field), search,
ordering, cursor, page, page_size and count gets every payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from crm.auth import create_token
from crm.fields import CONTROL_PARAMS, FIELDS, Kind
from crm.models import Address, AppUser, CustomerRelationship

API = "/crm/appusers"
FILTER_NAMES = [f.name for f in FIELDS.values()] + [
    f"{f.name}__{lookup}" for f in FIELDS.values() for lookup in f.lookups
]
TEXT_FILTERS = [
    n for n in FILTER_NAMES if FIELDS[n if n in FIELDS else n.rpartition("__")[0]].kind is Kind.TEXT
]
ALL_NAMES = [*FILTER_NAMES, *CONTROL_PARAMS]
ANY_TEXT = [n for n in TEXT_FILTERS if not n.endswith("__isnull")] + ["search"]
FULL = os.environ.get("INJECTION_FULL") == "1"
SHARE = 4
INJECTED = quote("x' OR '1'='1")

SQL = [
    "x' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE crm_contactrow; --",
    "x'); DELETE FROM crm_appuser; --",
    "' UNION SELECT username, password FROM auth_user --",
    "x\\'; SELECT pg_sleep(10); --",
    "x' || (SELECT current_user) || '",
    "1) OR (1=1",
    "%s",
    "%(first_name)s",
    "$1",
    "{0}",
    'x"; COMMIT; --',
    "x;TRUNCATE crm_contactrow",
    "/**/OR/**/1=1",
]
UNICODE = [  # percent-encoded as sent (a lone surrogate cannot be encoded as UTF-8 text)
    ("NUL", "x%00y"),
    ("NUL alone", "%00"),
    ("lone surrogate", "%ED%A0%80"),
    ("invalid UTF-8", "%C3%28%FF%FE"),
    ("overlong slash", "%C0%AF"),
    ("RTL marks", quote("\u202eevil\u202c\u200f\u200e")),
    ("combining", quote("e\u0301\u0308\u0336")),
    ("emoji ZWJ", quote("\U0001f469\u200d\U0001f469\u200d\U0001f467")),
    ("BOM and noncharacters", quote("\ufeff\ufffe\uffff")),
    ("astral letters", quote("\U0001d518\U0001d52b\U0001d526")),
    ("control characters", quote("\x01\x1b[31m\x7f")),
    ("line breaks", quote("a\r\nSet-Cookie: x=1")),
    ("only spaces", quote("   ")),
]
LONG = [
    ("100 kB letters", "a" * 100_000),
    ("100 kB digits", "1" * 100_000),
    ("100 kB list", ",".join(["1"] * 50_000)),
    ("100 kB words", quote("ab " * 33_000)),
    ("100 kB dashes", "-" * 100_000),
]


@pytest.fixture
def data(make_contact: Callable[..., AppUser]) -> list[AppUser]:
    return [
        make_contact(first_name="Anna", last_name="Muster"),
        make_contact(first_name="Bernd", last_name="Huber", city="Graz", points=None),
        make_contact(first_name="Clara", last_name="Berger", gender="M", points=500),
    ]


@pytest.fixture
def client(user: User) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {create_token(user)}")


def table_counts() -> dict[str, int]:
    tables = ["crm_appuser", "crm_address", "crm_customerrelationship", "crm_contactrow"]
    with connection.cursor() as cursor:
        counts = {}
        for table in [*tables, "auth_user", "crm_apitoken"]:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
            counts[table] = cursor.fetchone()[0]
    return counts


def check(response: Any, name: str, where: str) -> dict | None:
    """The invariants of any answer; the body of a 200, else None."""
    status = response.status_code
    assert status < 500, f"{where}: {status} {response.content[:300]!r}"
    assert response["Content-Type"] == "application/json", where
    body = response.json()
    if status == 200:
        return body
    assert status in (400, 404), f"{where}: {status}"
    errors = body["errors"]
    assert errors and all(e["param"] and e["message"] for e in errors), f"{where}: {errors}"
    assert name in {e["param"] for e in errors}, f"{where}: {errors}"
    return None


def sweep(client: Client, encoded_values: list[tuple[str, str]], *, zero_rows: bool) -> int:
    """Each value in each parameter; returns how many requests answered 200.

    Values that a parameter cannot take (an integer, a date, a boolean, a page number...)
    go to all such parameters in one request, whose 400 must name each of them; the text
    filters, which take any text, get one request each, and must match nothing. In CI each
    value goes to a quarter of the text filters, in turn, so each of them gets several
    values of each kind; INJECTION_FULL=1 sends every value to every text filter."""
    ok = 0
    for i, (label, encoded) in enumerate(encoded_values):
        refused = [n for n in ALL_NAMES if n not in ANY_TEXT]
        response = client.get(API + "?" + "&".join(f"{n}={encoded}" for n in refused))
        assert response.status_code == 400, label
        named = {e["param"] for e in response.json()["errors"]}
        assert named >= set(refused) - {"search", "cursor", "count"}, (label, set(refused) - named)
        for name in refused:  # and each alone
            if FULL or (i + ALL_NAMES.index(name)) % SHARE == 0:
                check(client.get(f"{API}?{name}={encoded}"), name, f"{name}={label!r}")
        for j, name in enumerate(ANY_TEXT):
            if not FULL and (i + j) % SHARE:
                continue
            where = f"{name}={label!r}"
            body = check(client.get(f"{API}?{name}={encoded}"), name, where)
            if body is None:
                continue
            ok += 1
            if zero_rows and name != "search":
                assert body["results"] == [] and body["count"] == 0, where
    return ok


def test_sql_fragments_in_every_parameter(client: Client, data: list[AppUser]) -> None:
    before = table_counts()
    answered = sweep(client, [(v, quote(v)) for v in SQL], zero_rows=True)
    assert answered >= len(SQL) * (len(ANY_TEXT) - 1) // (1 if FULL else SHARE)
    assert table_counts() == before
    assert client.get(API).json()["count"] == len(data)


def test_sql_fragments_in_search_match_nothing(client: Client, data: list[AppUser]) -> None:
    for value in SQL:
        body = check(client.get(f"{API}?search={quote(value)}"), "search", value)
        assert body is not None and body["results"] == [], value


def test_the_classic_injection_returns_no_rows(client: Client, data: list[AppUser]) -> None:
    body = client.get(API, {"first_name": "x' OR '1'='1"}).json()
    assert body["results"] == [] and body["count"] == 0
    body = client.get(API, {"first_name__in": "Anna,x' OR '1'='1"}).json()
    assert [r["first_name"] for r in body["results"]] == ["Anna"]


def test_unicode_oddities_in_every_parameter(client: Client, data: list[AppUser]) -> None:
    before = table_counts()
    sweep(client, UNICODE, zero_rows=True)
    assert table_counts() == before


def test_nul_is_refused_with_a_message(client: Client, data: list[AppUser]) -> None:
    for name in ANY_TEXT:
        response = client.get(f"{API}?{name}=a%00b")
        assert response.status_code == 400, name
        assert "NUL" in response.json()["errors"][0]["message"], name


def test_empty_values(client: Client, data: list[AppUser]) -> None:
    """An empty value means what the lookup says (contains '' matches every row) or is
    refused: never a 5xx."""
    for name in ALL_NAMES:
        check(client.get(f"{API}?{name}="), name, f"{name}=''")
    assert client.get(f"{API}?first_name__contains=").json()["count"] == len(data)
    assert client.get(f"{API}?first_name=").json()["count"] == 0


def test_100_kb_values_in_every_parameter(client: Client, data: list[AppUser]) -> None:
    for i, (label, encoded) in enumerate(LONG):
        refused = "&".join(f"{name}={encoded}" for name in ALL_NAMES)
        response = client.get(f"{API}?{refused}")  # 20 MB of query string in one request
        assert response.status_code == 400
        assert {e["param"] for e in response.json()["errors"]} >= set(FILTER_NAMES)
        for j, name in enumerate(ALL_NAMES):
            if FULL or (i + j) % SHARE == 0:
                response = client.get(f"{API}?{name}={encoded}")
                check(response, name, f"{name}={label}")
                assert response.status_code == 400, f"{name}={label}: {response.status_code}"


def test_error_messages_do_not_echo_100_kb(client: Client, data: list[AppUser]) -> None:
    for name in ALL_NAMES:
        response = client.get(f"{API}?{name}={'a' * 100_000}")
        assert len(response.content) < 2000, name


def test_repeated_parameters(client: Client, data: list[AppUser]) -> None:
    for name in ALL_NAMES:
        for query in (f"{name}=1&{name}=1", f"{name}=Anna&{name}={INJECTED}"):
            response = client.get(f"{API}?{query}")
            check(response, name, query)
            assert response.status_code == 400, query


def test_thousands_of_parameters(client: Client, data: list[AppUser]) -> None:
    """Past DATA_UPLOAD_MAX_NUMBER_FIELDS Django refuses the query string: still a 400 in
    the errors body, not an HTML page."""
    response = client.get(API + "?" + "&".join(f"p{i}=1" for i in range(1500)))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


def test_like_wildcards_are_literal(client: Client, make_contact: Callable[..., AppUser]) -> None:
    """%, _ and backslash in a text filter match only themselves."""
    make_contact(first_name="Anna", last_name="Muster")
    odd = make_contact(first_name="50%_off\\now", last_name="Under_score")
    expected = {
        "first_name__contains=%25": [odd.id],
        "first_name__contains=_": [odd.id],
        "first_name__contains=%5C": [odd.id],
        "first_name__icontains=%25_OFF": [odd.id],
        "first_name__startswith=%25": [],
        "first_name__endswith=%5Cnow": [odd.id],
        "last_name__contains=_": [odd.id],
        "last_name__iexact=under_score": [odd.id],
        "last_name__iexact=under%25": [],
        "first_name=%25": [],
        "search=%25": [odd.id],
        "search=_": [odd.id],
        "search=%25%25": [],
        "search=a_n": [],
    }
    for query, ids in expected.items():
        body = client.get(f"{API}?{query}").json()
        found = [] if body["fuzzy"] else [r["id"] for r in body["results"]]  # nothing matched
        assert found == ids, query


def test_unicode_values_match_exactly(client: Client, make_contact: Callable[..., AppUser]) -> None:
    zoe = make_contact(first_name="Zo\u00eb \U0001f642", last_name="Y\u0131lmaz")
    make_contact(first_name="Zoe", last_name="Yilmaz")
    assert [r["id"] for r in client.get(f"{API}?first_name={quote(zoe.first_name)}").json()[
        "results"]] == [zoe.id]  # fmt: skip
    body = client.get(f"{API}?first_name__contains={quote(chr(0x1F642))}").json()
    assert [r["id"] for r in body["results"]] == [zoe.id]
    decomposed = quote("Zoe\u0308 \U0001f642")  # the same name in another normal form
    assert client.get(f"{API}?first_name={decomposed}").json()["results"] == []
    assert client.get(f"{API}?last_name=%ED%A0%80").json()["results"] == []


def test_odd_parameter_names(client: Client, data: list[AppUser]) -> None:
    names = [
        quote("first_name' OR '1'='1"),
        "first_name__regex",
        "first_name__contains__exact",
        "address__city__icontains__",
        "__class__",
        "id)--",
        "%00",
        "%ED%A0%80",
        quote("\u202efirst_name"),
        "a" * 100_000,
        "ordering__in",
        "page[]",
    ]
    for name in names:
        response = client.get(f"{API}?{name}=1")
        assert response.status_code == 400, name[:50]
        errors = response.json()["errors"]
        assert errors[0]["param"] and errors[0]["message"], name[:50]


@pytest.mark.parametrize("path", ["/crm/appusers/1/avatar.png", "/crm/appusers/1/avatar.svg"])
def test_avatar_parameters(client: Client, data: list[AppUser], path: str) -> None:
    path = path.replace("/1/", f"/{data[0].id}/")
    for name in ("size", "shape", "v"):
        for value in [quote(v) for v in SQL[:5]] + [e for _, e in UNICODE] + ["9" * 100_000]:
            response = client.get(f"{path}?{name}={value}")
            assert response.status_code < 500, (name, value[:50])
            if response.status_code >= 400:
                assert response.json()["errors"][0]["message"], (name, value[:50])


def test_tables_intact_after_everything(client: Client, data: list[AppUser]) -> None:
    for value in SQL:
        for name in ("first_name", "search", "ordering", "cursor", "address__city__in"):
            client.get(f"{API}?{name}={quote(value)}")
    assert AppUser.objects.count() == len(data)
    assert Address.objects.count() == len(data)
    assert CustomerRelationship.objects.count() == 2
    assert User.objects.filter(username="staff").exists()
    assert client.get(API).json()["count"] == len(data)


def test_integer_bounds(client: Client, data: list[AppUser]) -> None:
    """The documented extremes of every integer filter, and one past them."""
    for f in FIELDS.values():
        if f.kind is not Kind.INTEGER:
            continue
        low, high = -f.maximum - 1, f.maximum
        for lookup in ("", "__gt", "__gte", "__lt", "__lte", "__in", "__range"):
            values = [f"{low + 1},{high}"] if lookup == "__range" else [str(low + 1), str(high)]
            for value in values:
                where = f"{f.name}{lookup}={value}"
                assert check(client.get(f"{API}?{where}"), f.name + lookup, where) is not None
        for value in (str(low - 1), str(high + 1)):
            response = client.get(f"{API}?{f.name}={value}")
            assert response.status_code == 400, (f.name, value)


def test_the_smallest_bigint_filter(client: Client, data: list[AppUser]) -> None:
    response = client.get(f"{API}?id__gte=-9223372036854775808")
    assert response.status_code == 200
