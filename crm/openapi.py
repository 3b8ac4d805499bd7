"""The OpenAPI 3.1 description of the API, built from the same registry that drives the
filters (crm.fields) and the same limits the parser enforces (crm.params), so the documented
parameters cannot drift from the accepted ones (tests/test_openapi.py checks both ways).

Pure: no Django, no database; `build_schema()` returns a plain dict, cached by the view.
It documents the production API only: the bench app's views (/crm/appusers/floor and
/crm/appusers/baseline, crm_bench/) are not part of it, served or not; the baseline's
operation is in crm_bench/openapi.py, for the bench's own tests.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from crm import avatars
from crm.fields import (
    CONTROL_PARAMS,
    FIELDS,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    SEARCH_FIELDS,
    SORT_KEYS,
    Field,
    Kind,
)
from crm.openapi_writes import contact_operations, create_operation, points_operation, write_schemas
from crm.params import (
    LIST_ITEM_PATTERN,
    MAX_IN_VALUES,
    MAX_ORDERING_KEYS,
    MAX_SEARCH_TERMS,
    MAX_VALUE_LENGTH,
    PART_RANGES,
    SEARCH_PATTERN,
    TEXT_PATTERN,
)
from crm.selectors.suggestions import MAX_SUGGESTIONS

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
Schema = dict[str, Any]

# Parameters that only make sense for one page: the exports refuse them.
PAGING_PARAMS = ("page", "page_size", "cursor", "count")
EXPORT_EXTRA_CSV = ("bom",)

_INT32 = 2**31 - 1
_LOOKUP_TEXT = {
    "exact": "equals",
    "iexact": "equals, ignoring case",
    "contains": "contains (case-sensitive)",
    "icontains": "contains, ignoring case",
    "startswith": "starts with (case-sensitive)",
    "istartswith": "starts with, ignoring case",
    "endswith": "ends with (case-sensitive)",
    "iendswith": "ends with, ignoring case",
    "in": f"is one of the comma-separated values (at most {MAX_IN_VALUES})",
    "isnull": "`true`: is null; `false`: is not null",
    "gt": "is greater than",
    "gte": "is greater than or equal to",
    "lt": "is less than",
    "lte": "is less than or equal to",
    "range": "lies between `low,high` (both inclusive)",
    "year": "has this year (timestamps in UTC)",
    "month": "has this month, 1 to 12 (timestamps in UTC)",
    "day": "has this day of the month, 1 to 31 (timestamps in UTC)",
}
_EXAMPLES: dict[Kind, Any] = {
    Kind.TEXT: "Wien",
    Kind.INTEGER: 42,
    Kind.DATE: "1980-01-02",
    Kind.DATETIME: "2024-05-01T12:00:00Z",
}
_TEXT_EXAMPLES = {
    "gender": "F",
    "customer_id": "C000000042",
    "phone_number": "+436641234567",
    "first_name": "Anna",
    "last_name": "Muster",
    "address__country": "AT",
    "address__street": "Hauptstraße",
    "address__street_number": "12a",
    "address__city_code": "1010",
}


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


# -- value schemas -------------------------------------------------------------------------


def value_schema(f: Field) -> Schema:
    """The JSON type of one field's value, as the API returns it."""
    schema: Schema
    if f.kind is Kind.TEXT:
        schema = {"type": "string"}
    elif f.kind is Kind.INTEGER:
        schema = {"type": "integer", "format": "int32" if f.maximum == _INT32 else "int64"}
    elif f.kind is Kind.DATE:
        schema = {"type": "string", "format": "date"}
    else:
        schema = {
            "type": "string",
            "format": "date-time",
            "description": "UTC, microseconds, e.g. 2024-05-01T12:00:00.000000Z",
        }
    if f.nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def input_schema(f: Field) -> Schema:
    """The type of one value in a filter parameter."""
    if f.kind is Kind.TEXT:
        return {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": TEXT_PATTERN}
    if f.kind is Kind.INTEGER:
        return {
            "type": "integer",
            "format": "int32" if f.maximum == _INT32 else "int64",
            "minimum": -f.maximum - 1,
            "maximum": f.maximum,
        }
    if f.kind is Kind.DATE:
        return {"type": "string", "format": "date"}
    return {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}],
        "description": "ISO 8601; without an offset (or a bare date) it means UTC",
    }


