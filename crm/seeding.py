"""Deterministic, fast loading of N contacts (address + contact + relationship each).

How it is fast: PostgreSQL generates the rows itself (`generate_series`), with every random
choice taken from `hashint8extended(i, seed)`, a hash that is stable across versions (hash
partitioning depends on it), so the same seed gives the same rows on any server. Each chunk
is generated once, by parallel workers, into a temporary table, and one statement copies it
into the three tables and the read model (projecting the tables from the read model
afterwards, chunk by chunk, was slower). The workers' rows arrive interleaved, so within a
chunk the heap's order is not the id order and varies between runs; the rows do not.
Indexes, constraints and triggers are dropped for the load and rebuilt in bulk afterwards,
which is several times faster than maintaining them row by row. The read model's sort keys,
which its trigger would compute row by row, are looked up from the pools' few thousand
names instead (_sort_keys: the rows of 3M took 105 s with the keys computed per row, now 27 s).

How it is safe: everything happens in one transaction. A run that is killed half-way rolls
back and leaves the tables exactly as they were; the next run starts over cleanly. On a
server with `wal_level = minimal` (the embedded one), the truncated tables are also not
written to the WAL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from crm.seed_data import CITIES, ORIGINS, SKEW, STREETS

TABLES = (
    "crm_pointschange",
    "crm_word",
    "crm_value",
    "crm_contactrow",
    "crm_customerrelationship",
    "crm_appuser",
    "crm_address",
)
SLOTS = 1024  # size of each weighted lookup table
CHUNK = 250_000


class SeedError(Exception):
    pass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed: float
    stage: str


def weighted_slots(count: int, slots: int = SLOTS) -> list[int]:
    """Indexes 0..count-1 spread over `slots` entries, entry k with weight 1/(k+1)**SKEW."""
    weights = [1 / (k + 1) ** SKEW for k in range(count)]
    total = sum(weights)
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    result, k = [], 0
    for slot in range(slots):
        while k < count - 1 and (slot + 0.5) / slots > cumulative[k]:
            k += 1
        result.append(k)
    return result


def _pools(pools: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """Unique names (1-based in SQL) and, per pool, SLOTS weighted indexes into them.

    Integer slot arrays keep the per-row lookup O(1): subscripting an array of text walks
    it element by element, which made the first version 20x slower.
    """
    names: dict[str, int] = {}
    slot_maps = []
    for pool in pools:
        unique = list(dict.fromkeys(pool))
        for name in unique:
            names.setdefault(name, len(names) + 1)
        slot_maps.append([names[unique[k]] for k in weighted_slots(len(unique))])
    return list(names), slot_maps


def _share_slots() -> list[int]:
    shares = [o.share for o in ORIGINS]
    slots: list[int] = []
    acc = 0.0
    for index, share in enumerate(shares):
        acc += share
        slots.extend([index + 1] * (round(acc * SLOTS) - len(slots)))
    return slots


def _city_slots() -> list[int]:
    total = sum(c.population for c in CITIES)
    slots: list[int] = []
    acc = 0
    for index, city in enumerate(CITIES):
        acc += city.population
        slots.extend([index + 1] * (round(acc / total * SLOTS) - len(slots)))
    return slots


def lookup_params() -> dict[str, Any]:
    """The pools as SQL array parameters (1-based indexes into them)."""
    first_names, first_slots = _pools([o.female for o in ORIGINS] + [o.male for o in ORIGINS])
    last_names, last_slots = _pools([o.last for o in ORIGINS])
    streets, (street_slots,) = _pools([STREETS])
    return {
        "origin": _share_slots(),
        "first_name": first_names,
        "first_slot": first_slots,
        "last_name": last_names,
        "last_slot": last_slots,
        "street": streets,
        "street_slot": street_slots,
        "city_slot": _city_slots(),
        "city": [c.name for c in CITIES],
        "country": [c.country for c in CITIES],
        "postal_low": [c.postal_low for c in CITIES],
        "postal_span": [c.postal_high - c.postal_low + 1 for c in CITIES],
        "postal_width": [c.postal_width for c in CITIES],
        "phone": [c.phone_prefix.replace(" ", "") for c in CITIES],
    }


# The rows of one chunk, each column computed from hashes of the row number i.
# u(h, shift): a uniform float in [0, 1) from 20 bits of the hash h.
ROWS_SQL = """
WITH raw AS (
    SELECT i,
           hashint8extended(i, %(seed)s * 8 + 1) AS h1,
           hashint8extended(i, %(seed)s * 8 + 2) AS h2,
           hashint8extended(i, %(seed)s * 8 + 3) AS h3,
           hashint8extended(i, %(seed)s * 8 + 4) AS h4
      FROM (PARTS) AS part
), picked AS (
    SELECT i, h1, h2, h3, h4,
           (%(origin)s::int[])[1 + (h1 & 1023)] AS o,
           (h1 >> 10) & 1023 AS g,
           (%(city_slot)s::int[])[1 + ((h1 >> 20) & 1023)] AS c,
           ((h2 >> 40) & 1048575) / 1048576::float8 AS u_created,
           ((h3 >> 0) & 1048575) / 1048576::float8 AS u_birth,
           ((h3 >> 20) & 1048575) / 1048576::float8 AS u_updated,
           ((h3 >> 40) & 1048575) / 1048576::float8 AS u_points,
           ((h4 >> 24) & 1048575) / 1048576::float8 AS u_activity
      FROM raw
), person AS (
    SELECT p.*,
           CASE WHEN g < 10 THEN 'X' WHEN g < 25 THEN 'U'
                WHEN g & 1 = 0 THEN 'F' ELSE 'M' END AS gender,
           (%(first_slot)s::int[])
               [o + CASE WHEN g & 1 = 0 THEN 0 ELSE %(origins)s END][1 + ((h1 >> 30) & 1023)]
               AS f,
           (%(last_slot)s::int[])[o][1 + ((h1 >> 40) & 1023)] AS l,
           (%(street_slot)s::int[])[1 + (h2 & 1023)] AS s,
           %(as_of)s::timestamptz - interval '3652 days' * u_created AS created
      FROM picked p
), contact AS (
    SELECT p.*,
           (%(first_name)s::text[])[f] AS first_name,
           (%(last_name)s::text[])[l] AS last_name,
           (%(street)s::text[])[s] AS street,
           (1 + floor(power(((h2 >> 10) & 1023) / 1024::float8, 2) * 180))::int::text
             || CASE (h2 >> 20) & 15 WHEN 0 THEN 'a' WHEN 1 THEN 'b'
                WHEN 2 THEN '/' || (1 + ((h2 >> 24) & 7)) ELSE '' END AS street_number,
           lpad(((%(postal_low)s::int[])[c]
                 + ((h2 >> 28) & 4095) %% (%(postal_span)s::int[])[c])::text,
                (%(postal_width)s::int[])[c], '0') AS city_code,
           (%(phone)s::text[])[c] || lpad(((h4 & 16777215) %% 10000000)::text, 7, '0')
             AS phone_number,
           'CU' || lpad(((i * 7919000003) %% 10000000000)::text, 10, '0') AS customer_id,
           (%(as_of)s::date - (5114 + floor(u_birth * 29585))::int) AS birthday,
           created + (%(as_of)s::timestamptz - created) * u_updated AS last_updated,
           created + (%(as_of)s::timestamptz - created) * (u_updated * 0.2) AS rel_created,
           floor(power(50001, power(u_points, 1.6)))::int - 1 AS points
      FROM person p
)
SELECT i AS id, first_name, last_name, gender, customer_id, phone_number, created,
       birthday, last_updated, i AS address_id, street AS address_street,
       street_number AS address_street_number, city_code AS address_city_code,
       (%(city)s::text[])[c] AS address_city, (%(country)s::text[])[c] AS address_country,
       (%(first_name_key)s::text[])[f] AS first_name_key,
       (%(last_name_key)s::text[])[l] AS last_name_key,
       (%(street_key)s::text[])[s] AS address_street_key,
       (%(city_key)s::text[])[c] AS address_city_key,
       i AS relationship_id, points AS relationship_points,
       rel_created AS relationship_created,
       rel_created + (%(as_of)s::timestamptz - rel_created) * power(u_activity, 0.3)
         AS relationship_last_activity,
       -- crm_search_text() inlined by hand: the function call costs 4 us a row here
       -- (tests/test_seeding.py checks the two agree on every row)
       lower(public.unaccent('public.unaccent'::regdictionary, concat_ws(' ',
           first_name, last_name, customer_id, phone_number, street,
           (%(city)s::text[])[c]))) AS search_text
  FROM contact
