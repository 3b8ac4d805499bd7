from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from crm import replicas
from crm.middleware import allow_methods
from crm.pagination import Cursor, decode_cursor, encode_cursor
from crm.params import InvalidParams, ListQuery, ValueError_, parse_list_params
from crm.responses import error_response, errors_response, raw_json_response
from crm.selectors import (
    Count,
    Page,
    RowSerialiser,
    contact_count,
    contact_page,
    page_order,
    resolve_patterns,
    resolve_rank,
    resolve_search,
)
from crm.selectors.suggestions import asks_for_suggestions, search_suggestions

# The list's one seam for the bench (crm_bench/ablations.py, installed only with CRM_BENCH=1;
# production never sets it): a request that carries a RowSerialiser under this attribute
# has its page's rows serialised by it instead of by PostgreSQL.
ROW_SERIALISER = "crm_row_serialiser"


class QueryCounter:
    """Counts the SQL statements a request runs (reported in Server-Timing)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


# No CSRF check: it changes nothing, and an unsafe method must meet the 405 of require_safe,
# not the CSRF middleware's 403.
@csrf_exempt
@allow_methods("GET", "HEAD")
def healthz(request: HttpRequest) -> JsonResponse:
    """Up when the primary answers; with replicas, `servers` tells each one's state (a
    replica that is down or lagging is skipped by the reads, so it is no outage)."""
    servers = {"servers": replicas.health_report()} if settings.REPLICA_ALIASES else {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable", **servers}, status=503)
    return JsonResponse({"status": "ok", **servers})


def _link(request: HttpRequest, **changes: str | int | None) -> str:
    params = request.GET.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None:
            params[name] = str(value)
    return request.build_absolute_uri(f"{request.path}?{urlencode(sorted(params.items()))}")


def _page_links(
    request: HttpRequest, query: ListQuery, page: Page, changes: dict[str, str]
) -> tuple[str | None, ...]:
    number = query.page or 1
    return (
        _link(request, page=number + 1, **changes) if page.has_more else None,
        _link(request, page=number - 1, **changes) if number > 1 else None,
    )


def _cursor_links(
    request: HttpRequest,
    query: ListQuery,
    page: Page,
    cursor: Cursor | None,
    changes: dict[str, str],
    estimate: list[Any] | None,
) -> tuple[str | None, ...]:
    def link(values: list | None, backwards: bool) -> str | None:
        if values is None:
            return None
        token = encode_cursor(query.ordering, values, backwards=backwards, estimate=estimate)
        return _link(request, cursor=token, page=None, **changes)

    backwards = cursor is not None and cursor.backwards
    boundary = cursor.values if cursor else None
    more_after = page.has_more if not backwards else True
    more_before = cursor is not None if not backwards else page.has_more
    after = page.last_keys or (boundary if backwards else None)
    before = page.first_keys or (boundary if not backwards else None)
    return (link(after, False) if more_after else None, link(before, True) if more_before else None)


# An estimated count (of more matches than crm_count() counts exactly) is made on the first
# page and carried by its cursors to the pages that follow, which show the same estimate
# instead of drawing a new one: the capped count, 10-50 ms, was most of a cursor page's time
# (survey, seed 7373: the cursor pages' counts 4.1 of their 12 s). An exact count is made
# on every page, so that a write shows in the next page's count. The estimate is used only
# by the query it was made for (its filters and search: a cursor may be sent with others).
def _fingerprint(query: ListQuery) -> str:
    filters = sorted(repr((f.field.name, f.lookup, f.value)) for f in query.filters)
    return hashlib.sha256(repr([filters, query.search]).encode()).hexdigest()[:16]


def _carry(query: ListQuery, count: Count) -> list[Any] | None:
    if count.exact:
        return None
    return [_fingerprint(query), count.value, count.total, count.method, count.path_cost]


def _carried_count(query: ListQuery, cursor: Cursor | None) -> Count | None:
    estimate = cursor.estimate if cursor else None
    if query.count_exact or not estimate or len(estimate) != 5:
        return None
    fingerprint, value, total, method, path_cost = estimate
    if fingerprint != _fingerprint(query):
        return None
    return Count(value, False, total, method, path_cost=path_cost, carried=True)


def _body(
    query: ListQuery,
    page: Page,
    count: Count,
    links: tuple[str | None, ...],
    suggestions: list[str],
    *,
    fuzzy: bool,
) -> bytes:
    head = {
        "count": count.value,
        "count_exact": count.exact,
        "next": links[0],
        "previous": links[1],
        "page": query.page,
        "page_size": query.page_size,
        "num_pages": -(-count.value // query.page_size) if query.page else None,
        "fuzzy": fuzzy,
        "suggestions": suggestions,
    }
    rows = b",".join(page.rows_json)
    return orjson.dumps(head)[:-1] + b',"results":[' + rows + b"]}"


def _server_timing(timings: dict[str, float], descriptions: dict[str, str]) -> str:
    # microseconds: serialising a page takes 10-30 us, which two decimals of a ms rounded
    return ", ".join(
        f"{name};dur={seconds * 1000:.3f}"
        + (f';desc="{descriptions[name]}"' if descriptions.get(name) else "")
        for name, seconds in timings.items()
    )


def _with_page_seen(count: Count, query: ListQuery, page: Page, offset: int) -> Count:
    """An estimated count raised to what the page proves: the rows before it and on it, and
    one more if there is a next page. By page number, a last page makes it exact. A bounded
    count of a rare match (crm/db/count.sql) is a sample's figure, which may be 0 when a few
    dozen rows match."""
    if count.exact or not page.rows_json:
        return count
    seen = (offset if query.page else 0) + len(page.rows_json)
    if query.page and not page.has_more:
        return replace(count, value=seen, exact=True)
    return replace(count, value=max(count.value, seen + page.has_more))


@allow_methods("GET")
def appuser_list(request: HttpRequest) -> HttpResponse:
    try:
        query = parse_list_params(dict(request.GET.lists()))
        cursor = decode_cursor(query.cursor, query.ordering) if query.cursor else None
    except InvalidParams as invalid:
        return errors_response(invalid.errors)
    except ValueError_ as error:
        return error_response("cursor", f"cursor {error}", 400)
    serialiser: RowSerialiser | None = getattr(request, ROW_SERIALISER, None)
    counter = QueryCounter()
    with replicas.reads.execute_wrapper(counter):
        response = _list_response(request, query, cursor, serialiser)
    timing = [response.get("Server-Timing"), f'sql;desc="{counter.count}"']
    if settings.REPLICA_ALIASES:  # which server read it: the primary ("default") or a replica
        timing.append(f'server;desc="{replicas.read_alias()}"')
    response["Server-Timing"] = ", ".join(t for t in timing if t)
    return response


def _list_response(
    request: HttpRequest,
    query: ListQuery,
    cursor: Cursor | None,
    serialiser: RowSerialiser | None,
) -> HttpResponse:
    started = time.perf_counter()
    query = resolve_rank(resolve_search(resolve_patterns(query)))
    # first: its size tells the page query how to walk, and of few matches it keeps the page
    count = _carried_count(query, cursor) or contact_count(query, keep=page_order(query, cursor))
    suggestions = search_suggestions(query.search) if asks_for_suggestions(query, count) else []
    fuzzy = not count.value and bool(suggestions)
    if fuzzy:  # nothing found: the page of the first search offered instead
        query = resolve_rank(replace(query, search=suggestions[0]))
        count = contact_count(query, keep=page_order(query, cursor))
    counted = time.perf_counter() - started
    offset = (query.page - 1) * query.page_size if query.page else 0
    if count.exact and count.value <= offset:
        # The exact count says the page is empty (no match at all, or a page past the end):
        # its rows are not looked for. Contradictory filters on unindexed patterns made the
        # page query scan the table to find nothing (11 s for a 404 on PostgreSQL 15 at 3M).
        page = Page(rows_json=[], first_keys=None, last_keys=None, has_more=False)
    else:
        page = contact_page(query, cursor, serialiser=serialiser, matches=count)
    page.timings["count"] = counted
    count = _with_page_seen(count, query, page, offset)
    if query.page and query.page > 1 and not page.rows_json:
        return error_response("page", f"page {query.page} is past the last page", 404)
    # the links of a fuzzy page go on with the search it answered
    searched = {"search": " ".join(query.search)} if fuzzy else {}
    links = (
        _page_links(request, query, page, searched)
        if query.page
        else _cursor_links(request, query, page, cursor, searched, _carry(query, count))
    )
    started = time.perf_counter()
    body = _body(query, page, count, links, [" ".join(s) for s in suggestions], fuzzy=fuzzy)
    page.timings["serialize"] = time.perf_counter() - started
    method = count.method + (", carried" if count.carried else "")
    timing = _server_timing(page.timings, {"count": method})
    return raw_json_response(body, headers={"Server-Timing": timing})
