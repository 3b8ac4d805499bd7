"""SQL for each way of reading rows that plan.py chooses, built from its arguments alone
(ranges.py has the readers that also read from the database while they build)."""

from __future__ import annotations

from crm.fields import Kind
from crm.params import Filter, OrderKey
from crm.selectors.budget import PROBE_GAPS, PROBE_HITS, Probe
from crm.selectors.plan import LOOSE_SCAN_KEYS
from crm.sql import Binder, executed_statements, order_sql


def collected_rows(where: str, after: list[str] | None, keys: list[OrderKey], row: str, *,
                   limit: int, offset: int) -> str:  # fmt: skip
    """Rows [offset, offset + limit) of all the matches of `where` after a cursor's keyset
    branches (`after`, in any order; None without a cursor), sorted (plan.collects): an
    order no index can give makes the planner take the filter's own access path."""
    columns = ", ".join(k.field.column for k in keys)
    if after is not None:  # no branch at all: nothing sorts after the cursor
        where = f"{where} AND ({' OR '.join(f'({branch})' for branch in after) or 'FALSE'})"
    return (
        f"SELECT {columns}, {row} FROM crm_contactrow WHERE {where} "
        f"ORDER BY {order_sql(keys, unindexed=True)} LIMIT {limit} OFFSET {offset}"
    )


TABLE = "crm_contactrow"


def group_source(equal: str) -> str:
    """The rows of one group (`equal`, the equalities of its first keys) by their own index,
    as a source of `first_rows`' fallback in which the query's conditions are tested on
    them alone (plan.reads_group_apart): OFFSET 0 keeps them out of the group's scan."""
    return f"(SELECT * FROM crm_contactrow WHERE {equal} OFFSET 0) crm_contactrow"


def first_rows(
    where: str, extra: str, keys: list[OrderKey], limit: int, budget: int | None,
    walked: list[str] | None = None, source: str = TABLE, probe: Probe | None = None,
    bound: str | None = None,
) -> str:  # fmt: skip
    """The first `limit` rows matching `where AND extra` in `keys` order, in a plan whose
    cost is bounded whichever way the filter and the order are correlated.

    Walking the sort key's index and filtering is fast when matches are spread along it,
    but `city=Berlin ORDER BY phone_number` finds its first Berlin phone (+49...) only after
    every Austrian one (+43...): 100k+ rows at 200k contacts. So the walk gets a budget
    (budget.walk_budget); only if that does not fill the page, the filter's own access path
    finds all matches and a top-N sort orders them. The walk reads `walked`, conditions each
    one range of an index in `keys` order that holds all the matches (indexes.index_ranges),
    merged in order; by default `extra` alone. The fallback reads the matches from `source`,
    those within `bound` alone where there is one (a bound of the first key that the page's
    rows are known to be within, RowRanges._bound).
    """
    order = order_sql(keys)
    if budget is None:
        return (
            f"SELECT * FROM crm_contactrow WHERE {where} AND {extra} ORDER BY {order} LIMIT {limit}"
        )
    unindexed = order_sql(keys, unindexed=True)
    if budget == 0 and bound is not None:
        ids = fallback_ids(source, f"{extra} AND {where}", unindexed, limit, bound)
        return f"SELECT * FROM crm_contactrow WHERE id IN ({ids}) ORDER BY {unindexed}"
    if budget == 0:
        return (
            f"SELECT * FROM {source} WHERE {extra} AND {where} ORDER BY {unindexed} LIMIT {limit}"
        )
    walked = walked or [extra]
    head = _walk(walked, where, order, limit, budget)
    if probe is None:
        return head_or_fallback(head, where, extra, unindexed, limit, source=source, bound=bound)
    short = f"(SELECT count(*) FROM near) < {limit}"
    rest = _walk_on(head, where, walked, order, limit, budget, probe)
    head = (
        f"SELECT * FROM (SELECT * FROM near WHERE NOT {short} "
        f"UNION ALL SELECT * FROM {rest} f WHERE {short}) h ORDER BY {order}"
    )
    near = f"near AS ({_walk(walked, where, order, limit, probe.near)}), "
    return head_or_fallback(head, where, extra, unindexed, limit, ctes=near, source=source,
                            bound=bound)  # fmt: skip


