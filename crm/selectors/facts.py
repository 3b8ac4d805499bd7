"""The facts a list request's plan is chosen from (indexes.Facts), read from the database
before the choice: whether the columns the choice asks about have few distinct values, the
case variants of a case-insensitive filter, and the count (count.py); and the values that a
substring filter on a column of few values matches (resolve_patterns)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson
from django.conf import settings

from crm.case_variants import variants_by_upper
from crm.fields import FIELDS, RANK, SEARCHED_VALUE_FIELDS, SUBSTRING_LOOKUPS, VALUE_FIELDS, Kind
from crm.params import Filter, ListQuery, OrderKey, on_sort_keys
from crm.selectors.count import PLANNER_TTL, Count, table_total, term_candidates
from crm.selectors.db import connection, fetch_rows, plan_nodes_each
from crm.selectors.indexes import CASE_LOOKUPS, MERGED_RANGES, Facts
from crm.selectors.plan import LOOSE_SCAN_KEYS, RECHECK_FROM, key_columns_asked, rechecks_term
from crm.selectors.strategies import distinct_keys
from crm.sql import (
    ID_FOLDS,
    Binder,
    anywhere_sql,
    fold_contains_sql,
    like_match_sql,
    narrowed_by_fold,
    order_sql,
    term_has_trigram,
    where_sql,
)

# Whether a column has few distinct values, by the planner's statistics: then a loose scan
# over them (at most LOOSE_SCAN_KEYS index descents) is cheap, and a text pattern or a search
# term matches whole groups of rows.
DISTINCT_SQL = """
SELECT a.name,
       coalesce((SELECT CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples
                             ELSE s.n_distinct END
                   FROM pg_stats s
                  WHERE s.schemaname = current_schema() AND s.tablename = 'crm_contactrow'
                    AND s.attname = a.name),
                greatest(c.reltuples, 0))
  FROM pg_class c, unnest(%s::text[]) AS a(name)
 WHERE c.oid = 'crm_contactrow'::regclass
"""
_distinct: dict[str, tuple[float, float]] = {}  # column -> (when read, distinct values)


def distinct_values(columns: Iterable[str]) -> dict[str, float]:
    """Each column's distinct values by the planner's statistics (a table never analysed
    counts as small); those not kept from the last PLANNER_TTL seconds are read in one
    statement."""
    wanted = list(dict.fromkeys(columns))
    stale = [c for c in wanted if not _kept(c)]
    if stale:
        with connection.cursor() as db:
            db.execute(DISTINCT_SQL, [stale])
            now = time.monotonic()
            _distinct.update((column, (now, float(n))) for column, n in db.fetchall())
    return {c: _distinct[c][1] for c in wanted}


def few_values(columns: Iterable[str]) -> dict[str, bool]:
    """Whether each column has at most LOOSE_SCAN_KEYS distinct values."""
    return {c: n <= LOOSE_SCAN_KEYS for c, n in distinct_values(columns).items()}


def _kept(column: str) -> bool:
    kept = _distinct.get(column)
    return kept is not None and time.monotonic() <= kept[0] + PLANNER_TTL


# Whether a column's values follow the table's order (plan.probe_bound; read by the walk
# that may use it, ranges.RowRanges._bound, not for a page collected whole), by the planner's
# statistics: the correlation of its values with the rows' places in the table, 0.995 at 3M
# for the ids, the address's and the relationship's, under 0.01 for the timestamps.
ORDER_SQL = """
SELECT a.name,
       coalesce((SELECT s.correlation FROM pg_stats s
                  WHERE s.schemaname = current_schema() AND s.tablename = 'crm_contactrow'
                    AND s.attname = a.name), 0)
  FROM unnest(%s::text[]) AS a(name)
