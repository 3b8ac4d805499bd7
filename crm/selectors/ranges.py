"""The readers of a range of rows that also read from the database while they build their
SQL: an order of several keys reads the first keys of its page first (RowRanges), a search
sorted by a searched field asks the planner how many rows its second part has
(split_search_rows). first_key_rows turns plan.choose_first_key_reader's choice into SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import groupby
from operator import itemgetter

from crm.fields import FIELDS, SEARCH_FIELDS, Field, Kind
from crm.params import Filter, ListQuery, OrderKey
from crm.selectors.budget import MIN_WALK, walk_budget, walk_probe
from crm.selectors.db import Fetch, plan_rows, plan_rows_each
from crm.selectors.facts import table_order
from crm.selectors.indexes import Facts, group_ranges, index_ranges, key_ranges
from crm.selectors.plan import (
    LOOSE_SCAN_KEYS,
    SMALL_RESULT,
    Reader,
    RowsReader,
    bound_columns_asked,
    calendar_parts,
    choose_rows_reader,
    group_facts,
    probe_bound,
    range_of_group,
    reads_group_apart,
)
from crm.selectors.strategies import (
    TABLE,
    calendar_rows,
    first_rows,
    group_source,
    key_groups,
    loose_scan_rows,
)
from crm.sql import (
    VALUE_COLUMNS,
    Binder,
    block_range_sql,
    equal_sql,
    filter_sql,
    fold_contains_sql,
    folded_value_sql,
    id_holds_sql,
    in_sql,
    order_sql,
    query_where_sql,
    search_sql,
    where_sql,
)


@dataclass
class RowRanges:
    """SQL for a range of matching rows in a given order, from index-driven pieces."""

    query: ListQuery
    facts: Facts
    bind: Binder
    fetch: Fetch
    source: str = TABLE  # where a walk's fallback reads the matches (a group's rows)

    def rows(self, where: str, extra: str, keys: list[OrderKey], limit: int, offset: int) -> str:
        """Rows [offset, offset + limit) of `where AND extra` in `keys` order. `extra` is an
        index range on the first key (a keyset branch) or TRUE."""
        reader = choose_rows_reader(self.query, keys, offset, self.facts)
        if reader is RowsReader.BY_GROUPS:
            return self._by_groups(where, extra, keys, limit, offset)
        if reader is RowsReader.CALENDAR:
            parts = calendar_parts(self.query, keys)
            return calendar_rows(where, extra, keys, limit, offset, parts, self.bind)
        if reader is RowsReader.IDS_FIRST:
            # Deferred join: skip the offset rows by id alone, then build JSON for one page.
            ids = (
                f"SELECT id FROM crm_contactrow WHERE {where} AND {extra} "
                f"ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"
            )
            return f"SELECT * FROM crm_contactrow WHERE id IN ({ids})"
        return self._walked(where, extra, keys, limit, offset)

    def _walked(self, where: str, extra: str, keys: list[OrderKey], limit: int, offset: int) -> str:
        """Rows [offset, offset + limit) from the first limit + offset in `keys` order, found
        by a walk of the sort key's index within its budget (strategies.first_rows)."""
        first = self._first(where, extra, keys, limit + offset)
        if not offset:
            return first
        return f"SELECT * FROM ({first}) w ORDER BY {order_sql(keys)} LIMIT {limit} OFFSET {offset}"

    def _first(self, where: str, extra: str, keys: list[OrderKey], rows: int) -> str:
        """The first `rows` rows in `keys` order, walked within their budget."""
        budget = walk_budget(self.query, keys, self.facts, rows)
        bound = None if budget is None else self._bound(where, extra, keys, rows, budget)
        if not budget:  # no walk: an index range in order, or the filter's path and a sort
            return first_rows(where, extra, keys, rows, budget, source=self.source, bound=bound)
        # the walk reads the ranges of an index that has the equalities before the key, from
        # where the key's own range filters start it
        on_key = key_ranges(self.query, keys[0])
        walked = [f"{extra} AND {where_sql(r + on_key, [], self.bind)}"
                  for r in index_ranges(self.query, keys) or [[]]]  # fmt: skip
        probe = walk_probe(self.facts, keys[0], rows, budget)
        return first_rows(where, extra, keys, rows, budget, walked=walked, source=self.source,
                          probe=probe, bound=bound)  # fmt: skip

    def _bound(
        self, where: str, extra: str, keys: list[OrderKey], rows: int, budget: int
    ) -> str | None:
        """The first key's bound that the first `rows` rows are within (plan.probe_bound):
        the last key of `rows` matches found by the range filter's own index, read from its
        range's start for at most as many rows as the walk (MIN_WALK where the walk is not
        tried); None if they are not found."""
        asked = bound_columns_asked(self.query, keys)
        order = table_order(asked) if asked else {}
        found = probe_bound(self.query, keys, replace(self.facts, table_order=order))
        if found is None:
            return None
        f, head = found.filter, keys[0]
        probe = (
            f"SELECT {head.field.column} FROM (SELECT * FROM crm_contactrow "
            f"WHERE {filter_sql(f, self.bind)} "
            f"ORDER BY {f.field.column} {'DESC' if found.descending else 'ASC'} "
            f"LIMIT {max(budget, MIN_WALK)}) w "
            f"WHERE {where} AND {extra} LIMIT {rows}"
        )
        keys_found = [key for (key,) in self.fetch(probe, self.bind.params) if key is not None]
        if len(keys_found) < rows:
            return None
        col, block_range = head.field.column, block_range_sql(f, self.bind)
        if head.descending:  # (NULLS FIRST: before any key)
            edge = self.bind(min(keys_found), head.field.kind)
            return f"{block_range} AND (({col} + 0) >= {edge} OR {col} IS NULL)"
        edge = self.bind(max(keys_found), head.field.kind)
        return f"{block_range} AND ({col} + 0) <= {edge}"  # (NULLS LAST)

    def in_group(self, equal: str, rows: int, fixed: list[OrderKey]) -> RowRanges:
        """These ranges within one group of `rows` rows by the planner, whose first keys
        `fixed` are equal (`equal`), that no index has before the next key: walked with the
        group's facts, its fallback reading the group apart where plan.reads_group_apart."""
        source = group_source(equal) if reads_group_apart(self.facts, rows) else self.source
        return replace(self, facts=group_facts(self.facts, rows, fixed), source=source)

    def _by_groups(
        self, where: str, extra: str, keys: list[OrderKey], limit: int, offset: int
    ) -> str:
        """A multi-key order (plan.choose_rows_reader), one group of equal first keys at a
        time. The first key's index gives the first keys of the wanted rows (the window).
        Groups wholly inside the window are read by id; a group cut by the window's edge (at
        most two) is a query with the first key fixed, ordered by the other keys, which the
        planner serves from the second key's index, or by sorting the group if it is small.

        The window reads one row past its edge, which tells whether the edge cuts the last
        group: a first key of nearly unique values (a timestamp, a phone number) mostly
        ends its group there, which is then read by id like the others, without the
        planner's size of the group (a statement of its own) or a query of it.
        """
        head = keys[0]
        window = self.fetch(self._window_sql(where, extra, head, limit, offset), self.bind.params)
        if not window:
            return "SELECT * FROM crm_contactrow WHERE FALSE"
        past = window[limit][0] if len(window) > limit else None
        edge = len(window) > limit and past == window[limit - 1][0]  # `past` in the last group
        window = window[:limit]
        skipped = window[0][2]
        groups = [(v, [row[1] for row in rows]) for v, rows in groupby(window, key=itemgetter(0))]
        whole: list[int] = []
        cut: list[tuple[str, int, int]] = []  # (the group's equality, its rows wanted, skipped)
        for n, (value, ids) in enumerate(groups):
            cut_before = n == 0 and skipped > 0
            cut_after = n == len(groups) - 1 and edge
            if cut_before or cut_after:
                cut.append((equal_sql(head, value, self.bind), len(ids), skipped if n == 0 else 0))
            else:
                whole.extend(ids)
        # A group the next key's index holds is a range of it (its facts say the group fixes
        # the key: walked with the query's budget instead, the first-name index was read
        # through the whole table for one rare last name, `address__country__iexact=de&
        # ordering=-last_name,first_name&page=10`: 1.4 million rows, 3.5 s on PostgreSQL 15);
        # the others are walks of it through the whole table, each sized by the planner's
        # estimate of its group.
        alone = range_of_group([head], keys[1:])
        selects = [f"SELECT 1 FROM crm_contactrow WHERE {equal}" for equal, _, _ in cut]
        sizes = plan_rows_each(selects, self.bind.params, self.fetch) if cut and not alone else []
        parts = []
        for n, (equal, wanted, skip) in enumerate(cut):
            within = (
                replace(self, facts=replace(self.facts, group_fixed=self.facts.group_fixed
                                            | {head.field.name}))
                if alone
                else self.in_group(equal, sizes[n], [head])
            )  # fmt: skip
            # `extra`, a range of the first key, is a filter within the group, not a range of
            # the next key's index: inside that walk, the rows it rejected did not count
            # against the walk's budget (`created__year=2023&ordering=created,
            # relationship__created`, the next page: 1.7 million rows at 3M, 1.9 s)
            group = f"{where} AND {extra} AND {equal}"
            parts.append(within.rows(group, "TRUE", keys[1:], wanted, skip))
        if whole:
            ids_sql = ", ".join(self.bind(i, Kind.INTEGER) for i in whole)
            parts.append(f"SELECT * FROM crm_contactrow WHERE id IN ({ids_sql})")
        return " UNION ALL ".join(f"({part})" for part in parts)

    def _window_sql(self, where: str, extra: str, head: OrderKey, limit: int, offset: int) -> str:
        """(first key, id) of rows [offset, offset + limit] in the first key's order alone
        (one past the window's edge), each with how many rows of the window's first group
        come before `offset`: the walk has read them. (Counted apart, they cost a scan for a
        filter no index narrows: `last_updated__day=15&phone_number__contains=85&ordering=
        -phone_number,-address__street_number&page=10`, 0.35 s of 1.2 on PostgreSQL 15.)"""
        # read as any range of rows in (key, id) order: a month or day filter on the key
        # reads it a month at a time (plan.CALENDAR_PARTS) as the page of that order does
        # (`relationship__created__month=1&ordering=-relationship__created,address__id,
        # relationship__last_activity&page=5` walked 229,000 rows of later months, then
        # sorted every January: 0.9 s at 3M)
        by_id = [head, OrderKey(FIELDS["id"], head.descending)]
        first = self.rows(where, extra, by_id, limit + offset + 1, 0)
        col = head.field.column
        numbered = f"SELECT {col} AS k, id, row_number() OVER (ORDER BY {order_sql([head])}) AS n"
        first_group = f"SELECT k FROM w WHERE n = {offset + 1}"
        before = (
            f"SELECT count(*) FROM w b "
            f"WHERE b.n <= {offset} AND b.k IS NOT DISTINCT FROM ({first_group})"
        )
        return (
            f"WITH w AS ({numbered} FROM ({first}) f) "
            f"SELECT k, id, ({before}) FROM w WHERE n > {offset} ORDER BY n"
        )