def _walk(walked: list[str], where: str, order: str, limit: int, rows: int) -> str:
    """The first `limit` matches of `where` among the first `rows` rows of the index ranges
    `walked`, merged in order."""
    ranges = [
        f"SELECT * FROM crm_contactrow WHERE {r} ORDER BY {order} LIMIT {rows}" for r in walked
    ]
    walk = ranges[0] if len(ranges) == 1 else (
        f"SELECT * FROM ({' UNION ALL '.join(f'({r})' for r in ranges)}) m "
        f"ORDER BY {order} LIMIT {rows}"
    )  # fmt: skip
    return f"SELECT * FROM ({walk}) w WHERE {where} ORDER BY {order} LIMIT {limit}"


def _walk_on(
    walk: str, where: str, walked: list[str], order: str, limit: int, budget: int, probe: Probe
) -> str:
    """The rows of `walk`, the walk to its budget, unless its ranges `walked` hold no more
    rows than the first step read, or, unless the first step (`near`) found half its `limit`
    or more, a block sample of them in `order` does not expect the walk to meet its `limit`
    matches within its `budget` (crm_walk_on(), crm/db/walk.sql,
    which plans and runs them only when asked)."""
    heads = [
        f"SELECT 1 FROM crm_contactrow WHERE {r} ORDER BY {order} LIMIT {probe.near + 1}"
        for r in walked
    ]
    rows = f"SELECT count(*) FROM ({' UNION ALL '.join(f'({h})' for h in heads)}) r"
    sample = (
        f"SELECT count(*) FILTER (WHERE m), min(n) FILTER (WHERE m), count(*) FROM ("
        f"SELECT coalesce(({where}), FALSE) AS m, row_number() OVER (ORDER BY {order}) AS n "
        f"FROM crm_contactrow TABLESAMPLE SYSTEM ({probe.percent:.6f}) REPEATABLE (0) "
        f"WHERE {' OR '.join(f'({r})' for r in walked)}) s"
    )
    (rows, sample, walk), args = executed_statements([rows, sample, walk])
    scale = 100 / probe.percent
    return (
        f"crm_walk_on({rows}, {sample}, {walk}, {args}, {probe.near}, "
        f"(SELECT count(*) FROM near), {(limit + 1) // 2}, {limit}, {budget}, {scale:.6f}, "
        f"{PROBE_HITS}, {PROBE_GAPS})"
    )


def ids_first_rows(where: str, ranges: str, extra: str, keys: list[OrderKey], limit: int) -> str:
    """The first `limit` rows in `keys` order (`id` alone) that match `where` among the rows
    of `ranges` and `extra` (a cursor's range of ids), index ranges whose ids their index
    gives without the table: the first `limit` of those ids, then their rows tested against
    `where`; only if some fail, every match and a sort (head_or_fallback). A tier of a
    ranked search (ranked.py): its ranges read and sorted whole visited a table block per
    row, `search=strauss` 6,812 of them (8-11 ms at 3M on PostgreSQL 15; by id, 1.7 ms for
    the index and 26 rows). The ranges stay out of the rows' test, which the planner then
    took for the way to read them."""
    unindexed = order_sql(keys, unindexed=True)
    first = (
        f"SELECT id FROM crm_contactrow WHERE {ranges} AND {extra} "
        f"ORDER BY {unindexed} LIMIT {limit}"
    )
    head = (
        f"SELECT * FROM crm_contactrow WHERE id IN (SELECT id FROM first_ids) AND {where} "
        f"ORDER BY {unindexed} LIMIT {limit}"
    )
    return head_or_fallback(head, where, f"{ranges} AND {extra}", unindexed, limit,
                            ctes=f"first_ids AS ({first}), ",
                            complete=f"(SELECT count(*) FROM first_ids) < {limit}")  # fmt: skip