"""

# One chunk from its generated rows into the three tables and the read model.
LOAD_SQL = """
WITH address AS (
    INSERT INTO crm_address (id, street, street_number, city_code, city, country)
    SELECT address_id, address_street, address_street_number, address_city_code,
           address_city, address_country
      FROM crm_seed_chunk
), appuser AS (
    INSERT INTO crm_appuser (id, first_name, last_name, gender, customer_id, phone_number,
           created, address_id, birthday, last_updated)
    SELECT id, first_name, last_name, gender, customer_id, phone_number, created, address_id,
           birthday, last_updated
      FROM crm_seed_chunk
), relationship AS (
    INSERT INTO crm_customerrelationship (id, appuser_id, points, created, last_activity)
    SELECT relationship_id, id, relationship_points, relationship_created,
           relationship_last_activity
      FROM crm_seed_chunk
)
INSERT INTO crm_contactrow (
    id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
    last_updated, address_id, address_street, address_street_number, address_city_code,
    address_city, address_country, relationship_id, relationship_points, relationship_created,
    relationship_last_activity, search_text, first_name_key, last_name_key,
    address_street_key, address_city_key)
SELECT id, first_name, last_name, gender, customer_id, phone_number, created, birthday,
       last_updated, address_id, address_street, address_street_number, address_city_code,
       address_city, address_country, relationship_id, relationship_points,
       relationship_created, relationship_last_activity, search_text, first_name_key,
       last_name_key, address_street_key, address_city_key
  FROM crm_seed_chunk
