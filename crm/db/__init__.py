"""The current definition of every database object the app adds to the tables of its Django
models: functions, triggers, indexes and statistics, one file per concern, applied in the
order of FILES by migration 0002 (every statement is idempotent). A change edits its file
and adds a migration that applies the files again; tests/test_database_objects.py checks
that the live database holds exactly what the files say."""

from __future__ import annotations

import re
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
FILES = (
    "schema.sql",
    "contactrow_sync.sql",
    "version.sql",
    "words.sql",
    "count.sql",
    "walk.sql",
    "points.sql",
    "readafter.sql",
    "indexes.sql",
)
_INDEX = re.compile(r"^CREATE INDEX IF NOT EXISTS (\w+) ON crm_contactrow USING (\w+) \((.*)\);$")
_STATISTICS = re.compile(
    r"^CREATE STATISTICS IF NOT EXISTS (\w+) ((?:\(\w+\) )?ON .*) FROM crm_contactrow;$"
)
_COLUMN = re.compile(r"\w+")
_FOLD_TRIGRAM = re.compile(r"USING gin \(crm_fold\(\((\w+)\)::text\) gin_trgm_ops\)")
_BLOCK_RANGE = re.compile(r"USING brin \(\(\((\w+) \+ 0\)\)\)")


def read(name: str) -> str:
    return (DIRECTORY / name).read_text()


def all_sql() -> str:
    # the app's per-request statement_timeout must not cut an index build on a big table
    return "SET LOCAL statement_timeout = 0;\n" + "\n".join(read(name) for name in FILES)


def index_definitions() -> dict[str, str]:
    """Index name -> its definition as pg_get_indexdef() prints it (without the schema)."""
    return {
        m[1]: f"CREATE INDEX {m[1]} ON crm_contactrow USING {m[2]} ({m[3]})"
        for line in read("indexes.sql").splitlines()
        if (m := _INDEX.match(line))
    }


def index_options() -> dict[str, str]:
    """Index name -> its storage options (`WITH (...)`), for the indexes that have any: a
    migration sets them on indexes that exist already (CREATE INDEX IF NOT EXISTS cannot)."""
    return {
        name: definition.rpartition(" WITH (")[2].removesuffix(")")
        for name, definition in index_definitions().items()
        if ") WITH (" in definition
    }


def statistics_definitions() -> dict[str, str]:
    return {
        m[1]: f"CREATE STATISTICS {m[1]} {m[2]} FROM crm_contactrow"
        for line in read("indexes.sql").splitlines()
        if (m := _STATISTICS.match(line))
    }


def btree_columns() -> list[tuple[str, ...]]:
    """The columns of each b-tree index on plain columns, in index order."""
    found = []
    for definition in index_definitions().values():
        method, _, columns = definition.partition(" USING ")[2].partition(" ")
        names = tuple(c.strip() for c in columns.strip("()").split(","))
        if method == "btree" and all(_COLUMN.fullmatch(n) for n in names):
            found.append(names)
    return found


def fold_trigram_columns() -> frozenset[str]:
    """The columns with a trigram index of their folded values (crm_fold())."""
    return frozenset(
        m[1]
        for definition in index_definitions().values()
        if (m := _FOLD_TRIGRAM.search(definition))
    )


def block_range_columns() -> frozenset[str]:
    """The columns with a BRIN index of (column + 0), which only crm_bitmap_ids() reads."""
    definitions = index_definitions().values()
    return frozenset(m[1] for d in definitions if (m := _BLOCK_RANGE.search(d)))
