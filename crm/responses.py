"""JSON responses shared by the views: the errors body and raw pre-serialised JSON."""

from __future__ import annotations

import orjson
from django.http import HttpResponse


def errors_response(
    errors: list[dict[str, str]], status: int = 400, headers: dict[str, str] | None = None
) -> HttpResponse:
    return json_response({"errors": errors}, status=status, headers=headers)


def error_response(param: str | None, message: str, status: int) -> HttpResponse:
    return errors_response([{"param": param or "", "message": message}], status)


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return raw_json_response(orjson.dumps(data), status=status, headers=headers)


def raw_json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json", headers=headers)