"""
FOLLOWS_TABLE = 0.9
_order: dict[str, tuple[float, int]] = {}  # column -> (when read, 1, -1 or 0)


def table_order(columns: Iterable[str]) -> dict[str, int]:
    """1 or -1 for each column whose correlation is at least FOLLOWS_TABLE either way, else
    0; those not kept from the last PLANNER_TTL seconds read in one statement."""
    wanted = list(dict.fromkeys(columns))
    now = time.monotonic()
    stale = [c for c in wanted if c not in _order or now > _order[c][0] + PLANNER_TTL]
    if stale:
        for column, correlation in fetch_rows(ORDER_SQL, [stale]):
            follows = abs(correlation) >= FOLLOWS_TABLE
            _order[column] = (now, (1 if correlation > 0 else -1) if follows else 0)
    return {c: _order[c][1] for c in wanted}


def _known(query: ListQuery, matches: Count | None) -> Facts:
    """The facts before the few values, which tell which columns to ask about."""
    cased = any(f.lookup in CASE_LOOKUPS for f in query.filters)
    return Facts(matches, variants=variants_by_upper() if cased else None)


def gather_facts(query: ListQuery, keys: list[OrderKey], matches: Count | None) -> Facts:
    """The facts for reading `query` in `keys` order, the count of its matches given."""
    known = _known(query, matches)
    # a walk's cost per row is set against the filter's path's (budget.walk_budget)
    costed = matches is not None and matches.path_cost is not None and keys[0].field is not RANK
    return replace(
        known,
        few_values=few_values(key_columns_asked(query, keys, known)),
        walk_row_costs=_walk_row_costs(keys) if costed else {},
        term_rows=_commonest_term_rows(query, keys),
    )


def _commonest_term_rows(query: ListQuery, keys: list[OrderKey]) -> int:
    """Facts.term_rows: for an order whose pages walk through groups of equal first keys
    (more than a key and id: a key and id in opposite directions read each group as a range
    of its (column, id) index), the planner's estimate of the rows that hold the commonest
    search term read through the trigram index (kept per term, count.term_candidates)."""
    indexed = [
        t
        for t in query.search
        if t not in query.rechecked and t not in query.held and term_has_trigram(t)
    ]
    return max(term_candidates(indexed)) if indexed and len(keys) > 2 else 0


# The cost of a row walked along a sort key's index (the table's row fetched too), in the
# units of crm_count()'s path_cost, which budget.walk_budget sets against it: kept per key
# and direction for PLANNER_TTL, like the distinct counts (both change on ANALYZE). None when
# the planner would not read that order from an index. The planner prices the walk of the
# whole index, each of the table's pages fetched once: about 0.1 a row at 3M, whatever the
# key (the ids 0.103, last_updated 0.108). A walk of part of it costs more:
# - Along the table's order (table_order), the walk reads the table's pages one after the
#   other, for about four times that share (WALK_COST_FACTOR): 888,000 ids walked in
#   0.23-0.36 s for a cost of 51,000, where the fallback's index range of 147,000 rows took
#   55 ms for 52,000.
# - Out of it, each row is a page read at random, as the planner prices a walk of fewer rows
#   than the table has pages (random_page_cost, config/settings.py): `gender__contains=F&
#   search=hannover&ordering=last_updated,created&page=50` walked 138,000 rows of the
#   last_updated index in 0.40-0.46 s on PostgreSQL 15 (0.24 embedded) where its fallback
#   read the 27,000 matches' 44,850 pages for 68,800 units in 0.24 s (0.11-0.15): a row
#   walked costs about one unit, not the 0.108 (nor four times that) the planner's share says.
#   Unless a value's rows share pages: the (column, id) index gives each value's rows in id
#   order, so a walk through a gender's reads its pages in order, 1.5 million women over the
#   table's 120,000 pages, a page for every 12 rows. So a page for every rows-per-page
#   divided by the column's distinct values, at most one a row: at the cost of a page each,
#   `address__id__gt=523768&ordering=gender,relationship__created` gave up its walk of the
#   women 130,000 rows in, before their first address id past the bound (0.37 s on
#   PostgreSQL 15, 0.11 walked on).
WALK_COST_FACTOR = 4
RANDOM_PAGE_COST = float(settings.SESSION_SETTINGS["random_page_cost"])
ROWS_PER_PAGE_SQL = (
    "SELECT reltuples / greatest(relpages, 1) FROM pg_class WHERE oid = 'crm_contactrow'::regclass"
)
_walk_costs: dict[str, tuple[float, float | None]] = {}


def _walk_row_costs(keys: list[OrderKey]) -> dict[str, float]:
    costs = {k.field.column: walk_row_cost(k) for k in keys}
    return {column: cost for column, cost in costs.items() if cost is not None}


def walk_row_cost(head: OrderKey) -> float | None:
    order = order_sql([head])
    kept = _walk_costs.get(order)
    if kept is not None and time.monotonic() <= kept[0] + PLANNER_TTL:
        return kept[1]
    # under the LIMIT the index scan is the cheapest plan, and its node is costed in full
    ((plan,),) = fetch_rows(
        f"EXPLAIN (FORMAT JSON) SELECT * FROM crm_contactrow ORDER BY {order} LIMIT 1", []
    )
    scan = orjson.loads(plan)[0]["Plan"]["Plans"][0]
    cost = None
    if scan["Node Type"] in ("Index Scan", "Index Only Scan"):
        share = scan["Total Cost"] / max(scan["Plan Rows"], 1)
        column = head.field.column
        if table_order([column])[column]:
            cost = share * WALK_COST_FACTOR
        else:
            ((per_page,),) = fetch_rows(ROWS_PER_PAGE_SQL, [])
            pages = min(1.0, distinct_values([column])[column] / max(per_page, 1.0))
            cost = share + RANDOM_PAGE_COST * pages
    _walk_costs[order] = (time.monotonic(), cost)
    return cost


# A substring filter on a field of few distinct values (`last_name__icontains=mul`) is
# read as the list of those values that it matches: the trigram index of search_text gave
# the 373,000 Müllers (folded `muller`) as candidates for the few Mulders, 0.37 s to count
# and page at 3M contacts; as `last_name IN ('Mulder')` the planner knows from its
# statistics how many rows that is and takes the column's index, and a pattern no value
# matches is FALSE. The values come fresh on every request: for the names, places and
# postal codes (VALUE_FIELDS) from crm_value, whose trigram index finds them however many
# the column has (_stored_values); for a column of few values from a loose scan over its
# distinct values (one index descent each).
#
# So is a case-insensitive equality (`last_name__iexact=müller`): read as upper(), its case
# variants and a prefix of the name's sort key, the planner multiplied the selectivities
# and built two bitmaps of the same 373,000 Müllers; `gender__iexact=M` was a half of a
# half, and with a search ANDed the 95,000 men of Hamburg were sorted for a page as if they
# were 3,100 (1.5 s on PostgreSQL 15 at 3M). Not a prefix: `address__street_number__
# startswith=1` matches 550 of its 1,505 values, whose IN list cost 60 ms where its range
# costs 12. The loose scan costs an equality of a field of many values: 10 ms for the
# 1,505 street numbers (`address__street_number__iexact=12` 12 -> 23 ms); left to its case
# variants alone, `address__country__iexact=AT` lost the plans that an IN list of one
# value has (`...&address__street__istartswith=Sc&birthday__gt=...` 14 -> 125 ms).
RESOLVED_LOOKUPS = SUBSTRING_LOOKUPS | {"iexact"}

# A prefix of a field of at most MERGED_RANGES values (not a name's or a place's, whose sort
# key's prefix is one range of the key's index, in the key's order) is read as the values
# it matches too: a range of the column's index holds them, but as an
# equality (or a few) they also fix the column for the order indexes that have it before
# the sort key (crm/fields.py ORDER_INDEXES), and the planner sizes them from its
# statistics. `address__country__startswith=DE&ordering=-address__city,address__street&
# page=2` sorted the 1.5 million Germans' city keys (1.0 s at 3M on PostgreSQL 15; 12 ms
# read from the (country, city key, id) index), and `address__country__istartswith=D&
# created__gt=...&ordering=relationship__created&page=10`, its case variants' ranges
# estimated far below the 1.5 million DE and DK rows, walked and fell back for 2.5 s (0.5 s
# as `IN ('DE', 'DK')`). A field of more values keeps its range: the 550 street numbers
# that start with 1 cost 60 ms as an IN list and 12 as their range, and the loose scan that
# finds them 10 ms.
PREFIX_LOOKUPS = frozenset({"startswith", "istartswith"})


def resolve_patterns(query: ListQuery) -> ListQuery:
    """`query` with each substring or case-insensitive equality (RESOLVED_LOOKUPS) on a name,
    a place or a postal code, or on a field of few distinct values, and each prefix on a field
    of at most MERGED_RANGES values (PREFIX_LOOKUPS), resolved to the values that it matches
    (Filter.matching), and a
    name's values to its sort key's (crm/params.py), whose prefix, which crm/params.py added
    for the name's prefix, they make redundant. The distinct counts of the first sort key,
    which the page asks about, are read in the same statement."""
    patterns = [
        f.field.column
        for f in query.filters
        if f.lookup in RESOLVED_LOOKUPS | PREFIX_LOOKUPS and f.field.name not in VALUE_FIELDS
    ]
    asked = key_columns_asked(query, query.ordering, _known(query, None))
    distinct = distinct_values([*patterns, *asked])
    resolved = {
        i: r for i, f in enumerate(query.filters) if (r := _resolved(f, distinct)) is not None
    }
    redundant = {(f.field.sort_key, f.value) for f in resolved.values() if f.field.sort_key}
    filters = [
        g
        for i, f in enumerate(query.filters)
        if not (f.lookup == "sortprefix" and (f.field, f.value) in redundant)
        for g in (on_sort_keys(resolved[i], query.ordering) if i in resolved else [f])
    ]
    return replace(query, filters=filters)


def _resolved(f: Filter, distinct: dict[str, float]) -> Filter | None:
    """`f` read as the values it matches (resolve_patterns), or None where it stays a
    pattern."""
    few = distinct.get(f.field.column, float("inf"))
    if f.lookup in RESOLVED_LOOKUPS and (f.field.name in VALUE_FIELDS or few <= LOOSE_SCAN_KEYS):
        return replace(f, matching=_matching_values(f))
    if f.lookup in PREFIX_LOOKUPS and f.field.name not in VALUE_FIELDS and few <= MERGED_RANGES:
        matching = _matching_values(f)
        # (the statistics' distinct count is an estimate)
        if matching is not None and len(matching) <= MERGED_RANGES:
            return replace(f, matching=matching)
    return None


# A search term is in a row's search_text when the fold of one of its searched fields holds
# it (crm/db/schema.sql): a name or a place, whose distinct values crm_value keeps (crm/db/
# words.sql), or a customer id or a phone number, whose folds have trigram indexes. So a term
# is read as the values that hold it, an IN list of each column that its (column, id) b-tree
# serves and the planner sizes from its statistics (ListQuery.held, crm/sql.py held_sql),
# with the customer ids and phone numbers whose folds hold it: no trigram bitmap of
# search_text, which rechecks every candidate row in the table. At 3M, `address__country=
# DE&search=praha gartenstraße` counted its matches in 0.2-0.27 s through search_text's
# bitmaps (built of the two terms' common trigrams, then 6,230 rows rechecked); by the
# city's and the street's b-trees, 45 ms; the count of `gartenstraße` alone took 0.28-0.63
# s, and 19 ms by value.
# Not a term whose fold has whitespace (`½` is ` 1/2`), which may span two fields; nor one
# held by more than HELD_VALUES values (each a bound parameter, which the planner sizes one
# by one), LOOSE_SCAN_KEYS for a term without a trigram, which no index finds otherwise.
# A term whose fold has a character that no customer id and no phone number holds (their
# characters are letters, digits and `._-+`, crm/models.py, which the database checks) is
# only in names and places: `relationship__points__lte=47&search=军&ordering=gender,
# customer_id` read half the table for each page (1.1-1.5 s at 3M on PostgreSQL 15). One
# without a trigram that they may hold (`am`) stays a test of search_text: no index finds
# it in their folds either.
HELD_VALUES = 100
HELD_SQL = """
WITH v AS (SELECT DISTINCT field, value FROM crm_value
            WHERE field IN ({fields}) AND {match} LIMIT {limit})
