"""Streaming exports of a filtered contact list: CSV (RFC 4180) and NDJSON.

How it stays fast and flat in memory: PostgreSQL formats every row itself with
`COPY (SELECT ...) TO STDOUT`, and the rows go out as they arrive from the server, in
chunks of about CHUNK_BYTES; nothing accumulates, whatever the number of rows. The SELECT is
built from the registry (crm.fields) with the list's own WHERE and ORDER BY (crm.sql), so
an export holds exactly the rows, in exactly the order, that walking the list API gives.

How it stops: the generators below run inside a `with cursor.copy(...)` block. When the
client goes away the WSGI server closes the response, which closes the generator; psycopg
then cancels the COPY on the server and drains what was in flight, and the transaction
rolls back. No query is left running for a vanished client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from crm.fields import FIELDS, Field, Kind
from crm.params import ListQuery
from crm.replicas import reads as connection  # the request's read server (crm/replicas.py)
from crm.selectors.rank import source_sql
from crm.sql import Binder, iso_utc, order_sql, where_sql

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"

# Statement timeout for one export. Requests get 5 s (settings.STATEMENT_TIMEOUT_MS), far
# too little for an export of millions of rows, and the time a COPY runs includes the time
# the server waits for a slow client to take the data, so the limit has to cover the
# transfer, not only the query. We set it with SET LOCAL in the export's own transaction (it
# ends with it, so it can never leak to the next request on a pooled connection) to 10
# minutes: a full export of 3M contacts takes well under a minute at full speed, so this
# leaves room for slow links, while a stalled client cannot pin a backend, a connection and
# an old snapshot (which holds back vacuum) for ever. Override: EXPORT_STATEMENT_TIMEOUT_MS.
EXPORT_STATEMENT_TIMEOUT_MS = 600_000

# Planner settings for the export's transaction (SET LOCAL). Formatting the rows (to_char
# for four timestamps, the formula guard, row_to_json) costs far more than finding them, and
# parallel workers below a Gather Merge do that formatting in parallel, keeping the order.
# The planner charges parallel_tuple_cost (0.1) for every row passed up from a worker, so
# for an export of every row it never picks a parallel plan on its own; at 0 it does
# whenever the scan is big enough to be worth a worker (the app's parallel_setup_cost,
# config/settings.py, still keeps small exports serial). Measured: 2-2.5x faster on 2 cores
# (docs/export.md).
PARALLEL_TUPLE_COST = "0"

# Spreadsheets run a cell that starts with one of these as a formula (OWASP: CSV injection).
# As ASCII codes, because `ascii(col) IN (...)` is much cheaper than a regular expression.
FORMULA_TRIGGERS = "=+-@\t\r"


def statement_timeout_ms() -> int:
    return int(getattr(settings, "EXPORT_STATEMENT_TIMEOUT_MS", EXPORT_STATEMENT_TIMEOUT_MS))


def export_settings() -> dict[str, str]:
    return {"statement_timeout": f"{statement_timeout_ms()}ms",
            "parallel_tuple_cost": PARALLEL_TUPLE_COST}  # fmt: skip


def _neutralised(column: str) -> str:
    codes = ", ".join(str(ord(c)) for c in FORMULA_TRIGGERS)
    return f"CASE WHEN ascii({column}) IN ({codes}) THEN '''' || {column} ELSE {column} END"


def csv_value_sql(f: Field) -> str:
    """One CSV cell: timestamps as in the JSON API, text neutralised against formulas."""
    if f.kind is Kind.TEXT:
        return _neutralised(f.column)
    if f.kind is Kind.DATETIME:
        return iso_utc(f.column)
    if f.kind is Kind.DATE:  # independent of the session's DateStyle
        return f"to_char({f.column}, 'YYYY-MM-DD')"
    return f.column


def json_value_sql(f: Field) -> str:
    """One NDJSON value: raw, with timestamps formatted as the JSON API formats them."""
    return iso_utc(f.column) if f.kind is Kind.DATETIME else f.column


def _where_order(query: ListQuery, bind: Binder) -> str:
    where = where_sql(query.filters, query.search, bind)
    return f"WHERE {where} ORDER BY {order_sql(query.ordering)}"


@dataclass(frozen=True)
class ExportSql:
    """The SELECT of an export with its bound values, and how COPY writes its rows."""

    select: str
    params: list[Any]
    copy_options: str

    @property
    def copy(self) -> str:
        return f"COPY ({self.select}) TO STDOUT ({self.copy_options})"


def csv_sql(query: ListQuery) -> ExportSql:
    bind = Binder()
    columns = ", ".join(f'{csv_value_sql(f)} AS "{f.name}"' for f in FIELDS.values())
    select = f"SELECT {columns} FROM {source_sql(query, bind)} {_where_order(query, bind)}"
    return ExportSql(select, bind.params, "FORMAT csv")


def ndjson_sql(query: ListQuery) -> ExportSql:
    """One compact JSON object per row, keys in registry order.

    row_to_json over a LATERAL subquery: 15-20% cheaper than json_build_object, and the
    subquery's column names (the JSON keys) stay inside it, so the WHERE and ORDER BY at
    the top level still see only crm_contactrow's columns, and the order is guaranteed
    (an ORDER BY inside a subquery under row_to_json would not be).

    CSV mode with a delimiter and a quote character that never occur in PostgreSQL's JSON
    text (it escapes every control character) writes each object verbatim, one per line;
    text mode would double every backslash of the JSON escapes.
    """
    bind = Binder()
    columns = ", ".join(f'{json_value_sql(f)} AS "{f.name}"' for f in FIELDS.values())
    select = (
        f"SELECT j.line FROM {source_sql(query, bind)}, "
        f"LATERAL (SELECT row_to_json(r)::text AS line FROM (SELECT {columns}) r) j "
        f"{_where_order(query, bind)}"
    )
    return ExportSql(select, bind.params, "FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02'")


def probe(sql: ExportSql) -> None:
    """Plan the export's SELECT with its values, on the server that will run it, before the
    response starts: the server being unreachable, a value it refuses, or any error of the
    statement itself raises here, while the view can still answer the errors body. EXPLAIN
    runs nothing (about a millisecond) and opens no transaction that a response nobody
    reads could leave open. What can still fail later (a timeout, the server going away
    mid-way) aborts the transfer instead (stream_copy)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql.select}", sql.params)