def _example(f: Field) -> Any:
    if f.kind is Kind.TEXT:
        return _TEXT_EXAMPLES.get(f.name, _EXAMPLES[Kind.TEXT])
    return _EXAMPLES[f.kind]


# -- filter parameters ---------------------------------------------------------------------


def filter_names(f: Field) -> list[tuple[str, str]]:
    """(parameter name, lookup) for one field: `name` is exact, `name__exact` its alias."""
    names = [(f.name, "exact")]
    names += [(f"{f.name}__{lookup}", lookup) for lookup in f.lookups]
    return names


def filter_parameter_names() -> list[str]:
    return [name for f in FIELDS.values() for name, _ in filter_names(f)]


def _filter_parameter(f: Field, name: str, lookup: str) -> Schema:
    base = input_schema(f)
    example = _example(f)
    param: Schema = {"name": name, "in": "query", "required": False}
    if lookup == "isnull":
        schema: Schema = {"type": "boolean"}
        example = True
    elif lookup in PART_RANGES:
        low, high = PART_RANGES[lookup]
        schema = {"type": "integer", "minimum": low, "maximum": high}
        example = {"year": 2024, "month": 5, "day": 1}[lookup]
    elif lookup in ("in", "range"):
        item = base | {"pattern": LIST_ITEM_PATTERN} if f.kind is Kind.TEXT else base
        schema = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_IN_VALUES}
        if lookup == "range":
            schema["minItems"] = schema["maxItems"] = 2
            example = _range_example(f)
        else:
            example = [example]
        param |= {"style": "form", "explode": False}
    else:
        schema = base
    alias = name == f"{f.name}__exact"
    what = f"Alias of `{f.name}`: " if alias else ""
    param["description"] = f"{what}`{f.name}` {_LOOKUP_TEXT[lookup]} the value."
    param["schema"] = schema
    param["example"] = example
    return param


def _range_example(f: Field) -> list[Any]:
    if f.kind is Kind.INTEGER:
        return [1, 1000]
    if f.kind is Kind.DATE:
        return ["1980-01-01", "1989-12-31"]
    if f.kind is Kind.DATETIME:
        return ["2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z"]
    return ["A", "M"]


def filter_parameters() -> dict[str, Schema]:
    return {
        name: _filter_parameter(f, name, lookup)
        for f in FIELDS.values()
        for name, lookup in filter_names(f)
    }


# -- control parameters --------------------------------------------------------------------

_ORDER_NAMES = [n for name in FIELDS for n in (name, f"-{name}")]


