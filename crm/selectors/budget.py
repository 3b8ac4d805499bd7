"""How far a page walks the sort key's index before it reads the filter's own access path
instead (strategies.first_rows): walk_budget, a pure function of the query and its Facts,
tested without a database (tests/test_plan.py)."""

from __future__ import annotations

from dataclasses import dataclass

from crm.fields import FIELDS
from crm.params import ListQuery, OrderKey
from crm.selectors.count import Count
from crm.selectors.indexes import (
    INDEX_RANGE_LOOKUPS,
    Facts,
    case_cuts,
    fixed_fields,
    fixed_index_gives,
    has_index,
    key_ranges,
)

# How far to walk the sort key's index for a filtered page before using the filter's own
# access path instead (strategies.first_rows): enough for four pages at the filter's
# selectivity, and at least as many rows as the filter matches (unless the fallback reads
# them for less, walk_budget), since the fallback reads all of them: a walk that fails then
# costs at most what the fallback does (ski rental), and one
# that was only unlucky is not abandoned early (`gender=M&ordering=first_name`: the first man
# is 3,400 rows into the first-name index; a 2,000-row walk sent it to sorting 1.4M men, 1.4 s).
# At most MAX_WALK, unless the matches are more: a walk can pass at most the rows that do not
# match before it has the rows it wants, so up to that many it is bound to succeed, and up to
# the matches' number it still costs no more than the fallback. Capped at 100,000,
# `id__lt=2859768&ordering=-relationship__id&page=50` (ids and relationship ids grow together)
# gave up 45,000 rows short and sorted 2.9 million (1.2 s at 3M instead of 50 ms).
MIN_WALK, MAX_WALK = 2_000, 100_000
KEY_OF = {f.sort_key.name: f.name for f in FIELDS.values() if f.sort_key}  # key -> its field
ESTIMATE_ERROR = 0.05  # of the table, that an estimated count may miss by


def walk_budget(
    query: ListQuery, keys: list[OrderKey], facts: Facts, rows: int | None = None
) -> int | None:
    """None: a plain index-ordered query; 0: filter path and sort; n: walk n rows first, to
    find the `rows` wanted (a page and the one more that tells a next page; on a later page,
    also the rows before it)."""
    if reads_an_exact_range(query, keys, facts):
        return None
    if sorts_the_group_whole(facts):
        return 0
    matches = facts.matches
    if matches is None or not matches.total:
        return MIN_WALK
    if facts.group_rows is not None:
        matches = _group_share(matches, facts.group_rows, _filters_the_group(query, facts))
    rows = query.page_size + 1 if rows is None else rows
    budget = _bounded_walk(matches, rows, _affordable_rows(matches, facts, keys[0]))
    if facts.group_rows is not None:  # a walk costs about what a read of as many rows does
        budget = min(budget, max(facts.group_rows, MIN_WALK))
    return 0 if _falls_short(matches, rows, budget) else budget


def _falls_short(matches: Count, rows: int, budget: int) -> bool:
    """Whether a walk of `budget` rows is expected to end before its `rows` matches, at
    their share of the table: then it is not started, and the fallback reads the matches
    alone. Walked, it read its budget and then the fallback too: page 50 of `address__
    street_number=63&ordering=-address__country,address__city` (11,500 matches, 0.4%)
    walked 100,000 rows of the country index for the window's 502, then sorted the 11,500
    (100 ms of 130 at 3M). A group's walk too (at the group's share of the matches,
    _group_share): the cursor page after the last Demir of `birthday__lte=1946-08-25&
    last_updated__month=12&ordering=-gender,last_name` walked 45,000 rows of the last-name
    index for each of the two small genders' groups before reading them (80 of 210 ms)."""
    return rows * matches.total > budget * max(matches.value, 1)


