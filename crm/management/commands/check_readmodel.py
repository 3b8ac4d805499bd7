from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from crm.readmodel import Difference, differences, repair

SHOWN = 50  # differences printed one by one; the rest are counted
REPAIR_BATCH = 1_000  # rows rebuilt per transaction: the work done survives an interruption


class Command(BaseCommand):
    help = (
        "Compare every row of the read model (crm_contactrow) with the source tables, in "
        "bounded memory, and print the differences; with --repair, rebuild those rows. "
        "Exits with status 1 when differences remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repair", action="store_true", help="rebuild the differing rows")
        parser.add_argument("--batch", type=int, default=100_000, help="ids compared at once")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError("--batch must be a positive integer")
        started = time.monotonic()
        found = 0
        pending: list[int] = []
        for difference in differences(batch=options["batch"]):
            found += 1
            self._show(found, difference)
            if options["repair"]:
                pending.append(difference.id)
                if len(pending) >= REPAIR_BATCH:
                    self._repair(pending)
        if pending:
            self._repair(pending)
        seconds = time.monotonic() - started
        done = "repaired" if options["repair"] else "found"
        self.stdout.write(f"{found} differing row(s) {done} in {seconds:.1f} s")
        if found and not options["repair"]:
            raise SystemExit(1)

    def _show(self, found: int, difference: Difference) -> None:
        if found <= SHOWN:
            self.stdout.write(difference.describe())
        elif found == SHOWN + 1:
            self.stdout.write("... (further differences are counted, not shown)")

    def _repair(self, ids: list[int]) -> None:
        with transaction.atomic():
            repair(ids)
        ids.clear()