def control_parameters() -> dict[str, Schema]:
    params: dict[str, Schema] = {
        "page": {
            "name": "page",
            "in": "query",
            "description": "Page number (OFFSET paging, with `num_pages`). Without it the "
            "list uses keyset cursors: follow `next` / `previous`.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 10**9},
            "example": 2,
        },
        "page_size": {
            "name": "page_size",
            "in": "query",
            "description": "Rows per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": PAGE_SIZE_MAX,
                "default": PAGE_SIZE_DEFAULT,
            },
            "example": 100,
        },
        "cursor": {
            "name": "cursor",
            "in": "query",
            "description": "Opaque keyset cursor from a `next` or `previous` link; valid only "
            "with the ordering it was made for, and not together with `page`.",
            "schema": {"type": "string"},
        },
        "ordering": {
            "name": "ordering",
            "in": "query",
            "style": "form",
            "explode": False,
            "description": f"Comma-separated fields, `-` for descending (at most "
            f"{MAX_ORDERING_KEYS}). Without it: `id`, or with a `search` the best matches "
            f"first (a term as a whole word of the last name, of the first name, the start "
            f"of either, a whole word of the city or street, anywhere; then `id`). "
            f"`id` is always the final tie-break, "
            f"in the direction of the last key. NULLs sort last "
            f"ascending and first descending. Text sorts by code point, except "
            f"{', '.join(SORT_KEYS)}, which sort in dictionary order as a German phone book "
            f"does (case, accents, spaces and punctuation ignored; ä, ö, ü as ae, oe, ue; "
            f"equal letters by the exact value).",
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": _ORDER_NAMES},
                "minItems": 1,
                "maxItems": MAX_ORDERING_KEYS,
            },
            "example": ["-relationship__points", "last_name"],
        },
        "search": {
            "name": "search",
            "in": "query",
            "description": f"Whitespace-separated terms (at most {MAX_SEARCH_TERMS}); every "
            f"term must occur, ignoring case and accents, in one of: "
            f"{', '.join(SEARCH_FIELDS)}, in any of its German spellings (ä/ae, ö/oe, ü/ue, "
            f"ß/ss, ø/oe, æ/ae, å/aa: muller, mueller and müller find Müller and Mueller).",
            "schema": {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": SEARCH_PATTERN},
            "example": "anna wien",
        },
        "count": {
            "name": "count",
            "in": "query",
            "description": "`exact` forces an exact `count`; by default counts above 10,000 "
            "are an estimate (`count_exact` is false): the table's size, PostgreSQL's "
            "figure from column statistics, or a block sample.",
            "schema": {"type": "string", "enum": ["exact", "estimate"], "default": "estimate"},
            "example": "exact",
        },
        "bom": {
            "name": "bom",
            "in": "query",
            "description": "`true` prefixes the CSV with a UTF-8 byte order mark, so that "
            "Excel opens it as UTF-8.",
            "schema": {"type": "boolean", "default": False},
            "example": True,
        },
    }
    assert set(CONTROL_PARAMS) <= set(params), "a control parameter is not documented"
    return params


def list_parameter_names() -> list[str]:
    return [*CONTROL_PARAMS, *filter_parameter_names()]


def export_parameter_names(fmt: str) -> list[str]:
    extra = EXPORT_EXTRA_CSV if fmt == "csv" else ()
    controls = [n for n in CONTROL_PARAMS if n not in PAGING_PARAMS]
    return [*controls, *extra, *filter_parameter_names()]


# -- response schemas ----------------------------------------------------------------------


def _object(names: list[str], key: Any = str) -> Schema:
    return {
        "type": "object",
        "properties": {key(n): value_schema(FIELDS[n]) for n in names},
        "required": [key(n) for n in names],
        "additionalProperties": False,
    }


def _suffix(name: str) -> str:
    return name.partition("__")[2]


def _field_table() -> str:
    rows = [
        f"| `{f.name}` | {f.kind.value}{' (nullable)' if f.nullable else ''} | "
        f"{', '.join(f.lookups)} |"
        for f in FIELDS.values()
    ]
    return "\n".join(["| field | type | lookups |", "| --- | --- | --- |", *rows])