"""
PARTS = 8  # branches of a chunk's Parallel Append, shared out among the parallel workers


def _chunk_sql(low: int, high: int) -> tuple[str, dict[str, int]]:
    """ROWS_SQL over [low, high] as PARTS generate_series ranges, so that PostgreSQL can
    generate them in parallel (one function scan is not parallel; a Parallel Append of
    several is)."""
    bounds = [low + (high - low + 1) * k // PARTS for k in range(PARTS + 1)]
    parts = " UNION ALL ".join(
        f"SELECT i FROM generate_series(%(low{k})s::bigint, %(high{k})s::bigint) AS i"
        for k in range(PARTS)
    )
    params = {f"low{k}": bounds[k] for k in range(PARTS)}
    params |= {f"high{k}": bounds[k + 1] - 1 for k in range(PARTS)}
    return ROWS_SQL.replace("PARTS", parts), params


# Constraints (except NOT NULL/CHECK, which are cheap) and indexes of the loaded tables.
SAVE_CONSTRAINTS_SQL = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('p', 'u', 'f')
 ORDER BY contype = 'f', conname
"""
SAVE_INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid = ANY(%s::regclass[])
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def table_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1) t")
            counts[table] = cursor.fetchone()[0]
        return counts


def _drop_indexes_and_constraints(cursor: object) -> tuple[list[tuple], list[tuple]]:
    cursor.execute(SAVE_CONSTRAINTS_SQL, [list(TABLES)])  # type: ignore[attr-defined]
    constraints = cursor.fetchall()  # type: ignore[attr-defined]
    cursor.execute(SAVE_INDEXES_SQL, [list(TABLES)])  # type: ignore[attr-defined]
    indexes = cursor.fetchall()  # type: ignore[attr-defined]
    for table, name, _ in reversed(constraints):  # foreign keys first
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')  # type: ignore[attr-defined]
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")  # type: ignore[attr-defined]
    return constraints, indexes


