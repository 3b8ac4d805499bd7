"""Fuzzing the query strings of every GET operation: zero 5xx, and every 4xx is the errors
body with a param and a message.

The operations and their parameters come from the OpenAPI document at /crm/openapi.json
when the URLconf has it (else the list endpoint, from the field registry). Hypothesis draws
values that fit each parameter's schema, values that nearly fit (out of range, wrong type,
odd formats), hostile text and raw bytes, unknown and repeated parameter names.

CI runs FUZZ_EXAMPLES (default 400) requests; FUZZ_EXAMPLES=10000 is the long mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from crm.auth import create_token
from crm.fields import CONTROL_PARAMS, FIELDS, PAGE_SIZE_MAX, Kind
from crm.models import AppUser
from crm_bench.openapi import PATH as BASELINE_PATH
from crm_bench.openapi import schema_with_baseline

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
NASTY = [
    "", " ", "0", "-1", "1e3", "NaN", "true", "null", "[]", "{}", "'", '"', "\\", "%", "_",
    "x' OR '1'='1", "1;DROP TABLE crm_contactrow", "%s", "$1", "\x00", "\ufffd", "\u202e",
    "e\u0301", "\U0001f469\u200d\U0001f467", "9" * 30, "-" * 3, "a,b", ",", ",,", "1,",
    "2024-02-30", "2024-13-01", "0000-01-01", "9999-12-31T23:59:59-14:00", "2024-01-01T25:00",
    "-id", "--id", "id,-id", "+id", " id", "id ", "first_name,,id",
]  # fmt: skip


@dataclass
class Operation:
    path: str  # with {id} for a path parameter
    params: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # name: schema


def _registry_operation() -> Operation:
    params: dict[str, dict[str, Any]] = {name: {"type": "string"} for name in CONTROL_PARAMS}
    for f in FIELDS.values():
        kind = {"integer": "integer", "date": "string", "datetime": "string"}.get(f.kind.value)
        base = {"type": kind or "string"}
        if f.kind is Kind.DATE:
            base["format"] = "date"
        if f.kind is Kind.DATETIME:
            base["format"] = "date-time"
        params[f.name] = base
        for lookup in f.lookups:
            params[f"{f.name}__{lookup}"] = base
    return Operation("/crm/appusers", params)


def _schema_operations() -> list[Operation]:
    """GET operations with query parameters from the OpenAPI document, if it is served."""
    try:
        match = resolve("/crm/openapi.json")
    except Resolver404:
        return []
    return _operations(orjson.loads(match.func(RequestFactory().get("/crm/openapi.json")).content))


def _operations(document: dict[str, Any]) -> list[Operation]:
    components = document.get("components", {}).get("parameters", {})
    operations = []
    for path, item in document["paths"].items():
        get = item.get("get")
        if not get or not get.get("parameters"):
            continue
        operation = Operation(path)
        for param in get["parameters"]:
            if "$ref" in param:
                param = components[param["$ref"].rpartition("/")[2]]
            if param["in"] == "query":
                operation.params[param["name"]] = param.get("schema", {})
        operations.append(operation)
    return operations


OPERATIONS = _schema_operations() or [_registry_operation()]
# The naive DRF yardstick of the bench app, fuzzed on its own (below), with the parameters
# the bench documents for it (the served document leaves it out).
(BASELINE,) = [op for op in _operations(schema_with_baseline()) if op.path == BASELINE_PATH]
REGISTRY = _registry_operation()


# --- values --------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
RAW_BYTES = st.binary(max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b))
DATES = st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat)
DATETIMES = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z")
)


def fitting(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """A value that the schema allows (as text, before URL encoding)."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from([str(v) for v in schema["enum"]])
    if kind == "integer":
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
        return st.integers(low, high).map(str)
    if kind == "boolean":
        return st.sampled_from(["true", "false"])
    if kind == "array":
        items = fitting(schema.get("items", {}))
        low, high = schema.get("minItems", 1), min(schema.get("maxItems", 5), 5)
        return st.lists(items, min_size=low, max_size=high).map(",".join)
    if schema.get("format") == "date":
        return DATES
    if schema.get("format") == "date-time":
        return st.one_of(DATETIMES, DATES)
    return TEXT


