"""The live database holds exactly the objects that crm/db/ defines: every index and
statistics object on the read model, every trigger, and every crm_ function (no leftovers
of an older definition, none missing)."""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

import pytest
from django.db import connection

from crm.db import FILES, index_definitions, read, statistics_definitions
from crm.fields import FIELDS, Kind
from crm.readmodel import sync_now
from tests.test_appuser_list import MakeContact

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
    functions = _rows("SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'crm\\_%'")
    live = dict(functions)
    # one definition each: a function whose arguments changed is dropped in its old form
    assert sorted(name for name, _ in functions) == sorted(set(_FUNCTION.findall(text)))
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


KEY_COLUMNS = ("first_name", "last_name", "address_street", "address_city")
WRONG_KEYS = " OR ".join(f"{c}_key IS DISTINCT FROM crm_sort_key({c})" for c in KEY_COLUMNS)


def _drop_keys(cursor: Any) -> None:
    for c in KEY_COLUMNS:  # (with their indexes and the trigger that names them)
        cursor.execute(f"ALTER TABLE crm_contactrow DROP COLUMN {c}_key CASCADE")


@pytest.mark.parametrize("keys_were", ["generated", "absent"])
def test_the_last_migration_brings_any_earlier_database_to_the_files(
    make_contact: MakeContact, keys_were: str
) -> None:
    """Migrations from 0009 on apply the current files to databases whose sort keys were
    generated columns (0008 to 0016), and from 0002 to ones that had none yet (before 0008):
    either way they end as the trigger's plain columns, every key filled (migration 0017)."""
    contact = make_contact(last_name="Öztürk", city="Zürich")
    sync_now()
    with connection.cursor() as cursor:
        _drop_keys(cursor)
        if keys_were == "generated":
            for c in KEY_COLUMNS:
                cursor.execute(
                    f'ALTER TABLE crm_contactrow ADD COLUMN {c}_key text COLLATE "C" '
                    f"GENERATED ALWAYS AS (crm_sort_key({c})) STORED"
                )
        cursor.execute(
            import_module("crm.migrations.0017_sort_keys_by_trigger").Migration.operations[0].sql
        )
        cursor.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'crm_contactrow'::regclass"
            " AND attname LIKE '%%\\_key' AND attgenerated <> ''"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(f"SELECT count(*) FROM crm_contactrow WHERE {WRONG_KEYS}")  # noqa: S608
        assert cursor.fetchone()[0] == 0
        cursor.execute("UPDATE crm_contactrow SET last_name = 'Ünal' WHERE id = %s", [contact.pk])
        cursor.execute("SELECT last_name_key FROM crm_contactrow WHERE id = %s", [contact.pk])
        assert cursor.fetchone()[0] == "uenal\x01Ünal"
    test_the_read_models_indexes_are_the_files()


def test_migration_0018_fills_the_values_of_the_rows_there_are(make_contact: MakeContact) -> None:
    """A database from before crm_value gets it with every name and place of its rows, by
    which a search is counted (crm/db/words.sql)."""
    make_contact(first_name="Jürgen", last_name="Öztürk", city="Zürich", street="Ringstraße")
    sync_now()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE crm_value CASCADE")
        cursor.execute(
            import_module("crm.migrations.0018_search_count_by_value").Migration.operations[0].sql
        )
        cursor.execute("SELECT field, value FROM crm_value ORDER BY 1, 2")
        values = cursor.fetchall()
    assert {("first_name", "Jürgen"), ("last_name", "Öztürk"), ("address_city", "Zürich"),
            ("address_street", "Ringstraße")} <= set(values)  # fmt: skip
