"""Switches for `manage.py bench` to measure what each optimisation contributes.

Honoured only when the server runs with CRM_BENCH_ABLATIONS=1 (the bench command's own
gunicorn); a production server ignores the header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

HEADER = "X-Bench-Ablation"
ABLATIONS = {
    "no-indexes": "the planner may not use any index (as with only primary keys)",
    "exact-count": "an exact COUNT(*) on every page instead of the capped/estimated count",
    "python-json": "rows fetched as columns and serialised with Python dicts + orjson",
    "per-row-queries": "as python-json, but each contact's address and relationship read by a "
    "query of its own, as an ORM without select_related does (1 + 2 per row)",
}
_NO_INDEXES = ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan")


def requested_ablations(request: HttpRequest) -> frozenset[str]:
    if not settings.BENCH_ABLATIONS:
        return frozenset()
    return frozenset(a for a in request.headers.get(HEADER, "").split(",") if a in ABLATIONS)


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
