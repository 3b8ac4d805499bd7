"""The count of a list request's matches: exact up to EXACT_COUNT_LIMIT, else an estimate
(crm_count(), crm/db/count.sql), or the planner's figure for a search of one term. It runs
before the page: its size tells the page how far to walk a sort index (budget.walk_budget)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from crm.fields import EXACT_COUNT_LIMIT, RANK
from crm.params import ListQuery, OrderKey
from crm.selectors import results
from crm.selectors.db import connection, plan_rows_each
from crm.selectors.rank import TIER_COLUMNS, source_sql
from crm.sql import (
    Binder,
    anywhere_sql,
    keyset_branches,
    order_sql,
    query_where_sql,
    search_count_sql,
    term_has_trigram,
)

# A capped count that reads at most this many matches also sorts them and keeps the page's
# ids (crm/db/count.sql): every match it counted exactly. Sorting 5,000-10,000 kept ids
# costs the count 1-3 ms; reading them again cost the page 7-14 ms (a search of a rare
# name at 3M, by rank or by another key: `search=Stoeckl`, 6,789 matches, 35 -> 21 ms).
KEEP_PAGE_IDS = EXACT_COUNT_LIMIT

# A search of one term is counted by value (crm/sql.py search_count_sql: the rows of the
# names and places that hold it, read from their indexes without the table) unless the
# planner expects at most this many matches, which the capped count reads, keeping the
# page's ids. At 3M (embedded), `search=strauss` (6,812 matches): count 37 -> 4 ms, page
# 1.3 -> 3 ms; `search=mizrahi` (1,496): count 8 -> 5 ms, page 1 -> 8 ms; `search=yosef&
# ordering=address__city` (797): 4 ms for the capped count and 1 for the page, 2.5 and 11.
# Nor a term without a trigram (`刘`, `wu`): no trigram index finds the customer ids and
# phone numbers that hold it, whose folds were then computed row by row (18 s at 3M).
COUNT_BY_VALUE_FROM = 1_000


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool
    total: int = 0  # the planner's row count of the whole table, for scan budgets
    # how it was made (crm_count(), crm/db/count.sql): exact, table, planner, sample,
    # sample 2x, sample 4x, capped, bounded or values; for the Server-Timing header
    method: str = ""
    # the ids of the page's rows in its order, when the count read few matches (PageOrder)
    page_ids: list[int] | None = None
    # the planner's cost of reading every match by the filter's own access path, which the
    # page's fallback pays when a walk of the sort key's index falls short (budget.walk_budget)
    path_cost: float | None = None
    # made by the first page and carried by the cursor to this one (crm/views.py)
    carried: bool = False


@dataclass(frozen=True)
class PageOrder:
    """The page a count is asked to keep the ids of: its rows `first` to `first + rows - 1`
    (0-based) in `keys` order, after a keyset cursor's values `after` (None: from the start)."""

    keys: list[OrderKey]
    after: list[Any] | None
    first: int
    rows: int


# The unfiltered list's estimate is pg_class.reltuples, which only VACUUM and ANALYZE
# change; each worker keeps it this long instead of spending a query on every first page
# (0.15 ms of 1.6). Only an estimate is kept: an exact count (a small table) is never reused.
TABLE_SIZE_TTL = 5.0
# Seconds a worker keeps the planner's other figures (they change on ANALYZE): a column's
# distinct count (facts.py), a search term's matches (term_candidates).
PLANNER_TTL = 60.0
_table_size: dict[str, tuple[float, Count]] = {}


# Lookups whose selectivity the planner reads from one column's statistics (most common
# values, histogram, null fraction): for one such filter, its estimate of a big result is
# the count (crm_count(), crm/db/count.sql), without a block sample (2-5 ms).
PLANNER_LOOKUPS = frozenset({"exact", "isnull", "gt", "gte", "lt", "lte", "range", "year"})
# So do a month and a day of a date or a timestamp, from the statistics that crm/db/
# indexes.sql keeps of each date column's parts: at 3M, `birthday__month=11` 246,800
# expected, 245,781 match; `relationship__created__day=31` 61,900 and 57,549 (PostgreSQL 15;
# 1-4% off on the embedded server too), where the block sample cost 2.5-5 ms of 11.
DATE_PART_LOOKUPS = frozenset({"month", "day"})
# A pattern read as the values it matches (resolve_patterns) is an IN list, which the planner
# sums value by value: exactly for its most common values, of which ANALYZE keeps 100
# (default_statistics_target), and at the average of the rest for every other. Names and
# places have few values, mostly common ones: within 1-4% at 3M (`first_name__icontains=an`,
# 43 values: 750,345 expected, 766,951 match). A longer list is mostly values the planner
# knows only by that average: the 1,512 postal codes that hold `62` were 250,596 expected
# for 62,914 (14,900 codes by the statistics, 20% of the rows in their 100 most common),
# and the page walked four times as far as it meant to (70 ms of a 1.5 ms sort, at 3M).
SUMMED_VALUES = 100


def _estimable(query: ListQuery) -> bool:
    if len(query.filters) != 1 or query.search:
        return False
    (f,) = query.filters
    # (a pattern of few values: the block sample took 2-3 ms more, SUMMED_VALUES)
    summed = f.matching is not None and len(f.matching) <= SUMMED_VALUES
    return f.lookup in PLANNER_LOOKUPS | DATE_PART_LOOKUPS or summed


