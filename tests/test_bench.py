"""The bench's HTTP load clients (crm/lib/bench.py, crm/lib/write_bench.py), against a real
server, and the write part's lost-increment check and report."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from crm.auth import create_token
from crm.lib import bench, recall, write_bench
from crm.lib.bench import Result
from crm.lib.bench_report import ALL_READS, partial_markdown
from crm.models import AppUser


def _port(live_server: object) -> int:
    return urlsplit(str(live_server)).port or 80


def test_throughput_counts_served_requests(live_server: object, db: None) -> None:
    asked = 0

    def path() -> str:
        nonlocal asked
        asked += 1
        return "/healthz"

    rate = bench.throughput(_port(live_server), "", path, seconds=0.5, concurrency=2)
    assert 0 < rate * 0.5 == asked


def test_throughput_sends_the_token(live_server: object, user: User) -> None:
    token = create_token(user)
    rate = bench.throughput(
        _port(live_server), token, lambda: "/crm/appusers", seconds=0.3, concurrency=1
    )
    assert rate > 0


def test_throughput_fails_on_any_answer_but_200(live_server: object, db: None) -> None:
    with pytest.raises(RuntimeError, match="401"):
        bench.throughput(
            _port(live_server), "", lambda: "/crm/appusers", seconds=0.3, concurrency=1
        )


# The write part (crm/lib/write_bench.py) and its report.


def _check(applied: int, contactrow: int, relationships: int) -> write_bench.IncrementCheck:
    """A check over 3 changes adding `applied`, the totals having moved by the others."""
    before = write_bench.Totals(1_000, 1_000)
    after = write_bench.Totals(1_000 + contactrow, 1_000 + relationships)
    return write_bench.IncrementCheck(changes=3, applied=applied, before=before, after=after)


def test_increments_all_there() -> None:
    check = _check(12, 12, 12)
    assert (check.lost_contactrow, check.lost_relationships, check.ok) == (0, 0, True)


@pytest.mark.parametrize(
    ("contactrow", "relationships", "lost"),
    [(7, 12, (5, 0)), (12, 7, (0, 5)), (19, 12, (-7, 0)), (0, 0, (12, 12))],
)
def test_increments_lost_or_doubled_fail_the_check(
    contactrow: int, relationships: int, lost: tuple[int, int]
) -> None:
    check = _check(12, contactrow, relationships)
    assert (check.lost_contactrow, check.lost_relationships) == lost
    assert not check.ok


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n{}", 200),
        (b"HTTP/1.0 409 Conflict\r\n", 409),
        (b"", 0),
        (b"HTTP/1.1 ", 0),
        (b"garbage that is long enough", 0),
    ],
)
def test_status_of_a_raw_answer(answer: bytes, status: int) -> None:
    assert write_bench.status_of(answer) == status


def test_write_load_counts_only_answered_deltas(
    live_server: object, user: User, make_contact: Callable[..., AppUser]
) -> None:
    """Applied are the deltas answered 200; a 409 (balance would go negative) and a 404
    (no such contact) are counted apart, and the totals moved by exactly the applied sum."""
    contacts = [make_contact(points=0).pk for _ in range(3)]
    missing = max(contacts) + 1000
    draws = itertools.cycle(
        [(contacts[0], 3), (missing, 5), (contacts[1], -1000), (contacts[2], 2)]
    )
    before = write_bench.points_totals()
    load = write_bench.write_load(
        _port(live_server),
        create_token(user),
        next_change=lambda: next(draws),
        reads=[("first page", "/crm/appusers")],
        seconds=0.5,
        clients=2,
    )
    check = write_bench.IncrementCheck(
        changes=load.changes,
        applied=load.applied,
        before=before,
        after=write_bench.points_totals(),
    )
    assert load.changes > 0 and load.refused > 0 and load.missing > 0
    assert load.changes + load.refused + load.missing == load.writes.runs
    assert check.ok and check.applied == check.after.relationships - before.relationships > 0
    assert [r.scenario for r in load.reads] == ["first page", "all reads"]
    assert load.reads[0].runs > 0 and load.reads[0].status == 200


def test_write_load_fails_on_an_unexpected_answer(live_server: object, db: None) -> None:
    with pytest.raises(RuntimeError, match="401"):
        write_bench.write_load(
            _port(live_server), "", next_change=lambda: (1, 1), reads=[], seconds=0.3, clients=1
        )


def _write_report(*, patch_p95: float, lost: int, read_p95: float) -> write_bench.WriteReport:
    def result(name: str, p50: float, p95: float, target: str) -> Result:
        return Result(name, target, p50, p95, p95 + 1, 200, 200, 1, None)

    load = write_bench.Load(
        clients=8,
        seconds=60,
        elapsed_s=60.02,
        changes=36_000,
        refused=0,
        missing=0,
        applied=198_000,
        writes=result(write_bench.POINTS_SCENARIO, 9.0, 20.0, "under load"),
        reads=[
            result("sort last_name", 5.0, read_p95, "read under load"),
            result(ALL_READS, 5.0, read_p95, "read under load"),
        ],
    )
    before = write_bench.Totals(10_000, 10_000)
    after = write_bench.Totals(10_000 + 198_000 + 700 - lost, 10_000 + 198_000 + 700)
    return write_bench.WriteReport(
        contacts=3_000_000,
        machine={"cpu": "CPU", "cores": 2, "postgresql": "18", "python": "3.11", "date": "D"},
        latency=[
            result(write_bench.PATCH_SCENARIO, 3.0, patch_p95, "write"),
            result(write_bench.POINTS_SCENARIO, 3.0, 4.0, "write"),
        ],
        load=load,
        increments=write_bench.IncrementCheck(36_200, 198_700, before, after),
        separate_run=True,
    )


def _goal_rows(markdown: str) -> dict[str, str]:
    """Goal -> met, from the goals table of a report."""
    rows = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| ")]
    return {row[0][2:]: row[1] for row in rows if len(row) == 3 and row[1] != "met"}


def test_write_report_survives_json_and_names_each_goal() -> None:
    report = _write_report(patch_p95=4.0, lost=0, read_p95=12.0)
    again = write_bench.WriteReport.from_json(json.loads(json.dumps(report.as_json())))
    assert again == report and again.load.writes_per_s == pytest.approx(36_000 / 60.02)
    markdown = partial_markdown({"writes": again})
    assert set(_goal_rows(markdown).values()) == {"yes"}
    assert "600 points changes/s" in markdown and "+198,700" in markdown


def test_write_report_marks_each_missed_goal() -> None:
    markdown = partial_markdown({"writes": _write_report(patch_p95=16, lost=3, read_p95=31)})
    missed = [goal for goal, met in _goal_rows(markdown).items() if met != "yes"]
    assert len(missed) == 3
    assert [m.split(":")[0].split(" ")[0] for m in missed] == ["PATCH", "zero", "list"]
    assert "lost increments: 3 in the read model, 0 in the relationships" in markdown


def test_the_recall_generator_misspells_as_its_kind_says() -> None:
    """crm/lib/recall.py: every misspelling differs from the name, keeps its first letter,
    and an umlaut or phonetic kind uses its variant where the name has one."""
    rng = random.Random(5)
    for name in ("Müller", "Schmidt", "Meier", "Huber", "Strauß", "Josef"):
        for kind in recall.KINDS:
            typed = recall.misspell(name, kind, rng)
            assert typed.lower() != name.lower() and typed[0].lower() == name[0].lower()
    assert recall.misspell("Müller", "umlaut", rng) == "Mueller"
    assert recall.misspell("Meier", "phonetic", rng) == "Maier"
