"""How a page is read: pure functions of the query and the Facts gathered for it before
(crm/selectors/facts.py), with no database and no SQL text, so that every rule is tested
without a database (tests/test_plan.py). Each rule says why, with what it measured.

Two choices: choose_first_key_reader, how the range of the first sort key is read (the whole
page without a cursor, or a cursor's first branch); choose_rows_reader, how any range of
rows in an order is read, which for a walk of the sort key's index takes walk_budget rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from crm.case_variants import Cuts, Variants, all_equalities, ranges_of
from crm.fields import ORDER_INDEXES, SEARCH_FIELDS, SUBSTRING_LOOKUPS, Kind
from crm.params import Filter, ListQuery, OrderKey
from crm.selectors.count import PLANNER_LOOKUPS, Count
from crm.sql import term_has_trigram


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
    # the planner's cost per row of walking the first sort key's index, in the units of
    # Count.path_cost (facts.walk_row_cost); None when unknown
    walk_row_cost: float | None = None


# Lookups that are one range of the column's (column, id) index, in its order; a name's
# prefix is one of its sort key (crm/params.py on_sort_keys), which also holds the other
# spellings of the prefix (`mü` is `mue%`, with Mueller): the filter itself drops those.
INDEX_RANGE_LOOKUPS = PLANNER_LOOKUPS | {"in", "startswith", "sortprefix"}
# Lookups read as ranges of their value's case variants (crm/case_variants.py)
CASE_LOOKUPS = ("istartswith", "iexact")


# A search term common enough that its trigram bitmap is the query's cost, while the other
# conditions narrow the rows far more: `address__street_number__iexact=78&search=hauptstraße`
# built the bitmap of 588,000 candidates (0.4-0.7 s at 3M, which the planner costs at 3,000)
# to AND it with the street number's 11,900 rows, which hold the 2,358 matches. Such a term
# is tested on the other conditions' rows instead (ListQuery.rechecked) when the planner's
# cost of reading them by an index is RECHECK_SHARE times below the term's candidates: a
# candidate costs the bitmap about 1 us, a unit of an index path's cost about 0.3 (at 3M,
# `relationship__last_activity__day=21&id__range=...&relationship__id__lt=275741&search=
# hauptstraße`: 0.27-0.38 s -> 15-19 ms, the rest's cost 45,000). By the rest's rows
# instead, `address__street_number__istartswith=6&last_updated__month=5&relationship__id__
# gt=1130116&search=thomas` (601 rows expected, but read from the 330,000 street numbers of
# a cost of 109,000, for 105,000 candidates) went from 81 ms to 0.3-0.4 s. A scan of the
# table would test the term on every row. Only a term of RECHECK_FROM candidates or more is
# weighed: a smaller bitmap costs a few ms.
RECHECK_SHARE = 10
RECHECK_FROM = 50_000


# The rows of the rest each cost the term's test too (a regular expression over search_text),
# which the rest's cost leaves out: a page that walks stops at its rows, a page that collects
# every match tests all of them. `gender__iexact=m&search=berlin&ordering=-address__country,
# -relationship__created` tested `berlin` on 1.46 million men (cost 32,000, 405,000
# candidates): 2.0 s on PostgreSQL 15, 1.6 s embedded; by the bitmap 1.0 and 0.54 s (at 3M,
# while the test suite ran). Counted whole, `first_name__iexact=Maria&search=schulstraße`
# (117,000 Marias for a cost of 2,700, 223,000 candidates) lost its recheck: 21 -> 174 ms.
# So a tenth of a unit a row. (Random survey, seed 1212, both servers: `address__country__
# icontains=PL&search=huber` 333 -> 54 ms embedded, no other request moved beyond the noise.)
RECHECK_ROW_COST = 0.1


def rechecks_term(term_rows: int, rest_cost: float, rest_rows: int, rest_indexed: bool) -> bool:
    """Whether a search term of `term_rows` candidates is tested on the `rest_rows` rows of
    the query's other conditions, which the planner reads for `rest_cost` by an index
    (`rest_indexed`) or not."""
    cost = rest_cost + rest_rows * RECHECK_ROW_COST
    return term_rows >= RECHECK_FROM and rest_indexed and cost * RECHECK_SHARE < term_rows


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


def fixed_fields(query: ListQuery, facts: Facts) -> frozenset[str]:
    """Fields an equality fixes: `exact`, or an `iexact` read as a few equalities of its
    case variants (crm/case_variants.py)."""
    return frozenset(f.field.name for f in query.filters if _is_equality(f, facts))


def _is_equality(f: Filter, facts: Facts) -> bool:
    if f.lookup == "exact" or (f.matching is not None and len(f.matching) == 1):
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


# How far to walk the sort key's index for a filtered page before using the filter's own
# access path instead (strategies.first_rows): enough for four pages at the filter's
# selectivity, and at least as many rows as the filter matches, since the fallback reads all
# of them: a walk that fails then costs at most what the fallback does (ski rental), and one
# that was only unlucky is not abandoned early (`gender=M&ordering=first_name`: the first man
# is 3,400 rows into the first-name index; a 2,000-row walk sent it to sorting 1.4M men, 1.4 s).
# At most MAX_WALK, unless the matches are more: a walk can pass at most the rows that do not
# match before it has the rows it wants, so up to that many it is bound to succeed, and up to
# the matches' number it still costs no more than the fallback. Capped at 100,000,
# `id__lt=2859768&ordering=-relationship__id&page=50` (ids and relationship ids grow together)
# gave up 45,000 rows short and sorted 2.9 million (1.2 s at 3M instead of 50 ms).
MIN_WALK, MAX_WALK = 2_000, 100_000
ESTIMATE_ERROR = 0.05  # of the table, that an estimated count may miss by
WALK_COST_FACTOR = 4  # see _affordable_rows


def walk_budget(
    query: ListQuery, keys: list[OrderKey], facts: Facts, rows: int | None = None
) -> int | None:
    """None: a plain index-ordered query; 0: filter path and sort; n: walk n rows first, to
    find the `rows` wanted (a page and the one more that tells a next page; on a later page,
    also the rows before it)."""
    filtered = {f.field.name for f in query.filters} | ({"search"} if query.search else set())
    # (a pattern read as the values it matches is their `IN` list: `address__country__contains=
    # DE&ordering=address__country,relationship__last_activity` walked the country index
    # from AT to DE expecting half the rows to match, 0.35-0.7 s at 3M)
    ranged = {
        f.field.name
        for f in query.filters
        if f.lookup in INDEX_RANGE_LOOKUPS or f.matching is not None
    }
    if case_cuts(query, keys[0], facts):  # read as ranges of its case variants
        ranged.add(keys[0].field.name)
    if not filtered or keys[0].field.name in ranged:
        return None  # no filter, or a range of the first sort key: the index range is exact
    fixed = fixed_fields(query, facts)
    if has_index(keys, fixed | facts.group_fixed, prefixed=True):
        return None  # `last_name=X&ordering=first_name`: a range of (last_name, first_name, id)
    # The first keys of a group's page (RowRanges._by_groups' window) are a range of an index
    # that has the group's fixed columns before the key: walked through the whole table
    # instead, the postal codes of Berlin came after every other city's (`relationship__last_
    # activity__isnull=false&ordering=address__city,-address__city_code,relationship__last_
    # activity`, a next page at 3M: 390,000 rows, 0.8 s).
    if len(keys) == 1 and fixed_index_gives(keys[0], fixed, facts.group_fixed):
        return None
    if [k.field.name for k in keys] == ["id"] and len(query.filters) == 1 and fixed:
        return None  # one equality, in id order: a range of its (column, id) index
    matches = facts.matches
    if matches is None or not matches.total:
        return MIN_WALK
    if facts.group_rows is not None:
        matches = _group_share(matches, facts.group_rows)
    rows = query.page_size + 1 if rows is None else rows
    expected = _expected_walk(matches, rows)
    # An estimated count may be off by a few percent of the table: the planner's histogram
    # was 16,000 rows short for `relationship__id__gt=704175` (ids and relationship ids grow
    # together), which stopped the walk 15,700 rows before its first match, and the fallback
    # sorted 2.3 million (1.4 s at 3M instead of 0.25). So that many more (ESTIMATE_ERROR).
    unmatched = matches.total - matches.value
    if not matches.exact:
        unmatched += round(matches.total * ESTIMATE_ERROR)
    bound_to_succeed = unmatched + rows
    affordable = _affordable_rows(matches, facts)
    budget = min(max(expected, matches.value, MIN_WALK),
                 max(MAX_WALK, min(max(matches.value, affordable), bound_to_succeed)))  # fmt: skip
    if facts.group_rows is not None:  # a walk costs about what a read of as many rows does
        budget = min(budget, max(facts.group_rows, MIN_WALK))
    return budget


def _expected_walk(matches: Count, rows: int) -> int:
    """Rows of the sort key's index that hold `rows` matches four times over, at the
    count's share of the table."""
    return 4 * rows * matches.total // max(matches.value, 1)


