"""The baseline's operation in OpenAPI terms, on top of the API's own document.

Decision: the served document (/crm/openapi.json, crm/openapi.py) describes the production
API only, also on a bench server: the floor and the baseline are the bench's instruments,
not endpoints for clients. The baseline is described here all the same, for its tests: the
fuzz test draws its query strings from these parameters (tests/test_fuzz.py), and its
answers are checked against BaselinePage (tests/test_baseline.py).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from crm.fields import FIELDS
from crm.openapi import Schema, build_schema, filter_names

PATH = "/crm/appusers/baseline"


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def baseline_page() -> Schema:
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer", "minimum": 0},
            "next": {"type": ["string", "null"], "format": "uri"},
            "previous": {"type": ["string", "null"], "format": "uri"},
            "results": {"type": "array", "items": _ref("schemas", "Contact")},
        },
    }


def baseline_operation() -> Schema:
    names = ["page", "page_size", "search", "ordering"]
    names += [n for f in FIELDS.values() for n, _ in filter_names(f) if n != f"{f.name}__exact"]
    errors = {"application/json": {"schema": _ref("schemas", "Errors")}}
    return {
        "tags": ["contacts"],
        "operationId": "listAppusersBaseline",
        "summary": "The unoptimised reference list (Django REST framework)",
        "description": "The list as typically first written with Django REST framework and "
        "django-filter, kept only as the yardstick the optimised list is measured against. "
        "Unlike `/crm/appusers` it silently ignores unknown or invalid parameters, `search` "
        "is case- but not accent-insensitive, `ordering` has no `id` tie-break, there are "
        "no cursors and every page costs an exact COUNT.",
        "parameters": [_ref("parameters", n) for n in names],
        "responses": {
            "200": {
                "description": "One page of contacts.",
                "content": {"application/json": {"schema": _ref("schemas", "BaselinePage")}},
            },
            "401": _ref("responses", "Unauthorized"),
            "404": {"description": "`page` is past the last page.", "content": errors},
        },
    }


def schema_with_baseline() -> Schema:
    """The API's document (build_schema()) plus the baseline's path and page schema."""
    schema = copy.deepcopy(build_schema(today=datetime.now(UTC).date()))
    schema["paths"][PATH] = {"get": baseline_operation()}
    schema["components"]["schemas"]["BaselinePage"] = baseline_page()
    return schema
