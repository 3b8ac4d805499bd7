"""The contact list as a pipeline over the read model: resolve substring patterns on fields
of few values, filter and search, order with `id` as the final tie-break, paginate (page
numbers or keyset cursors), count. One SQL statement for the rows, and one or two for the
count; a few short ones more where they pay: the page's first keys for an order of several
keys, a pattern's matching values, the planner's estimate for a search sorted by a searched
field or of one term."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
from psycopg.adapt import Buffer, Loader

from crm.case_variants import Cuts, all_equalities, prefix_ranges
from crm.fields import (
    EXACT_COUNT_LIMIT,
    FIELDS,
    ORDER_INDEXES,
    SEARCH_FIELDS,
    SUBSTRING_LOOKUPS,
    Field,
    Kind,
)
from crm.pagination import Cursor
from crm.params import Filter, ListQuery, OrderKey
from crm.replicas import reads as connection  # the request's read server (crm/replicas.py)
from crm.sql import (
    Binder,
    before_sql,
    cut_sql,
    equal_sql,
    fold_contains_sql,
    keyset_branches,
    like_match_sql,
    order_sql,
    row_json_sql,
    search_sql,
    where_sql,
)

AVATAR_URL_SQL = "'/crm/appusers/' || id || '/avatar.svg'"
ROW_JSON = row_json_sql(AVATAR_URL_SQL)


@dataclass
class Page:
    rows_json: list[bytes]  # each row already serialised by PostgreSQL
    first_keys: list[Any] | None  # sort key values of the first and last row, for cursors
    last_keys: list[Any] | None
    has_more: bool  # another row exists beyond the page in the direction of travel
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool
    total: int = 0  # the planner's row count of the whole table, for scan budgets
    # how it was made (crm_count(), crm/db/count.sql): exact, table, planner, sample,
    # sample 4x or capped; for the Server-Timing header
    method: str = ""


def _key_columns(keys: list[OrderKey]) -> str:
    return ", ".join(k.field.column for k in keys)


# How far to walk the sort key's index for a filtered page before using the filter's own
# access path instead (see _first_rows): enough for four pages at the filter's selectivity,
# and at least as many rows as the filter matches, since the fallback reads all of them: a
# walk that fails then costs at most what the fallback does (ski rental), and one that was
# only unlucky is not abandoned early (`gender=M&ordering=first_name`: the first man is
# 3,400 rows into the first-name index; a 2,000-row walk sent it to sorting 1.4M men, 1.4 s).
MIN_WALK, MAX_WALK = 2_000, 100_000
SMALL_RESULT = 5_000  # an exact count this small: the filter's path plus a sort is cheapest


def has_index(keys: list[OrderKey], fixed: frozenset[str] = frozenset()) -> bool:
    """Whether a b-tree of ORDER_INDEXES gives `keys`' order, once the columns before them
    are `fixed` by equality filters."""
    if len({k.descending for k in keys}) > 1:
        return False
    names = tuple(k.field.name for k in keys)
    return any(
        index[len(index) - len(names) :] == names and set(index[: len(index) - len(names)]) <= fixed
        for index in ORDER_INDEXES
    )


def _fixed_fields(query: ListQuery) -> frozenset[str]:
    """Fields an equality fixes: `exact`, or an `iexact` read as a few equalities of its
    case variants (crm/case_variants.py)."""
    return frozenset(f.field.name for f in query.filters if _is_equality(f))


def _is_equality(f: Filter) -> bool:
    if f.lookup == "exact":
        return True
    return f.lookup == "iexact" and all_equalities(prefix_ranges(f.value, whole=True))


def walk_budget(query: ListQuery, keys: list[OrderKey], matches: Count | None) -> int | None:
    """None: a plain index-ordered query; 0: filter path and sort; n: walk n rows first."""
    filtered = {f.field.name for f in query.filters} | ({"search"} if query.search else set())
    ranged = {f.field.name for f in query.filters if f.lookup in RANGE_LOOKUPS}
    if _case_cuts(query, keys[0]):  # read as ranges of its case variants (_case_split)
        ranged.add(keys[0].field.name)
    if not filtered or keys[0].field.name in ranged:
        return None  # no filter, or a range of the first sort key: the index range is exact
    fixed = _fixed_fields(query)
    if has_index(keys, fixed):
        return None  # `last_name=X&ordering=first_name`: a range of (last_name, first_name, id)
    if [k.field.name for k in keys] == ["id"] and len(query.filters) == 1 and fixed:
        return None  # one equality, in id order: a range of its (column, id) index
    if matches is None or not matches.total:
        return MIN_WALK
    if matches.exact and matches.value <= SMALL_RESULT:
        return 0
    expected = 4 * (query.page_size + 1) * matches.total // max(matches.value, 1)
    return min(max(expected, matches.value, MIN_WALK), MAX_WALK)


def _first_rows(
    where: str, extra: str, keys: list[OrderKey], limit: int, budget: int | None
) -> str:
    """The first `limit` rows matching `where AND extra` in `keys` order, in a plan whose
    cost is bounded whichever way the filter and the order are correlated.

    Walking the sort key's index and filtering is fast when matches are spread along it,
    but `city=Berlin ORDER BY phone_number` finds its first Berlin phone (+49...) only after
    every Austrian one (+43...): 100k+ rows at 200k contacts. So the walk gets a budget
    (walk_budget); only if that does not fill the page, the filter's own access path finds
    all matches and a top-N sort orders them.
    """
    order = order_sql(keys)
    if budget is None:
        return (
            f"SELECT * FROM crm_contactrow WHERE {where} AND {extra} ORDER BY {order} LIMIT {limit}"
        )
    unindexed = order_sql(keys, unindexed=True)
    if budget == 0:
        return (
            f"SELECT * FROM crm_contactrow WHERE {extra} AND {where} "
            f"ORDER BY {unindexed} LIMIT {limit}"
        )
    walk = f"SELECT * FROM crm_contactrow WHERE {extra} ORDER BY {order} LIMIT {budget}"
    head = f"SELECT * FROM ({walk}) w WHERE {where} ORDER BY {order} LIMIT {limit}"
    return _head_or_fallback(head, where, extra, unindexed, limit)


def _head_or_fallback(
    head: str, where: str, extra: str, unindexed: str, limit: int, *, ctes: str = "",
    complete: str = "FALSE",
) -> str:  # fmt: skip
    """The `head` rows if they fill the page or are `complete` (all there are), else the
    filter's own access path and a top-N sort. `ctes` come before `head` in its WITH."""
    whole = f"((SELECT count(*) FROM head) = {limit} OR {complete})"
    return (
        f"WITH {ctes}head AS ({head}) "
        f"SELECT * FROM head WHERE {whole} "
        f"UNION ALL ("
        f"SELECT * FROM crm_contactrow WHERE {extra} AND {where} "
        f"AND NOT {whole} ORDER BY {unindexed} LIMIT {limit})"
    )


