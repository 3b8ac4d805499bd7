"""Best matches first: a search without an `ordering` lists its matches by how well they
match, then by id (crm/params.py gives it the order RANK, id).

Decision, the tiers, best first, each judged on the whole value, ignoring case, accents,
spaces and punctuation, a term matching in any of its spellings (crm_search_pattern()):
0. the last name is a term (`huber`: Huber, HUBER; `mueller`: Müller, Mueller);
1. the first name is a term;
2. the last or first name starts with a term of 3 letters or more (`hub`: Huber, Hubert);
3. the city or the street is a term;
4. anything else (`huber` in Huberstraße, the digits of a phone number).

A tier is found through the words of the names and places (crm_word, crm/db/words.sql)
that are a term or start with one: its rows are ranges of those words' sort keys
(`last_name_key LIKE 'huber' || U+0001 || '%'`, crm/db/schema.sql): index ranges, cheap
even when a tier is empty, and a rank that folds nothing per row. The order (rank, id) is
then a set of disjoint ranges read one after another, each in id order by the same walk
with a budget as any filter (ranges.RowRanges): `search=huber` fills its first page from
tier 0 alone. Few matches (plan.SMALL_RESULT) are read once and sorted instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from crm.params import ListQuery, OrderKey
from crm.selectors.count import Count
from crm.selectors.db import Fetch, fetch_rows, plan_rows_each
from crm.selectors.plan import SMALL_RESULT, Facts
from crm.selectors.ranges import RowRanges
from crm.selectors.strategies import first_rows
from crm.sql import Binder, Kind, keyset_branches, order_sql, where_sql

# A page reads the first tiers whose estimated rows are this many times the rows it wants,
# and the rest only if they fall short (pages.contact_page reads again with every tier):
# planning every tier's ranges was most of a ranked page (`search=müller`: 2.7 ms of
# planning with all five tiers, 0.6 with tier 0 alone; `mull wien`: 3.3 against 1.7).
ENOUGH = 20
# Per term, the words it is (all of them) and at most this many more that it starts, the
# first in sort order: a short term starts hundreds of names, whose ranges would cost more
# than they sort.
MOST_WORDS = 50
# The sort letters of the words that a term starts (in any spelling), each with whether a
# term is the whole word; a term shorter than 3 letters ranks only whole words.
_WORDS = """
SELECT letters, bool_or(whole)
  FROM unnest(%(terms)s::text[]) t,
       LATERAL (SELECT letters, folded ~ ('^(' || crm_search_pattern(t) || ')$') AS whole
                  FROM crm_word
                 WHERE folded ~ ('^(' || crm_search_pattern(t) || ')')) w
 WHERE whole OR length(t) >= 3
 GROUP BY 1
 ORDER BY bool_or(whole) DESC, 1
"""
# Each tier's sort key columns, and whether a term is the whole word there (else its start)
TIERS = (
    (("last_name_key",), True),
    (("first_name_key",), True),
    (("last_name_key", "first_name_key"), False),
    (("address_city_key", "address_street_key"), True),
)


@dataclass(frozen=True)
class Words:
    whole: list[str]  # the sort letters of the words that are a term
    start: list[str]  # ... that start with a term (the whole ones too)


def words_of(terms: list[str], fetch: Fetch = fetch_rows) -> Words:
    rows = fetch(_WORDS, {"terms": terms})
    whole = [w for w, is_whole in rows if is_whole]
    return Words(whole, whole + [w for w, is_whole in rows if not is_whole][:MOST_WORDS])


def tier_sql(words: Words, n: int, bind: Binder) -> str:
    """Whether a row is in tier n or in a better one (rank_sql tells them apart)."""
    columns, whole = TIERS[n]
    ranges = [
        f"{column} LIKE {bind(letters + chr(1) + '%', Kind.TEXT)}"
        for column in columns
        for letters in (words.whole if whole else words.start)
    ]
    return f"({' OR '.join(ranges)})" if ranges else "FALSE"


def rank_sql(words: Words, bind: Binder) -> str:
    """The row's tier, 0 the best."""
    cases = " ".join(f"WHEN {tier_sql(words, n, bind)} THEN {n}" for n in range(len(TIERS)))
    return f"CASE {cases} ELSE {len(TIERS)} END"


def ranked_source(query: ListQuery, bind: Binder, fetch: Fetch = fetch_rows) -> str:
    """The read model with each row's `search_rank`, under the read model's name."""
    rank = rank_sql(words_of(query.search, fetch), bind)
    return f"(SELECT {rank} AS search_rank, * FROM crm_contactrow) crm_contactrow"


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
            f"SELECT search_rank, id, {row} FROM {ranked_source(query, bind, fetch)} "
            f"WHERE {where} AND ({' OR '.join(f'({b})' for b in branches) or 'FALSE'}) "
            f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
        ), True
    tiers = _tiers(keys, after, words_of(query.search, fetch), bind)
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
    keys: list[OrderKey], after: list[Any] | None, words: Words, bind: Binder
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
