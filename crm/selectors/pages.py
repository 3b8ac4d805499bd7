"""One page of the list, read top to bottom: the facts for the query (facts.py), the choice
of how to read its first sort key (plan.py), the SQL (ranges.py, strategies.py), run in one
statement whose rows PostgreSQL has already serialised to JSON."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from crm.case_variants import Cuts, all_equalities
from crm.fields import FIELDS, RANK
from crm.pagination import Cursor
from crm.params import Filter, ListQuery, OrderKey
from crm.selectors.count import Count, PageOrder
from crm.selectors.db import Fetch, fetch_rows, plan_rows
from crm.selectors.facts import gather_facts
from crm.selectors.indexes import case_cuts
from crm.selectors.plan import (
    Reader,
    choose_first_key_reader,
    collects,
    range_of_group,
)
from crm.selectors.ranges import RowRanges, first_key_rows
from crm.selectors.rank import source_sql
from crm.selectors.ranked import ranked_rows_sql
from crm.selectors.strategies import collected_rows
from crm.sql import (
    Binder,
    Branch,
    Kind,
    cut_sql,
    keyset_branches,
    non_null_columns,
    order_sql,
    query_where_sql,
    row_json_sql,
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
class RowSerialiser:
    """Page rows serialised in Python from the values `columns` (a select list) reads,
    instead of as the JSON PostgreSQL builds (ROW_JSON). The list never makes one: only the
    bench's ablations do (crm_bench/ablations.py), to measure what that JSON saves."""

    columns: str
    write: Callable[[tuple[Any, ...]], bytes]


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
    statement = page_sql(query, cursor, row=row, matches=matches)
    rows = fetch_rows(statement.sql, statement.params)
    if statement.kept_rows is not None and len(rows) < statement.kept_rows and matches:
        statement = page_sql(query, cursor, row=row, matches=replace(matches, page_ids=None))
        rows = fetch_rows(statement.sql, statement.params)
    if not statement.complete and len(rows) <= query.page_size:  # it may have missed rows
        statement = page_sql(query, cursor, row=row, matches=matches, every_tier=True)
        rows = fetch_rows(statement.sql, statement.params)
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


@dataclass(frozen=True)
class PageStatement:
    sql: str
    params: Any
    # False: it reads only the first tiers of a ranked search (ranked.ENOUGH); if it returns
    # no row beyond the page, the statement with every tier is the one to trust
    complete: bool = True
    # the rows of the ids the count kept (Count.page_ids), if it reads them: fewer, and one
    # was written since the count and no longer matches
    kept_rows: int | None = None


def page_sql(
    query: ListQuery,
    cursor: Cursor | None = None,
    *,
    row: str = ROW_JSON,
    matches: Count | None = None,
    fetch: Fetch = fetch_rows,
    every_tier: bool = False,
) -> PageStatement:
    """The statement for a page's rows (also EXPLAINed by the plan guard test); `matches`,
    the count of the same filters, sizes the walk of the sort index. A multi-key order first
    `fetch`es the first keys of the page (see RowRanges._by_groups). `row` is what each row
    selects after its sort keys."""
    order = page_order(query, cursor)
    keys, offset, after = order.keys, order.first, order.after
    bind = Binder()
    if matches is not None and matches.page_ids is not None:  # the count sorted the matches
        by_id = _rows_by_id(query, keys, matches.page_ids, row, bind)
        return PageStatement(by_id, bind.params, kept_rows=len(matches.page_ids))
    facts = gather_facts(query, keys, matches)
    if keys[0].field is RANK:
        rows, complete = ranked_rows_sql(query, keys, facts, after, bind=bind, fetch=fetch,
                                         row=row, offset=offset, every_tier=every_tier)  # fmt: skip
        return PageStatement(rows, bind.params, complete)
    reader = choose_first_key_reader(query, keys, facts)
    if collects(reader, facts, keys, offset, rows=offset + query.page_size + 1):
        where = query_where_sql(query, bind)
        branches = None if after is None else [b.sql for b in keyset_branches(keys, after, bind)]
        sql = collected_rows(where, branches, keys, row, limit=query.page_size + 1, offset=offset)
        return PageStatement(sql, bind.params)
    ranges = RowRanges(query, facts, bind, fetch)
    sql = _rows_sql(ranges, keys, reader, after, offset=offset, row=row)
    return PageStatement(sql, bind.params)


def page_order(query: ListQuery, cursor: Cursor | None) -> PageOrder:
    """The page's rows in the order they are read (a cursor back reads the keys reversed),
    and the one more row that tells whether there is a next page."""
    backwards = cursor is not None and cursor.backwards
    keys = reversed_keys(query.ordering) if backwards else query.ordering
    offset = (query.page - 1) * query.page_size if query.page else 0
    return PageOrder(keys, cursor.values if cursor else None, offset, query.page_size + 1)


def _rows_by_id(
    query: ListQuery, keys: list[OrderKey], ids: list[int], row: str, bind: Binder
) -> str:
    """The page's rows whose `ids` the count found in order (crm_count()'s page_ids), those
    that still match: a row written since may not (contact_page then reads the page anew)."""
    columns = ", ".join(k.field.column for k in keys)
    listed = ", ".join(bind(i, Kind.INTEGER) for i in ids) or "NULL"
    return (
        f"SELECT {columns}, {row} FROM {source_sql(query, bind)} WHERE id IN ({listed}) "
        f"AND {query_where_sql(query, bind)} "
        f"ORDER BY {order_sql(keys)}"
    )