# A pattern filter on the sort key (`last_name__icontains=mül&ordering=last_name`) matches
# whole groups of equal keys, so the page can skip from one distinct key to the next, one
# index descent each, testing the pattern once per key instead of once per row. The walk
# read every A-L name first: 1.1 s at 3M contacts. At most this many distinct keys are
# visited before the filter's own path takes over (a column of mostly unique values).
LOOSE_SCAN_KEYS = 2_000


def _matches_whole_groups(query: ListQuery, keys: list[OrderKey]) -> bool:
    """Every filter is on the first (text) sort key, one of them a pattern no index range
    gives, and `id` alone follows it."""
    head = keys[0].field
    return (
        head.kind is Kind.TEXT
        and len(keys) == 2
        and not query.search
        and all(f.field == head for f in query.filters)
        and any(f.lookup in SUBSTRING_LOOKUPS for f in query.filters)
    )


def _loose_scan_rows(where: str, extra: str, keys: list[OrderKey], limit: int) -> str:
    """The first `limit` rows in `keys` order of a `where` on the first key alone, from a
    loose index scan over that key's distinct values (see LOOSE_SCAN_KEYS)."""
    col = keys[0].field.column
    # `where` names the column bare, here the distinct key of `v`. A substring's redundant
    # search_text condition (crm/sql.py) holds for the key alone too, so the key's own fold
    # stands in for it.
    keys_only = f"SELECT {col}, crm_fold({col}) AS search_text FROM v WHERE {col} IS NOT NULL"
    matching = f"SELECT {col} FROM ({keys_only}) k WHERE {where}"
    return _key_groups(matching, "TRUE", where, extra, keys, limit)


def _key_groups(
    matching: str, where: str, fallback: str, extra: str, keys: list[OrderKey], limit: int
) -> str:
    """The first `limit` rows in `keys` order (a first key, then `id`) from the groups of
    equal first keys that `matching` selects out of `v` (_distinct_keys), each group's rows
    filtered by `where`; if the scan stopped at LOOSE_SCAN_KEYS short of a page, the rows
    of `fallback` from its own access path instead. The recursion is evaluated only as far
    as the LIMIT pulls it."""
    col = keys[0].field.column
    # A group is walked by id under the LIMIT. The planner guesses every group's size alike
    # (the table over the key's distinct values, 15,600 rows of 3M), and for a LIMIT near
    # that guess read the whole group and sorted it: all 373,000 Müllers for page 10 of
    # `search=müller wien&ordering=last_name` (2 s). A LIMIT it cannot read at plan time is
    # taken for a tenth of the rows, which keeps the walk: 24 ms.
    group = (
        f"SELECT * FROM crm_contactrow c WHERE c.{col} = d.{col} AND {extra} AND {where} "
        f"ORDER BY {order_sql(keys[1:])} LIMIT (SELECT {limit})"
    )
    head = f"SELECT r.* FROM ({matching}) d CROSS JOIN LATERAL ({group}) r LIMIT {limit}"
    distinct = _distinct_keys(col, extra, descending=keys[0].descending, most=LOOSE_SCAN_KEYS)
    # A short head is all there is when the scan ran off the end of the keys: after a cursor
    # near the end, the fallback had sorted every match to find none (0.15 s at 3M).
    return _head_or_fallback(head, fallback, extra, order_sql(keys, unindexed=True), limit,
                             ctes=f"{distinct}, ",
                             complete=f"(SELECT max(n) FROM v) < {LOOSE_SCAN_KEYS}")  # fmt: skip


