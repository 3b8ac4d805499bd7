from __future__ import annotations

import json
import os
import platform
import random
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from crm.auth import create_token
from crm.lib import bench, recall, survey, write_bench
from crm.lib.bench_report import (
    FIRST_PAGE,
    FLOOR,
    FUZZY_SEARCH,
    RANKED_SEARCH,
    partial_markdown,
    write_chart,
    write_markdown,
)
from crm.management.commands.seed import server_name
from crm.pagination import encode_cursor
from crm.params import parse_ordering
from crm_bench.ablations import ABLATIONS

SCENARIOS = [
    bench.Scenario(FIRST_PAGE, "", ""),
    bench.Scenario(
        "first_name=Steve, page 10", "first_name=Steve&page=10", "first_name=Steve&page=10"
    ),
    bench.Scenario("sort last_name", "ordering=last_name", "ordering=last_name"),
    bench.Scenario("sort -last_name", "ordering=-last_name", "ordering=-last_name"),
    bench.Scenario(
        "sort -relationship__points",
        "ordering=-relationship__points",
        "ordering=-relationship__points",
    ),
    bench.Scenario(
        "sort relationship__points",
        "ordering=relationship__points",
        "ordering=relationship__points",
    ),
    bench.Scenario("sort address__city", "ordering=address__city", "ordering=address__city"),
    bench.Scenario("sort -address__country", "ordering=-address__country"),
    bench.Scenario("sort -created", "ordering=-created"),
    bench.Scenario("sort -gender (huge ties)", "ordering=-gender"),
    bench.Scenario("sort gender,-birthday (two keys)", "ordering=gender,-birthday"),
    bench.Scenario("sort last_name,first_name (two keys)", "ordering=last_name,first_name"),
    bench.Scenario("last_name icontains", "last_name__icontains=m%C3%BCl"),
    bench.Scenario("search, one term", "search=m%C3%BCller"),  # ranked: 380,000 matches
    bench.Scenario("search, one term in id order", "search=m%C3%BCller&ordering=id"),
    bench.Scenario(RANKED_SEARCH, "search=huber"),  # 49,000 matches, tier 0 first
    bench.Scenario(FUZZY_SEARCH, "search=Hubr"),  # nothing: Huber's page instead
    bench.Scenario("search, two terms", "search=mull+wien"),
    bench.Scenario(
        "search sorted by the field it matches", "search=m%C3%BCller&ordering=last_name"
    ),
    bench.Scenario(
        "city=Wien sorted by -points", "address__city=Wien&ordering=-relationship__points"
    ),
    bench.Scenario(
        "country=AT sorted by phone_number (correlated)",
        "address__country=AT&ordering=phone_number",
    ),
    bench.Scenario(
        "birthday range sorted by last_name",
        "birthday__range=1980-01-01,1980-12-31&ordering=last_name",
    ),
    bench.Scenario("birthday__month=11", "birthday__month=11"),
    bench.Scenario("gender=F (half of all, no count scan)", "gender=F"),
    bench.Scenario("page 10,000 (OFFSET)", "page=10000"),
]
# Read in a loop by one client while the write load runs: the first page, and orders and
# filters on the points the writers change.
LOAD_READ_SCENARIOS = [
    FIRST_PAGE,
    "sort -relationship__points",
    "city=Wien sorted by -points",
    "search, one term",
    "sort last_name",
]
ABLATION_SCENARIOS = [
    FIRST_PAGE,
    "sort -relationship__points",
    "search, two terms",
    "first_name=Steve, page 10",
    "city=Wien sorted by -points",
]


SURVEY_RUNS_KEPT = 24


def _commit() -> str:
    """The checked-out commit the bench serves (uncommitted changes not included)."""
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=settings.BASE_DIR,
                           capture_output=True, text=True, check=False)  # fmt: skip
    return found.stdout.strip() or "unknown"