Held = dict[tuple[int, str], list[str]]  # (term's position, column) -> values that hold it
RowsSql = Callable[[str, int, int], str]  # (extra, limit, offset) -> SQL


def first_key_rows(
    reader: Reader, ranges: RowRanges, keys: list[OrderKey], filters: list[Filter], where: str,
    ranged: Field | None,
) -> RowsSql:  # fmt: skip
    """How a branch that ranges over the first sort key is read, as `reader` says."""
    bind = ranges.bind
    if reader is Reader.LOOSE_SCAN:
        # only here: a group of RowRanges._by_groups adds an equality on another column to
        # `where`, which the loose scan cannot test on the key alone (it answered 500)
        return lambda extra, limit, offset: (
            ranges.rows(where, extra, keys, limit, offset)
            if offset
            else loose_scan_rows(where, extra, keys, limit)
        )
    if reader is Reader.KEY_GROUPS:
        matching = f"SELECT {keys[0].field.column} FROM v WHERE {keys[0].field.column} IS NOT NULL"
        per_value = group_ranges(ranges.query, keys[0])
        in_index = [where_sql([f], [], bind) for f in per_value]
        # each range implies the `in` it splits, which left in the groups' conditions made the
        # planner multiply the two and take the value's own index, filtered by the group's
        # key, for the few rows it expected (PostgreSQL 15: every Michael read for the women)
        rest = [f for f in filters if not _split_by(f, per_value)]
        in_groups = query_where_sql(ranges.query, bind, filters=rest, ranged=ranged)
        return lambda extra, limit, offset: (
            ranges.rows(where, extra, keys, limit, offset)
            if offset
            else key_groups(matching, in_groups, where, extra, keys, limit, ranges=in_index)
        )
    if reader is Reader.SPLIT_SEARCH:
        unsearched = where_sql(filters, [], bind, ranged=ranged)
        held = values_holding(ranges.query.search, ranges.fetch)

        def split(extra: str, limit: int, offset: int) -> str:
            rows = split_search_rows(ranges, where, unsearched, extra, keys, limit + offset, held)
            if rows is None:
                return ranges.rows(where, extra, keys, limit, offset)
            return f"SELECT * FROM ({rows}) p OFFSET {offset}"

        return split
    return lambda extra, limit, offset: ranges.rows(where, extra, keys, limit, offset)