SELECT {n}, crm_fold({term}), coalesce(array_agg(field), '{{}}'),
       coalesce(array_agg(value), '{{}}')
  FROM v
"""
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9._+-]+")  # what either holds, in any case


def resolve_held_terms(query: ListQuery) -> ListQuery:
    """`query` with each search term that names, places, customer ids and phone numbers hold
    resolved to the values of each that hold it, in one statement."""
    terms = [t for t in dict.fromkeys(query.search) if _may_be_held(t)]
    if not terms:
        return query
    bind = Binder()
    fields = ", ".join(f"'{FIELDS[name].column}'" for name in SEARCHED_VALUE_FIELDS)
    selects = [
        HELD_SQL.format(
            fields=fields,
            match=fold_contains_sql("crm_fold(value)", t, bind),
            limit=_most_values(t) + 1,
            n=n,
            term=bind(t, Kind.TEXT),
        )
        for n, t in enumerate(terms)
    ]
    rows = fetch_rows(" UNION ALL ".join(f"({s})" for s in selects), bind.params)
    held = {}
    for n, fold, columns, values in rows:
        term = terms[n]
        in_ids = [column for column, chars in ID_FOLDS.items() if chars.fullmatch(fold)]
        unindexed = in_ids and not term_has_trigram(term)
        if re.search(r"\s", fold) or len(values) > _most_values(term) or unindexed:
            continue
        by_column: dict[str, list[str]] = {column: [] for column in in_ids}
        for column, value in zip(columns, values, strict=True):
            by_column.setdefault(column, []).append(value)
        held[term] = {column: tuple(v) for column, v in by_column.items()}
    return replace(query, held=held) if held else query


def _may_be_held(term: str) -> bool:
    """Not a term without a trigram of a customer id's characters (`am`, `4`): no index
    finds it in their folds (its own fold is of those characters too)."""
    return term_has_trigram(term) or not _ID_CHARACTERS.fullmatch(term)


def _most_values(term: str) -> int:
    return HELD_VALUES if term_has_trigram(term) else LOOSE_SCAN_KEYS


def resolve_search(query: ListQuery) -> ListQuery:
    """`query` with the search terms that its other conditions narrow far more tested on
    their rows, not through the trigram index (plan.rechecks_term), for a search with
    filters: EXPLAINs of each term's candidates (term_candidates) and of the rest of the
    query without each term. For one term the rest is the filters, whose EXPLAIN is cheap
    and comes first: filters too dear to recheck any term on leave the term's unplanned.
    Not for terms alone: the rest's EXPLAIN of the other terms' folds took 2.7 ms of
    `search=mull wien`'s 25 on every request, and a term's trigram path is the one the
    planner misprices. First, each term read as what holds it (resolve_held_terms), which
    is never rechecked."""
    query = resolve_held_terms(query)
    terms = [t for t in dict.fromkeys(query.search) if t not in query.held]
    if not terms or not query.filters:
        return query
    bind = Binder()
    filters = where_sql(query.filters, [], bind)
    if len(terms) == 1:
        rest = plan_nodes_each([f"SELECT 1 FROM crm_contactrow WHERE {filters}"], bind.params)
        if not rechecks_term(table_total(), *_rest_size(rest[0])):
            return query
    candidates = term_candidates(terms)
    common = {t: rows for t, rows in zip(terms, candidates, strict=True) if rows >= RECHECK_FROM}
    if not common:
        return query
    if len(terms) > 1:  # each term's rest: the filters and the other terms
        anywhere = {t: anywhere_sql(t, bind) for t in terms}
        others = [" AND ".join([filters, *(f"({anywhere[u]})" for u in terms if u != t)])
                  for t in common]  # fmt: skip
        rest = plan_nodes_each([f"SELECT 1 FROM crm_contactrow WHERE {o}" for o in others],
                               bind.params)  # fmt: skip
    rechecked = frozenset(
        t
        for (t, rows), other in zip(common.items(), rest, strict=True)
        if rechecks_term(rows, *_rest_size(other))
    )
    return replace(query, rechecked=rechecked)


def _rest_size(node: Any) -> tuple[float, int, bool]:
    """A plan's cost, rows and whether it reads them by an index (for rechecks_term)."""
    return node["Total Cost"], int(node["Plan Rows"]), _by_index(node)