class CrlfLineEnds:
    """COPY ends CSV records with LF; RFC 4180 wants CRLF. Turns every LF outside quotes
    into CRLF and leaves line breaks inside quoted values alone, across chunk boundaries
    (a doubled quote inside a value toggles twice, so parity tells inside from outside)."""

    def __init__(self) -> None:
        self.inside = False

    def __call__(self, data: bytes) -> bytes:
        if not self.inside and b'"' not in data:  # the common case, all in C
            return data.replace(b"\n", b"\r\n")
        parts = data.split(b'"')
        inside = self.inside
        for i, part in enumerate(parts):
            if i:
                inside = not inside
            if not inside:
                parts[i] = part.replace(b"\n", b"\r\n")
        self.inside = inside
        return b'"'.join(parts)


def stream_copy(sql: ExportSql, *, head: bytes = b"",
                convert: CrlfLineEnds | None = None) -> Iterator[bytes]:  # fmt: skip
    """Yield `head`, then run the export's COPY and yield its output in chunks of about
    CHUNK_BYTES.

    Nothing touches the database before the second next(): by then Django's response
    middleware is done, so nothing else can need the connection while the COPY holds it.
    `head` goes out before the query even starts, so a CSV client sees its first bytes at
    once even when PostgreSQL must sort every matching row before sending the first one.
    """
    if head:
        yield head
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        local = export_settings()  # SET LOCAL: they end with this transaction
        calls = ", ".join(f"set_config('{name}', %s, true)" for name in local)
        cursor.execute(f"SELECT {calls}", list(local.values()))
        buffer = bytearray()
        first = True
        try:  # the raw psycopg COPY, its errors mapped to Django's as any query's are
            with connection.wrap_database_errors, cursor.cursor.copy(sql.copy, sql.params) as copy:
                for data in copy:
                    buffer += data
                    if first or len(buffer) >= CHUNK_BYTES:  # the first rows at once
                        first = False
                        yield convert(bytes(buffer)) if convert else bytes(buffer)
                        buffer.clear()
        except GeneratorExit:
            logger.info("export closed by the client before the end; COPY cancelled")
            raise
        except Exception:
            logger.exception("export failed after the response started; transfer aborted")
            raise
        if buffer:
            yield convert(bytes(buffer)) if convert else bytes(buffer)


def csv_header(*, bom: bool = False) -> bytes:
    """The header row, as COPY's HEADER would write it (the names need no quoting)."""
    return (BOM if bom else b"") + ",".join(FIELDS).encode() + b"\r\n"


def csv_stream(sql: ExportSql, *, bom: bool = False) -> Iterator[bytes]:
    return stream_copy(sql, head=csv_header(bom=bom), convert=CrlfLineEnds())