def head_or_fallback(
    head: str, where: str, extra: str, unindexed: str, limit: int, *, ctes: str = "",
    complete: str = "FALSE", source: str = TABLE, bound: str | None = None,
) -> str:  # fmt: skip
    """The `head` rows if they fill the page or are `complete` (all there are), else the
    filter's own access path (in `source`) and a top-N sort. `ctes` come before `head` in
    its WITH.

    The fallback's condition (`NOT whole`) gates the fallback's query level, above any
    Gather of parallel workers (config/settings.py): inside its ids' subquery the planner
    handed it down to the workers, which were started to find it false, 4.5 ms for every
    page whose walk had filled it."""
    whole = f"((SELECT count(*) FROM head) = {limit} OR {complete})"
    # The sort takes the ids (and sort keys) alone, and the page's rows are read by id
    # after it: a filter's (column, id) index then gives them without the table, where the
    # whole rows were read and sorted (`address__id__gt=2000000`, whose matches the walk of
    # the id index meets only after 2 million rows: 0.6 -> 0.14 s at 3M).
    ids = fallback_ids(source, f"{extra} AND {where}", unindexed, limit, bound)
    return (
        f"WITH {ctes}head AS ({head}) "
        f"SELECT * FROM head WHERE {whole} "
        f"UNION ALL ("
        f"SELECT * FROM crm_contactrow WHERE NOT {whole} AND id IN ({ids}) ORDER BY {unindexed})"
    )


def fallback_ids(source: str, where: str, unindexed: str, limit: int, bound: str | None) -> str:
    """The ids of the first `limit` matches of `where` in `source`, sorted; within `bound`
    alone where there is one, read by bitmaps of it and the filters (crm_bitmap_ids(),
    crm/db/walk.sql: the planner took the bound and the filter for independent ranges)."""
    if bound is None:
        return f"SELECT id FROM {source} WHERE {where} ORDER BY {unindexed} LIMIT {limit}"
    (ids,), args = executed_statements(
        [f"SELECT id FROM {source} WHERE {where} AND {bound} ORDER BY {unindexed} LIMIT {limit}"]
    )
    return f"SELECT * FROM crm_bitmap_ids({ids}, {args})"


def loose_scan_rows(where: str, extra: str, keys: list[OrderKey], limit: int) -> str:
    """The first `limit` rows in `keys` order of a `where` on the first key alone, from a
    loose index scan over that key's distinct values (see plan.LOOSE_SCAN_KEYS)."""
    col = keys[0].field.column
    # `where` names the column bare, here the distinct key of `v`. A substring's redundant
    # search_text condition (crm/sql.py) holds for the key alone too, so the key's own fold
    # stands in for it.
    keys_only = f"SELECT {col}, crm_fold({col}) AS search_text FROM v WHERE {col} IS NOT NULL"
    matching = f"SELECT {col} FROM ({keys_only}) k WHERE {where}"
    return key_groups(matching, "TRUE", where, extra, keys, limit)


def key_groups(
    matching: str, where: str, fallback: str, extra: str, keys: list[OrderKey], limit: int,
    ranges: list[str] | None = None,
) -> str:  # fmt: skip
    """The first `limit` rows in `keys` order (a first key, then `id`) from the groups of
    equal first keys that `matching` selects out of `v` (distinct_keys), each group's rows
    filtered by `where` (and read as the `ranges` of an index in id order, merged, if any:
    indexes.group_ranges); if the scan stopped at LOOSE_SCAN_KEYS short of a page, the rows
    of `fallback` from its own access path instead. The recursion is evaluated only as far
    as the LIMIT pulls it."""
    col = keys[0].field.column
    # A group is walked by id under the LIMIT. The planner guesses every group's size alike
    # (the table over the key's distinct values, 15,600 rows of 3M), and for a LIMIT near
    # that guess read the whole group and sorted it: all 373,000 Müllers for page 10 of
    # `search=müller wien&ordering=last_name` (2 s). A LIMIT it cannot read at plan time is
    # taken for a tenth of the rows, which keeps the walk: 24 ms.
    order, rows = order_sql(keys[1:]), f"LIMIT (SELECT {limit})"
    each = [
        f"SELECT * FROM crm_contactrow c WHERE c.{col} = d.{col} AND {r} AND {extra} "
        f"AND {where} ORDER BY {order} {rows}"
        for r in ranges or ["TRUE"]
    ]
    # (with an `in` on the index's second column, each value's range; walked by id instead,
    # a group without any of the values was read whole: `address__city__in=Berlin,Wien&
    # ordering=-address__country` read every Polish contact, 1.6 s on PostgreSQL 15)
    group = each[0] if len(each) == 1 else (
        f"SELECT * FROM ({' UNION ALL '.join(f'({e})' for e in each)}) g ORDER BY {order} {rows}"
    )  # fmt: skip
    head = f"SELECT r.* FROM ({matching}) d CROSS JOIN LATERAL ({group}) r LIMIT {limit}"
    distinct = distinct_keys(col, extra, descending=keys[0].descending, most=LOOSE_SCAN_KEYS)
    # A short head is all there is when the scan ran off the end of the keys: after a cursor
    # near the end, the fallback had sorted every match to find none (0.15 s at 3M).
    return head_or_fallback(head, fallback, extra, order_sql(keys, unindexed=True), limit,
                            ctes=f"{distinct}, ",
                            complete=f"(SELECT max(n) FROM v) < {LOOSE_SCAN_KEYS}")  # fmt: skip


