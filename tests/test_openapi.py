"""The OpenAPI document: valid OpenAPI 3.1, and complete both ways: every parameter it
documents is accepted by the API, and every parameter the API accepts is documented (found
by calling the API with candidate names and seeing which ones it refuses as unknown)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from django.test import Client
from openapi_spec_validator import validate

from crm.auth import create_token
from crm.contact_input import dates_through
from crm.export import csv_header
from crm.fields import CONTROL_PARAMS, FIELDS, LOOKUPS, Kind
from crm.openapi import build_schema
from tests.test_contact_api import BAD_FIELDS, NEW

LIST = "/crm/appusers"
CSV = "/crm/appusers/export.csv"
NDJSON = "/crm/appusers/export.ndjson"
STRICT_PATHS = [LIST, CSV, NDJSON]
ALL_LOOKUPS = sorted({lookup for lookups in LOOKUPS.values() for lookup in lookups})
# Refusals that mean "this name is not a parameter here" (not "bad value").
UNKNOWN = re.compile(r"is not a known parameter|does not apply to|unknown field")

SAMPLES = {
    Kind.TEXT: "a",
    Kind.INTEGER: "1",
    Kind.DATE: "2024-01-02",
    Kind.DATETIME: "2024-01-02T03:04:05Z",
}


def drain(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_schema(today=datetime.now(UTC).date())


def test_schema_is_valid_openapi_3_1(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.1")
    validate(schema)


def test_served_schema_is_the_built_one(api_client: Client) -> None:
    response = api_client.get("/crm/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    served = response.json()
    validate(served)
    assert served == build_schema(today=datetime.now(UTC).date())


def test_openapi_and_docs_need_authentication(db: None) -> None:
    assert Client().get("/crm/openapi.json").status_code == 401
    response = Client().get("/crm/docs")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_docs_page_loads_redoc_from_our_static_files(api_client: Client) -> None:
    response = api_client.get("/crm/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'spec-url="/crm/openapi.json"' in html
    csp = response["Content-Security-Policy"]  # blocks Redoc's footer logo from its CDN
    assert "default-src 'self'" in csp and "img-src 'self' data:;" in csp
    assert "http" not in csp and "*" not in csp
    (src,) = re.findall(r'<script src="([^"]+)"', html)
    assert src == "/static/crm/vendor/redoc/redoc.standalone.js"  # same origin, no CDN
    assert "http" not in re.sub(r"<!--.*?-->", "", html)
    script = Client().get(src)  # static files are public
    assert script.status_code == 200
    assert b"redoc.standalone.js.LICENSE.txt" in drain(script)[:200]


def test_every_endpoint_is_documented(schema: dict[str, Any]) -> None:
    assert set(schema["paths"]) == {
        "/crm/appusers",
        "/crm/appusers/export.csv",
        "/crm/appusers/export.ndjson",
        "/crm/appusers/{id}/avatar.svg",
        "/crm/appusers/{id}/avatar.png",
        "/crm/appusers/{id}",
        "/crm/appusers/{id}/points",
        "/healthz",
        "/crm/openapi.json",
    }
    assert set(schema["paths"]["/crm/appusers"]) == {"get", "post"}
    assert set(schema["paths"]["/crm/appusers/{id}"]) == {"parameters", "get", "patch", "delete"}
    assert schema["paths"]["/healthz"]["get"]["security"] == []
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    for path in STRICT_PATHS:
        responses = schema["paths"][path]["get"]["responses"]
        assert {"200", "400", "401", "503"} <= set(responses)
    error = schema["components"]["schemas"]["Errors"]
    assert error["required"] == ["errors"]


UNDECLARED = ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "QUERY", "CONNECT"]


@pytest.mark.parametrize("session", [True, False], ids=["session", "token"])
def test_every_path_answers_undeclared_methods_405_with_the_errors_body(
    schema: dict[str, Any], user: Any, make_contact: Any, session: bool
) -> None:
    """Before any CSRF check (a 403 would tell a client the method exists)."""
    contact = make_contact()
    client = Client(enforce_csrf_checks=True)
    headers = {}
    if session:
        client.force_login(user)
    else:
        headers = {"Authorization": f"Bearer {create_token(user)}"}
    for path, operations in schema["paths"].items():
        url = path.replace("{id}", str(contact.pk))
        for method in [m for m in UNDECLARED if m.lower() not in operations]:
            response = client.generic(method, url, headers=headers)
            assert response.status_code == 405, (method, url, response.status_code)
            assert response.json()["errors"] and response["Allow"], (method, url)


def test_every_registry_field_and_lookup_is_documented(schema: dict[str, Any]) -> None:
    params = schema["components"]["parameters"]
    for f in FIELDS.values():
        for lookup in f.lookups:
            name = f.name if lookup == "exact" else f"{f.name}__{lookup}"
            assert name in params, name
        flat = schema["components"]["schemas"]["ContactFlat"]["properties"]
        assert f.name in flat


def test_response_schemas_match_real_responses(
    api_client: Client, make_contact: Any, schema: dict[str, Any]
) -> None:
    """The documented shapes are the served ones (a small structural check)."""
    make_contact()
    make_contact(points=None, birthday=None)
    body = api_client.get(LIST).json()
    schemas = schema["components"]["schemas"]
    assert set(body) == set(schemas["ContactPage"]["properties"])
    for row in body["results"]:
        assert set(row) == set(schemas["Contact"]["properties"])
        assert set(row["address"]) == set(schemas["Address"]["properties"])
        assert row["relationship"] is None or set(row["relationship"]) == set(
            schemas["Relationship"]["properties"]
        )
    errors = api_client.get(LIST, {"nope": "1"}).json()
    assert set(errors) == {"errors"} and set(errors["errors"][0]) == {"param", "message"}


# -- completeness, by asking the API -------------------------------------------------------


def documented_names(schema: dict[str, Any], path: str) -> set[str]:
    refs = schema["paths"][path]["get"]["parameters"]
    params = [schema["components"]["parameters"][r["$ref"].rsplit("/", 1)[1]] for r in refs]
    assert all(p["in"] == "query" for p in params)
    return {p["name"] for p in params}


def serialise(value: Any) -> str:
    """A parameter value as OpenAPI's form style (explode false) puts it in the URL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(serialise(v) for v in value)
    return str(value)