def _distinct_keys(col: str, extra: str, *, descending: bool, most: int) -> str:
    """`RECURSIVE v(col, n)`, for a WITH: the first `most` distinct values of `col` among the rows
    of `extra`, in order, from a loose index scan (one descent of the column's index each);
    a NULL ends them."""
    direction, step = ("DESC", "<") if descending else ("ASC", ">")
    first = f"SELECT {col}, 1 FROM crm_contactrow WHERE {extra} ORDER BY {col} {direction} LIMIT 1"
    following = (
        f"SELECT (SELECT {col} FROM crm_contactrow WHERE {col} {step} v.{col} AND {extra} "
        f"ORDER BY {col} {direction} LIMIT 1), n + 1 "
        f"FROM v WHERE {col} IS NOT NULL AND n < {most}"
    )
    return f"RECURSIVE v({col}, n) AS (({first}) UNION ALL {following})"


# Whether a column has few distinct values, by the planner's statistics: then a loose scan
# over them (at most LOOSE_SCAN_KEYS index descents) is cheap, and a text pattern or a search
# term matches whole groups of rows.
DISTINCT_TTL = 60.0  # seconds a worker keeps a column's distinct count (it changes on ANALYZE)
DISTINCT_SQL = """
SELECT coalesce((SELECT CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples
                             ELSE s.n_distinct END
                   FROM pg_stats s
                  WHERE s.schemaname = current_schema() AND s.tablename = 'crm_contactrow'
                    AND s.attname = %s),
                greatest(c.reltuples, 0))
  FROM pg_class c WHERE c.oid = 'crm_contactrow'::regclass
"""
_distinct: dict[str, tuple[float, float]] = {}


def _groups_by_index(query: ListQuery, keys: list[OrderKey]) -> bool:
    """Whether the page is read group by group of the sort key's few values, each group a
    range of an ORDER_INDEXES b-tree whose second column an equality fixes:
    `first_name=Michael&ordering=gender` from (gender, first_name, id), where the walk of the
    gender index passed 1.5 million women first (0.23 s at 3M), and `address__city=Zürich&
    ordering=-address__country` from (country, city, id) (0.16 s)."""
    head, fixed = keys[0].field, _fixed_fields(query)
    return (
        len(keys) == 2
        and not head.nullable
        and any(index[0] == head.name and index[1] in fixed for index in ORDER_INDEXES)
        and _few_keys(head.column)
    )


def _few_keys(column: str) -> bool:
    """Whether `column` has at most LOOSE_SCAN_KEYS distinct values by the planner's
    statistics (a table never analysed counts as small)."""
    kept = _distinct.get(column)
    if kept is None or time.monotonic() > kept[0] + DISTINCT_TTL:
        with connection.cursor() as db:
            db.execute(DISTINCT_SQL, [column])
            kept = (time.monotonic(), float(db.fetchone()[0]))
        _distinct[column] = kept
    return kept[1] <= LOOSE_SCAN_KEYS


# A substring filter on a field of few distinct values (`last_name__icontains=mul`) is
# read as the list of those values that it matches: the trigram index of search_text gave
# the 373,000 Müllers (folded `muller`) as candidates for the few Mulders, 0.37 s to count
# and page at 3M contacts; as `last_name IN ('Mulder')` the planner knows from its
# statistics how many rows that is and takes the column's index, and a pattern no value
# matches is FALSE. The values come from a loose scan over the column's distinct values
# (one index descent each), fresh on every request.
def resolve_patterns(query: ListQuery) -> ListQuery:
    """`query` with each substring filter on a field of few distinct values resolved to the
    values that it matches (Filter.matching)."""
    filters = [
        replace(f, matching=_matching_values(f))
        if f.lookup in SUBSTRING_LOOKUPS and _few_keys(f.field.column)
        else f
        for f in query.filters
    ]
    return replace(query, filters=filters)