def nearly(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """A value just outside what the schema allows."""
    out: list[st.SearchStrategy[str]] = [st.sampled_from(NASTY), TEXT]
    if schema.get("type") == "integer":
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
        out += [st.sampled_from([str(low - 1), str(high + 1), f"{low}.5", f" {low}", f"+{high}"])]
        out += [st.integers().filter(lambda n: n != -(2**63)).map(str)]
    if schema.get("type") == "array":
        item = fitting(schema.get("items", {}))
        out += [st.lists(item, min_size=0, max_size=3).map(lambda v: ",".join(v) + ",")]
        out += [st.lists(item, min_size=6, max_size=8).map(",".join)]
    return st.one_of(out)


@st.composite
def query_string(draw: st.DrawFn, operation: Operation) -> str:
    names = sorted(operation.params)
    pairs: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        which = draw(st.integers(0, 9))
        if which < 8:
            name = draw(st.sampled_from(names))
            schema = operation.params[name]
        elif which == 8:  # a name the operation does not have, near or far
            name = draw(st.sampled_from(sorted(REGISTRY.params)) | TEXT.filter(bool))
            schema = {}
        else:
            name = draw(st.sampled_from([*names, "page"]))
            schema = operation.params.get(name, {})
        kind = draw(st.integers(0, 9))
        if kind < 5:
            value = quote(draw(fitting(schema)), safe="")
        elif kind < 9:
            value = quote(draw(nearly(schema)), safe="")
        else:
            value = draw(RAW_BYTES)
        pairs.append(f"{quote(name, safe='')}={value}")
        if draw(st.integers(0, 19)) == 0:  # the same parameter again
            pairs.append(f"{quote(name, safe='')}={value}")
    return "&".join(pairs)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Operation, str]:
    # the list endpoint, the one with the most parameters, gets half the requests
    lists = [op for op in OPERATIONS if op.path == "/crm/appusers"]
    operation = draw(st.sampled_from(OPERATIONS) | st.sampled_from(lists))
    return operation, draw(query_string(operation))


# --- the test ------------------------------------------------------------------------------


@pytest.fixture
def contacts(make_contact: Callable[..., AppUser]) -> list[AppUser]:
    return [
        make_contact(first_name="Anna", last_name="Muster"),
        make_contact(first_name="Bernd", last_name="Huber", points=None, birthday=None),
        make_contact(first_name="Zo\u00eb", last_name="Y\u0131lmaz", city="Graz", points=900),
    ]


@pytest.fixture
def client(user: User) -> Client:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {create_token(user)}")
    client.raise_request_exception = False  # a crash is reported as the 500 it would be
    return client


def check_response(response: Any, operation: Operation, where: str) -> None:
    status = response.status_code
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert status < 500, f"{where}: {status} {body[:500]!r}"
    if status < 400:
        if operation.path == "/crm/appusers" and status == 200:
            page = orjson.loads(body)
            assert isinstance(page["results"], list) and len(page["results"]) <= PAGE_SIZE_MAX
        return
    assert response["Content-Type"] == "application/json", where
    errors = orjson.loads(body)["errors"]
    assert isinstance(errors, list) and errors, where
    for error in errors:
        assert isinstance(error["param"], str), where
        assert isinstance(error["message"], str) and error["message"].strip(), where


def test_operations_come_from_the_schema_when_served() -> None:
    paths = {operation.path for operation in OPERATIONS}
    assert "/crm/appusers" in paths
    try:
        resolve("/crm/openapi.json")
    except Resolver404:
        return
    assert len(paths) > 1 and any("{id}" in path for path in paths)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(), contact=st.integers(0, 2))
def test_fuzz_query_strings(
    client: Client, contacts: list[AppUser], request: tuple[Operation, str], contact: int
) -> None:
    operation, query = request
    path = operation.path.replace("{id}", str(contacts[contact].id))
    url = f"{path}?{query}" if query else path
    note(url)
    # Each request in a savepoint: a database error must not poison the test's transaction
    # for the next examples (a worker outside tests has no such shared transaction).
    savepoint = transaction.savepoint()
    try:
        check_response(client.get(url), operation, url)
    finally:
        transaction.savepoint_rollback(savepoint)


@settings(
    max_examples=max(20, EXAMPLES // 20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=query_string(BASELINE))
def test_fuzz_baseline_never_5xx(client: Client, contacts: list[AppUser], query: str) -> None:
    """The naive DRF yardstick (bench only) answers its 4xx in DRF's own format, and is slow
    (~0.5 s a request): fewer examples, and only the no-5xx half of the contract."""
    url = f"{BASELINE.path}?{query}"
    note(url)
    response = client.get(url)
    assert response.status_code < 500, f"{url}: {response.status_code} {response.content[:300]!r}"