def contact_count(query: ListQuery, keep: PageOrder | None = None) -> Count:
    """Exact up to EXACT_COUNT_LIMIT rows (or always with count=exact), else an estimate
    (crm_count()): an exact count of millions of rows would cost a full scan on every page.
    With `keep`, a count that read at most KEEP_PAGE_IDS matches has that page's ids."""
    bind = Binder(text_array=True)
    where = query_where_sql(query, bind)
    cap = None if query.count_exact else EXACT_COUNT_LIMIT
    unfiltered = where == "TRUE" and cap is not None
    kept = _table_size.get("count") if unfiltered else None
    if kept and time.monotonic() < kept[0] + TABLE_SIZE_TTL:
        return kept[1]
    if keep is not None and (counted := _kept_count(query, keep)) is not None:
        return counted
    known = _search_estimate(query) if cap is not None else None
    if known is not None and known > 3 * EXACT_COUNT_LIMIT:  # as crm_count() trusts one
        return Count(known, False, table_total(), "planner")  # column's statistics
    keeping = keep is not None and results.keeps(query, keep.keys, keep.after)
    version = results.settled_version() if keeping else None
    columns, ids = _page_sql(query, keep, bind, whole=version is not None)
    estimable = _estimable(query) or known is not None
    by_value = (
        search_count_sql(query.search[0], bind, cap)
        if one_term_alone(query)
        and term_has_trigram(query.search[0])
        and (known is None or known > COUNT_BY_VALUE_FROM)
        else None
    )
    with connection.cursor() as db:
        db.execute(
            "SELECT n, exact, total, method, page_ids, path_cost "
            "FROM crm_count(%s, %s::text[], %s, %s, %s, %s, %s, %s, %s)",
            [where, bind.params, cap, estimable, columns, ids, KEEP_PAGE_IDS, known, by_value],
        )
        count = Count(*db.fetchone())
    if unfiltered and not count.exact:
        _table_size["count"] = (time.monotonic(), count)
    if version is not None and keep is not None and count.page_ids is not None:  # every id
        if count.exact:
            results.keep(query, version, count.page_ids, replace(count, page_ids=None))
        count = replace(count, page_ids=count.page_ids[keep.first : keep.first + keep.rows])
    return count


def _kept_count(query: ListQuery, keep: PageOrder) -> Count | None:
    """The count and the page's ids from the result a page before kept (crm/selectors/
    results.py), if the read model has not changed since."""
    found = results.kept_page(query, keep.keys, keep.after, keep.first, keep.rows)
    if found is None:
        return None
    result, page_ids = found
    return replace(result.count, page_ids=page_ids, method="kept")


def _page_sql(
    query: ListQuery, keep: PageOrder | None, bind: Binder, *, whole: bool = False
) -> list[str | None]:
    """crm_count()'s page_columns and page_ids_sql for `keep`: the columns of its order, by
    which the kept matches `m` are sorted (a ranked search's rank from its tiers' columns);
    `whole`: the ids of every match, not only the page's."""
    if keep is None:
        return [None, None]
    after = "TRUE"
    if keep.after is not None:
        branches = keyset_branches(keep.keys, keep.after, bind)
        after = " OR ".join(f"({b.sql})" for b in branches) or "FALSE"
    columns = ["id", *(k.field.column for k in keep.keys if k.field is not RANK)]
    if keep.keys[0].field is RANK:
        columns += TIER_COLUMNS
    page = "" if whole else f"[{keep.first + 1}:{keep.first + keep.rows}]"
    ids = (
        f"SELECT coalesce((array_agg(id ORDER BY {order_sql(keep.keys)}) FILTER (WHERE {after}))"
        f"{page}, '{{}}') FROM {source_sql(query, bind, rows='m')}"
    )
    return [", ".join(dict.fromkeys(columns)), ids]


def _search_estimate(query: ListQuery) -> int | None:
    """For a search of one term and nothing else, the planner's estimate of its matches.

    search_text's statistics are blind to a term (`search=yilmaz`: 300 expected, 49,397
    match), but the term is in search_text exactly when it is in one of the searched fields'
    folds, whose statistics (crm/db/indexes.sql) the planner sums: within 1-4% of the truth for
    eleven terms matching 30,000 to 2 million contacts at 3M, in 0.5 ms where the block
    sample took 3 ms. Below that it errs high: 0.9 to 2.6 times the truth for 20 names of
    1,700 to 50,000 matches, so one at most the cap is one the capped count finds without a
    block sample first (crm/db/count.sql). Several terms (their matches correlate) keep the
    sample."""
    return term_candidates(query.search)[0] if one_term_alone(query) else None


# A term's candidates by the planner, kept per term for PLANNER_TTL: planning the six fields'
# folds costs 1-2 ms, on every next page of the same search too.
_candidates: dict[str, tuple[float, int]] = {}


def term_candidates(terms: list[str]) -> list[int]:
    """The rows the planner expects a search of each term to match, those not kept from the
    last PLANNER_TTL seconds in one EXPLAIN."""
    now = time.monotonic()
    stale = [t for t in terms if t not in _candidates or now > _candidates[t][0] + PLANNER_TTL]
    if stale:
        bind = Binder()
        selects = [f"SELECT 1 FROM crm_contactrow WHERE {anywhere_sql(t, bind)}" for t in stale]
        rows = plan_rows_each(selects, bind.params)
        _candidates.update((t, (now, n)) for t, n in zip(stale, rows, strict=True))
    return [_candidates[t][1] for t in terms]


def one_term_alone(query: ListQuery) -> bool:
    """A search of one term and nothing else, whose count its searched fields decide."""
    return len(query.search) == 1 and not query.filters


def table_total() -> int:
    """The planner's row count of the whole table (kept as the unfiltered count is)."""
    kept = _table_size.get("count")
    if kept and time.monotonic() < kept[0] + TABLE_SIZE_TTL:
        return kept[1].total
    return contact_count(ListQuery()).total  # the unfiltered count, which keeps it
