"""A page of a search listed best matches first (rank.py says how a row is ranked).

The order (rank, id) is a set of disjoint ranges, a tier's rows each, read one after
another, each in id order by the same walk with a budget as any filter (ranges.RowRanges):
`search=huber` fills its first page from tier 0 alone; a tier of few rows of a search of one
term alone, by its first ids (strategies.ids_first_rows). Few matches (plan.SMALL_RESULT,
ONE_TERM_COLLECTED for a search of one term alone) are read once and sorted instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from crm.params import ListQuery, OrderKey, RankWords
from crm.selectors.count import PLANNER_TTL, Count, one_term_alone
from crm.selectors.db import Fetch, plan_rows_each
from crm.selectors.indexes import Facts
from crm.selectors.plan import SMALL_RESULT
from crm.selectors.ranges import RowRanges
from crm.selectors.rank import TIERS, rank_words, source_sql, tier_sql
from crm.selectors.strategies import first_rows, ids_first_rows
from crm.sql import Binder, keyset_branches, order_sql, query_where_sql

# A page reads the first tiers whose estimated rows are this many times the rows it wants,
# and the rest only if they fall short (pages.contact_page reads again with every tier):
# planning every tier's ranges was most of a ranked page (`search=müller`: 2.7 ms of
# planning with all five tiers, 0.6 with tier 0 alone; `mull wien`: 3.3 against 1.7).
ENOUGH = 20
# A search of one term and nothing else, whose tiers' rows all hold the term but for a few
# spellings, reads a tier of whole words (Tier.whole) of few rows by its first ids, which its
# ranges' index gives without the table (strategies.ids_first_rows), and so is read by tiers
# from this many matches where a search with filters or several terms is read once and
# sorted up to SMALL_RESULT. At 3M, the page of `search=strauss` (6,812, tier 0) 8-11 -> 5 ms
# on PostgreSQL 15; `doerte` (4,615) 24 -> 7.5 ms embedded, 19 -> 8 on PostgreSQL 15;
# `oettl` (4,589) 10 -> 3.5 and 8 -> 4. Fewer are read once: planning every tier's ranges
# cost `tamar` (765) 12.5 ms where reading its matches took 3.5 (PostgreSQL 15).
ONE_TERM_COLLECTED = 2_000
# The planner's rows of a tier read by its first ids at most: its ranges' index entries are
# each read, where a walk by id reads the table's rows until the page's (fewer, the more the
# tier holds). At 3M (embedded; PostgreSQL 15 alike) up to 5,000: `oezlem` 15 ms, `koenig`
# 11, `weiss` 7.7, `huber` 5.1; up to 10,000: 8.8, 9.5, 8.3, 5.6; 20,000: 8.5, 7.9, 9.8, 7.1
# (the 18,000 Weisses' entries read); 50,000: `huber` 9.2.
FIRST_IDS_TIER = 10_000


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
    where = query_where_sql(query, bind)
    matches = facts.matches
    one_term = one_term_alone(query)
    collected = ONE_TERM_COLLECTED if one_term else SMALL_RESULT
    if matches is not None and matches.value <= collected:  # read once and sorted
        branches = (
            ["TRUE"] if after is None else [b.sql for b in keyset_branches(keys, after, bind)]
        )
        return (
            f"SELECT search_rank, id, {row} FROM {source_sql(query, bind, fetch)} "
            f"WHERE {where} AND ({' OR '.join(f'({b})' for b in branches) or 'FALSE'}) "
            f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
        ), True
    words = rank_words(query, fetch)
    tiers = _tiers(keys, after, words, bind)
    sizes = tier_sizes(tiers, words, bind, fetch)
    read_first = len(tiers) if every_tier else tiers_to_read(sizes, limit + offset)
    parts = []
    for tier, size in list(zip(tiers, sizes, strict=True))[:read_first]:
        # The tier's key ranges before the search: a row is tested in the order written
        # (PostgreSQL costs a regular expression as any operator, and a block sample's test
        # is one expression), and a key's prefix is tested far faster than a term in
        # search_text. `mull wien`'s tier 2 at 3M (embedded): the block sample of its walk's
        # second step 12-17 -> 10-14 ms, the walk 3-4.5 -> 2.7-3.6 ms.
        rows = f"{tier.rows} AND {where}"
        if size <= FIRST_IDS_TIER and tier.whole and one_term:
            read = ids_first_rows(f"{tier.outside} AND {where}", tier.ranges, tier.ids, keys[1:],
                                  limit + offset)  # fmt: skip
        elif size <= SMALL_RESULT:  # few, or none: their ranges and a sort, no walk at all
            read = first_rows(rows, tier.ids, keys[1:], limit + offset, budget=0)
        else:
            tiered = replace(facts, matches=Count(size, False, matches.total if matches else 0))
            read = RowRanges(query, tiered, bind, fetch).rows(
                rows, tier.ids, keys[1:], limit + offset, 0
            )
        parts.append(f"SELECT {tier.n} AS search_rank, * FROM ({read}) t{tier.n}")
    # Append reads the tiers in order and stops once it has the rows wanted: a later tier is
    # only read when the earlier ones run out (`huber` fills a page from tier 0 alone).
    return (
        f"SELECT search_rank, id, {row} FROM (SELECT * FROM ({' UNION ALL '.join(parts)}) u "
        f"LIMIT {limit + offset}) crm_contactrow "
        f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
    ), read_first == len(tiers)


# Each tier's rows by the planner, kept per worker for PLANNER_TTL by the words that make the
# tiers: an EXPLAIN of every tier's ranges cost 1.3 ms of the 11.5 of `search=mull wien` at 3M
# (embedded), on every next page of the same search too.
_sizes: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, dict[int, int]]] = {}


def tier_sizes(tiers: list[Tier], words: RankWords, bind: Binder, fetch: Fetch) -> list[int]:
    """Each tier's rows by the planner, sized by its key ranges alone, whose statistics the
    planner has (sized by the search's, the empty tier 0 of `wien` walked its 285,000
    matches; with the search, the planner took the 41,000 Hubers for 387 and sorted them)."""
    key = (tuple(words.whole), tuple(words.start))
    kept = _sizes.get(key)
    if kept is None or time.monotonic() > kept[0] + PLANNER_TTL:
        kept = (time.monotonic(), {})
    missing = [tier for tier in tiers if tier.n not in kept[1]]
    if missing:
        selects = [f"SELECT 1 FROM crm_contactrow WHERE {tier.rows}" for tier in missing]
        rows = plan_rows_each(selects, bind.params, fetch)
        kept[1].update((tier.n, n) for tier, n in zip(missing, rows, strict=True))
        _sizes[key] = kept
    return [kept[1][tier.n] for tier in tiers]


def tiers_to_read(sizes: list[int], wanted: int) -> int:
    """How many of the tiers (their estimated rows `sizes`, in reading order) to read for
    `wanted` rows: the first ones whose rows add up to ENOUGH times that, else all."""
    total = 0
    for n, size in enumerate(sizes, 1):
        total += size
        if total >= ENOUGH * wanted:
            return n
    return len(sizes)


@dataclass(frozen=True)
class Tier:
    n: int
    ranges: str  # its sort keys' ranges (TRUE: the last tier, the rest)
    outside: str  # not in a better tier's ranges
    ids: str  # its range of ids after the cursor (TRUE: all)
    # whether its ranges are of whole words, which a better tier's share only by chance (a
    # name that is a term and a first name that is one too); a tier of the names a term
    # starts holds the whole ones too, whose rows are all in better tiers
    whole: bool

    @property
    def rows(self) -> str:
        return f"{self.ranges} AND {self.outside}"


def _tiers(
    keys: list[OrderKey], after: list[Any] | None, words: RankWords, bind: Binder
) -> list[Tier]:
    """Each tier that can hold rows, in `keys` order from the cursor's."""
    tiers: list[Tier] = []
    better: list[str] = []
    for n in range(len(TIERS) + 1):
        ranges = tier_sql(words, n, bind) if n < len(TIERS) else "TRUE"
        if ranges != "FALSE":
            outside = " AND ".join(f"NOT {b}" for b in better) or "TRUE"
            whole = n < len(TIERS) and TIERS[n][1]
            tiers.append(Tier(n, ranges, outside, "TRUE", whole))
            better.append(ranges)
    if keys[0].descending:
        tiers.reverse()
    if after is None:
        return tiers
    (rank, last_id), (id_key,) = after, keys[1:]
    (after_id,) = keyset_branches([id_key], [last_id], bind)
    ahead = [t for t in tiers if (t.n <= rank if keys[0].descending else t.n >= rank)]
    return [replace(t, ids=after_id.after) if t.n == rank else t for t in ahead]