def sorts_the_group_whole(facts: Facts) -> bool:
    """Whether the rows of a group of equal first keys (RowRanges._by_groups, a cursor's
    fixed keys) are read whole, by the query's path with the group's equality, and sorted by
    the next keys: the planner expects at most MIN_WALK rows in it, fewer than the shortest
    walk of the next key's index reads before it gives up (a group costs about a unit a
    row), and no more window of the next key is worth a statement of its own. A first key
    of nearly unique values (a timestamp, a phone number) cuts a group of a row or two at
    the page's edge: `last_updated__year=2024&birthday__gt=1948-10-11&ordering=relationship__
    last_activity,-address__street,-first_name` walked 2,000 rows of the street index for
    the one row of the edge's timestamp, after a statement for the street keys' window and
    one more for the planner's size of its group: seven statements, 15-17 ms at 3M; now
    five."""
    return facts.group_rows is not None and facts.group_rows <= MIN_WALK


def reads_an_exact_range(query: ListQuery, keys: list[OrderKey], facts: Facts) -> bool:
    """Whether an index holds exactly the matches in `keys` order, one range of it (or none
    is filtered): read plainly, no walk needs a budget."""
    filtered = {f.field.name for f in query.filters} | ({"search"} if query.search else set())
    if not filtered:
        return True
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
    # Ranges of the first sort key alone are an exact range of its index. With other filters
    # the range is walked within the budget like the whole index (RowRanges._first adds the
    # range to the walk): left to PostgreSQL, `created__gte=2018-11-01&relationship__created__
    # gt=2024-10-03&ordering=created,...` walked six years of contacts whose relationship is
    # as old as they are before its first match, 4.8 s at 3M on PostgreSQL 15. (Read as case
    # variants only, no range joins the walk: left as it was.)
    on_key = key_ranges(query, keys[0])
    if keys[0].field.name in ranged and (filtered == {keys[0].field.name} or not on_key):
        return True
    fixed = fixed_fields(query, facts)
    # `last_name=X&ordering=first_name`: a range of (last_name, first_name, id)
    if has_index(keys, fixed | facts.group_fixed, prefixed=True):
        return True
    # The first keys of a group's page (RowRanges._by_groups' window) are a range of an index
    # that has the group's fixed columns before the key: walked through the whole table
    # instead, the postal codes of Berlin came after every other city's (`relationship__last_
    # activity__isnull=false&ordering=address__city,-address__city_code,relationship__last_
    # activity`, a next page at 3M: 390,000 rows, 0.8 s).
    if len(keys) == 1 and fixed_index_gives(keys[0], fixed, facts.group_fixed):
        return True
    # one equality (and ranges of id), in id order: a range of its (column, id) index
    beside_key = [f for f in query.filters if f not in on_key]
    return [k.field.name for k in keys] == ["id"] and len(beside_key) == 1 and bool(fixed)


def _bounded_walk(matches: Count, rows: int, affordable: int) -> int:
    """The rows to walk for `rows` matches: four pages' worth at their share, and at least
    as many as match (bounded by what the fallback costs), at most what is bound to succeed.

    An estimated count may be off by a few percent of the table: the planner's histogram
    was 16,000 rows short for `relationship__id__gt=704175` (ids and relationship ids grow
    together), which stopped the walk 15,700 rows before its first match, and the fallback
    sorted 2.3 million (1.4 s at 3M instead of 0.25). So that many more (ESTIMATE_ERROR).

    The matches' number bounds a walk by what the fallback costs only where its rows cost
    what a walk's do: where the planner prices the fallback's path cheaper (an index of
    the filter read without the table), a walk past what that buys costs more than the
    fallback. `relationship__id__gte=2151491` (851,000 matches at 3M, every one past the
    two millionth id) walked all of them, 0.29 s, before the fallback read their ids from
    the (relationship_id, id) index and sorted them, 0.19 s; it gives up after 125,000."""
    unmatched = matches.total - matches.value
    if not matches.exact:
        unmatched += round(matches.total * ESTIMATE_ERROR)
    bound_to_succeed = unmatched + rows
    floor = min(matches.value, affordable) if affordable else matches.value
    return min(max(_expected_walk(matches, rows), floor, MIN_WALK),
               max(MAX_WALK, min(max(matches.value, affordable), bound_to_succeed)))  # fmt: skip


def _expected_walk(matches: Count, rows: int) -> int:
    """Rows of the sort key's index that hold `rows` matches four times over, at the
    count's share of the table."""
    return 4 * rows * matches.total // max(matches.value, 1)


def _row_cost(facts: Facts, key: OrderKey) -> float | None:
    """The cost of a row walked along `key`'s index (Facts.walk_row_costs)."""
    return facts.walk_row_costs.get(key.field.column)