def _matching_values(f: Filter) -> tuple[str, ...] | None:
    """The distinct values of `f`'s column that `f` matches; None past LOOSE_SCAN_KEYS."""
    col, bind = f.field.column, Binder()
    match = like_match_sql(col, f.lookup, f.value, bind)
    sql = (
        f"WITH {_distinct_keys(col, 'TRUE', descending=False, most=LOOSE_SCAN_KEYS + 1)} "
        f"SELECT count(*), coalesce(array_agg({col}) FILTER (WHERE {match}), '{{}}') "
        f"FROM v WHERE {col} IS NOT NULL"
    )
    ((distinct, values),) = fetch_rows(sql, bind.params)
    return tuple(values) if distinct <= LOOSE_SCAN_KEYS else None


# A search sorted by a searched field (`search=müller&ordering=last_name`) finds its matches
# clustered in the groups of equal keys that contain a term: search_text's trigram index gives
# all 373,000 rows with `muller` at 3M contacts in no order, and the walk of the name index met
# none before the middle of the alphabet (0.49 s). So the page is read in two parts: the rows
# whose key contains a term, group by group (the loose scan above), and the rows whose key
# contains none, whose terms are then all in other fields, which those fields' own trigram
# indexes find (crm/db/indexes.sql; for `müller`, none). Only for a key of few distinct values
# (LOOSE_SCAN_KEYS, by the planner's statistics): a key of mostly unique values has no groups
# to skip, and a term's matches are spread along its index.
def _splits_search(query: ListQuery, keys: list[OrderKey]) -> bool:
    head = keys[0].field
    return (
        bool(query.search)
        and len(keys) == 2
        and head.name in SEARCH_FIELDS
        and _few_keys(head.column)
    )


def _split_search_rows(
    ranges: _RowRanges, where: str, unsearched: str, extra: str, keys: list[OrderKey], limit: int
) -> str | None:
    """The first `limit` rows in `keys` order of a search sorted by a searched field: the
    rows whose key contains a term, and the few others (see _splits_search); None if the
    others are many, which the walk of the key's index finds instead. `unsearched` is
    `where` without the search terms."""
    col, bind, terms = keys[0].field.column, ranges.bind, ranges.query.search
    in_key = " OR ".join(fold_contains_sql(f"crm_fold({col})", t, bind) for t in terms)
    others = [FIELDS[name].column for name in SEARCH_FIELDS if FIELDS[name].column != col]
    # With no term in the key, each is in another field: exact without search_text, whose
    # trigram bitmap (all 282,000 rows with `wien`) cost more than the fields' own.
    elsewhere = " AND ".join(
        "(" + " OR ".join(fold_contains_sql(f"crm_fold({c})", t, bind) for c in others) + ")"
        for t in terms
    )
    rest = f"{unsearched} AND NOT ({in_key}) AND {elsewhere}"
    # The planner's estimate, from the statistics of each field's fold (crm/db/indexes.sql).
    expected = plan_rows(f"SELECT 1 FROM crm_contactrow WHERE {extra} AND {rest}", bind.params,
                         ranges.fetch)  # fmt: skip
    if expected > SMALL_RESULT:
        return None
    # Which terms each key contains, once per key: a group's rows need only the others in
    # search_text. Left to a plain `where`, the planner read a whole group from the trigram
    # index and sorted it (14,000 Michaels at 200k) instead of walking the group by id.
    has = [f"{fold_contains_sql(f'crm_fold({col})', t, bind)} AS t{n}" for n, t in enumerate(terms)]
    any_term = " OR ".join(f"t{n}" for n in range(len(terms)))
    matching = (
        f"SELECT * FROM (SELECT {col}, {', '.join(has)} FROM v WHERE {col} IS NOT NULL) k "
        f"WHERE {any_term}"
    )
    # (a single term is in every matching key: no condition, which the planner would also
    # count against the group's size)
    in_group = " AND ".join(
        f"(d.t{n} OR {search_sql(t, bind)})" for n, t in enumerate(terms) if len(terms) > 1
    )
    keyed = _key_groups(matching, f"{unsearched} AND {in_group or 'TRUE'}",
                        f"{where} AND ({in_key})", extra, keys, limit)  # fmt: skip
    unkeyed = _first_rows(rest, extra, keys, limit, 0)
    return (
        f"SELECT * FROM (({keyed}) UNION ALL ({unkeyed})) s ORDER BY {order_sql(keys)} "
        f"LIMIT {limit}"
    )


# A month or day filter on the sort key (`created__month=3&ordering=-created`) matches one
# slice of every month of the key's order: the walk of its index read every later month
# first (200,000 rows to reach March from December at 3M contacts) and the fallback sorted
# all 250,000 matches (0.7 s). Instead each month from the key's first to its last, in sort
# order, is one range of its (column, id) index, read until the page is full.
CALENDAR_PARTS = ("month", "day")


def _calendar_parts(query: ListQuery, keys: list[OrderKey]) -> dict[str, Filter]:
    """The month and day filters on a date or timestamp first key followed by `id`."""
    head = keys[0].field
    if len(keys) != 2 or head.kind not in (Kind.DATE, Kind.DATETIME):
        return {}
    return {f.lookup: f for f in query.filters if f.field == head and f.lookup in CALENDAR_PARTS}


