"""The bench's random survey (`manage.py bench --survey N --seed S`): N list queries drawn
from the whole grammar, not from the named scenarios, timed over HTTP.

Each query has 1-3 filters on any field with any of its lookups and values drawn from the
data, sometimes a search of terms drawn from the data, 0-3 sort keys in mixed directions
and a page size; it is then read either by page number (a page drawn up to 50 deep) or by
following its `next` cursor 1-4 steps. Every request is one sample. Drawing is a pure
function of the sampled rows and the seed (tests/test_survey.py), so a seed names a survey.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from crm.fields import FIELDS, SEARCH_FIELDS, Field, Kind
from crm.lib.bench import Client, percentile

PAGE_SIZES = (10, 25, 25, 50, 100)
# About 50 whole blocks drawn from all over the table (a LIMIT on a bigger sample would keep
# only the first blocks it reads, in physical order: the oldest contacts).
SAMPLE_BLOCKS = 50
BLOCKS_SQL = "SELECT greatest(1, pg_relation_size('crm_contactrow') / 8192)"
SAMPLE_SQL = "SELECT {columns} FROM crm_contactrow TABLESAMPLE SYSTEM (%s) REPEATABLE (%s)"

Row = Mapping[str, Any]  # field name -> value, one sampled contact


@dataclass(frozen=True)
class SurveyQuery:
    params: tuple[tuple[str, str], ...]  # the first page's query string
    page: int | None  # read page N; None: follow `next` cursors
    steps: int  # cursor pages after the first

    @property
    def query_string(self) -> str:
        return urlencode(self.params)


@dataclass
class Sample:
    path: str
    ms: float
    status: int
    server_timing: str


@dataclass(frozen=True)
class IndexUse:
    name: str
    scans: int  # index scans the survey's requests made with it
    mb: float  # its size


@dataclass
class SurveyReport:
    seed: int
    queries: int
    samples: list[Sample] = field(default_factory=list)
    indexes: list[IndexUse] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        times = [s.ms for s in self.samples]
        slowest = sorted(self.samples, key=lambda s: s.ms, reverse=True)[:10]
        return {
            "seed": self.seed,
            "queries": self.queries,
            "requests": len(times),
            "p50_ms": statistics.median(times),
            "p90_ms": percentile(times, 0.90),
            "p99_ms": percentile(times, 0.99),
            "max_ms": max(times),
            "over_100_ms": sum(t > 100 for t in times),
            "server_errors": sum(s.status >= 500 for s in self.samples),
            "other_errors": sum(400 <= s.status < 500 for s in self.samples),
            "indexes": [vars(i) for i in self.indexes],
            "slowest": [
                {
                    "ms": round(s.ms, 1),
                    "status": s.status,
                    "path": s.path,
                    "server_timing": s.server_timing,
                }
                for s in slowest
            ],
        }


def _text_value(rng: random.Random, value: str, lookup: str) -> str:
    if lookup in ("contains", "icontains"):
        start = rng.randrange(max(1, len(value) - 1))
        return value[start : start + rng.randint(2, 4)]
    if lookup in ("startswith", "istartswith"):
        return value[: rng.randint(1, max(1, min(4, len(value))))]
    if lookup in ("endswith", "iendswith"):
        return value[-rng.randint(1, max(1, min(4, len(value)))) :]
    if lookup in ("iexact",):
        return rng.choice([value.upper(), value.lower(), value])
    return value


def _shown(f: Field, value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _values(rows: Sequence[Row], f: Field, rng: random.Random, n: int) -> list[Any]:
    present = [row[f.name] for row in rows if row[f.name] is not None]
    return [rng.choice(present) for _ in range(n)] if present else []


def _filter(rows: Sequence[Row], f: Field, lookup: str, rng: random.Random) -> str | None:
    """The value of one filter `f__lookup`, drawn from the rows; None if there is none."""
    if lookup == "isnull":
        return rng.choice(["true", "false"])
    values = _values(rows, f, rng, 5)
    if not values:
        return None
    first = values[0]
    if lookup in ("year", "month", "day"):
        return str(getattr(first, lookup))
    if lookup == "in":
        return ",".join(_shown(f, v) for v in values[: rng.randint(1, 5)])
    if lookup == "range":
        low, high = sorted(values[:2])
        return f"{_shown(f, low)},{_shown(f, high)}"
    if f.kind is Kind.TEXT:
        return _text_value(rng, str(first), lookup) or None
    return _shown(f, first)


def draw_query(rows: Sequence[Row], rng: random.Random) -> SurveyQuery:
    params: list[tuple[str, str]] = []
    used: set[str] = set()
    for _ in range(rng.randint(1, 3)):
        f = rng.choice(list(FIELDS.values()))
        lookup = rng.choice(f.lookups)
        name = f.name if lookup == "exact" else f"{f.name}__{lookup}"
        value = _filter(rows, f, lookup, rng)
        if value is not None and name not in used:
            used.add(name)
            params.append((name, value))
    if rng.random() < 0.3:
        terms = [str(rng.choice(rows)[rng.choice(SEARCH_FIELDS)]).split()[0] for _ in range(2)]
        params.append(("search", " ".join(terms[: rng.randint(1, 2)]).lower()))
    keys = rng.sample(list(FIELDS), rng.randint(0, 3))
    if keys:
        params.append(("ordering", ",".join(rng.choice(["", "-"]) + k for k in keys)))
    params.append(("page_size", str(rng.choice(PAGE_SIZES))))
    by_page = rng.random() < 0.4
    return SurveyQuery(
        tuple(params),
        rng.choice([1, 2, 3, 5, 10, 50]) if by_page else None,
        rng.randint(1, 4),
    )


def draw_queries(rows: Sequence[Row], n: int, seed: int) -> list[SurveyQuery]:
    rng = random.Random(seed)
    return [draw_query(rows, rng) for _ in range(n)]


def sample_rows(seed: int) -> list[dict[str, Any]]:
    """About 50 blocks of contacts spread over the table, the same for the same seed and
    data."""
    from django.db import connection

    columns = ", ".join(f.column for f in FIELDS.values())
    with connection.cursor() as cursor:
        cursor.execute(BLOCKS_SQL)
        percent = min(100.0, 100.0 * SAMPLE_BLOCKS / cursor.fetchone()[0])
        cursor.execute(SAMPLE_SQL.format(columns=columns), [percent, seed])
        return [dict(zip(FIELDS, row, strict=True)) for row in cursor.fetchall()]


def run_survey(client: Client, queries: Sequence[SurveyQuery], seed: int) -> SurveyReport:
    """Every query's first page (or page N), and for a cursor query its next pages."""
    report = SurveyReport(seed, len(queries))
    for query in queries:
        path = "/crm/appusers?" + query.query_string
        if query.page is not None:
            report.samples.append(_timed(client, f"{path}&page={query.page}")[0])
            continue
        next_path: str | None = path
        for _ in range(1 + query.steps):
            if next_path is None:
                break
            sample, body = _timed(client, next_path)
            report.samples.append(sample)
            next_path = _next_path(sample, body)
    return report