def reversed_keys(keys: list[OrderKey]) -> list[OrderKey]:
    return [OrderKey(k.field, not k.descending) for k in keys]


def _rows_sql(ranges: RowRanges, keys: list[OrderKey], reader: Reader, after: list[Any] | None,
              *, offset: int, row: str) -> str:  # fmt: skip
    """The page's rows after the keyset cursor's `after` values (or from the start), each
    with its sort keys and then `row`: one branch per index range, in sort order."""
    query, bind = ranges.query, ranges.bind
    cuts = case_cuts(query, keys[0], ranges.facts)
    filters = _unimplied(query.filters, keys[0], cuts)
    # and a name sorted by its key has its prefix as a range of the key: the redundant case
    # variants' ranges (crm/sql.py) only lured the planner into reading every match (3.5 s
    # for `last_name__istartswith=mü&ordering=last_name` at 3M)
    ranged = keys[0].field if cuts else FIELDS.get(keys[0].field.key_of or "")
    where = query_where_sql(query, bind, filters=filters, ranged=ranged)
    first_key = first_key_rows(reader, ranges, keys, filters, where, ranged)
    limit = query.page_size + 1  # one extra row tells whether there is a next page
    branches = (
        [Branch(0, "TRUE", "TRUE")]
        if after is None
        else keyset_branches(keys, after, bind, non_null=non_null_columns(query.filters))
    )
    branches = _case_split(keys[0], cuts, branches, bind) if cuts else branches
    columns = ", ".join(k.field.column for k in keys)
    if not branches:
        return f"SELECT {columns}, {row} FROM crm_contactrow WHERE FALSE"
    # An offset spans the branches: each gives its first offset + limit rows, the union skips.
    each, skip = (limit, offset) if len(branches) == 1 else (limit + offset, 0)
    parts = [
        f"SELECT {n} AS branch, * FROM ("
        + (
            first_key(b.after, each, skip)
            if not b.fixed
            else _group_rows(ranges, keys, where, b, each, skip)
        )
        + f") b{n}"
        for n, b in enumerate(branches)
    ]
    # Each branch is a short index range scan; sorting their few rows by branch number
    # keeps the global order without relying on UNION ALL's execution order.
    return (
        f"SELECT {columns}, {row} FROM ({' UNION ALL '.join(parts)}) c "
        f"ORDER BY branch, {order_sql(keys)} LIMIT {limit} OFFSET {offset - skip}"
    )


def _group_rows(ranges: RowRanges, keys: list[OrderKey], where: str, branch: Branch, limit: int,
                offset: int) -> str:  # fmt: skip
    """A branch whose first keys the cursor fixes: rows of that group, read with its share of
    the count. Its equalities are part of the walk's index range where an index has them
    before the next key (`last_name = v AND id > x` in (last_name, id)); else they are
    outside the walk of the next key's index, which otherwise did not count the rows they
    rejected against its budget: `address__country__iexact=DE&ordering=address__country,
    -relationship__created` with a cursor read 3M rows (7 s)."""
    fixed, keys = keys[: branch.fixed], keys[branch.fixed :]
    if range_of_group(fixed, keys):
        return ranges.rows(where, branch.sql, keys, limit, offset)
    group = f"SELECT 1 FROM crm_contactrow WHERE {branch.equal}"
    size = plan_rows(group, ranges.bind.params, ranges.fetch)
    within = ranges.in_group(branch.equal, size, fixed)
    return within.rows(f"{where} AND {branch.equal}", branch.after, keys, limit, offset)


def _unimplied(filters: list[Filter], head: OrderKey, cuts: Cuts | None) -> list[Filter]:
    """`filters` without an iexact on the first key that its `cuts` imply."""
    if not all_equalities(cuts):
        return filters
    # every branch fixes the column to one of the value's variants, which implies the
    # iexact; kept, it made the planner expect a handful of rows and sort them all
    iexact = next(f for f in filters if f.field == head.field and f.lookup == "iexact")
    return [f for f in filters if f is not iexact]


def _case_split(head: OrderKey, cuts: Cuts, branches: list[Branch], bind: Binder) -> list[Branch]:
    """Branches over the first key, cut into the `cuts` ranges of a case-insensitive prefix
    filter on it: `last_name__istartswith=m&ordering=last_name` walked the index past every
    A-L name (1 s at 3M); `M...` and `m...` are two ranges of it."""
    ranges = [(high is None, cut_sql(head.field.column, low, high, bind)) for low, high in cuts]
    split: list[Branch] = []
    for b in branches:
        if b.fixed:  # its first key is fixed already, to a value within one cut
            split.append(b)
            continue
        # an equality fixes the first key, like a keyset branch: its rows are ordered by the
        # rest, and the cursor's range of the first key becomes a condition on the group
        for equal, cut in ranges:
            condition = f"{b.after} AND {cut}"
            split.append(Branch(1, condition, "TRUE") if equal else Branch(0, "TRUE", condition))
    return split