def _split_by(f: Filter, ranges: list[Filter]) -> bool:
    """Whether `ranges` (indexes.group_ranges: one equality per value) are the `in` `f`."""
    listed = f.value if f.lookup == "in" and f.matching is None else f.matching
    if not ranges or not listed or f.field != ranges[0].field:
        return False
    return set(listed) == {r.value for r in ranges}


def split_search_rows(
    ranges: RowRanges, where: str, unsearched: str, extra: str, keys: list[OrderKey], limit: int,
    held: Held | None,
) -> str | None:  # fmt: skip
    """The first `limit` rows in `keys` order of a search sorted by a searched field: the
    rows whose key contains a term, and the few others (see plan.splits_search); None if
    the others are many, which the walk of the key's index finds instead. `unsearched` is
    `where` without the search terms, `held` the names and places that hold each term (None:
    too many, and the walk of the key's index finds the rows)."""
    if held is None:
        return None
    head, bind, terms = keys[0].field, ranges.bind, ranges.query.search
    col, folded = head.column, folded_value_sql(head)
    in_key = " OR ".join(fold_contains_sql(folded, t, bind) for t in terms)
    searched = FIELDS[head.key_of or head.name].column
    rest = f"{unsearched} AND NOT ({in_key}) AND {_in_other_fields(searched, terms, bind, held)}"
    # The planner's estimate: the names' and places' IN lists from their columns'
    # statistics, the customer ids' and phone numbers' folds from their indexes'.
    expected = plan_rows(f"SELECT 1 FROM crm_contactrow WHERE {extra} AND {rest}", bind.params,
                         ranges.fetch)  # fmt: skip
    if expected > SMALL_RESULT:
        return None
    matching = _keys_with_terms(col, folded, terms, bind)
    in_group = _terms_not_in_key(terms, bind)
    keyed = key_groups(matching, f"{unsearched} AND {in_group}", f"{where} AND ({in_key})",
                       extra, keys, limit)  # fmt: skip
    unkeyed = first_rows(rest, extra, keys, limit, 0)
    return (
        f"SELECT * FROM (({keyed}) UNION ALL ({unkeyed})) s ORDER BY {order_sql(keys)} "
        f"LIMIT {limit}"
    )