def component_schemas() -> dict[str, Schema]:
    contact_names = [n for n in FIELDS if "__" not in n]
    address_names = [n for n in FIELDS if n.startswith("address__")]
    relationship_names = [n for n in FIELDS if n.startswith("relationship__")]
    contact = _object(contact_names)
    contact["properties"] |= {
        "address": _ref("schemas", "Address"),
        "relationship": {"oneOf": [_ref("schemas", "Relationship"), {"type": "null"}]},
        "avatar_url": {"type": "string", "description": "Relative URL of the SVG avatar."},
    }
    contact["required"] += ["address", "relationship", "avatar_url"]
    relationship = _object(relationship_names, _suffix)
    # Inside a present relationship only last_activity can be null (the flat columns are all
    # nullable because a contact may have no relationship at all).
    for name, prop in relationship["properties"].items():
        if name != "last_activity" and isinstance(prop["type"], list):
            prop["type"] = prop["type"][0]
    flat = _object(list(FIELDS))
    flat["description"] = (
        "One exported row: every field of the registry, flat, under its "
        "filter name. Relationship fields are null without a relationship."
    )
    return {
        "Contact": contact,
        "Address": _object(address_names, _suffix),
        "Relationship": relationship,
        "ContactFlat": flat,
        "ContactPage": {
            "type": "object",
            "required": [
                "count",
                "count_exact",
                "next",
                "previous",
                "page",
                "page_size",
                "num_pages",
                "fuzzy",
                "suggestions",
                "results",
            ],
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "count_exact": {
                    "type": "boolean",
                    "description": "false: `count` is an estimate (more than 10,000 match)",
                },
                "next": {"type": ["string", "null"], "format": "uri"},
                "previous": {"type": ["string", "null"], "format": "uri"},
                "page": {
                    "type": ["integer", "null"],
                    "description": "null in cursor mode (no `page` parameter)",
                },
                "page_size": {"type": "integer"},
                "num_pages": {"type": ["integer", "null"], "description": "null in cursor mode"},
                "fuzzy": {
                    "type": "boolean",
                    "description": "true: the `search` matched no contact, and the results "
                    "(and the links) are those of the first of `suggestions`",
                },
                "suggestions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": MAX_SUGGESTIONS,
                    "description": "When a `search` finds fewer than 3 contacts: other searches "
                    "that find some, best first, each term that is part of no name or place "
                    "replaced by one within a typo (two from 8 letters) or sounding alike; "
                    "else empty",
                },
                "results": {"type": "array", "items": _ref("schemas", "Contact")},
            },
        },
        "Errors": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["param", "message"],
                        "properties": {
                            "param": {
                                "type": "string",
                                "description": "the offending "
                                "parameter, or empty when none is to blame",
                            },
                            "message": {"type": "string"},
                        },
                    },
                }
            },
            "example": {
                "errors": [
                    {
                        "param": "page_size",
                        "message": "page_size expects an integer from 1 to 500, got '0'",
                    }
                ]
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "error"]},
                "database": {"type": "string", "enum": ["unreachable"]},
            },
        },
    }


def _errors(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": _ref("schemas", "Errors")}},
    }
    if headers:
        response["headers"] = headers
    return response


def component_responses() -> dict[str, Schema]:
    return {
        "BadRequest": _errors(
            "Invalid parameters: every problem is listed, each naming its "
            "parameter. Unknown parameters are errors, never ignored."
        ),
        "Unauthorized": _errors(
            "No session and no valid bearer token.",
            {"WWW-Authenticate": {"schema": {"type": "string"}, "example": 'Bearer realm="crm"'}},
        ),
        "NotFound": _errors("Not found."),
        "URITooLong": {
            "description": "The request line is longer than the HTTP server takes (8,190 "
            "bytes, gunicorn.conf.py): answered by gunicorn before the application, as HTML.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        "ServiceUnavailable": _errors(
            "The database is unreachable, or the query exceeded the statement timeout.",
            {"Retry-After": {"schema": {"type": "integer"}, "example": 2}},
        ),
    }


# -- paths ---------------------------------------------------------------------------------

_STANDARD = {
    "400": _ref("responses", "BadRequest"),
    "401": _ref("responses", "Unauthorized"),
    "503": _ref("responses", "ServiceUnavailable"),
}


def _param_refs(names: list[str]) -> list[Schema]:
    return [_ref("parameters", n) for n in names]