def candidate_value(name: str) -> str:
    """A well-formed value for a candidate name built as <field>[__<lookup>]."""
    controls = {
        "page": "1",
        "page_size": "10",
        "ordering": "-id",
        "search": "anna",
        "count": "exact",
        "bom": "true",
    }
    if name in controls:
        return controls[name]
    field, lookup = name, "exact"
    for candidate in ALL_LOOKUPS:
        if name.endswith(f"__{candidate}") and name not in FIELDS:
            field, lookup = name.removesuffix(f"__{candidate}"), candidate
    kind = FIELDS[field].kind if field in FIELDS else Kind.TEXT
    sample = SAMPLES[kind]
    if lookup == "isnull":
        return "true"
    if lookup in ("year", "month", "day"):
        return "2"
    if lookup in ("in", "range"):
        return f"{sample},{sample}"
    return sample


def candidate_names() -> set[str]:
    """Names a client might try: every registry field and some that are not fields (the
    columns' own names, the nested objects, computed values), bare and with every lookup
    there is and some that there are not; the control parameters and a few others."""
    fields = [
        *FIELDS,
        "address",
        "relationship",
        "avatar_url",
        "search_text",
        "address_city",
        "relationship_points",
        "city",
        "points",
        "name",
        "email",
    ]
    lookups = [*ALL_LOOKUPS, "regex", "iregex", "ne", "not", "date", "week_day", "search"]
    names = {f"{f}__{lookup}" for f in fields for lookup in lookups} | set(fields)
    return (
        names
        | set(CONTROL_PARAMS)
        | {"bom", "format", "limit", "offset", "fields", "q", "sort", "order_by", "ordering__in"}
    )


@pytest.fixture
def cursor(api_client: Client, make_contact: Any) -> str:
    make_contact()
    make_contact()
    next_link = api_client.get(LIST, {"page_size": "1", "ordering": "-id"}).json()["next"]
    (token,) = parse_qs(urlsplit(next_link).query)["cursor"]
    return token


def _errors_for(response: Any, name: str) -> list[str]:
    return [e["message"] for e in response.json()["errors"] if e["param"] == name]


@pytest.mark.parametrize("path", STRICT_PATHS)
def test_documented_parameters_are_accepted(
    api_client: Client, cursor: str, path: str, schema: dict[str, Any]
) -> None:
    """Each documented parameter, with its documented example, answers 200."""
    params = schema["components"]["parameters"]
    for name in sorted(documented_names(schema, path)):
        value = cursor if name == "cursor" else serialise(params[name]["example"])
        query = {name: value}
        if name == "cursor":  # a cursor is valid only with the ordering it was made for
            query["ordering"] = "-id"
        if name == "page":  # page 2 exists with one row a page
            query["page_size"] = "1"
        response = api_client.get(path, query)
        assert response.status_code == 200, (name, value, response.content)
        if path != LIST:
            drain(response)


