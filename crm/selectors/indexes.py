"""What a page's plan starts from: the Facts read before it (crm/selectors/facts.py gathers
them), and what the b-trees of ORDER_INDEXES give for an order once the query's equalities fix
their first columns. Pure functions, tested without a database (tests/test_plan.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product
from math import prod
from typing import Any

from crm.case_variants import Cuts, Variants, all_equalities, ranges_of
from crm.fields import ORDER_INDEXES
from crm.params import Filter, ListQuery, OrderKey
from crm.selectors.count import PLANNER_LOOKUPS, Count


@dataclass(frozen=True)
class Facts:
    """What the choice knows besides the query, read from the database before it."""

    matches: Count | None  # the count of the same filters, which sizes a walk (walk_budget)
    # column -> whether it has at most LOOSE_SCAN_KEYS distinct values by the planner's
    # statistics, for the columns that key_columns_asked() names
    few_values: Mapping[str, bool] = field(default_factory=dict)
    # crm_case_variant (crm/case_variants.py) when a filter is case-insensitive (CASE_LOOKUPS);
    # None without one, or when the database does not order text by code point
    variants: Variants | None = None
    # the rows of the group of equal first keys that the range is read from (group_facts);
    # None for the whole query
    group_rows: int | None = None
    # the fields those groups' equalities fix, besides the query's own equality filters
    group_fixed: frozenset[str] = frozenset()
    # sort key column -> the cost of a row walked along its index, in the units of
    # Count.path_cost (facts.walk_row_cost), for the keys of the order: a group's walk is
    # of the next key's; none when unknown
    walk_row_costs: Mapping[str, float] = field(default_factory=dict)
    # the planner's estimate of the rows holding the commonest search term read through
    # search_text's trigram index (count.term_candidates), for a page read by groups
    # (plan.reads_group_apart); else 0
    term_rows: int = 0
    # column -> 1 or -1 where its values follow the table's order, ascending or descending,
    # by the planner's statistics, else 0; for the columns that bound_columns_asked() names,
    # read by the walk that may use them (ranges.RowRanges._bound)
    table_order: Mapping[str, int] = field(default_factory=dict)


# Lookups that are one range of the column's (column, id) index, in its order; a name's
# prefix is one of its sort key (crm/params.py on_sort_keys), which also holds the other
# spellings of the prefix (`mü` is `mue%`, with Mueller): the filter itself drops those.
INDEX_RANGE_LOOKUPS = PLANNER_LOOKUPS | {"in", "startswith", "sortprefix"}
# Lookups read as ranges of their value's case variants (crm/case_variants.py)
CASE_LOOKUPS = ("istartswith", "iexact")


def has_index(
    keys: list[OrderKey], fixed: frozenset[str] = frozenset(), *, prefixed: bool = False
) -> bool:
    """Whether a b-tree of ORDER_INDEXES gives `keys`' order, once the columns before them
    are `fixed` by equality filters; `prefixed`: with at least one such column before them,
    so that the equalities' rows in `keys` order are one range of it. (An index that gives
    the order with nothing before it narrows nothing: `address__country__endswith=L&
    relationship__created__gt=...&ordering=address__city,address__city_code&page=50`, taken
    for such a range, skipped its offset along the whole of (city, postal code, id)
    unbounded, 2.5 million rows, 3.7 s at 3M.)"""
    if len({k.descending for k in keys}) > 1:
        return False
    names = tuple(k.field.name for k in keys)
    before = len(names) + prefixed
    return any(
        len(index) >= before
        and index[len(index) - len(names) :] == names
        and set(index[: len(index) - len(names)]) <= fixed
        for index in ORDER_INDEXES
    )


def fixed_index_gives(head: OrderKey, fixed: frozenset[str], group: frozenset[str]) -> bool:
    """Whether a b-tree of ORDER_INDEXES has columns that equalities fix, one of them a
    `group`'s, then `head`: the group's rows in `head` order (ties in any) are one range of
    it, which reads no more rows than the group holds. (Fixed by the query's filters alone,
    the range has no such bound: `address__country=DE&search=köln michael&ordering=-address__
    city,-last_name` read the Germans' city range until its rare matches, 0.34 -> 0.61 s.)"""
    return any(
        index[n] == head.field.name and set(index[:n]) <= fixed | group and set(index[:n]) & group
        for index in ORDER_INDEXES
        for n in range(1, len(index))
    )


# At most this many values of one `in` (or a pattern's matching values) are read as that
# many ranges of an order index, merged in order (index_ranges): each costs an index descent
# and a branch to plan.
MERGED_RANGES = 20


def index_ranges(query: ListQuery, keys: list[OrderKey]) -> list[list[Filter]]:
    """The index ranges that hold the query's rows in `keys` order, each as the equality
    filters that fix the columns a b-tree of ORDER_INDEXES has before the first key: one
    range when equalities fix all of them, one per value when one of them is an `in` of a few
    values (MERGED_RANGES); none when no index has the query's equalities before the first
    key. A walk of `keys` order inside them (merged in order, strategies.first_rows) reads
    only their rows, which its budget counts: walked through the whole table, `address__
    country=DE&ordering=phone_number,relationship__last_activity` passed every other
    country's numbers first (1.4 million rows, 2.8 s at 3M), and `address__country__in=DE,AT&
    ordering=phone_number` 1.5 s. (_gives_the_walks_order says which index.)"""
    values = {f.field.name: [f] for f in query.filters if _is_one_value(f)}
    for f in query.filters:
        listed = _few_values(f)
        if f.field.name not in values and listed:
            values[f.field.name] = [Filter(f.field, "exact", v) for v in listed]
    for index in ORDER_INDEXES:
        n = index.index(keys[0].field.name) if keys[0].field.name in index else 0
        fixing = [values[name] for name in index[:n] if name in values]
        if (
            n
            and len(fixing) == n
            and prod(map(len, fixing)) <= MERGED_RANGES
            and _gives_the_walks_order(index[n:], keys)
        ):
            return [list(r) for r in product(*fixing)]
    return []


def _gives_the_walks_order(tail: tuple[str, ...], keys: list[OrderKey]) -> bool:
    """Whether an index's columns after its equalities are `keys`, the walk's whole order: a
    walk's budget counts the rows of its ranges, and an index that gives only the first key
    leaves PostgreSQL to read the order from another one, the ranges' equalities a filter.
    A walk of a group of street number 1 in `-address__city,-phone_number` order, inside the
    (country, city key) index's range of `address__country__endswith=DE`, read the (city
    key, phone) index, and passed 548,000 other countries' rows for its first 2,000 (1.6 s
    at 3M); walked with the budget counting every row, it gives up and reads the group."""
    return list(tail[: len(keys)]) == [k.field.name for k in keys]


def key_ranges(query: ListQuery, head: OrderKey) -> list[Filter]:
    """The filters on `head`'s own column that are ranges of its index (INDEX_RANGE_LOOKUPS):
    a walk of that index starts and ends where they do."""
    return [f for f in query.filters if f.field == head.field and f.lookup in INDEX_RANGE_LOOKUPS]


def _is_one_value(f: Filter) -> bool:
    return f.lookup == "exact" or (f.matching is not None and len(f.matching) == 1)


def _few_values(f: Filter) -> list[Any] | None:
    """The distinct values of an `in` (or of a pattern read as the values it matches), if
    they are at most MERGED_RANGES."""
    listed = f.value if f.lookup == "in" and f.matching is None else f.matching
    values = list(dict.fromkeys(listed)) if listed else []
    return values if 0 < len(values) <= MERGED_RANGES else None


def group_ranges(query: ListQuery, head: OrderKey) -> list[Filter]:
    """Within one group of equal `head` keys read from a b-tree of ORDER_INDEXES (`head`, a
    column, id) (plan.groups_by_index), the ranges of that index in id order: one per value
    of an `in` of a few values on the column (each an equality); none where an equality
    fixes it, which is the one range."""
    listed = {f.field.name: f for f in query.filters if not _is_one_value(f) and _few_values(f)}
    for index in ORDER_INDEXES:
        if len(index) == 3 and index[0] == head.field.name and index[1] in listed:
            f = listed[index[1]]
            return [Filter(f.field, "exact", v) for v in _few_values(f) or []]
    return []


def listed_fields(query: ListQuery) -> frozenset[str]:
    """Fields that an equality or an `in` of at most MERGED_RANGES values fixes to a few
    values, each a range of an index that has the field first."""
    return frozenset(
        f.field.name for f in query.filters if _is_one_value(f) or _few_values(f) is not None
    )


def fixed_fields(query: ListQuery, facts: Facts) -> frozenset[str]:
    """Fields an equality fixes: `exact`, or an `iexact` read as a few equalities of its
    case variants (crm/case_variants.py)."""
    return frozenset(f.field.name for f in query.filters if _is_equality(f, facts))


def _is_equality(f: Filter, facts: Facts) -> bool:
    if _is_one_value(f):
        return True
    return f.lookup == "iexact" and all_equalities(ranges_of(facts.variants, f.value, whole=True))


def case_cuts(query: ListQuery, head: OrderKey, facts: Facts) -> Cuts | None:
    """The ranges of a case-insensitive prefix filter on the first sort key, in sort order
    (crm/case_variants.py)."""
    found = [
        f
        for f in query.filters
        if f.field == head.field and f.lookup in CASE_LOOKUPS and f.matching is None
    ]
    if not found:
        return None
    return ranges_of(facts.variants, found[0].value, whole=found[0].lookup == "iexact",
                     descending=head.descending)  # fmt: skip