def _calendar_rows(
    where: str, extra: str, keys: list[OrderKey], limit: int, offset: int, parts: dict[str, Filter],
    bind: Binder,
) -> str:  # fmt: skip
    """Rows [offset, offset + limit) of `where AND extra` in `keys` order, one month of the
    first key at a time (see CALENDAR_PARTS); months without the filtered month or day cost
    nothing but a row of the series. Month bounds are in the session's time zone, UTC, as
    the month and day filters are (crm/sql.py)."""
    col = keys[0].field.column
    first, last = (f"(SELECT date_trunc('month', {fn}({col})) FROM crm_contactrow)"
                   for fn in ("min", "max"))  # fmt: skip
    series = (f"generate_series({last}, {first}, interval '-1 month')" if keys[0].descending
              else f"generate_series({first}, {last}, interval '1 month')")  # fmt: skip
    start, keep = "s", []
    if "month" in parts:
        keep.append(f"extract(month FROM s) = {bind(parts['month'].value, Kind.INTEGER)}")
    if "day" in parts:  # that day of the month, where the month has it
        start = f"s + ({bind(parts['day'].value, Kind.INTEGER)} - 1) * interval '1 day'"
        keep.append(f"extract(month FROM {start}) = extract(month FROM s)")
    end = f"{start} + interval '1 {'day' if 'day' in parts else 'month'}'"
    cast = "::date" if keys[0].field.kind is Kind.DATE else ""
    months = (
        f"SELECT ({start}){cast} AS low, ({end}){cast} AS high "
        f"FROM {series} s "
        f"WHERE {' AND '.join(keep) or 'TRUE'}"
    )
    rows = (
        f"SELECT * FROM crm_contactrow WHERE {col} >= m.low AND {col} < m.high "
        f"AND {where} AND {extra} ORDER BY {order_sql(keys)} LIMIT {limit + offset}"
    )
    # The nested loop reads the months in series order and stops at the LIMIT; the months
    # cover the key's whole span, so what they give is every match (no fallback needed).
    return (
        f"SELECT r.* FROM ({months}) m CROSS JOIN LATERAL ({rows}) r LIMIT {limit} OFFSET {offset}"
    )


Fetch = Callable[[str, Any], list[tuple[Any, ...]]]