def _list_operation() -> Schema:
    return {
        "tags": ["contacts"],
        "operationId": "listAppusers",
        "summary": "List contacts: filter, search, order, paginate",
        "description": "Every query parameter is strict: an unknown name, an inapplicable "
        "lookup or an unparsable value answers 400 naming the parameter.\n\n" + _field_table(),
        "parameters": _param_refs(list_parameter_names()),
        "responses": {
            "200": {
                "description": "One page of contacts.",
                "headers": {
                    "Server-Timing": {
                        "schema": {"type": "string"},
                        "description": "db, count, serialize in ms",
                    }
                },
                "content": {"application/json": {"schema": _ref("schemas", "ContactPage")}},
            },
            **_STANDARD,
            "404": _errors("`page` is past the last page."),
            "414": _ref("responses", "URITooLong"),
        },
    }


_CSV_NOTE = (
    "RFC 4180 CSV: UTF-8, a header row, CRLF line ends, fields quoted when needed (a field "
    "may contain quoted line breaks). NULL is an empty unquoted field, an empty string is "
    '`""`.\n\n'
    "**Formula injection:** a text cell that starts with `=`, `+`, `-`, `@`, a tab or a "
    "carriage return is prefixed with a single quote `'`, so spreadsheets show it as text "
    "instead of running it (OWASP's advice). This also turns phone numbers such as "
    "`+436641234567` into `'+436641234567`: the accepted trade-off. Numbers and timestamps "
    "are never prefixed. The NDJSON export is raw."
)


def _example_row() -> dict[str, Any]:
    """One exported row, with timestamps as the API writes them (always microseconds)."""
    return {
        f.name: "2024-05-01T12:00:00.000000Z" if f.kind is Kind.DATETIME else _example(f)
        for f in FIELDS.values()
    }


def _csv_example() -> str:
    def cell(value: Any) -> str:
        text = str(value)
        return "'" + text if isinstance(value, str) and text[:1] in "=+-@\t\r" else text

    row = _example_row()
    return ",".join(row) + "\r\n" + ",".join(cell(v) for v in row.values()) + "\r\n"


def _export_operation(fmt: str) -> Schema:
    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    body: Schema
    if fmt == "csv":
        columns = ", ".join(f"`{n}`" for n in FIELDS)
        description = f"{_CSV_NOTE}\n\nColumns, in this order: {columns}."
        body = {"schema": {"type": "string"}, "example": _csv_example()}
    else:
        description = (
            "One JSON object per line (`\\n`), flat, with the same names as the "
            "CSV columns: see the `ContactFlat` schema. Values are raw."
        )
        body = {
            "schema": {"type": "string", "description": "lines of ContactFlat objects"},
            "x-line-schema": _ref("schemas", "ContactFlat"),
            "example": json.dumps(_example_row(), ensure_ascii=False, separators=(",", ":")) + "\n",
        }
    return {
        "tags": ["export"],
        "operationId": f"exportAppusers{fmt.upper()}",
        "summary": f"Stream every matching contact as {fmt.upper()}",
        "description": "Takes the list's filter, `search` and `ordering` parameters and streams "
        "**every** matching row in that order (no paging: `page`, `page_size`, `cursor` and "
        "`count` answer 400). Memory use is constant whatever the size.\n\n" + description,
        "parameters": _param_refs(export_parameter_names(fmt)),
        "responses": {
            "200": {
                "description": "The rows, streamed (chunked). An error after the first bytes "
                "can only abort the transfer: an incomplete body means a failed export.",
                "headers": {
                    "Content-Disposition": {
                        "schema": {"type": "string"},
                        "example": f'attachment; filename="contacts-20240501-120000.{fmt}"',
                    }
                },
                "content": {media: body},
            },
            **_STANDARD,
            "414": _ref("responses", "URITooLong"),
        },
    }