def _affordable_rows(matches: Count, facts: Facts) -> int:
    """The rows a walk can read for what its fallback costs, by the planner's units, which
    lift MAX_WALK for a walk whose matches are spread thin along the sort key's index: the
    fallback reads every match by the filter's own path (Count.path_cost), and a weak path
    (a day of the month that no index has) costs a scan of the table. `relationship__
    created__day=20&page=50` (id order; 3% match) wants 5,001 rows, some 150,000 of the id
    index: capped at 100,000 the walk came 1,700 rows short and the fallback scanned the
    table, 0.9-1.6 s at 3M on either server; now 70-110 ms. A walk that still fails costs
    at most about twice the fallback (ski rental, as walk_budget's other bounds).

    Only the cap: the walk still reads no more than four times the rows its matches' share
    predicts. A filter correlated with the key puts the first match far along the index
    (`created__year=2023&relationship__last_activity__year=2026&ordering=last_updated`
    meets it after every row updated before 2023), and a walk to what the fallback's cost
    buys read 517,000 rows there: 1.6-2.0 s on PostgreSQL 15, whose 128 MB of shared
    buffers make a walk out of the table's order ten times slower than its cost says.

    The planner prices a row walked along an index in the table's order (the ids) at a
    quarter to a sixth of a row read by a bitmap or an index range, where in memory they
    take about the same time (at 3M: 888,000 ids walked in 0.23-0.36 s for a cost of 51,000;
    the fallback's index range of 147,000 rows in 55 ms for 52,000): so a quarter of the
    rows its cost says (WALK_COST_FACTOR)."""
    if matches.path_cost is None or not facts.walk_row_cost:
        return 0
    return int(matches.path_cost / facts.walk_row_cost / WALK_COST_FACTOR)


