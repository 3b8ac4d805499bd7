"""The bench's random survey draws valid queries from the whole grammar, reproducibly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from crm.fields import FIELDS
from crm.lib.survey import draw_queries
from crm.params import parse_list_params

ROWS: list[dict[str, Any]] = [
    {
        "id": n,
        "first_name": name,
        "last_name": last,
        "gender": "FMXU"[n % 4],
        "customer_id": f"C{n:09d}",
        "phone_number": f"+43664{n:07d}",
        "created": datetime(2020, 1 + n % 12, 1 + n % 28, 12, tzinfo=UTC),
        "birthday": None if n % 5 == 0 else date(1950 + n, 1 + n % 12, 1 + n % 28),
        "last_updated": datetime(2024, 1, 1, tzinfo=UTC),
        "address__id": n,
        "address__street": "Hauptstraße",
        "address__street_number": f"{n}a",
        "address__city_code": "1010",
        "address__city": city,
        "address__country": "AT",
        "relationship__id": None if n % 7 == 0 else n,
        "relationship__points": None if n % 7 == 0 else n * 10,
        "relationship__created": None if n % 7 == 0 else datetime(2021, 1, 1, tzinfo=UTC),
        "relationship__last_activity": None if n % 3 else datetime(2024, n % 12 + 1, 5, tzinfo=UTC),
    }
    for n, (name, last, city) in enumerate(
        [("Anna", "Müller", "Wien"), ("Jürgen", "Öztürk", "Graz"), ("Zoë", "de Vries", "Köln")]
        * 10,
        start=1,
    )
]


def _params(query_string: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(query_string, keep_blank_values=True)


def test_the_same_seed_draws_the_same_survey_and_another_seed_another() -> None:
    assert draw_queries(ROWS, 50, seed=3) == draw_queries(ROWS, 50, seed=3)
    assert draw_queries(ROWS, 50, seed=3) != draw_queries(ROWS, 50, seed=4)


def test_every_drawn_query_parses() -> None:
    for query in draw_queries(ROWS, 300, seed=1):
        parse_list_params(_params(query.query_string))  # raises InvalidParams if not


def test_the_survey_reaches_every_field_and_lookup_and_both_ways_of_paging() -> None:
    queries = draw_queries(ROWS, 2000, seed=2)
    filters = Counter(name for q in queries for name, _ in q.params)
    for f in FIELDS.values():
        for lookup in f.lookups:
            assert filters[f.name if lookup == "exact" else f"{f.name}__{lookup}"], (f, lookup)
    assert filters["search"] and filters["ordering"]
    assert {q.page is None for q in queries} == {True, False}
    orderings = [dict(q.params).get("ordering", "") for q in queries]
    assert any(o.count(",") == 2 and "-" in o for o in orderings)


def test_the_report_lists_each_run_by_server_and_code_and_the_last_ones_slowest() -> None:
    from crm.lib.bench_report import _survey_section, partial_markdown
    from crm.lib.survey import Sample, SurveyReport

    report = SurveyReport(
        7,
        2,
        [Sample(f"/crm/appusers?x={n}", n, 200, "db;dur=1") for n in (5.0, 120.0, 3.0)]
        + [Sample("/crm/appusers?y", 9.0, 500, "")],
    )
    server = "PostgreSQL 15.20 (DATABASE_URL)"
    summary = report.summary() | {"date": "2026-12-05", "contacts": 10, "server": server}
    assert (summary["p50_ms"], summary["max_ms"], summary["over_100_ms"]) == (7.0, 120.0, 1)
    assert summary["server_errors"] == 1
    before = summary | {"code": "aaaaaaa", "slowest": [], "p50_ms": 70.0}
    text = "\n".join(_survey_section([before, summary | {"code": "bbbbbbb"}]))
    assert f"| {server} | aaaaaaa | 2026-12-05 | 7 | 2 | 4 | 70.0 |" in text
    assert f"| {server} | bbbbbbb | 2026-12-05 | 7 | 2 | 4 | 7.0 |" in text
    assert text.count(f"The 10 slowest requests on {server}") == 1  # the last run's
    assert text.index("x=120") < text.index("x=5")  # slowest first
    # a survey into a new report (no full run stored) is a report of its own
    alone = partial_markdown({"surveys": [summary | {"code": "bbbbbbb"}]})
    assert "## Random survey" in alone and "## Goals" not in alone


def test_each_index_is_reported_with_the_scans_the_survey_made_with_it() -> None:
    """What justifies each index of the read model (issue 17): the scans between the
    readings before and after the survey, the least used first, in the report with the
    indexes' total size; an index new since the first reading counts from zero."""
    from crm.lib.bench_report import _survey_section
    from crm.lib.survey import IndexUse, SurveyReport, index_use

    before = {"crm_contactrow_pkey": (100, 64.0), "crm_contactrow_gender_id": (7, 90.0)}
    after = {
        "crm_contactrow_pkey": (150, 64.0),
        "crm_contactrow_gender_id": (7, 90.0),
        "crm_contactrow_new_id": (3, 10.0),
    }
    assert index_use(before, after) == [
        IndexUse("crm_contactrow_gender_id", 0, 90.0),
        IndexUse("crm_contactrow_new_id", 3, 10.0),
        IndexUse("crm_contactrow_pkey", 50, 64.0),
    ]
    report = SurveyReport(7, 1, [], index_use(before, after))
    run = {"server": "embedded", "code": "c", "date": "d", "seed": 7, "queries": 1}
    run |= {"requests": 1, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0}
    run |= {"over_100_ms": 0, "server_errors": 0, "other_errors": 0, "slowest": []}
    run |= {"indexes": [vars(i) for i in report.indexes]}
    text = "\n".join(_survey_section([run]))
    assert "indexes (164 MB in all)" in text
    assert "| crm_contactrow_gender_id | 90 | 0 |" in text
    assert text.index("gender_id") < text.index("pkey")


@pytest.mark.django_db
def test_the_index_scans_are_read_for_every_index_of_the_read_model() -> None:
    from django.db import connection

    from crm.lib.survey import index_scans

    scans = index_scans()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'crm_contactrow'")
        names = {name for (name,) in cursor.fetchall()}
    assert set(scans) == names and len(names) > 30
    assert all(scans_ >= 0 and mb > 0 for scans_, mb in scans.values())
