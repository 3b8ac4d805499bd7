"""The OpenAPI operations of the write API (crm/contact_views.py). The request schemas are
built from the parser's own registry (crm/contact_input.py), so they cannot disagree."""

from __future__ import annotations

from datetime import date
from typing import Any

from crm.contact_input import ADDRESS, CONTACT, MAX_BODY_BYTES, POINTS, RELATIONSHIP, Part

Schema = dict[str, Any]


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def part_schema(part: Part, *, partial: bool, today: date) -> Schema:
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: f.json_schema(today) for name, f in part.fields.items()},
    }
    if not partial and part.required:
        schema["required"] = sorted(part.required)
    return schema


def _contact_input(*, partial: bool, today: date) -> Schema:
    schema = part_schema(CONTACT, partial=partial, today=today)
    schema["properties"]["address"] = part_schema(ADDRESS, partial=partial, today=today)
    relationship = part_schema(RELATIONSHIP, partial=True, today=today)
    schema["properties"]["relationship"] = {"oneOf": [relationship, {"type": "null"}]}
    if not partial:
        schema["required"] = [*schema["required"], "address"]
    return schema


def write_schemas(today: date) -> dict[str, Schema]:
    """The request and answer schemas; bounds of "today" are stated for `today`."""
    return {
        "ContactCreate": _contact_input(partial=False, today=today)
        | {
            "description": "A new contact: the shape of a list row without its read-only "
            "fields (`id`, `created`, `last_updated`, `avatar_url`, nested ids). "
            "`gender` defaults to U, `birthday` to null; without `relationship` the "
            "contact has none."
        },
        "ContactPatch": _contact_input(partial=True, today=today)
        | {
            "description": "Any subset of the fields, nested parts included; "
            "`relationship: null` removes the relationship, an object creates it if "
            "missing. An address shared with other contacts is copied for this one."
        },
        "PointsChange": part_schema(POINTS, partial=False, today=today),
        "PointsBalance": {
            "type": "object",
            "required": ["id", "points", "delta"],
            "properties": {
                "id": {"type": "integer"},
                "points": {"type": "integer", "minimum": 0, "description": "the new balance"},
                "delta": {"type": "integer"},
            },
        },
    }


def _errors(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("schemas", "Errors")}},
    }


_ETAG = {
    "ETag": {
        "schema": {"type": "string"},
        "description": "The version of the contact; send it back in If-Match.",
    }
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of the version the change is based on (or *). If the contact "
    "has changed since, the answer is 412 and nothing is written.",
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "format": "int64", "minimum": 1},
}
_COMMON = {
    "401": _ref("responses", "Unauthorized"),
    "403": _errors("A session request without its CSRF token (X-CSRFToken)."),
    "503": _ref("responses", "ServiceUnavailable"),
}
_BODY_ERRORS = {
    "400": _errors(
        "The body is not a JSON object, or fields are invalid, unknown or read-only: "
        "each error names its field (`address.country`)."
    ),
    "413": _errors(f"The body is larger than {MAX_BODY_BYTES} bytes."),
}
_CONTACT_BODY = {"application/json": {"schema": _ref("schemas", "Contact")}}
_LINKS = {
    "GetContact": {"operationId": "getAppuser", "parameters": {"id": "$response.body#/id"}},
    # The ETag of this answer is the version a change can name in If-Match.
    "PatchContact": {
        "operationId": "patchAppuser",
        "parameters": {"id": "$response.body#/id", "header.If-Match": "$response.header.ETag"},
    },
    "DeleteContact": {
        "operationId": "deleteAppuser",
        "parameters": {"id": "$response.body#/id", "header.If-Match": "$response.header.ETag"},
    },
    "ChangePoints": {
        "operationId": "changeAppuserPoints",
        "parameters": {"id": "$response.body#/id"},
    },
}


def _json_body(schema: str) -> Schema:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref("schemas", schema)}},
    }


def create_operation() -> Schema:
    return {
        "tags": ["contacts"],
        "operationId": "createAppuser",
        "summary": "Create a contact (one transaction)",
        "requestBody": _json_body("ContactCreate"),
        "responses": {
            "201": {
                "description": "The stored contact, as the list shows it.",
                "headers": _ETAG | {"Location": {"schema": {"type": "string", "format": "uri"}}},
                "content": _CONTACT_BODY,
                "links": _LINKS,
            },
            **_BODY_ERRORS,
            "409": _errors("The customer_id is already used by another contact."),
            **_COMMON,
        },
    }


def contact_operations() -> dict[str, Any]:
    not_found = _ref("responses", "NotFound")
    stale = _errors("If-Match names an older version: nothing was written.")
    return {
        "parameters": [_ID],
        "get": {
            "tags": ["contacts"],
            "operationId": "getAppuser",
            "summary": "One contact, with its ETag",
            "responses": {
                "200": {
                    "description": "The contact.",
                    "headers": _ETAG,
                    "content": _CONTACT_BODY,
                    "links": _LINKS,
                },
                "304": {"description": "If-None-Match names the current version."},
                "404": not_found,
                **_COMMON,
            },
        },
        "patch": {
            "tags": ["contacts"],
            "operationId": "patchAppuser",
            "summary": "Change some fields of a contact (one transaction)",
            "parameters": [_IF_MATCH],
            "requestBody": _json_body("ContactPatch"),
            "responses": {
                "200": {
                    "description": "The contact after the change.",
                    "headers": _ETAG,
                    "content": _CONTACT_BODY,
                    "links": _LINKS,
                },
                **_BODY_ERRORS,
                "404": not_found,
                "409": _errors("The customer_id is already used by another contact."),
                "412": stale,
                **_COMMON,
            },
        },
        "delete": {
            "tags": ["contacts"],
            "operationId": "deleteAppuser",
            "summary": "Delete a contact with its relationship, points ledger, and its "
            "address unless another contact lives there",
            "parameters": [_IF_MATCH],
            "responses": {
                "204": {"description": "Deleted."},
                "404": not_found,
                "412": stale,
                **_COMMON,
            },
        },
    }


def points_operation() -> dict[str, Any]:
    return {
        "parameters": [_ID],
        "post": {
            "tags": ["contacts"],
            "operationId": "changeAppuserPoints",
            "summary": "Add to (or, negative, take from) the points balance, atomically",
            "description": "Concurrent changes never lose an increment; each is logged with "
            "its reason. A contact without a relationship gets one. The change also sets "
            "the relationship's last_activity to now.",
            "requestBody": _json_body("PointsChange"),
            "responses": {
                "200": {
                    "description": "The new balance.",
                    "content": {"application/json": {"schema": _ref("schemas", "PointsBalance")}},
                },
                **_BODY_ERRORS,
                "404": _ref("responses", "NotFound"),
                "409": _errors(
                    "The balance would become negative (or exceed 2147483647): nothing was written."
                ),
                **_COMMON,
            },
        },
    }
