"""The live database holds exactly the objects that crm/db/ defines: every index and
statistics object on the read model, every trigger, and every crm_ function (no leftovers
of an older definition, none missing)."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from crm.db import FILES, index_definitions, read, statistics_definitions
from crm.fields import FIELDS, Kind

pytestmark = pytest.mark.django_db

_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(", re.M)
_TRIGGER = re.compile(r"CREATE (?:CONSTRAINT )?TRIGGER (\w+)", re.M)


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _unqualified(definition: str) -> str:
    return definition.replace("public.", "")


def test_the_read_models_indexes_are_the_files() -> None:
    live = dict(
        _rows(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'crm_contactrow'::regclass AND NOT i.indisprimary"
        )
    )
    assert {name: _unqualified(d) for name, d in live.items()} == index_definitions()


def test_the_read_models_statistics_are_the_files() -> None:
    live = dict(_rows("SELECT stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext"))
    assert {name: _unqualified(d) for name, d in live.items()} == statistics_definitions()


def test_every_crm_function_and_trigger_is_defined_in_the_files_with_their_body() -> None:
    text = "\n".join(read(name) for name in FILES)
    live = dict(_rows("SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'crm\\_%'"))
    assert set(live) == set(_FUNCTION.findall(text))
    for chunk in text.split("CREATE OR REPLACE FUNCTION ")[1:]:
        name, _, rest = chunk.partition("(")
        if "$$" in rest:  # a $$ body (the others are a parsed RETURN expression)
            assert live[name].strip() == rest.split("$$")[1].strip(), name
    triggers = {
        name
        for (name,) in _rows(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'crm\\_%'"
        )
    }
    assert triggers == set(_TRIGGER.findall(text))


def test_every_expression_a_filter_compares_has_statistics() -> None:
    """The `i` lookups compare upper(column), the month and day lookups a part of the date
    (of a timestamp in UTC, crm/sql.py): without statistics of their own the planner takes
    each for 0.5% of the rows, whatever they match (crm/db/indexes.sql)."""
    defined = " ".join(statistics_definitions().values())
    for f in FIELDS.values():
        if f.kind is Kind.TEXT:
            assert f"upper({f.column}::text)" in defined, f.name
        if f.kind is Kind.DATETIME:
            utc = f"({f.column} AT TIME ZONE 'UTC'::text)"
            assert f"EXTRACT(month FROM {utc}), EXTRACT(day FROM {utc})" in defined, f.name
        if f.kind is Kind.DATE:
            assert f"EXTRACT(month FROM {f.column}), EXTRACT(day FROM {f.column})" in defined