def _affordable_rows(matches: Count, facts: Facts, key: OrderKey) -> int:
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
    buffers make a walk out of the table's order ten times slower than the planner's share
    of a whole walk says (so a walked row's cost, facts.walk_row_cost, is a page at random
    there)."""
    cost = _row_cost(facts, key)
    if matches.path_cost is None or not cost:
        return 0
    return int(matches.path_cost / cost)


def _filters_the_group(query: ListQuery, facts: Facts) -> bool:
    """Whether a filter is on a column that the group's equality fixes (or on the name or
    place whose sort key it fixes)."""
    filtered = {f.field.key_of or f.field.name for f in query.filters}
    return bool(filtered & {KEY_OF.get(name, name) for name in facts.group_fixed})


def _group_share(matches: Count, rows: int, filtered: bool) -> Count:
    """A group's share of the count at the query's selectivity, among all the table's rows,
    which the walk of the next key's index reads: and no walk reads more rows than the
    group holds, read by its own index.

    Sized by the query's own count, the one row of `relationship__id=v` was looked for along
    100,000 rows of the next key's index; sized as an average group, the 534,000 contacts
    with 0 points (of 3M) were the average 600, and the walk of the city index stopped
    after 3,460 rows and 23 of the 26 rows wanted, where the group's sort took 0.44 s. And a
    group inside a group of one phone number is one row at most, not the 100,000 of its
    street (0.33 s on PostgreSQL 15).

    A filter on the group's own column (`filtered`) puts its matches in the groups it
    keeps: `address__city__in=Wien&search=hauptstraße&ordering=-address__city,-created,
    -customer_id&page=50` has all its 40,000 matches in Wien's group of 205,000 rows, not
    2,800 (2% of it), and its walk of the created index finds 1,252 of them in 100,000
    rows (0.14 s at 3M, where reading Wien's rows took 0.45 s): the group may hold them all."""
    if filtered:
        return Count(max(min(rows, matches.value), 1), False, matches.total, "group")
    value = max(round(rows * matches.value / max(matches.total, 1)), 1)
    return Count(value, False, max(matches.total, value), "group")


# A calendar reads the months of its key in order (plan.CALENDAR_PARTS): with a month filter
# a twelfth of the key's index, every month without one. Inside a group of equal first keys
# that no index has before that key (RowRanges._by_groups), those months hold the group's
# matches only at the group's share: page 50 of `relationship__last_activity__month=11&
# address__id__lt=387376&ordering=-first_name,-relationship__last_activity` read six
# Novembers of the activity index, 450,000 rows, for the 145 rows wanted of the Verenas, a
# group of 6,000 (1.8 s at 3M on PostgreSQL 15). So a group's months are read only where
# they are expected to hold the rows wanted in fewer rows than the group has; else the
# group is walked like any other (walk_budget, which a group's rows bound).
CALENDAR_MONTHS = 12


def calendar_fits_the_group(query: ListQuery, facts: Facts, lookups: set[str], rows: int) -> bool:
    """Whether a calendar of the `lookups` (month, day) reads fewer rows than the group has
    for `rows` matches of it (always true outside a group)."""
    matches = facts.matches
    if facts.group_rows is None or matches is None or not matches.total:
        return True
    group = _group_share(matches, facts.group_rows, _filters_the_group(query, facts))
    months = matches.total // CALENDAR_MONTHS if "month" in lookups else matches.total
    return rows * months < facts.group_rows * group.value


def walk_is_cheaper(facts: Facts, rows: int | None, key: OrderKey) -> bool:
    """Whether the walk of the sort key's index that holds `rows` matches twice over, at
    their share of the table, costs less than reading every match by the filter's path
    (_affordable_rows): the few matches of a filter whose path is an index of half the
    table read in its own order (`relationship__last_activity__day=29&relationship__last_
    activity__month=8&gender__contains=F&page=10`: 4,600 women read by the gender index,
    1.1-1.5 s at 3M), where the id index holds them every 700 rows. (Four times over, once a
    walked row out of the table's order cost a page at random, the 51 rows of `id__gt=
    1350770&search=am+thomas&ordering=relationship__last_activity`, 32,000 rows in, were
    not walked for: the 4,775 matches' 40,700 pages were read instead, 180 ms on PostgreSQL
    15 where the walk took 64.)"""
    matches = facts.matches
    if rows is None or matches is None:
        return False
    return _expected_walk(matches, rows) // 2 < _affordable_rows(matches, facts, key)


# A walk's budget is sized so that a failed walk costs about what its fallback does (ski
# rental), which bounds the loss but still pays it: where the filter is correlated with the
# sort key, the matches start far along the key's index, and the walk reads its whole budget
# before the fallback reads them all again. `created__range=2021-05-23,2022-11-01&address__
# id__lte=2691122&ordering=last_updated,...&page=3` (380,000 matches at 3M; a contact is
# updated after it is created, so no early update matches) walked 352,884 rows of the
# last_updated index for none, 1.0 s on PostgreSQL 15, whose 128 MB of shared buffers make a
# walk out of the table's order dearer than its cost says, then fell back in 0.56 s.
# So a walk of more than PROBE_FROM rows goes in two steps (strategies.first_rows): first as
# far as the matches' share predicts (`near`, _expected_walk, which most walks fill); only
# if that falls short, crm_walk_on() (crm/db/walk.sql) takes a block sample of about
# PROBE_ROWS rows of the walk's range, in the key's order, which tells where the matches
# lie along it, and walks on only if it expects the page's rows within the budget. The
# sample is trusted from PROBE_HITS matches in it, and the rows before its first match from
# PROBE_GAPS times its rows per match: with 8 matches and one gap, a first version took
# chance for a gap, and the group of one street walked along the ids for `relationship__
# created__year=2021&ordering=-address__street,id,-address__city` (9 sampled matches, the
# first 1,000 rows in) went to its fallback, 62 ms instead of 15. Nor within half the
# budget: `phone_number__contains=9151&id__lt=2830297&ordering=-address__city,address__
# street_number` (+49151: the matches start at the first German city, 300,000 rows in)
# went to a fallback of 0.9 s, where the walk finds them in 0.4.
# Measured on the random survey's requests in process, old and new alternated (seeds 30303
# and 50505): PostgreSQL 15 total 26.1 -> 24.5 s, p99 465 -> 430 ms, slowest 2.0 -> 1.5 s;
# embedded 14.8 -> 14.8 s, p99 289 -> 282 ms; the median request +0.2 ms (a walk's first
# step and the function's call are planned on every long walk, 0.1 ms more planning).
# So does a shorter walk whose budget costs at least half its fallback (facts.walk_row_cost,
# Count.path_cost), where failing would double the page's cost: out of the table's order a
# row costs a page, and the budget that the fallback's cost buys is fewer rows than
# PROBE_FROM (tests/test_plan_guard.py: walked whole, then the fallback). Not one that costs
# far less than its fallback: the sample's few hits sent `address__street__in=Kärntner Ring,
# Hauptstraße&relationship__created__day=16&ordering=-created`, after a first step of 6,900
# rows without a match, to a fallback of 0.22 s, where walking on found the page in 28 ms.
PROBE_FROM = 20_000
PROBE_ROWS = 7_500
PROBE_HITS = 32
PROBE_GAPS = 4


@dataclass(frozen=True)
class Probe:
    """The two steps of a long walk (PROBE_FROM)."""

    near: int  # rows of the first step
    percent: float  # of the table, the block sample taken when the first step falls short


def walk_probe(facts: Facts, key: OrderKey, rows: int, budget: int) -> Probe | None:
    """Whether a walk of `key`'s index, `budget` rows for `rows` matches, goes in two steps,
    and how. Not inside a group of equal first keys: its walk reads at most the group's
    rows, and its matches, a group's share, are too few for the sample to say where they
    lie."""
    matches = facts.matches
    if matches is None or not matches.total or facts.group_rows is not None:
        return None
    near = max(_expected_walk(matches, rows), MIN_WALK)
    cost, fallback = _row_cost(facts, key), matches.path_cost
    dear = bool(cost and fallback and 2 * budget * cost >= fallback)
    if budget < 2 * near or (budget < PROBE_FROM and not dear):
        return None
    return Probe(near, min(100.0, 100 * PROBE_ROWS / matches.total))