class JsonBytesLoader(Loader):
    """A json column as its UTF-8 text, undecoded: the page's rows are JSON built by
    PostgreSQL and go into the response body as they are. Loaded as str, each row was
    decoded here and encoded again for the body (about a third of the serialisation)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def fetch_rows(sql: str, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as db:
        db.cursor.adapters.register_loader("json", JsonBytesLoader)
        db.execute(sql, params)
        return db.fetchall()


@dataclass
class _RowRanges:
    """SQL for a range of matching rows in a given order, from index-driven pieces."""

    query: ListQuery
    matches: Count | None
    bind: Binder
    fetch: Fetch

    def rows(self, where: str, extra: str, keys: list[OrderKey], limit: int, offset: int) -> str:
        """Rows [offset, offset + limit) of `where AND extra` in `keys` order. `extra` is an
        index range on the first key (a keyset branch) or TRUE."""
        if len(keys) > 2 and not has_index(keys):
            return self._by_groups(where, extra, keys, limit, offset)
        parts = _calendar_parts(self.query, keys)
        if parts:
            return _calendar_rows(where, extra, keys, limit, offset, parts, self.bind)
        if offset:
            # Deferred join: skip the offset rows by id alone, then build JSON for one page.
            # Projecting JSON for every skipped row made page 10,000 take 3 s instead of 60 ms.
            ids = (
                f"SELECT id FROM crm_contactrow WHERE {where} AND {extra} "
                f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
            )
            return f"SELECT * FROM crm_contactrow WHERE id IN ({ids})"
        budget = walk_budget(self.query, keys, self.matches)
        return _first_rows(where, extra, keys, limit, budget)

    def _by_groups(
        self, where: str, extra: str, keys: list[OrderKey], limit: int, offset: int
    ) -> str:
        """A multi-key order, one group of equal first keys at a time.

        No index gives `ORDER BY gender, birthday DESC, id DESC`: PostgreSQL walks
        (gender, id) and sorts every woman by birthday before the first row (0.8 s at 3M).
        Instead the first key's index gives the first keys of the wanted rows (the window).
        Groups wholly inside the window are read by id; a group cut by the window's edge (at
        most two) is a query with the first key fixed, ordered by the other keys, which the
        planner serves from the second key's index, or by sorting the group if it is small.
        """
        head = keys[0]
        window = self.fetch(self._window_sql(where, extra, head, limit, offset), self.bind.params)
        if not window:
            return "SELECT * FROM crm_contactrow WHERE FALSE"
        skipped = self._skipped(where, extra, head, window[0][0], offset) if offset else 0
        groups = [(v, [row[1] for row in rows]) for v, rows in groupby(window, key=itemgetter(0))]
        parts, whole = [], []
        for n, (value, ids) in enumerate(groups):
            cut_before = n == 0 and skipped > 0
            cut_after = n == len(groups) - 1 and len(window) == limit
            if not (cut_before or cut_after):
                whole.extend(ids)
                continue
            group = f"{where} AND {equal_sql(head, value, self.bind)}"
            parts.append(self.rows(group, extra, keys[1:], len(ids), skipped if n == 0 else 0))
        if whole:
            ids_sql = ", ".join(self.bind(i, Kind.INTEGER) for i in whole)
            parts.append(f"SELECT * FROM crm_contactrow WHERE id IN ({ids_sql})")
        return " UNION ALL ".join(f"({part})" for part in parts)

    def _window_sql(self, where: str, extra: str, head: OrderKey, limit: int, offset: int) -> str:
        """(first key, id) of rows [offset, offset + limit) in the first key's order alone."""
        order = order_sql([head])
        if offset:
            return (
                f"SELECT {head.field.column}, id FROM crm_contactrow WHERE {where} AND {extra} "
                f"ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            )
        first = _first_rows(
            where, extra, [head], limit, walk_budget(self.query, [head], self.matches)
        )
        return f"SELECT {head.field.column}, id FROM ({first}) w ORDER BY {order}"

    def _skipped(self, where: str, extra: str, head: OrderKey, value: Any, offset: int) -> int:
        """How many rows of the window's first group come before `offset`."""
        counts = [
            f"(SELECT count(*) FROM crm_contactrow WHERE {where} AND {extra} AND {before})"
            for before in before_sql(head, value, self.bind)
        ]
        if not counts:
            return offset
        ((earlier,),) = self.fetch(f"SELECT {' + '.join(counts)}", self.bind.params)
        return offset - int(earlier)


def _case_cuts(query: ListQuery, head: OrderKey) -> Cuts | None:
    """The ranges of a case-insensitive prefix filter on the first sort key, in sort order
    (crm/case_variants.py)."""
    found = [f for f in query.filters
             if f.field == head.field and f.lookup in ("istartswith", "iexact")]  # fmt: skip
    if not found:
        return None
    return prefix_ranges(found[0].value, whole=found[0].lookup == "iexact",
                         descending=head.descending)  # fmt: skip


def _case_split(
    head: OrderKey, cuts: Cuts, branches: list[tuple[int, str]], bind: Binder
) -> list[tuple[int, str]]:
    """Branches over the first key, cut into the `cuts` ranges of a case-insensitive prefix
    filter on it: `last_name__istartswith=m&ordering=last_name` walked the index past every
    A-L name (1 s at 3M); `M...` and `m...` are two ranges of it."""
    column = head.field.column
    # an equality fixes the first key, like a keyset branch: its rows are ordered by the rest
    within = [
        (1 if high is None else 0, f" AND {cut_sql(column, low, high, bind)}") for low, high in cuts
    ]
    split: list[tuple[int, str]] = []
    for i, b in branches:  # only branches that range over the first key (i == 0) are cut
        split.extend((fixed, b + ands) for fixed, ands in (within if i == 0 else [(i, "")]))
    return split


RowsSql = Callable[[str, int, int], str]  # (extra, limit, offset) -> SQL


def _first_key_reader(
    ranges: _RowRanges, keys: list[OrderKey], filters: list[Filter], where: str,
    ranged: Field | None,
) -> RowsSql:  # fmt: skip
    """How a branch that ranges over the first sort key is read: a month of it at a time
    (CALENDAR_PARTS), split by where the search terms are (_splits_search), or plainly."""
    query, bind = ranges.query, ranges.bind
    calendar = _calendar_parts(query, keys).values()
    if calendar:
        # Each month's range implies its month and day filters; left in, the planner took
        # them for 0.5% of its rows and read each month whole (23,000 rows for a recent
        # month of last_activity at 200k).
        ranging = where_sql([f for f in filters if f not in calendar], query.search, bind)
        return lambda extra, limit, offset: ranges.rows(ranging, extra, keys, limit, offset)
    if _matches_whole_groups(query, keys):
        # only here: a group of _by_groups adds an equality on another column to `where`,
        # which the loose scan cannot test on the key alone (it answered 500)
        return lambda extra, limit, offset: (
            ranges.rows(where, extra, keys, limit, offset)
            if offset
            else _loose_scan_rows(where, extra, keys, limit)
        )
    if _groups_by_index(query, keys):
        matching = f"SELECT {keys[0].field.column} FROM v WHERE {keys[0].field.column} IS NOT NULL"
        return lambda extra, limit, offset: (
            ranges.rows(where, extra, keys, limit, offset)
            if offset
            else _key_groups(matching, where, where, extra, keys, limit)
        )
    if _splits_search(query, keys):
        unsearched = where_sql(filters, [], bind, ranged=ranged)

        def split(extra: str, limit: int, offset: int) -> str:
            rows = _split_search_rows(ranges, where, unsearched, extra, keys, limit + offset)
            if rows is None:
                return ranges.rows(where, extra, keys, limit, offset)
            return f"SELECT * FROM ({rows}) p OFFSET {offset}"

        return split
    return lambda extra, limit, offset: ranges.rows(where, extra, keys, limit, offset)


def _rows_sql(ranges: _RowRanges, keys: list[OrderKey], after: list[Any] | None, *, offset: int,
              row: str) -> str:  # fmt: skip
    query, bind = ranges.query, ranges.bind
    cuts = _case_cuts(query, keys[0])
    filters = query.filters
    if all_equalities(cuts):
        # every branch fixes the column to one of the value's variants, which implies the
        # iexact; kept, it made the planner expect a handful of rows and sort them all
        iexact = next(f for f in filters if f.field == keys[0].field and f.lookup == "iexact")
        filters = [f for f in filters if f is not iexact]
    ranged = keys[0].field if cuts else None
    where = where_sql(filters, query.search, bind, ranged=ranged)
    first_key_rows = _first_key_reader(ranges, keys, filters, where, ranged)
    limit = query.page_size + 1  # one extra row tells whether there is a next page
    branches = [(0, "TRUE")] if after is None else keyset_branches(keys, after, bind)
    branches = _case_split(keys[0], cuts, branches, bind) if cuts else branches
    if not branches:
        return f"SELECT {_key_columns(keys)}, {row} FROM crm_contactrow WHERE FALSE"
    # An offset spans the branches: each gives its first offset + limit rows, the union skips.
    each, skip = (limit, offset) if len(branches) == 1 else (limit + offset, 0)
    parts = [
        f"SELECT {n} AS branch, * FROM ("
        + (first_key_rows(b, each, skip) if i == 0 else ranges.rows(where, b, keys[i:], each, skip))
        + f") b{n}"
        for n, (i, b) in enumerate(branches)
    ]
    # Each branch is a short index range scan; sorting their few rows by branch number
    # keeps the global order without relying on UNION ALL's execution order.
    return (
        f"SELECT {_key_columns(keys)}, {row} FROM ({' UNION ALL '.join(parts)}) c "
        f"ORDER BY branch, {order_sql(keys)} LIMIT {limit} OFFSET {offset - skip}"
    )


def reversed_keys(keys: list[OrderKey]) -> list[OrderKey]:
    return [OrderKey(k.field, not k.descending) for k in keys]


@dataclass(frozen=True)
class RowSerialiser:
    """Page rows serialised in Python from the values `columns` (a select list) reads,
    instead of as the JSON PostgreSQL builds (ROW_JSON). The list never makes one: only the
    bench's ablations do (crm_bench/ablations.py), to measure what that JSON saves."""

    columns: str
    write: Callable[[tuple[Any, ...]], bytes]


def page_sql(
    query: ListQuery,
    cursor: Cursor | None = None,
    *,
    row: str = ROW_JSON,
    matches: Count | None = None,
    fetch: Fetch = fetch_rows,
) -> tuple[str, Any]:
    """The statement for a page's rows (also EXPLAINed by the plan guard test); `matches`,
    the count of the same filters, sizes the walk of the sort index. A multi-key order first
    `fetch`es the first keys of the page (see _RowRanges._by_groups). `row` is what each row
    selects after its sort keys."""
    backwards = cursor is not None and cursor.backwards
    keys = reversed_keys(query.ordering) if backwards else query.ordering
    ranges = _RowRanges(query, matches, Binder(), fetch)
    offset = (query.page - 1) * query.page_size if query.page else 0
    after = cursor.values if cursor else None
    sql = _rows_sql(ranges, keys, after, offset=offset, row=row)
    return sql, ranges.bind.params


def contact_page(
    query: ListQuery,
    cursor: Cursor | None = None,
    *,
    serialiser: RowSerialiser | None = None,
    matches: Count | None = None,
) -> Page:
    """The rows of one page: by page number (OFFSET) or after/before a keyset cursor, as
    JSON built by PostgreSQL (or by a `serialiser`: the bench's ablations only)."""
    started = time.perf_counter()
    row = serialiser.columns if serialiser else ROW_JSON
    sql, params = page_sql(query, cursor, row=row, matches=matches)
    rows = fetch_rows(sql, params)
    elapsed = time.perf_counter() - started
    has_more = len(rows) > query.page_size
    rows = rows[: query.page_size]
    if cursor is not None and cursor.backwards:
        rows.reverse()
    n = len(query.ordering)
    return Page(
        rows_json=[serialiser.write(r[n:]) if serialiser else r[n] for r in rows],
        first_keys=list(rows[0][:n]) if rows else None,
        last_keys=list(rows[-1][:n]) if rows else None,
        has_more=has_more,
        timings={"db": elapsed},
    )


# The unfiltered list's estimate is pg_class.reltuples, which only VACUUM and ANALYZE
# change; each worker keeps it this long instead of spending a query on every first page
# (0.15 ms of 1.6). Only an estimate is kept: an exact count (a small table) is never reused.
TABLE_SIZE_TTL = 5.0
_table_size: dict[str, tuple[float, Count]] = {}


# Lookups whose selectivity the planner reads from one column's statistics (most common
# values, histogram, null fraction): for one such filter, its estimate of a big result is
# the count (crm_count(), crm/db/count.sql), without a block sample (2-5 ms).
PLANNER_LOOKUPS = frozenset({"exact", "isnull", "gt", "gte", "lt", "lte", "range", "year"})
# Lookups that are one range of the column's (column, id) index, in its order.
RANGE_LOOKUPS = PLANNER_LOOKUPS | {"in", "startswith"}


def _estimable(query: ListQuery) -> bool:
    if len(query.filters) != 1 or query.search:
        return False
    (f,) = query.filters
    # a pattern read as the values it matches (resolve_patterns) is an IN list of a column of
    # few values, which the planner sums from its most common values: within 1-4% of the
    # truth for five common substrings at 3M, where the block sample took 2-3 ms more
    return f.lookup in PLANNER_LOOKUPS or f.matching is not None


def contact_count(query: ListQuery) -> Count:
    """Exact up to EXACT_COUNT_LIMIT rows (or always with count=exact), else an estimate
    (crm_count()): an exact count of millions of rows would cost a full scan on every page."""
    bind = Binder(text_array=True)
    where = where_sql(query.filters, query.search, bind)
    cap = None if query.count_exact else EXACT_COUNT_LIMIT
    unfiltered = where == "TRUE" and cap is not None
    kept = _table_size.get("count") if unfiltered else None
    if kept and time.monotonic() < kept[0] + TABLE_SIZE_TTL:
        return kept[1]
    estimate = _search_estimate(query) if cap is not None else None
    if estimate is not None:
        return estimate
    with connection.cursor() as db:
        db.execute(
            "SELECT n, exact, total, method FROM crm_count(%s, %s::text[], %s, %s)",
            [where, bind.params, cap, _estimable(query)],
        )
        count = Count(*db.fetchone())
    if unfiltered and not count.exact:
        _table_size["count"] = (time.monotonic(), count)
    return count


def _search_estimate(query: ListQuery) -> Count | None:
    """For a search of one term and nothing else, the planner's figure if it is big.

    search_text's statistics are blind to a term (`search=yilmaz`: 300 expected, 49,397
    match), but the term is in search_text exactly when it is in one of the searched fields'
    folds, whose statistics (crm/db/indexes.sql) the planner sums: within 1-4% of the truth for
    eleven terms matching 30,000 to 2 million contacts at 3M, in 0.5 ms where the block
    sample took 3 ms. Several terms (their matches correlate) and smaller results keep the
    sample and the capped count."""
    if len(query.search) != 1 or query.filters:
        return None
    bind = Binder()
    anywhere = " OR ".join(
        fold_contains_sql(f"crm_fold({FIELDS[name].column})", query.search[0], bind)
        for name in SEARCH_FIELDS
    )
    rows = plan_rows(f"SELECT 1 FROM crm_contactrow WHERE {anywhere}", bind.params)
    if rows <= 3 * EXACT_COUNT_LIMIT:  # as crm_count() trusts one column's statistics
        return None
    return Count(rows, False, _table_total(), "planner")


def plan_rows(sql: str, params: Any, fetch: Fetch = fetch_rows) -> int:
    """The number of rows the planner expects `sql` to return."""
    ((plan,),) = fetch(f"EXPLAIN (FORMAT JSON) {sql}", params)
    return int(orjson.loads(plan)[0]["Plan"]["Plan Rows"])


def _table_total() -> int:
    kept = _table_size.get("count")
    if kept and time.monotonic() < kept[0] + TABLE_SIZE_TTL:
        return kept[1].total
    return contact_count(ListQuery()).total  # the unfiltered count, which keeps it


def contact_names(contact_id: int) -> tuple[str, str] | None:
    """(first_name, last_name) of one contact, for its avatar. Raw SQL by primary key: the
    ORM's query building cost more than rendering a cached avatar."""
    if not 0 < contact_id < 2**63:  # beyond bigint it would be compared as numeric: a scan
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT first_name, last_name FROM crm_appuser WHERE id = %s", [contact_id])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def contact_row(contact_id: int) -> bytes | None:
    """One contact as the list serialises it (GET /crm/appusers/<id>), from the read model."""
    rows = fetch_rows(f"SELECT {ROW_JSON} FROM crm_contactrow WHERE id = %s", [contact_id])
    return rows[0][0] if rows else None