@pytest.mark.parametrize("path", STRICT_PATHS)
def test_undocumented_parameters_are_refused_as_unknown(
    api_client: Client, cursor: str, path: str, schema: dict[str, Any]
) -> None:
    """Every candidate name that the document does not list is refused as unknown; one
    that answered 200, or failed for another reason, would be an undocumented parameter."""
    documented = documented_names(schema, path)
    undocumented = sorted(candidate_names() - documented)
    assert len(undocumented) > 500
    accepted, unclear = [], []
    for name in undocumented:
        response = api_client.get(path, {name: candidate_value(name)})
        if response.status_code == 200:
            accepted.append(name)
            if path != LIST:
                drain(response)
        elif response.status_code != 400 or not any(
            UNKNOWN.search(m) for m in _errors_for(response, name)
        ):
            unclear.append((name, response.status_code))
    assert accepted == [] and unclear == []


def test_candidates_cover_the_documented_parameters(schema: dict[str, Any]) -> None:
    """So that the two tests above together compare the whole accepted set."""
    for path in STRICT_PATHS:
        assert documented_names(schema, path) <= candidate_names()


def test_export_parameters_are_the_lists_minus_paging(schema: dict[str, Any]) -> None:
    listed = documented_names(schema, LIST)
    paging = {"page", "page_size", "cursor", "count"}
    assert documented_names(schema, NDJSON) == listed - paging
    assert documented_names(schema, CSV) == (listed - paging) | {"bom"}


def test_export_examples_have_the_real_columns(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    csv_example = paths[CSV]["get"]["responses"]["200"]["content"]["text/csv"]["example"]
    assert csv_example.encode().startswith(csv_header())
    assert csv_example.endswith("\r\n") and ",'+43" in csv_example  # neutralised phone
    ndjson = paths[NDJSON]["get"]["responses"]["200"]["content"]["application/x-ndjson"]
    assert list(json.loads(ndjson["example"])) == list(FIELDS)


def test_the_bench_views_are_not_documented(schema: dict[str, Any]) -> None:
    """The floor and the baseline are the bench's (crm_bench/), not the API's, even where
    they are served (as in this test suite): crm_bench/openapi.py describes the baseline."""
    assert not [p for p in schema["paths"] if p.endswith(("/floor", "/baseline"))]
    assert "BaselinePage" not in schema["components"]["schemas"]


def _validator(schema: dict[str, Any], name: str) -> Any:
    return jsonschema.Draft202012Validator(
        schema["components"]["schemas"][name], format_checker=jsonschema.FormatChecker()
    )


def test_the_write_schemas_accept_what_the_parser_accepts(schema: dict[str, Any]) -> None:
    create = _validator(schema, "ContactCreate")
    assert list(create.iter_errors(NEW)) == []
    assert list(_validator(schema, "ContactPatch").iter_errors({"address": {"city": "X"}})) == []
    points = _validator(schema, "PointsChange")
    assert list(points.iter_errors({"delta": -3, "reason": "redeem"})) == []
    assert list(points.iter_errors({"delta": 0, "reason": "x"})) != []


@pytest.mark.parametrize(("change", "param"), BAD_FIELDS)
def test_the_write_schemas_refuse_what_the_parser_refuses(
    schema: dict[str, Any], change: dict[str, Any], param: str
) -> None:
    assert list(_validator(schema, "ContactCreate").iter_errors(NEW | change)) != []


@pytest.mark.parametrize("last", [date(2026, 12, 5), date(2027, 1, 1), date(2030, 10, 31)])
def test_dates_through_matches_exactly_the_days_up_to_its_bound(last: date) -> None:
    pattern = re.compile(f"^(?:{dates_through(last)})$")
    day = date(1899, 12, 1)
    while day < date(2031, 1, 1):
        assert bool(pattern.match(day.isoformat())) == (date(1900, 1, 1) <= day <= last), day
        day += timedelta(days=1)


def test_a_birthday_of_tomorrow_in_utc_is_in_the_schema_and_the_day_after_is_not() -> None:
    today = date(2026, 12, 5)
    create = _validator(build_schema(today=today), "ContactCreate")
    assert list(create.iter_errors(NEW | {"birthday": "2026-12-06"})) == []
    assert list(create.iter_errors(NEW | {"birthday": "2026-12-07"})) != []