def _by_index(node: Any) -> bool:
    """Whether a plan reads its rows by an index, with no scan of the whole table."""
    return "Seq Scan" not in orjson.dumps(node).decode()


def _matching_values(f: Filter) -> tuple[str, ...] | None:
    """The distinct values of `f`'s column that `f` matches; None past LOOSE_SCAN_KEYS."""
    if f.field.name in VALUE_FIELDS:
        return _stored_values(f)
    col, bind = f.field.column, Binder()
    match = like_match_sql(col, f.lookup, f.value, bind)
    sql = (
        f"WITH {distinct_keys(col, 'TRUE', descending=False, most=LOOSE_SCAN_KEYS + 1)} "
        f"SELECT count(*), coalesce(array_agg({col}) FILTER (WHERE {match}), '{{}}') "
        f"FROM v WHERE {col} IS NOT NULL"
    )
    ((distinct, values),) = fetch_rows(sql, bind.params)
    return tuple(values) if distinct <= LOOSE_SCAN_KEYS else None


def _stored_values(f: Filter) -> tuple[str, ...] | None:
    """_matching_values() of a name, a place or a postal code, read from the distinct values
    that crm_value keeps (crm/db/words.sql), whose trigram index finds those that hold an
    ASCII substring however many there are; None if more than LOOSE_SCAN_KEYS match (then
    the filter is read as a pattern). A value stored twice (a race of two writers) is
    counted once."""
    bind = Binder()
    match = narrowed_by_fold(like_match_sql("value", f.lookup, f.value, bind), "value",
                             f.lookup, f.value, bind)  # fmt: skip
    field = bind(f.field.column, Kind.TEXT)
    sql = (
        f"SELECT count(*), coalesce(array_agg(value), '{{}}') FROM (SELECT DISTINCT value "
        f"FROM crm_value WHERE field = {field} AND {match} LIMIT {LOOSE_SCAN_KEYS + 1}) v"
    )
    ((matched, values),) = fetch_rows(sql, bind.params)
    return tuple(values) if matched <= LOOSE_SCAN_KEYS else None