def _in_other_fields(col: str, terms: list[str], bind: Binder, held: Held) -> str:
    """Each term in one of the searched fields other than the one of column `col`."""
    # With no term in the key, each is in another field: exact without search_text, whose
    # trigram bitmap (all 282,000 rows with `wien`) cost more than the fields' own paths: the
    # names and places that hold the term (their (column, id) b-trees, and the planner sizes
    # them from their statistics), the customer ids and phone numbers whose folds hold it
    # (their trigram indexes).
    others = [FIELDS[name].column for name in SEARCH_FIELDS if FIELDS[name].column != col]

    def in_field(column: str, n: int, term: str) -> str:
        if column not in VALUE_COLUMNS:
            return id_holds_sql(column, term, bind)
        values = held.get((n, column))
        return in_sql(column, Kind.TEXT, values, bind) if values else "FALSE"

    return " AND ".join(
        "(" + " OR ".join(in_field(c, n, t) for c in others) + ")" for n, t in enumerate(terms)
    )


def values_holding(terms: list[str], fetch: Fetch) -> Held | None:
    """The names and places (crm_value, crm/db/words.sql) whose folds hold each term, found by
    crm_value's trigram index, in one statement; None if a term is in more than
    LOOSE_SCAN_KEYS of one column's values (each value is a bound parameter, planned twice:
    then the sort key's index is walked instead)."""
    bind = Binder()
    columns = ", ".join(f"'{c}'" for c in sorted(VALUE_COLUMNS))  # registry columns
    selects = [
        f"SELECT {n}, field, (array_agg(DISTINCT value))[:{LOOSE_SCAN_KEYS + 1}] FROM crm_value "
        f"WHERE field IN ({columns}) AND {fold_contains_sql('crm_fold(value)', term, bind)} "
        f"GROUP BY field"
        for n, term in enumerate(terms)
    ]
    rows = fetch(" UNION ALL ".join(f"({s})" for s in selects), bind.params)
    if any(len(values) > LOOSE_SCAN_KEYS for _, _, values in rows):
        return None
    return {(n, field): values for n, field, values in rows}


def _keys_with_terms(col: str, folded: str, terms: list[str], bind: Binder) -> str:
    """The distinct keys of `v` (strategies.distinct_keys) that contain a term, each with
    `t<n>`: whether it contains term n."""
    # Which terms each key contains, once per key: a group's rows need only the others in
    # search_text. Left to a plain `where`, the planner read a whole group from the trigram
    # index and sorted it (14,000 Michaels at 200k) instead of walking the group by id.
    has = [f"{fold_contains_sql(folded, t, bind)} AS t{n}" for n, t in enumerate(terms)]
    any_term = " OR ".join(f"t{n}" for n in range(len(terms)))
    return (
        f"SELECT * FROM (SELECT {col}, {', '.join(has)} FROM v WHERE {col} IS NOT NULL) k "
        f"WHERE {any_term}"
    )


def _terms_not_in_key(terms: list[str], bind: Binder) -> str:
    """A group's rows: each term that its key (`d`) lacks is in search_text."""
    # (a single term is in every matching key: no condition, which the planner would also
    # count against the group's size)
    in_group = " AND ".join(
        f"(d.t{n} OR {search_sql(t, bind)})" for n, t in enumerate(terms) if len(terms) > 1
    )
    return in_group or "TRUE"