def distinct_keys(col: str, extra: str, *, descending: bool, most: int) -> str:
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


def calendar_rows(
    where: str, extra: str, keys: list[OrderKey], limit: int, offset: int, parts: dict[str, Filter],
    bind: Binder,
) -> str:  # fmt: skip
    """Rows [offset, offset + limit) of `where AND extra` in `keys` order, one month of the
    first key at a time (see plan.CALENDAR_PARTS); months without the filtered month or day
    cost nothing but a row of the series. Month bounds are in the session's time zone, UTC,
    as the month and day filters are (crm/sql.py)."""
    col = keys[0].field.column
    # Each month's range, in order, from the key's index alone (OFFSET 0 keeps the filters
    # out of it): the planner cannot size a range of the series (0.5% of the table for a day
    # of 100 rows), and ANDed the filters' own bitmaps with it, each read whole: the month
    # and day filters (23,000 rows for a recent month of last_activity at 200k), and on
    # PostgreSQL 18 a skip scan of the month-and-day index or a postal code prefix (a
    # group's birthdays on the 20th, page 50: 2.3-5.5 s at 3M). A page of few matches,
    # which the months would read whole, is read by id (crm/db/count.sql page_ids).
    month = (
        f"SELECT * FROM crm_contactrow WHERE {col} >= m.low AND {col} < m.high "
        f"ORDER BY {order_sql(keys)} OFFSET 0"
    )
    rows = f"SELECT * FROM ({month}) r WHERE {where} AND {extra} LIMIT {limit + offset}"
    # The nested loop reads the months in series order and stops at the LIMIT; the months
    # cover the key's whole span, so what they give is every match (no fallback needed).
    return (
        f"SELECT r.* FROM ({_months(keys[0], parts, extra, bind)}) m "
        f"CROSS JOIN LATERAL ({rows}) r "
        f"LIMIT {limit} OFFSET {offset}"
    )


def _months(head: OrderKey, parts: dict[str, Filter], extra: str, bind: Binder) -> str:
    """(low, high) of the filtered month or day of every month of `head`'s span within
    `extra`, in order. A cursor's branch (`extra`, a range of the key after the cursor's
    value) starts at the cursor's month: from the key's first month, each month before it
    was read whole for none of its rows (a cursor page of `relationship__last_activity__
    month=10&...&ordering=relationship__last_activity` read eight Octobers, 58,000 rows, for
    the ninth's 11). A branch of the key's NULLs has no month: none."""
    col = head.field.column
    first, last = (f"(SELECT date_trunc('month', {fn}({col})) FROM crm_contactrow WHERE {extra})"
                   for fn in ("min", "max"))  # fmt: skip
    series = (f"generate_series({last}, {first}, interval '-1 month')" if head.descending
              else f"generate_series({first}, {last}, interval '1 month')")  # fmt: skip
    start, keep = "s", []
    if "month" in parts:
        keep.append(f"extract(month FROM s) = {bind(parts['month'].value, Kind.INTEGER)}")
    if "day" in parts:  # that day of the month, where the month has it
        start = f"s + ({bind(parts['day'].value, Kind.INTEGER)} - 1) * interval '1 day'"
        keep.append(f"extract(month FROM {start}) = extract(month FROM s)")
    end = f"{start} + interval '1 {'day' if 'day' in parts else 'month'}'"
    cast = "::date" if head.field.kind is Kind.DATE else ""
    return (
        f"SELECT ({start}){cast} AS low, ({end}){cast} AS high "
        f"FROM {series} s "
        f"WHERE {' AND '.join(keep) or 'TRUE'}"
    )