# What justifies each index of the read model (issue 17): how often the survey's requests
# scanned it. The statistics are the server's own (pg_stat_user_indexes), counted by every
# session of the database: the survey's server is the only client while it runs, and its
# backends write their counts when they exit, so they are read once they are gone.
INDEX_SCANS_SQL = """
SELECT indexrelname, idx_scan, pg_relation_size(indexrelid) / 1048576.0
  FROM pg_stat_user_indexes WHERE relname = 'crm_contactrow'
"""
OTHER_SESSIONS_SQL = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid()
   AND backend_type = 'client backend'
"""


def index_scans() -> dict[str, tuple[int, float]]:
    """Each read-model index's scans so far and its size in MB, once the database's other
    sessions have ended (at most 10 s)."""
    from django.db import connection

    with connection.cursor() as cursor:
        deadline = time.monotonic() + 10
        cursor.execute(OTHER_SESSIONS_SQL)
        while cursor.fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
            cursor.execute(OTHER_SESSIONS_SQL)
        cursor.execute(INDEX_SCANS_SQL)
        return {name: (int(scans), float(mb)) for name, scans, mb in cursor.fetchall()}


def index_use(
    before: Mapping[str, tuple[int, float]], after: Mapping[str, tuple[int, float]]
) -> list[IndexUse]:
    """The scans made between two index_scans() readings, the least used index first."""
    used = [
        IndexUse(name, scans - before.get(name, (0, 0.0))[0], round(mb, 1))
        for name, (scans, mb) in after.items()
    ]
    return sorted(used, key=lambda i: (i.scans, i.name))


def _timed(client: Client, path: str) -> tuple[Sample, bytes]:
    started = time.perf_counter()
    status, body, headers = client.get(path)
    ms = (time.perf_counter() - started) * 1000
    return Sample(path, ms, status, headers.get("Server-Timing", "")), body


def _next_path(sample: Sample, body: bytes) -> str | None:
    link = orjson.loads(body).get("next") if sample.status == 200 else None
    if not link:
        return None
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"
