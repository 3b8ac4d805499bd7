"""Thin views: the OpenAPI document, its docs page, and the two streaming exports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render

from crm import export
from crm.middleware import allow_methods, database_error_response
from crm.openapi import PAGING_PARAMS, build_schema
from crm.params import InvalidParams, ListQuery, ValueError_, parse_boolean, parse_list_params
from crm.responses import errors_response, raw_json_response

Errors = list[dict[str, str]]


@lru_cache(maxsize=2)
def _schema_bytes(today: date) -> bytes:
    return orjson.dumps(build_schema(today=today, session_cookie=settings.SESSION_COOKIE_NAME))


@allow_methods("GET")
def openapi_json(request: HttpRequest) -> HttpResponse:
    today = datetime.now(UTC).date()
    return raw_json_response(_schema_bytes(today), headers={"Cache-Control": "no-cache"})


# The docs page loads only our own files. Redoc's sidebar footer always shows a logo from
# Redocly's CDN: the policy stops that request (Redoc then hides the broken image). Redoc
# needs inline styles (styled-components) and runs its search index in a blob: worker.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")  # fmt: skip


@allow_methods("GET")
def docs(request: HttpRequest) -> HttpResponse:
    response = render(request, "crm/docs.html")
    response["Content-Security-Policy"] = DOCS_CSP
    return response


def parse_export_params(params: Mapping[str, Sequence[str]], *,
                        allow_bom: bool) -> tuple[ListQuery, bool]:  # fmt: skip
    """The list's filter, search and ordering parameters, plus `bom` for CSV; the paging
    parameters make no sense for an export and are refused, like any unknown one."""
    errors: Errors = []
    rest: dict[str, Sequence[str]] = {}
    bom = False
    for name, values in params.items():
        if name in PAGING_PARAMS:
            errors.append({"param": name, "message": f"{name} does not apply to an export, "
                           "which streams every matching row; remove it"})  # fmt: skip
        elif name == "bom" and allow_bom:
            try:
                if len(values) != 1:
                    raise ValueError_("is given more than once")
                bom = parse_boolean(values[0])
            except ValueError_ as error:
                errors.append({"param": name, "message": f"bom {error}"})
        else:
            rest[name] = values
    try:
        query = parse_list_params(rest)
    except InvalidParams as invalid:
        errors += invalid.errors
        query = ListQuery()
    if errors:
        order = {name: i for i, name in enumerate(params)}  # as in the query string
        raise InvalidParams(sorted(errors, key=lambda e: order.get(e["param"], len(order))))
    return query, bom


def _filename(extension: str) -> str:
    return f"contacts-{datetime.now(UTC):%Y%m%d-%H%M%S}.{extension}"


def _streaming(stream: Iterator[bytes], content_type: str, extension: str) -> HttpResponseBase:
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{_filename(extension)}"'
    response["Cache-Control"] = "no-store"  # personal data
    response["X-Accel-Buffering"] = "no"  # a proxy should pass the stream on as it comes
    return response


def _export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    try:
        query, bom = parse_export_params(dict(request.GET.lists()), allow_bom=fmt == "csv")
    except InvalidParams as invalid:
        return errors_response(invalid.errors)
    sql = export.csv_sql(query) if fmt == "csv" else export.ndjson_sql(query)
    try:
        export.probe(sql)  # the status is still ours to choose: 503 (or 500) now, not mid-way
    except DatabaseError as error:
        return database_error_response(error)
    if fmt == "csv":
        stream = export.csv_stream(sql, bom=bom)
        return _streaming(stream, "text/csv; charset=utf-8; header=present", "csv")
    return _streaming(export.stream_copy(sql), "application/x-ndjson", "ndjson")


@allow_methods("GET")
def export_csv(request: HttpRequest) -> HttpResponseBase:
    return _export(request, "csv")


@allow_methods("GET")
def export_ndjson(request: HttpRequest) -> HttpResponseBase:
    return _export(request, "ndjson")