def _group_share(matches: Count, rows: int) -> Count:
    """A group's share of the count at the query's selectivity, among all the table's rows,
    which the walk of the next key's index reads: and no walk reads more rows than the
    group holds, read by its own index.

    Sized by the query's own count, the one row of `relationship__id=v` was looked for along
    100,000 rows of the next key's index; sized as an average group, the 534,000 contacts
    with 0 points (of 3M) were the average 600, and the walk of the city index stopped
    after 3,460 rows and 23 of the 26 rows wanted, where the group's sort took 0.44 s. And a
    group inside a group of one phone number is one row at most, not the 100,000 of its
    street (0.33 s on PostgreSQL 15)."""
    value = max(round(rows * matches.value / max(matches.total, 1)), 1)
    return Count(value, False, max(matches.total, value), "group")


# A month or day filter on the sort key (`created__month=3&ordering=-created`) matches one
# slice of every month of the key's order: the walk of its index read every later month
# first (200,000 rows to reach March from December at 3M contacts) and the fallback sorted
# all 250,000 matches (0.7 s). Instead each month from the key's first to its last, in sort
# order, is one range of its (column, id) index, read until the page is full.
CALENDAR_PARTS = ("month", "day")


def calendar_parts(query: ListQuery, keys: list[OrderKey]) -> dict[str, Filter]:
    """The month and day filters on a date or timestamp first key followed by `id`."""
    head = keys[0].field
    if len(keys) != 2 or head.kind not in (Kind.DATE, Kind.DATETIME):
        return {}
    return {f.lookup: f for f in query.filters if f.field == head and f.lookup in CALENDAR_PARTS}