class Command(BaseCommand):
    help = (
        "Benchmark the list API over HTTP (with the baseline and ablations) and the write API "
        "(PATCH and points latency, points under concurrent load); write reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--users",
            type=int,
            default=3_000_000,
            help="seed this many contacts first if the database has fewer",
        )
        parser.add_argument("--runs", type=int, default=40)
        parser.add_argument("--baseline-runs", type=int, default=3)
        parser.add_argument("--throughput-seconds", type=float, default=8)
        parser.add_argument("--output", default="BENCHMARKS.md")
        parser.add_argument("--json", default="docs/bench.json")
        parser.add_argument("--chart", default="docs/bench.png")
        parser.add_argument("--no-baseline", action="store_true")
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="gunicorn workers of the bench's server (`make run` serves one per core)",
        )
        parser.add_argument(
            "--only",
            choices=["all", "writes"],
            default="all",
            help="writes: only the write part; its figures replace the Writes section (and "
            "its goals) in the reports, the list figures of the last full run are kept",
        )
        parser.add_argument(
            "--write-seconds", type=float, default=60, help="duration of the write load"
        )
        parser.add_argument(
            "--write-clients", type=int, default=8, help="concurrent clients of the write load"
        )
        parser.add_argument(
            "--survey",
            type=int,
            default=0,
            metavar="N",
            help="only a random survey of N list queries drawn from the whole grammar "
            "(crm/lib/survey.py); its figures go to the reports under this server's name",
        )
        parser.add_argument(
            "--recall",
            type=int,
            default=0,
            metavar="N",
            help="only the search's recall: N names from the data, misspelt by a seeded "
            "generator (crm/lib/recall.py), each searched; the share found on the first page",
        )
        parser.add_argument("--seed", type=int, default=1, help="the survey's (recall's) seed")
        parser.add_argument(
            "--write-runs",
            type=int,
            default=200,
            help="timed requests of each sequential write scenario (after 3 warm-up requests)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        contacts = self._ensure_data(options["users"])
        user, _ = User.objects.get_or_create(username="bench")
        token = create_token(user)
        scans_before = survey.index_scans() if options["survey"] else {}
        server = bench.Server(workers=options["workers"])
        try:
            if options["recall"]:
                names = recall.sample_names(options["recall"], options["seed"])
                attempts = recall.run_recall(
                    bench.Client(server.port, token), names, options["seed"]
                )
            elif options["survey"]:
                rows = survey.sample_rows(options["seed"])
                queries = survey.draw_queries(rows, options["survey"], options["seed"])
                surveyed = survey.run_survey(
                    bench.Client(server.port, token), queries, options["seed"]
                )
            elif options["only"] == "writes":
                writes = self._writes(server.port, token, contacts, options)
            else:
                scenarios = SCENARIOS + self._deep_cursor_scenarios(contacts)
                report = self._run(server.port, token, scenarios, options)
                machine = self._machine(options)  # the list run's end, before the writes
                report["writes"] = self._writes(server.port, token, contacts, options)
        finally:
            server.stop()
        if options["recall"]:
            self._write_recall(attempts, contacts, options)
            return
        if options["survey"]:
            surveyed.indexes = survey.index_use(scans_before, survey.index_scans())
            self._write_survey(surveyed, contacts, options)
            return
        if options["only"] == "writes":
            self._write_writes(writes, options)
            return
        report |= {
            "contacts": contacts,
            "machine": machine,
            "runs": options["runs"],
            "baseline_runs": options["baseline_runs"],
        }
        self._write(report, options)

    def _ensure_data(self, users: int) -> int:
        call_command("migrate", verbosity=0)  # `make bench` may be the first command run
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM crm_contactrow")
            contacts = cursor.fetchone()[0]
        if contacts < users:
            self.stdout.write(f"{contacts:,} contacts in the database: seeding {users:,}")
            call_command("seed", users=users, truncate=True, record_timing=True)
            contacts = users
        return int(contacts)

    def _deep_cursor_scenarios(self, contacts: int) -> list[bench.Scenario]:
        """Cursors 2/3 of the way in (2 million rows at 3M), for id and last_name orders."""
        depth = contacts * 2 // 3
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM crm_contactrow ORDER BY id OFFSET %s LIMIT 1", [depth])
            (by_id,) = cursor.fetchone()
            cursor.execute(
                "SELECT last_name_key, id FROM crm_contactrow "  # its order's keys (fields.py)
                "ORDER BY last_name_key, id OFFSET %s LIMIT 1",
                [depth],
            )
            by_name = list(cursor.fetchone())
        id_cursor = encode_cursor(parse_ordering("id"), [by_id], backwards=False)
        name_cursor = encode_cursor(parse_ordering("last_name"), by_name, backwards=False)
        return [
            bench.Scenario(f"cursor {depth:,} rows deep (id)", bench.cursor_query(id_cursor)),
            bench.Scenario(
                f"cursor {depth:,} rows deep (last_name)",
                bench.cursor_query(name_cursor, "last_name"),
            ),
        ]

    def _run(
        self, port: int, token: str, scenarios: list[bench.Scenario], options: dict[str, Any]
    ) -> dict[str, Any]:
        client = bench.Client(port, token)
        results = []
        for n, s in enumerate(scenarios, 1):
            self.stdout.write(f"[{n:>2}/{len(scenarios)}] {s.name}")
            results.append(
                bench.measure(
                    client,
                    bench.list_path(s.query),
                    runs=options["runs"],
                    warmup=3,
                    scenario=s.name,
                    target="optimised",
                )
            )
            if s.baseline is not None and not options["no_baseline"]:
                results.append(
                    bench.measure(
                        client,
                        bench.baseline_path(s.baseline),
                        runs=options["baseline_runs"],
                        warmup=1,
                        scenario=s.name,
                        target="baseline",
                    )
                )
        # The stack's floor at concurrency 1: what the first page could cost at best.
        floor = "/crm/appusers/floor"
        results.append(
            bench.measure(
                client, floor, runs=options["runs"], warmup=3, scenario=FLOOR, target="floor"
            )
        )
        results += self._ablations(client, scenarios, runs=7)
        return {
            "results": results,
            "throughput": self._throughput(port, token, options),
            "avatars": self._avatars(),
        }

    def _ablations(
        self, client: bench.Client, scenarios: list[bench.Scenario], runs: int
    ) -> list[bench.Result]:
        chosen = [s for s in scenarios if s.name in ABLATION_SCENARIOS]
        results = []
        for ablation in ABLATIONS:
            self.stdout.write(f"ablation: {ablation}")
            for s in chosen:
                results.append(
                    bench.measure(
                        client,
                        bench.list_path(s.query),
                        runs=runs,
                        warmup=1,
                        scenario=s.name,
                        target=f"ablation:{ablation}",
                        ablation=ablation,
                    )
                )
        return results

    def _throughput(self, port: int, token: str, options: dict[str, Any]) -> dict[str, float]:
        self.stdout.write("throughput: first page, floor view, PNG avatars")
        seconds = options["throughput_seconds"]
        ids, pick = self._sample_ids(), random.Random(1)

        def avatar() -> str:  # contacts all over the table: the PNG cache sees real misses
            return f"/crm/appusers/{pick.choice(ids)}/avatar.png"

        def rate(next_path: Callable[[], str]) -> float:
            return bench.throughput(port, token, next_path, seconds=seconds, concurrency=8)

        return {
            "optimised_rps": rate(lambda: "/crm/appusers"),
            "floor_rps": rate(lambda: "/crm/appusers/floor"),
            "avatar_png_rps": rate(avatar),
        }

    def _writes(
        self, port: int, token: str, contacts: int, options: dict[str, Any]
    ) -> write_bench.WriteReport:
        """The write scenarios, sequential and under load, and the lost-increment check."""
        runs, warmup = options["write_runs"], 3
        seconds, clients = options["write_seconds"], options["write_clients"]
        client = bench.Client(port, token)
        before = write_bench.points_totals()
        self.stdout.write(f"writes: {write_bench.PATCH_SCENARIO}, sequential")
        patches = write_bench.patch_requests(write_bench.sample_contacts(runs + warmup, seed=1))
        patch = write_bench.measure_requests(
            client, patches, warmup=warmup, scenario=write_bench.PATCH_SCENARIO
        )
        self.stdout.write(f"writes: {write_bench.POINTS_SCENARIO}, sequential")
        ids = [i for i, _ in write_bench.sample_contacts(runs + warmup, seed=2)]
        changes = write_bench.points_requests(ids)
        points = write_bench.measure_requests(
            client, changes, warmup=warmup, scenario=write_bench.POINTS_SCENARIO
        )
        self.stdout.write(
            f"writes: {clients} clients changing points for {seconds:g} s, a list reader meanwhile"
        )
        low, high = write_bench.id_range()
        pick = random.Random(3)

        def next_change() -> tuple[int, int]:
            return pick.randint(low, high), pick.randint(1, write_bench.MAX_DELTA)

        by_name = {s.name: s for s in SCENARIOS}
        reads = [(name, bench.list_path(by_name[name].query)) for name in LOAD_READ_SCENARIOS]
        load = write_bench.write_load(
            port, token, next_change=next_change, reads=reads, seconds=seconds, clients=clients
        )
        increments = write_bench.IncrementCheck(
            changes=len(changes) + load.changes,
            applied=sum(map(write_bench.delta_of, changes)) + load.applied,
            before=before,
            after=write_bench.points_totals(),
        )
        return write_bench.WriteReport(
            contacts,
            self._machine(options),
            [patch, points],
            load,
            increments,
            separate_run=options["only"] == "writes",
        )

    def _write_survey(
        self, surveyed: survey.SurveyReport, contacts: int, options: dict[str, Any]
    ) -> None:
        """A survey is added to the reports' runs, named by its server and the commit of the
        code it served, so that a change's before and after stand side by side."""
        summary = surveyed.summary() | {
            "server": server_name(),
            "code": _commit(),
            "contacts": contacts,
            "date": self._machine(options)["date"],
        }
        self.stdout.write(json.dumps(summary, indent=2))
        report = self._stored_report(options)
        runs = [*report.get("surveys", []), summary]
        report["surveys"] = runs[-SURVEY_RUNS_KEPT:]
        self._save_report(report, options)

    def _write_recall(
        self, attempts: list[recall.Attempt], contacts: int, options: dict[str, Any]
    ) -> None:
        """A recall run is added to the reports' runs, as a survey is."""
        summary = recall.summary(attempts) | {
            "server": server_name(),
            "code": _commit(),
            "contacts": contacts,
            "seed": options["seed"],
            "date": self._machine(options)["date"],
        }
        self.stdout.write(json.dumps(summary, indent=2))
        report = self._stored_report(options)
        runs = [*report.get("recalls", []), summary]
        report["recalls"] = runs[-SURVEY_RUNS_KEPT:]
        self._save_report(report, options)

    def _stored_report(self, options: dict[str, Any]) -> dict[str, Any]:
        path = Path(settings.BASE_DIR) / options["json"]
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_writes(self, writes: write_bench.WriteReport, options: dict[str, Any]) -> None:
        """Only the writes were measured: they replace the writes of the last report, whose
        list figures stay (so does the chart, which shows only those)."""
        report = self._stored_report(options)
        report["writes"] = writes.as_json()
        self._save_report(report, options)

    def _save_report(self, report: dict[str, Any], options: dict[str, Any]) -> None:
        """docs/bench.json with a part replaced, and BENCHMARKS.md regenerated from it."""
        base = Path(settings.BASE_DIR)
        path = base / options["json"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        if "writes" in report:
            report["writes"] = write_bench.WriteReport.from_json(report["writes"])
        if "results" in report:
            report["results"] = [bench.Result(**r) for r in report["results"]]
            markdown = write_markdown(report, chart=options["chart"])
        else:
            markdown = partial_markdown(report)
        (base / options["output"]).write_text(markdown)
        self.stdout.write(markdown)

    def _sample_ids(self) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM crm_appuser TABLESAMPLE SYSTEM (1) REPEATABLE (1)")
            return [row[0] for row in cursor.fetchall()] or [1]

    def _avatars(self) -> dict[str, float]:
        from crm.lib.avatar_bench import run_avatar_benchmark

        self.stdout.write("avatars: micro-benchmark")
        return run_avatar_benchmark()

    def _machine(self, options: dict[str, Any]) -> dict[str, Any]:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        return {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "postgresql": version,
            "python": platform.python_version(),
            "load_average": round(os.getloadavg()[0], 2),
            "gunicorn_workers": options["workers"],
            "gunicorn_threads": bench.gunicorn_threads(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }

    def _write(self, report: dict[str, Any], options: dict[str, Any]) -> None:
        base = Path(settings.BASE_DIR)
        seed_timing = base / ".data" / "seed-timing.json"
        if seed_timing.exists():
            report["seed"] = json.loads(seed_timing.read_text())
        # surveys and recall runs are made on their own (--survey, --recall), per server: a
        # full run keeps them (it dropped the recall runs)
        stored = self._stored_report(options)
        report |= {runs: stored.get(runs, []) for runs in ("surveys", "recalls")}
        Path(base / options["json"]).parent.mkdir(parents=True, exist_ok=True)
        serialisable = report | {
            "results": bench.results_as_dicts(report["results"]),
            "writes": report["writes"].as_json(),
        }
        (base / options["json"]).write_text(json.dumps(serialisable, indent=2) + "\n")
        write_chart(report, base / options["chart"])
        markdown = write_markdown(report, chart=options["chart"])
        (base / options["output"]).write_text(markdown)
        self.stdout.write(markdown)
