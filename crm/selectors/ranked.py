"""A page of a search listed best matches first (rank.py says how a row is ranked).

The order (rank, id) is a set of disjoint ranges, a tier's rows each, read one after
another, each in id order by the same walk with a budget as any filter (ranges.RowRanges):
`search=huber` fills its first page from tier 0 alone. Few matches (plan.SMALL_RESULT) are
read once and sorted instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from crm.params import ListQuery, OrderKey, RankWords
from crm.selectors.count import Count
from crm.selectors.db import Fetch, plan_rows_each
from crm.selectors.indexes import Facts
from crm.selectors.plan import SMALL_RESULT
from crm.selectors.ranges import RowRanges
from crm.selectors.rank import TIERS, rank_words, source_sql, tier_sql
from crm.selectors.strategies import first_rows
from crm.sql import Binder, keyset_branches, order_sql, where_sql

# A page reads the first tiers whose estimated rows are this many times the rows it wants,
# and the rest only if they fall short (pages.contact_page reads again with every tier):
# planning every tier's ranges was most of a ranked page (`search=müller`: 2.7 ms of
# planning with all five tiers, 0.6 with tier 0 alone; `mull wien`: 3.3 against 1.7).
ENOUGH = 20


def ranked_rows_sql(
    query: ListQuery,
    keys: list[OrderKey],
    facts: Facts,
    after: list[Any] | None,
    *,
    bind: Binder,
    fetch: Fetch,
    row: str,
    offset: int,
    every_tier: bool,
) -> tuple[str, bool]:
    """The page's rows, each with `search_rank`, `id` and `row`, after the cursor's values
    `after` (keys: RANK then id, both ascending, or both descending backwards), and whether
    the statement reads every tier (else only those expected to hold enough rows, ENOUGH)."""
    limit = query.page_size + 1
    where = where_sql(query.filters, query.search, bind, rechecked=query.rechecked)
    matches = facts.matches
    if matches is not None and matches.value <= SMALL_RESULT:  # read once and sorted
        branches = (
            ["TRUE"] if after is None else [b.sql for b in keyset_branches(keys, after, bind)]
        )
        return (
            f"SELECT search_rank, id, {row} FROM {source_sql(query, bind, fetch)} "
            f"WHERE {where} AND ({' OR '.join(f'({b})' for b in branches) or 'FALSE'}) "
            f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
        ), True
    tiers = _tiers(keys, after, rank_words(query, fetch), bind)
    # each tier sized by its key ranges alone, whose statistics the planner has (sized by the
    # search's, the empty tier 0 of `wien` walked its 285,000 matches; with the search, the
    # planner took the 41,000 Hubers for 387 and sorted them all)
    sizes = plan_rows_each(
        [f"SELECT 1 FROM crm_contactrow WHERE {tier}" for _, tier, _ in tiers], bind.params, fetch
    )
    read_first = len(tiers) if every_tier else tiers_to_read(sizes, limit + offset)
    parts = []
    for (n, tier, ids), size in list(zip(tiers, sizes, strict=True))[:read_first]:
        rows = f"{where} AND {tier}"
        if size <= SMALL_RESULT:  # few, or none: their ranges and a sort, no walk at all
            read = first_rows(rows, ids, keys[1:], limit + offset, budget=0)
        else:
            tiered = replace(facts, matches=Count(size, False, matches.total if matches else 0))
            read = RowRanges(query, tiered, bind, fetch).rows(
                rows, ids, keys[1:], limit + offset, 0
            )
        parts.append(f"SELECT {n} AS search_rank, * FROM ({read}) t{n}")
    # Append reads the tiers in order and stops once it has the rows wanted: a later tier is
    # only read when the earlier ones run out (`huber` fills a page from tier 0 alone).
    return (
        f"SELECT search_rank, id, {row} FROM (SELECT * FROM ({' UNION ALL '.join(parts)}) u "
        f"LIMIT {limit + offset}) crm_contactrow "
        f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
    ), read_first == len(tiers)


def tiers_to_read(sizes: list[int], wanted: int) -> int:
    """How many of the tiers (their estimated rows `sizes`, in reading order) to read for
    `wanted` rows: the first ones whose rows add up to ENOUGH times that, else all."""
    total = 0
    for n, size in enumerate(sizes, 1):
        total += size
        if total >= ENOUGH * wanted:
            return n
    return len(sizes)


def _tiers(
    keys: list[OrderKey], after: list[Any] | None, words: RankWords, bind: Binder
) -> list[tuple[int, str, str]]:
    """Each tier that can hold rows, in `keys` order from the cursor's: its number, its rows
    (in it and in no better one), and its range of ids (TRUE: all)."""
    tiers: list[tuple[int, str]] = []
    better: list[str] = []
    for n in range(len(TIERS) + 1):
        tier = tier_sql(words, n, bind) if n < len(TIERS) else "TRUE"
        if tier != "FALSE":
            tiers.append((n, " AND ".join([tier, *(f"NOT {b}" for b in better)])))
            better.append(tier)
    if keys[0].descending:
        tiers.reverse()
    if after is None:
        return [(n, rows, "TRUE") for n, rows in tiers]
    (rank, last_id), (id_key,) = after, keys[1:]
    (after_id,) = keyset_branches([id_key], [last_id], bind)
    ahead = [(n, rows) for n, rows in tiers if (n <= rank if keys[0].descending else n >= rank)]
    return [(n, rows, after_id.after if n == rank else "TRUE") for n, rows in ahead]