# A pattern filter on the sort key (`last_name__icontains=mül&ordering=last_name`) matches
# whole groups of equal keys, so the page can skip from one distinct key to the next, one
# index descent each, testing the pattern once per key instead of once per row. The walk
# read every A-L name first: 1.1 s at 3M contacts. At most this many distinct keys are
# visited before the filter's own path takes over (a column of mostly unique values); a
# column of at most this many counts as one of few values (Facts.few_values), whose loose
# scan is then cheap and whose groups a text pattern or a search term matches whole.
LOOSE_SCAN_KEYS = 2_000


def matches_whole_groups(query: ListQuery, keys: list[OrderKey]) -> bool:
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


def _has_group_index(query: ListQuery, keys: list[OrderKey], facts: Facts) -> bool:
    head = keys[0].field
    fixed = fixed_fields(query, facts)
    return (
        len(keys) == 2
        and not head.nullable  # a NULL ends the scan of its distinct keys (distinct_keys)
        and any(index[0] == head.name and index[1] in fixed for index in ORDER_INDEXES)
    )


def groups_by_index(query: ListQuery, keys: list[OrderKey], facts: Facts) -> bool:
    """Whether the page is read group by group of the sort key's few values, each group a
    range of an ORDER_INDEXES b-tree whose second column an equality fixes:
    `first_name=Michael&ordering=gender` from (gender, first_name, id), where the walk of the
    gender index passed 1.5 million women first (0.23 s at 3M), and `address__city=Zürich&
    ordering=-address__country` from (country, city, id) (0.16 s)."""
    return _has_group_index(query, keys, facts) and facts.few_values[keys[0].field.column]


# A search sorted by a searched field (`search=müller&ordering=last_name`) finds its matches
# clustered in the groups of equal keys that contain a term: search_text's trigram index gives
# all 373,000 rows with `muller` at 3M contacts in no order, and the walk of the name index met
# none before the middle of the alphabet (0.49 s). So the page is read in two parts: the rows
# whose key contains a term, group by group (the loose scan above), and the rows whose key
# contains none, whose terms are then all in other fields, which those fields' own trigram
# indexes find (crm/db/indexes.sql; for `müller`, none). Only for a key of few distinct values
# (LOOSE_SCAN_KEYS, by the planner's statistics): a key of mostly unique values has no groups
# to skip, and a term's matches are spread along its index.
def _searches_the_key(query: ListQuery, keys: list[OrderKey]) -> bool:
    head = keys[0].field
    return bool(query.search) and len(keys) == 2 and (head.key_of or head.name) in SEARCH_FIELDS


def splits_search(query: ListQuery, keys: list[OrderKey], facts: Facts) -> bool:
    """Not for a term without a trigram (`am`), which the other fields' trigram indexes
    answer with every row: the rows without it in the key were 3 million rechecked
    (`relationship__created__day=23&customer_id__contains=28&search=am&ordering=-address__
    street&page=3`: 47 s at 3M, the statement timeout in production; walked: 0.54 s)."""
    return (
        _searches_the_key(query, keys)
        and facts.few_values[keys[0].field.column]
        and all(term_has_trigram(term) for term in query.search)
    )