def _avatar_operation(fmt: str) -> Schema:
    media = "image/svg+xml" if fmt == "svg" else "image/png"
    return {
        "tags": ["avatars"],
        "operationId": f"appuserAvatar{fmt.upper()}",
        "summary": f"Initials avatar of a contact ({fmt.upper()})",
        "parameters": [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "format": "int64", "minimum": 0},
            },
            {
                "name": "size",
                "in": "query",
                "description": "Edge length in pixels.",
                "schema": {
                    "type": "integer",
                    "minimum": avatars.SIZE_MIN,
                    "maximum": avatars.SIZE_MAX,
                    "default": avatars.SIZE_DEFAULT,
                },
            },
            {
                "name": "shape",
                "in": "query",
                "schema": {
                    "type": "string",
                    "enum": list(avatars.SHAPES),
                    "default": avatars.SHAPE_DEFAULT,
                },
            },
            {
                "name": "v",
                "in": "query",
                "description": "Version of the picture (as in the list's `avatar_url`); with the "
                "current version the response may be cached forever.",
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {
                "description": "The picture.",
                "headers": {
                    "ETag": {"schema": {"type": "string"}},
                    "Cache-Control": {"schema": {"type": "string"}},
                },
                "content": {media: {"schema": {"type": "string", "contentMediaType": media}}},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            "400": _ref("responses", "BadRequest"),
            "401": _ref("responses", "Unauthorized"),
            "404": _ref("responses", "NotFound"),
            "503": _ref("responses", "ServiceUnavailable"),
        },
    }


def _health_operation() -> Schema:
    health = {"application/json": {"schema": _ref("schemas", "Health")}}
    return {
        "tags": ["meta"],
        "operationId": "healthz",
        "summary": "Liveness and database reachability (no authentication)",
        "security": [],
        "responses": {
            "200": {"description": "Up.", "content": health},
            "503": {"description": "The database is unreachable.", "content": health},
        },
    }


def _openapi_operation() -> Schema:
    return {
        "tags": ["meta"],
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
            "200": {
                "description": "OpenAPI 3.1",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "401": _ref("responses", "Unauthorized"),
            "503": _ref("responses", "ServiceUnavailable"),
        },
    }


INFO_DESCRIPTION = """\
Contact list backend of the CRM.

**Authentication**: every endpoint except `/healthz` needs either the dashboard's session
cookie (log in at `/accounts/login/`) or `Authorization: Bearer <token>` (tokens are made
with `manage.py create_api_token`). Without one the API answers 401 with the errors body.

**Errors** always have the body `{"errors": [{"param": ..., "message": ...}]}`; database
trouble answers 503 with `Retry-After`, never 500. A method that a path does not list
answers 405 with `Allow`; a request line over 8,190 bytes answers 414 (from gunicorn).

**Filters** are `<field>` (equals) or `<field>__<lookup>`; the fields and their lookups:

"""


def build_schema(*, today: date, session_cookie: str = "sessionid") -> Schema:
    """The document as of `today` (the write schemas bound dates by it)."""
    exports = {fmt: _export_operation(fmt) for fmt in ("csv", "ndjson")}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Contacts CRM API",
            "version": API_VERSION,
            "description": INFO_DESCRIPTION + _field_table(),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "tags": [
            {"name": "contacts", "description": "The contact list"},
            {"name": "export", "description": "Streaming CSV and NDJSON exports"},
            {"name": "avatars", "description": "Initials avatars"},
            {"name": "meta", "description": "Health and this document"},
        ],
        "paths": {
            "/crm/appusers": {"get": _list_operation(), "post": create_operation()},
            "/crm/appusers/{id}": contact_operations(),
            "/crm/appusers/{id}/points": points_operation(),
            "/crm/appusers/export.csv": {"get": exports["csv"]},
            "/crm/appusers/export.ndjson": {"get": exports["ndjson"]},
            "/crm/appusers/{id}/avatar.svg": {"get": _avatar_operation("svg")},
            "/crm/appusers/{id}/avatar.png": {"get": _avatar_operation("png")},
            "/healthz": {"get": _health_operation()},
            "/crm/openapi.json": {"get": _openapi_operation()},
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `manage.py create_api_token`.",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": session_cookie,
                    "description": "Django session, as the dashboard uses.",
                },
            },
            "parameters": control_parameters() | filter_parameters(),
            "schemas": component_schemas() | write_schemas(today),
            "responses": component_responses(),
        },
    }
