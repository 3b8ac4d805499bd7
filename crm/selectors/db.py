"""The list's reads: statements run on the request's read server (crm/replicas.py), their
json rows loaded as bytes, and the planner's estimate of a statement's rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from psycopg.adapt import Buffer, Loader

from crm.replicas import reads as connection  # the request's read server (crm/replicas.py)

Fetch = Callable[[str, Any], list[tuple[Any, ...]]]


class JsonBytesLoader(Loader):
    """A json column as its UTF-8 text, undecoded: the page's rows are JSON built by
    PostgreSQL and go into the response body as they are. Loaded as str, each row was
    decoded here and encoded again for the body (about a third of the serialisation)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def fetch_rows(sql: str, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as db:
        db.cursor.adapters.register_loader("json", JsonBytesLoader)
        db.execute(sql, params)
        return db.fetchall()


def plan_rows(sql: str, params: Any, fetch: Fetch = fetch_rows) -> int:
    """The number of rows the planner expects `sql` to return."""
    ((plan,),) = fetch(f"EXPLAIN (FORMAT JSON) {sql}", params)
    return int(orjson.loads(plan)[0]["Plan"]["Plan Rows"])


def plan_rows_each(selects: list[str], params: Any, fetch: Fetch = fetch_rows) -> list[int]:
    """The number of rows the planner expects of each of `selects`, from one EXPLAIN of
    their UNION ALL, whose Append has one child per select, in order (a round trip and a
    planning each cost 0.2-0.3 ms of a ranked search's five)."""
    return [int(node["Plan Rows"]) for node in plan_nodes_each(selects, params, fetch)]


def plan_nodes_each(selects: list[str], params: Any, fetch: Fetch = fetch_rows) -> list[Any]:
    """The planner's plan of each of `selects` (EXPLAIN's JSON nodes), as plan_rows_each."""
    union = " UNION ALL ".join(f"({s})" for s in selects)
    ((plan,),) = fetch(f"EXPLAIN (FORMAT JSON) {union}", params)
    top = orjson.loads(plan)[0]["Plan"]
    children = top["Plans"] if top["Node Type"] == "Append" else [top]
    if len(children) != len(selects):  # an arm the planner dropped or merged: one by one
        return [plan_nodes_each([s], params, fetch)[0] for s in selects]
    return list(children)
