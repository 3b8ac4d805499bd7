"""The read model `crm_contactrow` beside its source tables: firing its triggers within a
transaction, and checking or repairing it (manage.py check_readmodel).

Its triggers are deferred to the commit (crm/db/contactrow_sync.sql says why), so a
transaction that writes and then reads the list in the same transaction first calls
`sync_now()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from crm.fields import FIELDS, SORT_KEYS

SYNC_TRIGGERS = ("crm_appuser_sync", "crm_address_sync", "crm_relationship_sync")
COLUMNS = [f.column for f in FIELDS.values()] + ["search_text"]
# A read row's sort keys are checked against its own names (a trigger keeps them, but the
# seed writes them itself, and a write with the triggers off could leave them stale): each
# key must end with its value (crm_sort_value(), schema.sql), which finds a missing key and
# one left from an old name for the price of a string search; computing the keys again
# (crm_sort_key(), 27 us a row for the four) would have added 80 s to a check of 3M rows.
_KEYS = [(key.column, FIELDS[name].column) for name, key in SORT_KEYS.items()]
WRONG_KEYS_SQL = " OR ".join(f"crm_sort_value({key}) IS DISTINCT FROM {c}" for key, c in _KEYS)
CHECKED = [*COLUMNS, "sort_keys"]  # what a difference names (Difference.columns)

# One range of ids: each read row beside what the source tables say it must hold (the view
# crm_contactrow_source), where the two differ. Both sides are read by primary key ranges,
# so memory stays bounded by the batch whatever the table's size.
DIFF_SQL = f"""
SELECT coalesce(s.id, c.id), s.id IS NOT NULL, c.id IS NOT NULL,
       ARRAY[{", ".join(f"s.{c} IS DISTINCT FROM c.{c}" for c in CHECKED)}]
  FROM (SELECT {", ".join(COLUMNS)}, false AS sort_keys FROM crm_contactrow_source
         WHERE id >= %(low)s AND id < %(high)s) s
  FULL JOIN (SELECT {", ".join(COLUMNS)}, {WRONG_KEYS_SQL} AS sort_keys FROM crm_contactrow
              WHERE id >= %(low)s AND id < %(high)s) c
    ON c.id = s.id
 WHERE s IS DISTINCT FROM c
 ORDER BY 1
"""  # noqa: S608 (column names from the registry)
BOUNDS_SQL = """
SELECT least((SELECT min(id) FROM crm_appuser), (SELECT min(id) FROM crm_contactrow)),
       greatest((SELECT max(id) FROM crm_appuser), (SELECT max(id) FROM crm_contactrow))
"""


@dataclass(frozen=True)
class Difference:
    id: int
    in_source: bool  # the contact exists in the source tables
    in_read_model: bool
    columns: tuple[str, ...]  # the columns that differ, when it is in both

    def describe(self) -> str:
        if not self.in_read_model:
            return f"contact {self.id}: missing from the read model"
        if not self.in_source:
            return f"contact {self.id}: in the read model but not in the source tables"
        return f"contact {self.id}: {', '.join(self.columns)} differ"


def sync_now() -> None:
    """Fire this transaction's pending read-model triggers now instead of at its commit."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET CONSTRAINTS {', '.join(SYNC_TRIGGERS)} IMMEDIATE")


def differences(*, batch: int = 100_000) -> Iterator[Difference]:
    """Every read row that differs from the source tables, in id order."""
    with connection.cursor() as cursor:
        cursor.execute(BOUNDS_SQL)
        low, high = cursor.fetchone()
    for start in range(low or 0, (high or -1) + 1, batch):
        for row_id, in_source, in_read, differs in _batch_differences(start, start + batch):
            columns = tuple(c for c, d in zip(CHECKED, differs, strict=True) if d)
            yield Difference(row_id, in_source, in_read, columns if in_source else ())


def _batch_differences(low: int, high: int) -> list[tuple]:
    with transaction.atomic(), connection.cursor() as cursor:
        # A range of ids joins its addresses and relationships by their indexes: the hash
        # join the planner prefers reads both whole tables for every batch (4.5 s a batch
        # of 100,000 at 3M contacts, against 0.3 s by index).
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(DIFF_SQL, {"low": low, "high": high})
        return cursor.fetchall()


def repair(ids: list[int]) -> None:
    """Rebuild the read rows of these contacts from the source tables, in the caller's
    transaction, without the app's per-request statement timeout."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT crm_contactrow_refresh(%s)", [ids])