def _restore(
    cursor: object, constraints: list[tuple], indexes: list[tuple], report: Callable[[str], None]
) -> None:
    for table, name, definition in constraints:
        report(f"constraint {name}")
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')  # type: ignore[attr-defined]
    for name, definition in indexes:
        report(f"index {name}")
        cursor.execute(definition)  # type: ignore[attr-defined]


def _sort_keys(cursor: Any, params: dict[str, Any]) -> dict[str, list[str]]:
    """The sort keys of the pools' names, by the database's own crm_sort_key() (the seed
    writes the read model with its triggers off, and the pools hold a few thousand names
    where the rows are millions)."""
    pools = {"first_name_key": "first_name", "last_name_key": "last_name"}
    pools |= {"street_key": "street", "city_key": "city"}
    keys = {}
    for key, pool in pools.items():
        cursor.execute(
            "SELECT array(SELECT crm_sort_key(v) FROM unnest(%s::text[]) WITH ORDINALITY"
            " AS u(v, k) ORDER BY k)",
            [params[pool]],
        )
        keys[key] = cursor.fetchone()[0]
    return keys


def _allow_parallel_generation(cursor: Any) -> None:
    """The app's connections never plan parallel queries (settings.py); the seed's chunks
    are CPU-bound and should use every core."""
    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 2")
    cursor.execute("SET LOCAL parallel_setup_cost = 0")
    cursor.execute("SET LOCAL parallel_tuple_cost = 0")


def seed(
    *,
    users: int,
    seed: int,
    as_of: datetime,
    truncate: bool,
    on_progress: Callable[[Progress], None],
) -> None:
    """Load `users` contacts; refuse to touch a non-empty database unless `truncate`."""
    if users < 1:
        raise SeedError("--users must be a positive integer")
    if not truncate and any(table_counts().values()):
        raise SeedError("the database already holds contacts; pass --truncate to replace them")
    started = time.monotonic()

    def report(stage: str, done: int = users) -> None:
        on_progress(Progress(done, users, time.monotonic() - started, stage))

    params = lookup_params() | {"seed": seed, "as_of": as_of, "origins": len(ORIGINS)}
    with transaction.atomic(), connection.cursor() as cursor:
        # Memory of the server session, kept under the 500 MB the seed may use: a chunk's
        # generated rows (about 90 MB) stay in memory, and index builds were no faster
        # with 1 GB (measured at 3M: 1.65 s a b-tree, 19-21 s the trigram index, either way).
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        constraints, indexes = _drop_indexes_and_constraints(cursor)
        _allow_parallel_generation(cursor)
        params |= _sort_keys(cursor, params)
        for low in range(1, users + 1, CHUNK):
            report("rows", low - 1)
            sql, bounds = _chunk_sql(low, min(low + CHUNK - 1, users))
            # Generated in parallel into a temporary table, then written by this session
            # alone (PostgreSQL has no parallel INSERT): 22 s instead of 30 s at 3M.
            cursor.execute(f"CREATE TEMPORARY TABLE crm_seed_chunk AS {sql}", params | bounds)
            cursor.execute(LOAD_SQL)
            cursor.execute("DROP TABLE crm_seed_chunk")
        report("rows")
        _restore(cursor, constraints, indexes, report)
        report("words")
        cursor.execute("SELECT crm_word_fill()")  # the triggers that add them were off
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cursor.execute("SELECT crm_contactrow_changed()")  # its trigger was off (version.sql)
        for table in ("crm_address", "crm_appuser", "crm_customerrelationship"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [users])
        report("analyze")
        cursor.execute(f"ANALYZE {', '.join(TABLES)}")
    # After the commit (VACUUM cannot run in a transaction): set the visibility map, so
    # the list's capped counts are index-only scans from the start instead of after the
    # first autovacuum. A run killed here has already committed complete data.
    report("vacuum")
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("VACUUM crm_contactrow")
        cursor.execute("RESET statement_timeout")
    report("done")
