from __future__ import annotations

import json
import os
import resource
import sys
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from crm.seeding import Progress, SeedError, seed


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"--users must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise CommandError(f"--users must be a positive integer, got {value}")
    return value


def start_of_day(raw: str) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--as-of must be a date YYYY-MM-DD, got {raw!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class ProgressPrinter:
    """A progress bar with rows/s and ETA on a terminal, plain log lines otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.stages: dict[str, float] = {}  # stage -> seconds since the start when it began

    def __call__(self, p: Progress) -> None:
        if p.stage != "rows" or p.done == p.total:
            # "constraint crm_x_pkey" and "index crm_y" are grouped as one phase each
            self.stages.setdefault(p.stage.split()[0], p.elapsed)
        rate = p.done / p.elapsed if p.elapsed > 0 else 0.0
        if p.stage == "rows" and p.done < p.total:
            eta = (p.total - p.done) / rate if rate else 0.0
            bar = "#" * int(30 * p.done / p.total)
            line = f"[{bar:<30}] {p.done:>10,}/{p.total:,} rows  {rate:,.0f} rows/s  ETA {eta:.0f}s"
        else:
            line = f"{p.stage:<40} {p.elapsed:7.1f}s"
        if self.tty:
            self.stream.write(f"\r\033[K{line}" + ("\n" if p.stage != "rows" else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Load N deterministic contacts (each with an address and a relationship)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=positive_int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--as-of",
            type=start_of_day,
            default=None,
            help="reference date for ages and timestamps (default: today, UTC)",
        )
        parser.add_argument(
            "--truncate", action="store_true", help="replace the contacts already in the database"
        )
        parser.add_argument(
            "--record-timing",
            action="store_true",
            help="keep the phase timings in .data/seed-timing.json for BENCHMARKS.md",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = options["as_of"] or start_of_day(datetime.now(UTC).date().isoformat())
        printer = ProgressPrinter(sys.stdout)
        call_command("migrate", verbosity=0)  # a fresh database has no tables to seed yet
        try:
            seed(
                users=options["users"],
                seed=options["seed"],
                as_of=as_of,
                truncate=options["truncate"],
                on_progress=printer,
            )
        except SeedError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"seeded {options['users']:,} contacts")
        if options["record_timing"]:
            _record_timing(options["users"], printer.stages)


def server_name() -> str:
    """The server the app's connection reaches, as the seed's and the bench's records name
    it: `PostgreSQL 18.6 (embedded)`, `PostgreSQL 15.20 (DATABASE_URL)`."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0].split()[0]
    where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded"
    return f"PostgreSQL {version} ({where})"


def _record_timing(users: int, stages: dict[str, float]) -> None:
    """Kept under .data/ for `manage.py bench`, which puts it into BENCHMARKS.md.

    `stages` maps each phase to the second it started; "rows" is when the rows were in.
    """
    marks = [("start", 0.0), *stages.items()]
    names = {
        "start": "generate and insert rows",
        "constraint": "primary, unique and foreign keys",
        "index": "secondary and list indexes",
        "analyze": "ANALYZE",
        "vacuum": "VACUUM",
    }
    phases = {
        f"{names[a]} (s)": round(end - begin, 1)
        for (a, begin), (_, end) in pairwise(marks)
        if a in names
    }
    record = {
        "server": server_name(),
        "contacts": f"{users:,}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total (s)": round(stages.get("done", 0.0), 1),
        **phases,
        "peak RSS of the seed command (MB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        // 1024,
        **_sizes(),
    }
    (settings.DATA_DIR / "seed-timing.json").write_text(json.dumps(record, indent=2))


# What the seeded tables take on disk: the read model's heap against its indexes, the price
# of its index paths (crm/db/indexes.sql says what each one serves).
SIZES_SQL = """
SELECT pg_relation_size('crm_contactrow'), pg_indexes_size('crm_contactrow'),
       sum(pg_total_relation_size(c.oid))
  FROM pg_class c
 WHERE c.relkind = 'r' AND c.relname LIKE 'crm\\_%'
"""


def _sizes() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(SIZES_SQL)
        heap, indexes, total = cursor.fetchone()
    mb = 1024 * 1024
    return {
        "read model table (MB)": heap // mb,
        "read model indexes (MB)": indexes // mb,
        "the app's tables with their indexes (MB)": int(total) // mb,
    }