def key_columns_asked(query: ListQuery, keys: list[OrderKey], facts: Facts) -> list[str]:
    """The first key's column if choose_first_key_reader or collects may ask whether it has
    few values (groups_by_index, splits_search, an order read by groups), else none:
    gathered before the choice (facts.py)."""
    if (
        _has_group_index(query, keys, facts)
        or _searches_the_key(query, keys)
        or reads_by_groups(keys)
    ):
        return [keys[0].field.column]
    return []


class Reader(Enum):
    """How the range of the first sort key is read (ranges.first_key_rows builds it)."""

    CALENDAR = "a month of the key at a time (CALENDAR_PARTS)"
    LOOSE_SCAN = "from key to distinct key, each key tested once (LOOSE_SCAN_KEYS)"
    KEY_GROUPS = "a range of an order index per key (groups_by_index)"
    SPLIT_SEARCH = "the keys with a term, then the rows without (splits_search)"
    PLAIN = "as any range of rows (choose_rows_reader)"


def choose_first_key_reader(query: ListQuery, keys: list[OrderKey], facts: Facts) -> Reader:
    """The first rule that applies, of those above (each says why)."""
    if calendar_parts(query, keys):
        return Reader.CALENDAR
    if matches_whole_groups(query, keys):
        return Reader.LOOSE_SCAN
    if groups_by_index(query, keys, facts):
        return Reader.KEY_GROUPS
    if splits_search(query, keys, facts):
        return Reader.SPLIT_SEARCH
    return Reader.PLAIN


# Few matches by the count (exact, or the sample's figure of a count bounded by its cost,
# crm/db/count.sql): the page is every match, read once through the filter's own access path
# and sorted, in one statement whatever the order, the page or the cursor. The other plans
# read index ranges per keyset branch and per group of equal first keys, and each fell back
# to that same pass when its walk came up short: for a rare match of a filter that no index
# narrows, one scan of the table per branch and per group. Random survey at 3M on
# PostgreSQL 15 (500 queries, seed 101): p99 979 -> 451 ms, max 3.1 -> 1.8 s.
SMALL_RESULT = 5_000


def collects(
    reader: Reader, facts: Facts, keys: list[OrderKey], offset: int = 0, rows: int | None = None
) -> bool:
    """Whether the page is read as all the matches, sorted (SMALL_RESULT), unless the first
    key's reader bounds its own cost: `created__day=31&ordering=created` matches few rows
    at 200,000 contacts, which the month by month ranges read, while no index has the day.
    So is a bounded count's result (its filter's path costs a scan, for some 5,000 to
    40,000 matches) in an order read by groups, whose window and groups each fell back to
    that scan: `relationship__last_activity__day=27&phone_number__contains=28&ordering=
    -gender,address__country,relationship__last_activity&page=5` (5,206 by the sample) took
    2.4 s at 3M. Not on a first page (or a cursor's) whose first key has many values (small
    groups): the window's walk of its index is then all it reads, bounded like any walk
    (`customer_id__iendswith=4&relationship__last_activity__day=28&ordering=relationship__
    id,-first_name`, one row a group: 10,000 matches of 3M, collected by a scan in 0.5 s,
    walked in 12 ms). Past an offset the window's walk must also find every match before
    the page, and its fallback is such a scan (`last_updated__day=15&phone_number__contains=
    85&ordering=-phone_number,-address__street_number&page=10`: 0.6 s collected, 1.2 s by
    groups on PostgreSQL 15, measured while the window still counted those rows apart).
    Nor where one walk of the sort key's index finds the page's `rows` (and those before
    it) for far less than the filter's path costs (walk_is_cheaper)."""
    matches = facts.matches
    if reader is not Reader.PLAIN or matches is None:
        return False
    if reads_by_groups(keys):
        many_values = not facts.few_values.get(keys[0].field.column, True)
        by_groups = not (many_values and offset == 0)
        return matches.value <= SMALL_RESULT or (matches.method == "bounded" and by_groups)
    return matches.value <= SMALL_RESULT and not walk_is_cheaper(facts, rows)


