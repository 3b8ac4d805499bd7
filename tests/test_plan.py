"""The list's plan chooser (crm/selectors/plan.py) without a database: each rule by itself,
from queries parsed as the view parses them and Facts written by hand. No test here has the
django_db mark, so a rule that read the database would fail with pytest-django's error."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from crm.case_variants import Variants
from crm.fields import FIELDS
from crm.params import ListQuery, OrderKey, parse_list_params
from crm.selectors import plan
from crm.selectors.budget import (
    MAX_WALK,
    MIN_WALK,
    PROBE_FROM,
    PROBE_ROWS,
    Probe,
    walk_budget,
    walk_probe,
)
from crm.selectors.count import Count
from crm.selectors.indexes import (
    MERGED_RANGES,
    Facts,
    case_cuts,
    fixed_fields,
    group_ranges,
    has_index,
    index_ranges,
    key_ranges,
)
from crm.selectors.plan import (
    SMALL_RESULT,
    Reader,
    RowsReader,
    bound_columns_asked,
    calendar_parts,
    choose_first_key_reader,
    choose_rows_reader,
    key_columns_asked,
    probe_bound,
)

# crm_case_variant for ASCII letters, as the database has it (crm/db/schema.sql)
VARIANTS: Variants = {
    c: [c.upper(), c.lower()] for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
}


def query(string: str) -> ListQuery:
    return parse_list_params(parse_qs(string, keep_blank_values=True))


def facts(
    matches: Count | None = None, *, few: dict[str, bool] | None = None, variants: bool = False
) -> Facts:
    return Facts(matches, few or {}, VARIANTS if variants else None)


def first_key_reader(
    string: str, *, few: dict[str, bool] | None = None, variants: bool = False
) -> Reader:
    q = query(string)
    return choose_first_key_reader(q, q.ordering, facts(few=few, variants=variants))


def budget(string: str, matches: Count | None = None, *, variants: bool = False) -> int | None:
    q = query(string)
    return walk_budget(q, q.ordering, facts(matches, variants=variants))


# --- has_index, fixed_fields, case_cuts, calendar_parts ------------------------------------


def test_an_order_index_gives_its_order_in_one_direction_only() -> None:
    assert has_index(query("ordering=last_name,first_name").ordering)
    assert has_index(query("ordering=-last_name,-first_name").ordering)
    assert not has_index(query("ordering=last_name,-first_name").ordering)
    assert not has_index(query("ordering=gender,birthday").ordering)


def test_an_order_index_gives_its_tail_once_equalities_fix_its_head() -> None:
    tail = query("ordering=first_name").ordering
    assert not has_index(tail)
    assert has_index(tail, frozenset({"last_name_key"}))  # names sort by their keys


def test_an_exact_filter_fixes_its_field_and_an_iexact_only_as_equalities_of_its_variants() -> None:
    assert fixed_fields(query("customer_id=M1&gender__in=F,M"), facts()) == {"customer_id"}
    assert fixed_fields(query("customer_id__iexact=bach"), facts(variants=True)) == {"customer_id"}
    # without code point order no variants are known; a long value's are cut to a prefix
    assert not fixed_fields(query("customer_id__iexact=bach"), facts())
    assert not fixed_fields(query("customer_id__iexact=mustermann"), facts(variants=True))
    # a name's equality is its sort key's (crm/params.py on_sort_keys)
    assert fixed_fields(query("last_name=Muster"), facts()) == {"last_name_key"}


def test_an_in_of_one_value_is_its_equality() -> None:
    assert query("address__country__in=DE,DE").filters == query("address__country=DE").filters
    assert query("relationship__points__in=5").filters == query("relationship__points=5").filters
    assert query("address__country__in=DE,AT").filters[0].lookup == "in"


def test_a_walk_is_read_inside_the_equalities_an_order_index_has_before_its_key() -> None:
    def walked(string: str) -> list[list[tuple[str, str, object]]]:
        q = query(string)
        return [[(f.field.name, f.lookup, f.value) for f in r] for r in index_ranges(q, q.ordering)]

    country = "address__country"
    assert walked("address__country=DE&gender=F&ordering=-phone_number") == [
        [(country, "exact", "DE")]
    ]
    # the index must give the walk's whole order: (country, city key, id) has no phone
    # number after the city, and PostgreSQL read the order from (city key, phone number)
    assert walked("address__country=DE&ordering=-address__city") == [[(country, "exact", "DE")]]
    assert walked("address__country=DE&ordering=-address__city,-phone_number") == []
    # a name's equality is its sort key's (crm/params.py on_sort_keys)
    assert walked("address__city=Wien&ordering=phone_number") == [
        [("address_city_key", "exact", "Wien")]
    ]
    # an `in` of a few values: one range each, merged in order
    assert walked("address__country__in=DE,AT,DE&ordering=phone_number") == [
        [(country, "exact", "DE")],
        [(country, "exact", "AT")],
    ]
    many = ",".join(f"C{n}" for n in range(MERGED_RANGES + 1))
    assert walked(f"address__country__in={many}&ordering=phone_number") == []
    assert walked("address__country=DE&ordering=relationship__points") == []  # no such index
    assert walked("address__country__icontains=D&ordering=phone_number") == []  # a pattern
    assert walked("ordering=phone_number") == []


def test_a_pattern_read_as_its_values_is_walked_as_their_ranges() -> None:
    q = query("address__country__icontains=e&ordering=address__city_code")
    resolved = replace(q, filters=[replace(q.filters[0], matching=("DE", "BE"))])
    assert [[f.value for f in r] for r in index_ranges(resolved, q.ordering)] == [["DE"], ["BE"]]


def test_a_case_insensitive_prefix_on_the_first_key_is_its_variants_in_sort_order() -> None:
    q = query("customer_id__istartswith=m&ordering=-customer_id")
    assert case_cuts(q, q.ordering[0], facts(variants=True)) == [("m", "n"), ("M", "N")]
    assert case_cuts(q, q.ordering[0], facts()) is None
    other = query("first_name__istartswith=m&ordering=customer_id")
    assert case_cuts(other, other.ordering[0], facts(variants=True)) is None
    # a name in dictionary order: its prefix is one range of its key's letters instead
    name = query("last_name__istartswith=m&ordering=last_name")
    assert case_cuts(name, name.ordering[0], facts(variants=True)) is None
    assert [f.lookup for f in name.filters] == ["istartswith", "sortprefix"]


def test_calendar_parts_are_month_and_day_filters_on_a_date_first_key_followed_by_id() -> None:
    q = query("created__month=3&created__day=31&created__year=2024&ordering=-created")
    assert sorted(calendar_parts(q, q.ordering)) == ["day", "month"]
    longer = query("created__month=3&ordering=-created,first_name")
    assert calendar_parts(longer, longer.ordering) == {}
    other = query("birthday__month=3&ordering=-created")
    assert calendar_parts(other, other.ordering) == {}


# --- rechecks_term --------------------------------------------------------------------------


def test_a_common_term_is_tested_on_the_rows_that_cost_far_less_by_an_index() -> None:
    # `hauptstraße` (580,000 candidates at 3M) with one street number (a cost of 287 for
    # 11,900 rows)
    assert plan.rechecks_term(580_000, 287, 11_900, rest_indexed=True)
    assert not plan.rechecks_term(580_000, 287, 11_900, rest_indexed=False)  # a scan
    # `thomas` (105,000) with a street number's prefix and more (109,000): its bitmap
    assert not plan.rechecks_term(105_000, 109_000, 601, rest_indexed=True)
    assert plan.rechecks_term(580_000, 45_000, 2_000, rest_indexed=True)  # 12 times
    assert not plan.rechecks_term(plan.RECHECK_FROM - 1, 10, 10, rest_indexed=True)  # cheap
    # `berlin` (405,000 candidates) on the 1.46 million men, cheap to read (32,000) but each
    # tested; `schulstraße` (223,000) on 117,000 Marias (2,700)
    assert not plan.rechecks_term(405_000, 32_000, 1_460_000, rest_indexed=True)
    assert plan.rechecks_term(223_000, 2_700, 117_000, rest_indexed=True)


# --- walk_budget ---------------------------------------------------------------------------

# A filter and an order that no index serves together: its matches may be anywhere along the
# first-name index (the walk), or found by the country index and sorted (the fallback).
WALKED = "address__country=AT&ordering=first_name"
TABLE = 3_000_000
# the cost of a row walked along the id index at 3M: four times the planner's share of a
# whole walk, 0.058 then (crm/selectors/facts.py walk_row_cost)
ID_WALK_ROW_COST = 4 * 0.058
ID = OrderKey(FIELDS["id"], False)


def test_without_a_filter_the_index_is_read_plainly() -> None:
    assert budget("ordering=phone_number") is None


def test_an_index_of_the_order_alone_is_walked_with_a_budget() -> None:
    """(city, postal code, id) gives the order but holds no filter: its walk is bounded."""
    two_keys = (
        "address__country=PL&relationship__points__gt=5&ordering=address__city,address__city_code"
    )
    assert budget(two_keys) == MIN_WALK
    assert budget("address__country=AT&ordering=address__city,address__city_code") == MIN_WALK
    assert budget("address__country=AT&ordering=address__city") is None  # (country, city, id)


def test_a_range_of_the_first_sort_key_is_read_plainly() -> None:
    assert budget("customer_id__startswith=M&ordering=customer_id") is None
    assert budget("relationship__points__gte=5&ordering=-relationship__points") is None
    assert budget("customer_id__contains=M&ordering=customer_id") == MIN_WALK
    # an equality or a list of names is an exact range of the key's index
    assert budget("last_name__in=Muster,Huber&ordering=last_name") is None
    # and so is a pattern read as the values it matches (facts.resolve_patterns)
    q = query("address__country__contains=E&ordering=address__country")
    resolved = replace(q, filters=[replace(q.filters[0], matching=("DE", "ES"))])
    assert walk_budget(resolved, resolved.ordering, facts()) is None


def test_a_range_of_the_first_sort_key_with_other_filters_is_walked_with_a_budget() -> None:
    """The range starts the walk, but the other filters' matches may lie anywhere along it:
    `created__gte=2018-11-01&relationship__created__gt=2024-10-03&ordering=created,...` met
    its first match after six years of contacts, 4.8 s at 3M on PostgreSQL 15."""
    ranged = "created__gte=2018-11-01T00:00:00Z&relationship__created__gt=2024-10-03T00:00:00Z"
    assert budget(f"{ranged}&ordering=created") == MIN_WALK
    assert budget("created__gte=2018-11-01T00:00:00Z&ordering=created") is None
    # one equality and ranges of id, in id order: a range of the equality's (column, id) index
    assert budget("first_name=Jonas&id__gt=100&ordering=id") is None
    assert budget("first_name=Jonas&address__country=DE&id__gt=100&ordering=id") == MIN_WALK


def test_the_walk_of_a_range_of_the_first_sort_key_starts_at_the_range() -> None:
    q = query("created__gte=2018-11-01T00:00:00Z&gender=M&ordering=created")
    assert [(f.field.name, f.lookup) for f in key_ranges(q, q.ordering[0])] == [("created", "gte")]
    assert not key_ranges(q, query("ordering=birthday").ordering[0])


def test_a_pattern_read_as_one_value_fixes_its_field() -> None:
    q = query("address__country__contains=D&ordering=first_name")
    one = replace(q, filters=[replace(q.filters[0], matching=("DE",))])
    assert fixed_fields(one, facts()) == {"address__country"}
    two = replace(q, filters=[replace(q.filters[0], matching=("DE", "DK"))])
    assert not fixed_fields(two, facts())


def test_a_case_insensitive_prefix_of_the_first_sort_key_is_read_as_its_ranges() -> None:
    string = "customer_id__istartswith=m&ordering=customer_id"
    assert budget(string, variants=True) is None
    assert budget(string) == MIN_WALK  # no code point order: no ranges


def test_an_equality_that_fixes_an_order_index_head_reads_a_range_of_it() -> None:
    assert budget("last_name=Muster&ordering=first_name") is None
    assert budget("address__country__iexact=at&ordering=address__city", variants=True) is None
    assert budget("gender=F&ordering=first_name") is None  # (gender, first_name, id)
    assert budget(WALKED) == MIN_WALK


def test_one_equality_in_id_order_reads_its_column_index() -> None:
    assert budget("gender=F") is None
    assert budget("gender=F&birthday__year=1980") == MIN_WALK
    assert budget("gender__in=F,M") is not None  # not an equality that fixes the field


def test_without_a_count_the_walk_is_the_least() -> None:
    assert budget(WALKED, None) == MIN_WALK
    assert budget(WALKED, Count(10, True, 0)) == MIN_WALK


def test_few_matches_are_collected_and_sorted_whatever_the_order() -> None:
    plain, keys = Reader.PLAIN, query("ordering=gender").ordering
    assert plan.collects(plain, facts(Count(SMALL_RESULT, True, TABLE)), keys)
    assert plan.collects(plain, facts(Count(12, False, TABLE, "bounded")), keys)  # a sample's
    assert not plan.collects(plain, facts(Count(SMALL_RESULT + 1, True, TABLE)), keys)
    assert not plan.collects(plain, facts(Count(40_000, False, TABLE, "sample")), keys)
    assert not plan.collects(plain, facts(None), keys)  # no count: nothing says they are few
    # a reader of the first key that bounds its own cost keeps it
    assert not plan.collects(Reader.CALENDAR, facts(Count(12, True, TABLE)), keys)


def test_few_matches_that_a_walk_finds_for_less_than_their_path_costs_are_walked() -> None:
    """4,600 of 3M contacts, women with a day of last activity, whose path is the gender
    index (half the table, read in its own order): page 10 of 10 rows is 101 matches, which
    the id index holds about every 650 rows, a walk of some 130,000 rows for twice them
    costing a fifth of that path (at four times the planner's share per walked row)."""
    keys = query("ordering=id").ordering
    few = Count(4_600, False, TABLE, "bounded", path_cost=175_000)
    walked = replace(facts(few), walk_row_costs={"id": ID_WALK_ROW_COST})
    assert not plan.collects(Reader.PLAIN, walked, keys, 90, rows=101)
    assert plan.collects(Reader.PLAIN, facts(few), keys, 90, rows=101)  # no walk cost known
    cheap = replace(walked, matches=replace(few, path_cost=5_000))  # an index of few rows
    assert plan.collects(Reader.PLAIN, cheap, keys, 90, rows=101)
    # a deep page: the walk would have to read the table many times over
    assert plan.collects(Reader.PLAIN, walked, keys, 4_950, rows=5_001)
    # an order read by groups keeps its own rule: the groups each fall back to the path
    by_groups = query("ordering=-gender,birthday").ordering
    assert plan.collects(Reader.PLAIN, walked, by_groups, 90, rows=101)


def test_few_matches_out_of_the_tables_order_are_walked_for_twice_the_rows_wanted() -> None:
    """`id__gt=1350770&search=am+thomas&ordering=relationship__last_activity`: 4,775 of 3M,
    whose path reads 40,700 pages for 88,000 units; the 51 rows wanted are some 32,000 rows
    of the activity index in, each a page read at random (a cost of 1.2): walked for twice
    that, 77,000 units, not the fallback's 88,000 (64 ms against 180 on PostgreSQL 15). Five
    pages' rows are not."""
    keys = query("ordering=relationship__last_activity").ordering
    few = Count(4_775, False, TABLE, "bounded", path_cost=88_000)
    walked = replace(facts(few), walk_row_costs={"relationship_last_activity": 0.108 + 1.1})
    assert not plan.collects(Reader.PLAIN, walked, keys, 0, rows=51)
    assert plan.collects(Reader.PLAIN, walked, keys, 0, rows=251)


def test_a_bounded_counts_result_is_collected_in_an_order_read_by_groups() -> None:
    bounded = facts(Count(20_000, False, TABLE, "bounded"))
    assert plan.collects(Reader.PLAIN, bounded, query("ordering=-gender,birthday").ordering)
    assert not plan.collects(Reader.PLAIN, bounded, query("ordering=gender").ordering)
    exact = facts(Count(9_000, True, TABLE, "capped"))  # its path was cheap: walked as usual
    assert not plan.collects(Reader.PLAIN, exact, query("ordering=-gender,birthday").ordering)
    # a first key of many values: groups of about one row, the window's walk is the page
    keys = query("ordering=relationship__id,-first_name").ordering
    assert plan.key_columns_asked(query(""), keys, bounded) == ["relationship_id"]
    many = replace(bounded, few_values={"relationship_id": False})
    assert not plan.collects(Reader.PLAIN, many, keys)
    assert plan.collects(Reader.PLAIN, replace(many, few_values={"relationship_id": True}), keys)
    assert plan.collects(Reader.PLAIN, many, keys, offset=450)  # its rows before: a scan too


def test_the_walk_covers_four_pages_at_the_filters_selectivity() -> None:
    # 1 in 300 rows match: four pages of 26 rows (one more tells a next page) are 31,200
    assert budget(WALKED, Count(10_000, False, TABLE)) == 4 * 26 * 300
    assert budget(f"{WALKED}&page_size=50", Count(10_000, False, TABLE)) == 4 * 51 * 300


def test_the_walk_covers_at_least_every_match_and_the_least_walk() -> None:
    assert budget(WALKED, Count(50_000, False, TABLE)) == 50_000
    assert budget(WALKED, Count(1_500, False, 1_600)) == MIN_WALK


def test_the_walk_is_bounded() -> None:
    assert budget(WALKED, Count(1_000, False, TABLE)) == MAX_WALK


def test_the_walk_of_many_matches_goes_as_far_as_it_is_bound_to_succeed() -> None:
    # only 100,000 rows do not match: a walk of 100,026 has the page whatever the order
    assert budget(WALKED, Count(2_900_000, True, TABLE)) == 100_026
    # or, by an estimate, up to 5% of the table more
    assert budget(WALKED, Count(2_900_000, False, TABLE)) == 100_026 + 150_000
    # 1.5M match: walking up to 1.5M rows costs no more than reading them all to sort them
    assert budget(WALKED, Count(1_500_000, False, TABLE)) == 1_500_000


def test_a_walk_goes_as_far_as_its_fallbacks_cost_buys() -> None:
    """A weak filter path costs the fallback a scan of the table (path cost 100,000, about
    `relationship__created__day=20`'s): the walk of matches spread thin reads as many rows
    as a quarter of that cost buys at the walk's own cost per row, past MAX_WALK."""
    q = query("relationship__created__day=20&page_size=100&page=50")
    costly = Count(99_000, False, TABLE, "sample", path_cost=100_000)
    walked = replace(facts(costly), walk_row_costs={"id": ID_WALK_ROW_COST})
    affordable = int(100_000 / ID_WALK_ROW_COST)
    assert walk_budget(q, q.ordering, walked, 5_001) == affordable > MAX_WALK
    # without either cost, the budget of the matches and MAX_WALK, whose 100,000 rows hold
    # 3,300 matches at their share: a walk for 5,001 is not started (the fallback alone)
    assert walk_budget(q, q.ordering, facts(costly), 3_000) == MAX_WALK
    assert walk_budget(q, q.ordering, facts(costly), 5_001) == 0
    cheap = replace(walked, matches=replace(costly, path_cost=1_000))  # an index's few rows
    assert walk_budget(q, q.ordering, cheap, 3_000) == MAX_WALK
    assert walk_budget(q, q.ordering, cheap, 5_001) == 0
    # never beyond where the walk is bound to succeed: 2.9M of 3M match
    most = replace(walked, matches=Count(2_900_000, True, TABLE, "sample", path_cost=10**7))
    assert walk_budget(q, q.ordering, most, 5_001) == 100_000 + 5_001
    # but no further than four times the matches' share: 30,000 matches hold a page of 26
    # every 10,400 rows; a walk that finds none in 30,000 meets a correlated filter
    correlated = replace(walked, matches=Count(30_000, False, TABLE, "sample", path_cost=130_000))
    assert walk_budget(q, q.ordering, correlated, 26) == 30_000
    # a group's walk is bounded by the group, whatever the whole filter's path costs (at
    # the group's share, 29,000 matches, 145 rows are 15,000 rows of the index)
    assert walk_budget(q, q.ordering, plan.group_facts(most, 30_000, []), 145) == 30_000
    # and not started for more rows than the group's share puts in it
    assert walk_budget(q, q.ordering, plan.group_facts(walked, 30_000, []), 5_001) == 0


def test_a_walk_out_of_the_tables_order_is_afforded_fewer_rows() -> None:
    """Page 50 of `gender__contains=F&search=hannover&ordering=last_updated,created`: 27,000
    matches whose fallback reads them for 68,800 units. A row walked along last_updated is
    a page read at random (facts.walk_row_cost: the planner's 0.108 share plus its
    random_page_cost, 1.1): the 1,252 rows wanted, 139,000 rows in at the matches' share,
    are not walked for; walked, they took 0.4 s where the fallback took 0.24 (PostgreSQL 15)."""
    q = query("gender__contains=F&search=hannover&ordering=last_updated,created&page=50")
    matches = Count(27_000, False, TABLE, "sample", path_cost=68_800)
    out_of_order = replace(facts(matches), walk_row_costs={"last_updated": 0.108 + 1.1})
    assert walk_budget(q, q.ordering[:1], out_of_order, 1_252) == 0
    # along the table's order, the same rows are worth walking
    in_order = replace(facts(matches), walk_row_costs={"last_updated": 4 * 0.108})
    assert (walk_budget(q, q.ordering[:1], in_order, 1_252) or 0) > 1_252 * TABLE // 27_000


def test_a_walk_is_costed_along_the_index_it_walks() -> None:
    """`last_updated__month=1&ordering=address__street,-id`: a street's rows are walked in
    id order (rows in the table's order, 0.44 each), not at the street key's cost (a page
    each, 1.21), which stopped the walk for Ackerweg's 101 January rows short, and its
    fallback read the street's 26,000 rows (37 ms of 75 at 3M)."""
    q = query("last_updated__month=1&ordering=address__street,-id")
    matches = Count(209_187, False, TABLE, "planner", path_cost=171_880)
    costs = {"address_street_key": 1.21, "id": 0.44}
    costed = replace(facts(matches), walk_row_costs=costs)
    assert walk_budget(q, q.ordering[1:], costed, 101) == 209_187  # as many as match
    assert walk_budget(q, q.ordering[:1], costed, 101) == int(171_880 / 1.21)


def test_a_walk_expected_to_fall_short_is_not_started() -> None:
    """Page 50 of `address__street_number=63&ordering=-address__country,address__city`: the
    window wants 502 rows of 11,501 matches, 131,000 rows of the country index at their
    share, past MAX_WALK: walked, it read 100,000 rows and then the fallback's 11,501 too.
    The first page's 11 rows are 2,900 rows in: walked."""
    q = query("address__street_number=63&ordering=-address__country,address__city&page=50")
    matches = facts(Count(11_501, False, TABLE, "capped"))
    assert walk_budget(q, q.ordering[:1], matches, 502) == 0
    assert (walk_budget(q, q.ordering[:1], matches, 11) or 0) >= 11 * TABLE // 11_501


def test_a_walk_gives_up_where_a_cheap_fallback_reads_every_match_for_less() -> None:
    """`relationship__id__gte=2151491`: 851,000 matches, which the (relationship_id, id) index
    gives without the table (path cost 29,000): the walk stops at what that cost buys, not at
    the matches' number, which it walked past the two millionth id before falling back."""
    q = query("relationship__id__gte=2151491")
    cheap = Count(851_929, False, TABLE, "planner", path_cost=29_000)
    walked = replace(facts(cheap), walk_row_costs={"id": ID_WALK_ROW_COST})
    affordable = int(29_000 / ID_WALK_ROW_COST)
    assert walk_budget(q, q.ordering, walked) == affordable
    assert MAX_WALK < affordable < 851_929
    # without the costs, the matches' number (as test_the_walk_of_many_matches_goes_...)
    assert walk_budget(q, q.ordering, facts(cheap)) == 851_929


# --- choose_first_key_reader ---------------------------------------------------------------


def test_a_month_or_day_of_the_first_key_is_read_a_month_at_a_time() -> None:
    assert first_key_reader("created__month=3&ordering=-created") is Reader.CALENDAR
    assert first_key_reader("birthday__day=29&ordering=birthday") is Reader.CALENDAR
    assert first_key_reader("created__year=2024&ordering=-created") is Reader.PLAIN
    assert first_key_reader("created__month=3&ordering=-created,first_name") is Reader.PLAIN


def test_a_pattern_on_the_first_key_alone_is_a_loose_scan_of_its_keys() -> None:
    country = "address__country"
    assert first_key_reader(f"{country}__icontains=t&ordering={country}") is Reader.LOOSE_SCAN
    assert (
        first_key_reader(f"{country}__iendswith=t&{country}__startswith=A&ordering=-{country}")
        is Reader.LOOSE_SCAN
    )
    # a range of the index instead; a filter on another column; a search; a second key
    assert first_key_reader(f"{country}__startswith=A&ordering={country}") is Reader.PLAIN
    assert first_key_reader(f"{country}__icontains=t&gender=F&ordering={country}") is Reader.PLAIN
    assert (
        first_key_reader(
            f"{country}__icontains=t&search=wien&ordering={country}", few={"address_country": False}
        )
        is Reader.PLAIN
    )
    assert first_key_reader(f"{country}__icontains=t&ordering={country},gender") is Reader.PLAIN
    # a name's pattern is resolved to its values (facts.resolve_patterns), then its keys'
    assert first_key_reader("last_name__icontains=mül&ordering=last_name") is Reader.PLAIN


def test_an_equality_on_an_order_index_second_column_reads_it_per_first_key() -> None:
    few = {"gender": True}
    assert first_key_reader("first_name=Michael&ordering=gender", few=few) is Reader.KEY_GROUPS
    assert first_key_reader("first_name=Michael&ordering=-gender", few=few) is Reader.KEY_GROUPS
    assert (
        first_key_reader(
            "address__city=Zürich&ordering=-address__country", few={"address_country": True}
        )
        is Reader.KEY_GROUPS
    )
    assert (
        first_key_reader("address__country__iexact=at&ordering=-address__city", variants=True)
        is Reader.PLAIN  # not the head of (address_country, address_city_key, id)
    )


def test_a_nullable_first_key_is_not_read_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan of a key's distinct values ends at its first NULL (distinct_keys): the
    group of NULLs would be missed. No order index starts with a nullable column yet."""
    monkeypatch.setattr(plan, "ORDER_INDEXES", [("birthday", "first_name_key", "id")])
    string = "first_name=Michael&ordering=birthday"
    assert first_key_reader(string, few={"birthday": True}) is Reader.PLAIN
    monkeypatch.setattr(plan, "ORDER_INDEXES", [("gender", "first_name_key", "id")])
    assert first_key_reader(string.replace("birthday", "gender"), few={"gender": True}) is (
        Reader.KEY_GROUPS
    )


def test_a_first_key_of_many_values_is_not_read_per_key() -> None:
    many = {"gender": False}
    assert first_key_reader("first_name=Michael&ordering=gender", few=many) is Reader.PLAIN
    assert first_key_reader("first_name__in=Michael,Anna&ordering=gender", few=many) is Reader.PLAIN


CITY_KEY = "address_city_key"


def test_a_search_sorted_by_a_searched_field_of_few_values_is_split() -> None:
    assert (
        first_key_reader("search=müller&ordering=last_name", few={"last_name_key": True})
        is Reader.SPLIT_SEARCH
    )
    assert (
        first_key_reader("search=müller wien&ordering=-address__city", few={CITY_KEY: True})
        is Reader.SPLIT_SEARCH
    )
    assert (
        first_key_reader("search=müller&ordering=last_name", few={"last_name_key": False})
        is Reader.PLAIN
    )
    assert first_key_reader("search=müller&ordering=last_name,first_name") is Reader.PLAIN
    short = "search=am&ordering=-address__street"  # no trigram: its other fields are a scan
    assert first_key_reader(short, few={"address_street_key": True}) is Reader.PLAIN
    digraph = "search=Müe&ordering=last_name"  # also spelt `mu` (crm_search_spellings())
    assert first_key_reader(digraph, few={"last_name_key": True}) is Reader.PLAIN
    assert first_key_reader("search=müller&ordering=gender") is Reader.PLAIN  # not searched


def test_anything_else_is_read_as_any_range_of_rows() -> None:
    for string in ("", WALKED, "ordering=-relationship__points"):
        assert first_key_reader(string) is Reader.PLAIN


ORDERINGS = [f"{sign}{name}" for name in FIELDS for sign in ("", "-")]
FILTERS = ["", "first_name=Michael", "address__city=Wien", "address__city__iexact=wien",
           "last_name__icontains=mül", "search=müller", "created__month=3"]  # fmt: skip


@pytest.mark.parametrize("filters", FILTERS)
def test_the_columns_gathered_are_exactly_those_the_choice_asks_about(filters: str) -> None:
    """facts.py reads the few values of key_columns_asked() before the choice: the choice
    asks about no other column (that would be a KeyError), and each one it names matters."""
    for ordering in ORDERINGS:
        q = query(f"{filters}&ordering={ordering}")
        asked = key_columns_asked(q, q.ordering, facts(variants=True))
        chosen = {
            choose_first_key_reader(q, q.ordering, Facts(None, dict.fromkeys(asked, few), VARIANTS))
            for few in (True, False)
        }
        assert len(chosen) == (2 if asked else 1), (filters, ordering)


def test_only_a_searched_or_order_index_head_is_asked_about() -> None:
    q = query("search=müller&ordering=last_name")
    assert key_columns_asked(q, q.ordering, facts()) == ["last_name_key"]
    q = query("first_name=Michael&ordering=gender")
    assert key_columns_asked(q, q.ordering, facts()) == ["gender"]
    for string in ("ordering=last_name", "search=müller&ordering=gender", "ordering=gender"):
        q = query(string)
        assert key_columns_asked(q, q.ordering, facts()) == []


# --- choose_rows_reader --------------------------------------------------------------------


def rows_reader(string: str, offset: int = 0) -> RowsReader:
    q = query(string)
    return choose_rows_reader(q, q.ordering, offset, facts(Count(50_000, False, TABLE)))


def test_an_order_of_several_keys_without_an_index_is_read_group_by_group() -> None:
    assert rows_reader("ordering=gender,-birthday") is RowsReader.BY_GROUPS
    assert rows_reader("ordering=gender,-birthday", offset=50) is RowsReader.BY_GROUPS
    assert rows_reader("ordering=last_name,-first_name") is RowsReader.BY_GROUPS
    assert rows_reader("ordering=last_name,first_name") is RowsReader.WALK


def test_a_month_or_day_of_the_key_is_read_a_month_at_a_time_on_any_page() -> None:
    assert rows_reader("created__month=3&ordering=-created") is RowsReader.CALENDAR
    assert rows_reader("created__month=3&ordering=-created", offset=50) is RowsReader.CALENDAR


def test_a_small_groups_months_are_not_read_as_a_calendar() -> None:
    """Inside a group of equal first keys, a calendar's months hold the group's matches only
    at its share (budget.calendar_fits_the_group): for the 6,000 Verenas of 3M, the 70 rows
    wanted lie some 250,000 rows into the Novembers, more than the group has, so the group
    is walked like any other; a group of half the table keeps its calendar."""
    q = query(
        "relationship__last_activity__month=11&address__id__lt=387376"
        "&ordering=-first_name,-relationship__last_activity"
    )
    rest = q.ordering[1:]
    matches = facts(Count(32_000, False, TABLE, "sample"))
    verenas = plan.group_facts(matches, 6_000, q.ordering[:1])
    assert choose_rows_reader(q, rest, 44, verenas) is RowsReader.WALK
    women = plan.group_facts(matches, 1_500_000, q.ordering[:1])
    assert choose_rows_reader(q, rest, 44, women) is RowsReader.CALENDAR
    assert choose_rows_reader(q, rest, 44, matches) is RowsReader.CALENDAR


def test_a_page_past_the_first_skips_its_offset_by_id_in_an_exact_index_range() -> None:
    assert rows_reader("ordering=last_name,first_name", offset=25) is RowsReader.IDS_FIRST
    assert rows_reader("first_name=Anna&ordering=-first_name", offset=25) is RowsReader.IDS_FIRST


def test_a_page_past_the_first_walks_with_its_budget_where_the_range_is_not_exact() -> None:
    assert rows_reader(WALKED, offset=25) is RowsReader.WALK


def test_the_walk_of_a_later_page_covers_the_rows_before_it_too() -> None:
    q = query(WALKED)
    assert walk_budget(q, q.ordering, facts(Count(10_000, False, TABLE)), 51) == 4 * 51 * 300


def test_a_first_page_walks_the_sort_index() -> None:
    assert rows_reader(WALKED) is RowsReader.WALK


# --- group_facts -----------------------------------------------------------------------------


def test_a_group_is_walked_through_the_whole_table_at_most_as_far_as_its_own_size() -> None:
    """The walk of the next key's index reads every group's rows, so the group's matches
    are among the whole table's: 26 of 2% of the 534,000 contacts with 0 points are met
    every 5,800 rows of the city index (a group sized by the query's selectivity alone took
    them for every 38 rows: the walk gave up at 3,460). And no walk reads more rows than
    the group itself holds: a group of up to MIN_WALK rows is read whole and sorted."""
    q = query("relationship__created__day=11&ordering=relationship__points,address__city")
    by_city = q.ordering[1:]
    two_percent = facts(Count(60_000, False, TABLE))
    zero_points = plan.group_facts(two_percent, 534_000, [])
    # 2% of the group, 10,680 rows, among the table's 3 million
    assert walk_budget(q, by_city, zero_points, 26) == 4 * 26 * TABLE // 10_680
    one = plan.group_facts(two_percent, 1, [])
    assert walk_budget(q, by_city, one, 26) == 0
    # a group inside a group of one row has one row at most
    assert plan.group_facts(one, 100_000, []).group_rows == 1
    assert walk_budget(q, by_city, plan.group_facts(one, 100_000, []), 26) == 0
    # a group just over MIN_WALK holds 40 matches, met every 75,000 rows of the city index:
    # no walk of MIN_WALK rows is started, the group is read by its own path and sorted
    assert walk_budget(q, by_city, plan.group_facts(two_percent, MIN_WALK + 1, []), 26) == 0


def test_a_filter_on_the_groups_own_key_may_put_every_match_in_the_group() -> None:
    """`address__city__in=Wien&search=hauptstraße&ordering=-address__city,-created,
    -customer_id&page=50`: the 40,000 matches are all in Wien's group of 208,000 rows, and
    1,252 of them are 94,000 rows of the created index away, within MAX_WALK: walked. At
    the query's share of the group (2,800) no walk would have started."""
    q = query("address__city__in=Wien&search=hauptstrasse&ordering=-address__city,-created")
    wien = plan.group_facts(facts(Count(40_000, False, TABLE, "sample")), 208_000, q.ordering[:1])
    assert walk_budget(q, q.ordering[1:], wien, 1_252) == MAX_WALK
    elsewhere = query("search=hauptstrasse&ordering=-address__city,-created")
    assert walk_budget(elsewhere, elsewhere.ordering[1:], wien, 1_252) == 0


def test_a_small_group_is_sorted_whole_by_all_its_next_keys() -> None:
    """A group of equal first keys of at most MIN_WALK rows (a near-unique timestamp at the
    page's edge) is read whole and sorted by the next keys, in one part of the page's
    statement: no window of the second key (a statement of its own) and no walk."""
    q = query("birthday__gt=1948-10-11&ordering=relationship__last_activity,-address__street,id")
    rest = q.ordering[1:]
    two_percent = facts(Count(60_000, False, TABLE))
    small = plan.group_facts(two_percent, MIN_WALK, q.ordering[:1])
    assert choose_rows_reader(q, rest, 0, small) is RowsReader.WALK
    assert walk_budget(q, rest, small, 26) == 0
    big = plan.group_facts(two_percent, MIN_WALK + 1, q.ordering[:1])
    assert choose_rows_reader(q, rest, 0, big) is RowsReader.BY_GROUPS


def test_the_first_keys_of_a_group_are_a_range_of_the_index_that_fixes_it() -> None:
    """A group of one city (fixed by the page, not by a filter) has its postal codes in one
    range of the (city, postal code, id) index: the window of the group's first keys is
    that range (no budget), not a walk of the postal code index through the whole table."""
    active = "relationship__last_activity__isnull=false"
    q = query(f"{active}&ordering=address__city,-address__city_code,relationship__last_activity")
    head, code = q.ordering[0], q.ordering[1]
    two_percent = facts(Count(60_000, False, TABLE))
    in_city = plan.group_facts(two_percent, 400_000, [head])
    assert walk_budget(q, [code], in_city, 26) is None
    assert walk_budget(q, [code], two_percent, 26) is not None  # the city is not fixed
    # fixed by the query's own filter, the range would have no bound but the filter's rows
    # (all Germans, walked to the end for a rare search): a walk with its budget, as before
    germans = query("address__country=DE&search=köln&ordering=-address__city,-last_name")
    assert walk_budget(germans, germans.ordering[:1], two_percent, 26) is not None


def test_an_order_no_index_has_is_read_by_groups() -> None:
    def by_groups(ordering: str) -> bool:
        return plan.reads_by_groups(query(f"ordering={ordering}").ordering)

    assert by_groups("gender,-birthday") and by_groups("gender,-id")  # -id: opposite ways
    assert not by_groups("gender") and not by_groups("-gender,-id")  # (gender, id) both ways
    assert not by_groups("last_name,first_name")  # (last_name, first_name, id)


def test_a_groups_equalities_and_the_next_key_are_one_index_range_where_an_index_has_them() -> None:
    keys = query("ordering=last_name,first_name,-birthday").ordering
    by_first_name = query("ordering=first_name").ordering
    assert plan.range_of_group(keys[:1], by_first_name)  # (last_name, first_name, id)
    last_name = query("ordering=last_name").ordering
    assert plan.range_of_group(last_name[:1], last_name[1:])  # (last_name, id)
    country = query("ordering=address__country,-relationship__created").ordering
    assert not plan.range_of_group(country[:1], country[1:])


def test_a_case_sensitive_prefix_on_a_name_is_its_keys_only_in_an_order_by_it() -> None:
    """Elsewhere the key's prefix is the name's own range again, which the planner took for
    an independent condition (crm/params.py on_sort_keys); a case-insensitive one keeps it."""
    assert [f.lookup for f in query("first_name__startswith=Li").filters] == ["startswith"]
    ordered = query("first_name__startswith=Li&ordering=gender,-first_name")
    assert [f.lookup for f in ordered.filters] == ["startswith", "sortprefix"]
    caseless = query("first_name__istartswith=li&ordering=gender")
    assert [f.lookup for f in caseless.filters] == ["istartswith", "sortprefix"]


def test_a_small_group_of_a_common_terms_search_is_read_apart_in_its_fallback() -> None:
    """plan.reads_group_apart: the 9,236 Aigners, not the 588,000 rows with `hauptstraße`."""
    common = replace(facts(), term_rows=588_000)
    assert plan.reads_group_apart(common, 9_236)
    assert not plan.reads_group_apart(common, 100_000)  # the bitmap then costs less
    assert not plan.reads_group_apart(replace(facts(), term_rows=20_000), 100)  # a rare term
    assert not plan.reads_group_apart(facts(), 100)  # no search


def test_an_in_of_a_few_values_on_an_order_index_second_column_is_a_range_each() -> None:
    """`first_name__in=Hannah,Nicole,Michael&ordering=-last_name`: each last name's group is
    three ranges of (last name, first name, id), merged by id (indexes.group_ranges)."""
    few = {"last_name_key": True}
    q = query("first_name__in=Hannah,Nicole,Michael&ordering=-last_name")
    assert choose_first_key_reader(q, q.ordering, facts(few=few)) is Reader.KEY_GROUPS
    ranges = group_ranges(q, q.ordering[0])
    assert [(f.field.name, f.lookup, f.value) for f in ranges] == [
        ("first_name_key", "exact", name) for name in ("Hannah", "Nicole", "Michael")
    ]
    # an equality is the one range; more values than MERGED_RANGES are walked
    assert group_ranges(query("first_name=Anna&ordering=-last_name"), q.ordering[0]) == []
    many = ",".join(f"N{n}" for n in range(MERGED_RANGES + 1))
    wide = query(f"first_name__in={many}&ordering=-last_name")
    assert choose_first_key_reader(wide, wide.ordering, facts(few=few)) is Reader.PLAIN


# --- walk_probe ----------------------------------------------------------------------------


def test_a_long_walk_goes_in_two_steps_the_first_as_far_as_the_matches_share_predicts() -> None:
    spread = facts(Count(300_000, False, TABLE))  # 10%: 26 rows in about 260
    assert walk_probe(spread, ID, 26, 300_000) == Probe(MIN_WALK, 100 * PROBE_ROWS / TABLE)
    rare = facts(Count(3_000, False, TABLE))  # 0.1%: 4 x 26 rows in 104,000
    assert walk_probe(rare, ID, 26, 300_000) == Probe(104_000, 100 * PROBE_ROWS / TABLE)


def test_a_short_walk_or_one_its_first_step_nearly_covers_is_made_at_once() -> None:
    assert walk_probe(facts(Count(300_000, False, TABLE)), ID, 26, PROBE_FROM - 1) is None
    assert walk_probe(facts(Count(3_000, False, TABLE)), ID, 26, 150_000) is None
    assert walk_probe(facts(None), ID, 26, 300_000) is None  # no count: nothing to share out


def test_a_shorter_walk_that_costs_half_its_fallback_goes_in_two_steps() -> None:
    """Out of the table's order a walked row costs a page (1.2): a budget of fewer rows than
    PROBE_FROM that costs half the fallback or more goes in two steps; one of far less
    walks on."""
    spread = Count(300_000, False, TABLE, path_cost=30_000)
    out_of_order = replace(facts(spread), walk_row_costs={"id": 1.2})
    assert walk_probe(out_of_order, ID, 26, 12_500) is not None
    assert walk_probe(out_of_order, ID, 26, 12_400) is None
    cheap = replace(facts(replace(spread, path_cost=None)), walk_row_costs={"id": 1.2})
    assert walk_probe(cheap, ID, 26, 12_500) is None  # no fallback cost known


def test_a_walk_inside_a_group_is_made_at_once() -> None:
    in_group = plan.group_facts(facts(Count(300_000, False, TABLE)), 200_000, [])
    assert walk_probe(in_group, ID, 26, 300_000) is None


# --- probe_bound -----------------------------------------------------------------------------

IN_TABLE_ORDER = {"id": 1, "address_id": 1, "relationship_id": 1, "created": 0}


def bound(string: str, order: dict[str, int] = IN_TABLE_ORDER) -> tuple[str, bool] | None:
    q = query(string)
    found = probe_bound(q, q.ordering, replace(facts(), table_order=order))
    return None if found is None else (f"{found.filter.field.name}__{found.filter.lookup}",
                                       found.descending)  # fmt: skip


def test_a_range_of_a_column_in_table_order_is_probed_from_where_the_order_starts() -> None:
    """In id order, the address ids above a value are read upwards from it; in descending
    id order those below one downwards; a range from the end it bounds."""
    assert bound("address__id__gt=1108116") == ("address__id__gt", False)
    assert bound("relationship__id__range=5,9&ordering=-id") == ("relationship__id__range", True)
    assert bound("address__id__lte=500&ordering=-id") == ("address__id__lte", True)
    assert bound("id__gte=7&ordering=address__id") == ("id__gte", False)
    # a column that runs against the table's order is read the other way
    assert bound("address__id__lt=500", {"id": 1, "address_id": -1}) == ("address__id__lt", True)


def test_no_probe_where_the_walk_starts_at_the_range_or_nothing_follows_the_table() -> None:
    assert bound("address__id__lt=500") is None  # the walk's first rows are in it
    assert bound("address__id__gte=500&ordering=-id") is None
    assert bound("id__gt=5") is None  # the key's own range: its index range
    assert bound("created__gt=2020-01-01") is None  # the timestamps do not follow the table
    assert bound("address__id__gt=5&ordering=created") is None
    assert bound("address__id__gt=5", {"id": 1, "address_id": 0}) is None
    # no BRIN index of the points (crm/sql.py BLOCK_RANGE_COLUMNS) for the fallback
    assert bound("relationship__points__gt=5", {"id": 1, "relationship_points": 1}) is None
    both = {"id": 1, "relationship_points": 1, "address_id": 1}
    assert bound("relationship__points__gt=5&address__id__gt=7", both) == ("address__id__gt", False)


def test_a_probe_only_for_one_key_and_no_search() -> None:
    """A search term has paths of its own; a second key is more than the bound orders."""
    assert bound_columns_asked(query("address__id__gt=5"), query("").ordering) == [
        "id", "address_id"]  # fmt: skip
    assert bound("address__id__gt=5&ordering=relationship__id") == ("address__id__gt", False)
    assert bound("address__id__gt=5&search=huber") is None
    assert bound("address__id__gt=5&ordering=address__city,id") is None
    assert bound_columns_asked(query("gender=F"), query("").ordering) == []
