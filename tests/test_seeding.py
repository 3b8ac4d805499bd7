"""The seeder: counts, integrity, determinism, value rules, safety, arguments."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from crm.seed_data import ORIGINS
from crm.seeding import CHUNK
from tests.test_readmodel_concurrency import MISSING_VALUES_SQL

AS_OF = "2026-01-15"
AS_OF_TS = datetime(2026, 1, 15, tzinfo=UTC)
TABLES = ("crm_address", "crm_appuser", "crm_customerrelationship", "crm_contactrow")
pytestmark = pytest.mark.django_db(transaction=True)  # the seeder commits and vacuums


def seed(users: int, *, seed_value: int = 1, truncate: bool = True) -> None:
    call_command("seed", users=users, seed=seed_value, as_of=AS_OF_TS, truncate=truncate)


def scalar(sql: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def fingerprint() -> str:
    return str(scalar("SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM crm_contactrow c"))


def test_it_loads_three_rows_per_contact_and_the_read_model() -> None:
    seed(1200)
    for table in TABLES:
        assert scalar(f"SELECT count(*) FROM {table}") == 1200, table  # noqa: S608


def test_it_keeps_referential_integrity_and_restores_constraints() -> None:
    seed(500)
    orphans = scalar(
        "SELECT count(*) FROM crm_appuser u LEFT JOIN crm_address a ON a.id = u.address_id "
        "WHERE a.id IS NULL"
    )
    assert orphans == 0
    foreign_keys = scalar(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN "
        "('crm_appuser'::regclass, 'crm_customerrelationship'::regclass)"
    )
    assert foreign_keys == 2
    with pytest.raises(Exception, match="violates foreign key"), connection.cursor() as c:
        c.execute("UPDATE crm_appuser SET address_id = -1 WHERE id = 1")


def test_it_is_deterministic_for_a_seed() -> None:
    seed(300, seed_value=7)
    first = fingerprint()
    seed(300, seed_value=7)
    assert fingerprint() == first
    seed(300, seed_value=8)
    assert fingerprint() != first


def test_its_values_follow_the_rules() -> None:
    seed(3000)
    rows = list_rows(
        "SELECT u.created, u.last_updated, u.birthday, r.created, r.last_activity, r.points, "
        "u.phone_number, a.country, u.gender, a.street_number, u.first_name "
        "FROM crm_appuser u JOIN crm_address a ON a.id = u.address_id "
        "JOIN crm_customerrelationship r ON r.appuser_id = u.id"
    )
    female = {n for o in ORIGINS for n in o.female}
    male = {n for o in ORIGINS for n in o.male}
    for (
        created,
        updated,
        birthday,
        r_created,
        activity,
        points,
        phone,
        country,
        gender,
        number,
        first,
    ) in rows:
        assert AS_OF_TS.replace(year=2016) <= created <= AS_OF_TS
        assert created <= updated <= AS_OF_TS
        assert created <= r_created <= activity <= AS_OF_TS
        assert 14 <= (AS_OF_TS.date() - birthday).days / 365.2425 <= 96
        assert points >= 0
        assert re.fullmatch(r"\+[1-9][0-9]{7,14}", phone), phone
        assert re.fullmatch(r"[A-Z]{2}", country)
        assert re.fullmatch(r"[0-9]+([ab]|/[0-9]+)?", number), number
        assert gender in "FMXU"
        assert first in (female if gender == "F" else male if gender == "M" else female | male)
    assert scalar("SELECT count(DISTINCT customer_id) FROM crm_appuser") == 3000


def test_its_frequencies_are_skewed() -> None:
    seed(5000)
    top, median = list_rows(
        "SELECT max(n), percentile_disc(0.5) WITHIN GROUP (ORDER BY n) FROM "
        "(SELECT count(*) n FROM crm_appuser GROUP BY first_name) s"
    )[0]
    assert top > 10 * median  # common names are common
    big, small = list_rows(
        "SELECT count(*) FILTER (WHERE points > 10000), count(*) FILTER (WHERE points < 100) "
        "FROM crm_customerrelationship"
    )[0]
    assert small > 3 * big  # many small balances, few large


def test_its_search_text_matches_the_database_definition() -> None:
    seed(800)
    mismatches = scalar(
        "SELECT count(*) FROM crm_contactrow WHERE search_text <> crm_search_text("
        "first_name, last_name, customer_id, phone_number, address_street, address_city)"
    )
    assert mismatches == 0


def test_it_refuses_a_database_with_data_unless_truncate() -> None:
    seed(50)
    with pytest.raises(CommandError, match="--truncate"):
        seed(60, truncate=False)
    assert scalar("SELECT count(*) FROM crm_appuser") == 50


@pytest.mark.parametrize("users", ["0", "-5", "abc", "1.5"])
def test_it_rejects_bad_user_counts(users: str) -> None:
    with pytest.raises(CommandError, match="--users must be a positive integer"):
        call_command("seed", "--users", users)


def _database_url() -> str:
    db = settings.DATABASES["default"]
    host = quote(db["HOST"], safe="")
    port = f":{db['PORT']}" if db["PORT"] and not db["HOST"].startswith("/") else ""
    if db["HOST"].startswith("/"):
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}"
    return f"postgresql://{db['USER']}@{db['HOST']}{port}/{db['NAME']}"


def test_a_killed_run_leaves_the_previous_data_and_a_rerun_completes() -> None:
    seed(300)
    before = fingerprint()
    env = os.environ | {"DATABASE_URL": _database_url()}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "seed", "--users", "600000", "--truncate"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    # Killed only once it reports the first chunk written (250,000 rows in its open
    # transaction), so the test proves a half-done load is rolled back, not an empty one.
    assert process.stdout is not None
    for line in process.stdout:
        if f"{CHUNK:,}/600,000 rows" in line:
            break
    else:
        raise AssertionError("the seed ended before it reported its first chunk")
    process.send_signal(signal.SIGKILL)
    process.wait()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # wait for the orphaned load to abort
        cursor.execute("SELECT count(*) FROM crm_appuser")
        assert cursor.fetchone()[0] == 300
    assert fingerprint() == before
    seed(400)
    assert scalar("SELECT count(*) FROM crm_contactrow") == 400


def list_rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_its_sort_keys_match_the_database_definition() -> None:
    seed(800)
    mismatches = scalar(
        "SELECT count(*) FROM crm_contactrow"
        " WHERE first_name_key IS DISTINCT FROM crm_sort_key(first_name)"
        " OR last_name_key IS DISTINCT FROM crm_sort_key(last_name)"
        " OR address_street_key IS DISTINCT FROM crm_sort_key(address_street)"
        " OR address_city_key IS DISTINCT FROM crm_sort_key(address_city)"
    )
    assert mismatches == 0


def test_it_fills_the_values_a_search_is_counted_by() -> None:
    """The seed writes the read model with its triggers off, then crm_word_fill() adds every
    name, place and postal code (crm/db/words.sql), as the triggers would have."""
    seed(600)
    missing = scalar(f"SELECT count(*) FROM ({MISSING_VALUES_SQL}) m")  # noqa: S608
    assert (missing, scalar("SELECT count(*) > 50 FROM crm_value")) == (0, True)


def test_its_recorded_timing_has_the_phases_and_the_sizes_on_disk(
    tmp_path: Path, settings: Any
) -> None:
    settings.DATA_DIR = tmp_path
    call_command("seed", users=500, as_of=AS_OF_TS, truncate=True, record_timing=True)
    record = json.loads((tmp_path / "seed-timing.json").read_text())
    assert record["contacts"] == "500"
    assert record["server"].startswith("PostgreSQL ")  # which server's seed it was
    assert record["generate and insert rows (s)"] >= 0
    heap, indexes = record["read model table (MB)"], record["read model indexes (MB)"]
    assert 0 <= heap < indexes < record["the app's tables with their indexes (MB)"]