def walk_is_cheaper(facts: Facts, rows: int | None) -> bool:
    """Whether the walk of the sort key's index that holds `rows` matches four times over
    costs less than reading every match by the filter's path, by the planner's costs (with
    _affordable_rows' allowance for a walk's row): the few matches of a filter whose path
    is an index of half the table read in its own order (`relationship__last_activity__
    day=29&relationship__last_activity__month=8&gender__contains=F&page=10`: 4,600 women
    read by the gender index, 1.1-1.5 s at 3M), where the id index holds them every 700
    rows."""
    matches = facts.matches
    if rows is None or matches is None:
        return False
    return _expected_walk(matches, rows) < _affordable_rows(matches, facts)


def reads_by_groups(keys: list[OrderKey]) -> bool:
    """Whether rows in `keys` order are read one group of equal first keys at a time
    (choose_rows_reader): more than a key and id, or a key and id in opposite directions,
    which no index has either (`ordering=gender,-id`: PostgreSQL walked (gender, id) and
    sorted the 1.5 million women by id before the first row, 1.2 s at 3M; by groups, the
    women are one range of that index read backwards)."""
    mixed = len(keys) == 2 and keys[0].descending != keys[1].descending
    return (len(keys) > 2 or mixed) and not has_index(keys)


def range_of_group(fixed: list[OrderKey], keys: list[OrderKey]) -> bool:
    """Whether an index gives the rows of a group, whose `fixed` keys are equal, in `keys`
    order: then the equalities and the range after the cursor are one range of it (every
    column has one with `id`, crm/db/indexes.sql)."""
    names = frozenset(k.field.name for k in fixed)
    return ([k.field.name for k in keys] == ["id"] and len(names) == 1) or has_index(keys, names)


def group_facts(facts: Facts, rows: int, fixed: list[OrderKey]) -> Facts:
    """The facts for the walk of the next key's index through one group of equal first keys
    `fixed` (RowRanges._by_groups, a cursor's fixed keys) that no index has before that key:
    a group of `rows` rows by the planner, or fewer inside a smaller group already."""
    inside = facts.group_rows if facts.group_rows is not None else rows
    names = facts.group_fixed | {k.field.name for k in fixed}
    return replace(facts, group_rows=max(min(rows, inside), 1), group_fixed=names)


class RowsReader(Enum):
    """How a range of rows in an order is read (ranges.RowRanges.rows builds it)."""

    BY_GROUPS = "one group of equal first keys at a time"
    CALENDAR = "a month of the first key at a time (CALENDAR_PARTS)"
    IDS_FIRST = "the offset skipped by id alone, then the page's rows"
    WALK = "the sort key's index walked, or the filter's path and a sort (walk_budget)"


def choose_rows_reader(
    query: ListQuery, keys: list[OrderKey], offset: int, facts: Facts
) -> RowsReader:
    """The first rule that applies, for rows [offset, ...) in `keys` order."""
    if calendar_parts(query, keys):
        return RowsReader.CALENDAR
    if reads_by_groups(keys):
        # No index gives `ORDER BY gender, birthday DESC, id DESC`: PostgreSQL walks
        # (gender, id) and sorts every woman by birthday before the first row (0.8 s at 3M).
        return RowsReader.BY_GROUPS
    if offset and walk_budget(query, keys, facts) is None:
        # An index range that holds exactly the matches in order: its offset is skipped
        # reading ids alone. Projecting JSON for every skipped row made page 10,000 take 3 s
        # instead of 60 ms. A filter the range does not give is walked with its budget on
        # any page: skipped unbounded, `address__city__istartswith=Be&ordering=
        # -address__city_code&page=5` walked every code above Berlin's (2.6 s at 3M).
        return RowsReader.IDS_FIRST
    return RowsReader.WALK
