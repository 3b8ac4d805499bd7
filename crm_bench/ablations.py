"""Switches for `manage.py bench` to measure what each optimisation of the list contributes.

A request to the list (GET /crm/appusers) names them in the X-Bench-Ablation header
(comma-separated). AblationMiddleware honours it; only the bench app installs it
(CRM_BENCH=1: the bench command's own gunicorn), so a production server has no such code in
its request path and ignores the header. The list view knows nothing of ablations: the
middleware works around it, through the query string, the connection, and the list's one
seam for a row serialiser (crm.views.ROW_SERIALISER).

This module imports no Django REST framework: the bench command (crm/lib/bench.py) reads
HEADER and ABLATIONS from it in a production process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.db import connection
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import Resolver404, resolve

from crm.fields import FIELDS
from crm.selectors import RowSerialiser
from crm.views import ROW_SERIALISER

HEADER = "X-Bench-Ablation"
ABLATIONS = {
    "no-indexes": "the planner may not use any index (as with only primary keys)",
    "exact-count": "an exact COUNT(*) on every page instead of the capped/estimated count",
    "python-json": "rows fetched as columns and serialised with Python dicts + orjson",
    "per-row-queries": "as python-json, but each contact's address and relationship read by a "
    "query of its own, as an ORM without select_related does (1 + 2 per row)",
}
LIST_VIEW = "appuser-list"  # the URL name of GET /crm/appusers (crm/urls.py)
_NO_INDEXES = ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan")


def requested_ablations(request: HttpRequest) -> frozenset[str]:
    """The known ablations the request's header names (unknown names are ignored)."""
    return frozenset(a for a in request.headers.get(HEADER, "").split(",") if a in ABLATIONS)


def _is_the_list(request: HttpRequest) -> bool:
    if request.method != "GET":
        return False
    try:
        return resolve(request.path_info).url_name == LIST_VIEW
    except Resolver404:
        return False


class AblationMiddleware:
    """Applies the header's ablations to a request of the list, around the view:

    - `exact-count`: `count=exact` in the query string, as a client would ask for it (so the
      page's next/previous links carry it too);
    - `python-json`, `per-row-queries`: one of SERIALISERS under the list's seam attribute
      (crm.views.ROW_SERIALISER), which the view hands to contact_page();
    - `no-indexes`: the request runs on a fresh connection with the index scans SET off
      (planner_ablation); the SETs run before the view, so the list's `sql` Server-Timing
      entry no longer counts them.

    Installed last (config/settings.py), so it wraps the view alone: authentication has
    already passed, and its queries ran on the usual connection.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ablations = requested_ablations(request)
        if not ablations or not _is_the_list(request):
            return self.get_response(request)
        if "exact-count" in ablations:
            query = request.GET.copy()
            query["count"] = "exact"  # replaces any count the client sent
            request.GET = QueryDict(query.urlencode())  # immutable, as the request's own
        serialiser = next((SERIALISERS[a] for a in sorted(ablations) if a in SERIALISERS), None)
        if serialiser is not None:
            setattr(request, ROW_SERIALISER, serialiser)
        with planner_ablation(ablations):
            return self.get_response(request)


@contextmanager
def planner_ablation(ablations: frozenset[str]) -> Iterator[None]:
    if "no-indexes" not in ablations:
        yield
        return
    # On a connection of its own, closed before and after: a prepared statement without
    # parameters keeps its first (generic) plan whatever is SET later, so the ablation
    # ignored the SET on a connection that had planned the query with indexes, and a plan
    # it cached without them slowed every later request on that worker.
    connection.close()
    with connection.cursor() as cursor:
        for name in _NO_INDEXES:  # one statement per execute, as server-side binding needs
            cursor.execute(f"SET {name} = off")
    try:
        yield
    finally:
        connection.close()


# python-json and per-row-queries: a page row read as plain columns (ROW_COLUMNS, in the
# registry's order) and serialised as JSON in Python, its address and relationship taken
# from the row (python-json) or each read by a query of its own, as an ORM without
# select_related does (per-row-queries).
ROW_COLUMNS = ", ".join(f.column for f in FIELDS.values())
RELATED = {  # part of the row: (its table, the column that holds the contact's key)
    "address": ("crm_address", "id"),
    "relationship": ("crm_customerrelationship", "appuser_id"),
}


def _python_json(values: tuple[Any, ...]) -> bytes:
    row = dict(zip(FIELDS, values, strict=True))
    contact: dict[str, Any] = {k: v for k, v in row.items() if "__" not in k}
    for part in RELATED:
        contact[part] = {
            k.partition("__")[2]: v for k, v in row.items() if k.startswith(f"{part}__")
        }
    if contact["relationship"]["id"] is None:
        contact["relationship"] = None
    return _with_avatar(contact)


def _per_row_json(values: tuple[Any, ...]) -> bytes:
    row = dict(zip(FIELDS, values, strict=True))
    contact: dict[str, Any] = {k: v for k, v in row.items() if "__" not in k}
    keys = {"address": row["address__id"], "relationship": row["id"]}
    for part, (table, key) in RELATED.items():
        columns = [k.partition("__")[2] for k in FIELDS if k.startswith(f"{part}__")]
        with connection.cursor() as db:
            db.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = %s", [keys[part]])
            found = db.fetchone()
        contact[part] = dict(zip(columns, found, strict=True)) if found else None
    return _with_avatar(contact)


def _with_avatar(contact: dict[str, Any]) -> bytes:
    contact["avatar_url"] = f"/crm/appusers/{contact['id']}/avatar.svg"
    return orjson.dumps(contact, option=orjson.OPT_UTC_Z)


SERIALISERS = {
    "python-json": RowSerialiser(ROW_COLUMNS, _python_json),
    "per-row-queries": RowSerialiser(ROW_COLUMNS, _per_row_json),
}
