"""SQL text for the list, built only from registry columns; every value is a bound parameter.

`Binder` decides how a value appears in the text: `%s` for psycopg, or `($1[n])::type` for
the dynamic SQL that crm_count() runs inside the database (its parameters arrive as text[]);
executed_statements() turns the first into the second for crm_walk_on().
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from crm.case_variants import exact_prefix_range, prefix_ranges
from crm.db import block_range_columns, fold_trigram_columns
from crm.fields import (
    FIELDS,
    SEARCH_FIELDS,
    SEARCHED_VALUE_FIELDS,
    SUBSTRING_LOOKUPS,
    Field,
    Kind,
)
from crm.params import Filter, ListQuery, OrderKey

PG_TYPES = {
    Kind.TEXT: "text",
    Kind.INTEGER: "bigint",
    Kind.DATE: "date",
    Kind.DATETIME: "timestamptz",
}
# Text to a date or a timestamp is only a stable cast, so PostgreSQL parsed it again for
# every row it filtered; these immutable wrappers (crm/db/schema.sql) are folded once.
TEXT_CASTS = {Kind.DATE: "crm_date({})", Kind.DATETIME: "crm_timestamptz({})"}
_NON_WORD = re.compile(r"[\W_]")
SEARCHED_COLUMNS = frozenset(FIELDS[name].column for name in SEARCH_FIELDS)
# The columns with a trigram index of their fold (crm/db/indexes.sql says which and why),
# which holds that column alone and keeps an `endswith`'s end (_like_sql).
FOLD_INDEXED_COLUMNS = fold_trigram_columns()
# The columns with a BRIN index of (column + 0) (crm/db/indexes.sql), an expression that no
# other statement writes, so that only crm_bitmap_ids() reads them (block_range_sql).
BLOCK_RANGE_COLUMNS = block_range_columns()
LIKE_PATTERNS = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}
COMPARISONS = {"exact": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class Binder:
    """Placeholders are numbered, so one fragment (the filters) can appear in several
    branches of a statement while its values are bound once."""

    def __init__(self, *, text_array: bool = False) -> None:
        self.values: list[Any] = []
        self.text_array = text_array

    def __call__(self, value: Any, kind: Kind) -> str:
        self.values.append(_as_text(value) if self.text_array else value)
        n = len(self.values)
        if self.text_array:
            return TEXT_CASTS.get(kind, "({})::" + PG_TYPES[kind]).format(f"$1[{n}]")
        # parenthesised: `-9223372036854775808::bigint` would parse as -(too big a bigint)
        return f"({_placeholder(n)})::{PG_TYPES[kind]}"

    def array(self, values: list[Any], kind: Kind) -> str | None:
        """`values` as one array of `kind`, in crm_count()'s text[] only: the slice
        `$1[a:b]`, which PostgreSQL takes in one step, where each `$1[n]` walks the array from
        its start while the planner folds it (a pattern's 1,888 postal codes: 15 ms to plan,
        up to five times a count; docs/performance-notes.md, twentieth session). Folded, it
        is the same constant array to the planner. None elsewhere (the page's values are
        psycopg's, and a walk's statement numbers them one by one), for the kinds that a
        function casts (TEXT_CASTS), which no array cast can fold, and for one value, which
        an IN list makes an equality the planner reasons with (two that differ are FALSE)."""
        if not self.text_array or kind in TEXT_CASTS or len(values) < 2:
            return None
        first = len(self.values) + 1
        self.values.extend(_as_text(v) for v in values)
        return f"($1[{first}:{len(self.values)}])::{PG_TYPES[kind]}[]"

    @property
    def params(self) -> Any:
        if self.text_array:
            return self.values
        return {f"p{n}": value for n, value in enumerate(self.values, 1)}


def _placeholder(n: int) -> str:
    return f"%(p{n})s"


_PLACEHOLDER = re.compile(r"%\(p(\d+)\)s")  # _placeholder's


def executed_statements(statements: list[str]) -> tuple[list[str], str]:
    """`statements`, bound by a Binder for psycopg, as literals for a PL/pgSQL function to
    EXECUTE ... USING one text[] (as crm_walk_on() does): their placeholders as `$1[k]`, and
    the array of their values as text, each cast back by its placeholder's own cast."""
    numbers = list(dict.fromkeys(n for sql in statements for n in _PLACEHOLDER.findall(sql)))
    position = {n: k for k, n in enumerate(numbers, 1)}
    texts = [_PLACEHOLDER.sub(lambda m: f"$1[{position[m[1]]}]", sql) for sql in statements]
    values = ", ".join(f"({_placeholder(int(n))})::text" for n in numbers)
    return ["'" + t.replace("'", "''") + "'" for t in texts], f"ARRAY[{values}]::text[]"


def _as_text(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_sql(f: Filter, bind: Binder, *, ranges: bool = True, one_scan: bool = False) -> str:
    """`one_scan`: as search_sql's, for a substring's redundant search_text condition."""
    column, kind, lookup = f.field.column, f.field.kind, f.lookup
    if f.field.key_of:
        return _sort_key_sql(f, bind)
    if f.matching is not None:
        return in_sql(column, kind, f.matching, bind) if f.matching else "FALSE"
    if lookup == "isnull":
        return f"{column} IS {'' if f.value else 'NOT '}NULL"
    if lookup in COMPARISONS:
        return f"{column} {COMPARISONS[lookup]} {bind(f.value, kind)}"
    if lookup == "in":
        return in_sql(column, kind, f.value, bind)
    if lookup == "range":
        return f"{column} BETWEEN {bind(f.value[0], kind)} AND {bind(f.value[1], kind)}"
    if lookup in ("iexact", "istartswith"):
        return _case_insensitive_sql(f, bind, ranges=ranges)
    if lookup == "startswith":
        return _prefix_sql(column, f.value, bind)
    if lookup == "year":
        return _year_sql(column, kind, f.value, bind)
    if lookup in ("month", "day"):
        # timestamps are taken in UTC (settings.TIME_ZONE), written out as Django's own
        # lookups write it: an immutable expression, which has statistics (indexes.sql)
        utc = f"{column} AT TIME ZONE 'UTC'" if kind is Kind.DATETIME else column
        return f"extract({lookup} FROM {utc}) = {bind(f.value, Kind.INTEGER)}"
    return _like_sql(column, lookup, f.value, bind, one_scan=one_scan)


def in_sql(column: str, kind: Kind, values: Iterable[Any], bind: Binder) -> str:
    distinct = list(dict.fromkeys(values))
    if (array := bind.array(distinct, kind)) is not None:
        return f"{column} = ANY ({array})"
    return f"{column} IN ({', '.join(bind(v, kind) for v in distinct)})"


def _sort_key_sql(f: Filter, bind: Binder) -> str:
    """A filter on a field's value, as its sort key (crm/params.py on_sort_keys); the key
    functions are immutable, so the planner folds them into the index range's bounds."""
    if f.lookup == "sortprefix":  # the keys that start with the value's letters
        col, letters = f.field.column, f"crm_sort_letters({bind(f.value, Kind.TEXT)})"
        end = f"crm_prefix_end({letters})"  # (folded to a constant: no end, TRUE)
        return f"{col} >= {letters} AND ({col} < {end} OR {end} IS NULL)"
    values = list(dict.fromkeys(f.value if f.lookup == "in" else [f.value]))
    if (array := bind.array(values, Kind.TEXT)) is not None:
        return f"{f.field.column} = ANY (crm_sort_keys({array}))"
    keys = ", ".join(f"crm_sort_key({bind(v, Kind.TEXT)})" for v in values)
    return f"{f.field.column} IN ({keys})"


def _year_sql(column: str, kind: Kind, year: int, bind: Binder) -> str:
    """A year as a range of the column, so that its (column, id) index serves it, sorted by
    that column too: `extract(year ...) = 1980` read the whole index (2.5 s at 3M with
    `ordering=birthday`). Year 9999 has no upper bound: Python has no year 10000."""

    def start(y: int) -> date | datetime:
        return datetime(y, 1, 1, tzinfo=UTC) if kind is Kind.DATETIME else date(y, 1, 1)

    since = f"{column} >= {bind(start(year), kind)}"
    return since if year == 9999 else f"{since} AND {column} < {bind(start(year + 1), kind)}"


def _case_insensitive_sql(f: Filter, bind: Binder, *, ranges: bool) -> str:
    """upper(column) = upper(value), or LIKE its prefix, or, when the database orders text
    by code point, the same as ranges of the column's case variants (crm/case_variants.py):
    an index path, where upper() alone scanned the table (a last name that nobody has: 0.3 s
    to count at 3M). The variants of the whole value are the same rows as upper(); those of
    a shorter prefix (a long value has too many) hold more, and upper() stays with them.
    With both, the planner multiplied their selectivities: `address__street_number__
    istartswith=1` was a sixth of its rows.

    A name's or a place's prefix whose sort key's prefix is ANDed with it (crm/params.py
    on_sort_keys) has that range for its index path: its variants' ranges were a second
    one, whose bitmap the planner ANDed with the key's as if they were independent (the
    108,000 Fischers expected as 3,918 in `last_name__istartswith=Fisc&relationship__id__
    gte=2653824`, read whole for 12,000 of the ids' range: 275 ms on PostgreSQL 15; 40 ms
    by the key's and the ids' ranges). So where_sql asks for no variants then, and the
    prefix is upper()'s range alone (_upper_prefix_sql)."""
    column, value = f.field.column, f.value
    match = (
        _upper_prefix_sql(column, value, bind)
        if f.lookup == "istartswith"
        else _like_sql(column, f.lookup, value, bind)
    )
    cuts = prefix_ranges(value, whole=f.lookup == "iexact") if ranges else None
    if not cuts:
        return match
    either = " OR ".join(f"({cut_sql(column, low, high, bind)})" for low, high in cuts)
    if all(len(low) == len(value) for low, _ in cuts):
        return f"({either})"
    return f"{match} AND ({either})"


def _upper_prefix_sql(column: str, value: str, bind: Binder) -> str:
    """upper(column) LIKE upper(value)%, as the range of upper(column) that holds exactly
    those strings when the database orders text by code point: statistics of a name, its
    sort key and its upper() together (crm/db/indexes.sql) then tell the planner how the
    three ranges go together, which they cannot for a LIKE (the 108,000 Fischers were
    expected as 3,833 by their key's range and LIKE, 107,220 by the two ranges)."""
    if exact_prefix_range(value) is None:
        return like_match_sql(column, "istartswith", value, bind)
    start = f"upper({bind(value, Kind.TEXT)})"
    end = f"crm_prefix_end({start})"  # (folded to a constant: no end, TRUE)
    return f"upper({column}) >= {start} AND (upper({column}) < {end} OR {end} IS NULL)"


def _prefix_sql(column: str, value: str, bind: Binder) -> str:
    """LIKE the prefix, or, when the database orders text by code point, the range of the
    column that holds exactly the same strings: an index path on any server. PostgreSQL 15
    takes LIKE's prefix for an index range only under the C collation, not under C.UTF-8 (a
    stock Debian cluster's), where PostgreSQL 18 does: `address__city_code__startswith=12&
    ordering=address__city_code,last_name` read the whole (address_city_code, id) index
    there for the 2,501 rows of its window (3.1 s at 3M)."""
    cuts = exact_prefix_range(value)
    if not cuts:
        return like_match_sql(column, "startswith", value, bind)
    ((low, high),) = cuts
    return cut_sql(column, low, high, bind)


def block_range_sql(f: Filter, bind: Binder) -> str:
    """A range filter on a BLOCK_RANGE_COLUMNS column, as the same condition on its BRIN
    index's expression."""
    return filter_sql(replace(f, field=replace(f.field, column=f"({f.field.column} + 0)")), bind)


def cut_sql(column: str, low: str, high: str | None, bind: Binder) -> str:
    """One case variant's range of a text column (crm/case_variants.py), or its equality."""
    if high is None:
        return f"{column} = {bind(low, Kind.TEXT)}"
    return f"{column} >= {bind(low, Kind.TEXT)} AND {column} < {bind(high, Kind.TEXT)}"


def has_trigram(value: str, *, at_end: bool = False) -> bool:
    """Whether pg_trgm finds a trigram in the pattern: it splits words at anything that is
    not a letter or a digit, and inside a %...% pattern a word needs three characters; at
    the end of the text (a `%value` pattern), where it pads the word with a space, two."""
    words = _NON_WORD.split(value)
    return any(len(word) >= 3 for word in words) or (at_end and len(words[-1]) >= 2)


_DIGRAPH = re.compile(r"([aou])e|(a)a")


def term_has_trigram(term: str) -> bool:
    """has_trigram() of a search term's shortest spelling: its fold, whose ae/oe/ue/aa are
    one letter (crm_search_spellings(), schema.sql), so `mue` is matched as `%mu%` too,
    which has none. (Accents are stripped the way unaccent does for the Latin letters.)"""
    decomposed = unicodedata.normalize("NFD", term.lower())
    plain = unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )
    return has_trigram(_DIGRAPH.sub(r"\1\2", plain))


def like_match_sql(column: str, lookup: str, value: str, bind: Binder) -> str:
    """A text pattern lookup as LIKE (or `iexact` as an equality), folding case the way
    PostgreSQL's UPPER does for the `i` lookups, as Django's lookups do."""
    if lookup == "iexact":
        return f"upper({column}) = upper({bind(value, Kind.TEXT)})"
    pattern = _like_pattern(lookup, value)
    if lookup.startswith("i"):
        return f"upper({column}) LIKE upper({bind(pattern, Kind.TEXT)})"
    return f"{column} LIKE {bind(pattern, Kind.TEXT)}"


def _like_pattern(lookup: str, value: str) -> str:
    return LIKE_PATTERNS[lookup.removeprefix("i")].format(escape_like(value))


def _like_sql(column: str, lookup: str, value: str, bind: Binder, *, one_scan: bool = False) -> str:
    match = like_match_sql(column, lookup, value, bind)
    # A redundant index path: an ASCII value that the column contains (in upper() too: only
    # dotless i and long s reach ASCII there, and they fold to i and s; tests/test_plan_guard.py
    # checks every character) is contained in its fold, crm_fold() = lower(unaccent()), and
    # so in search_text, the folds of the searched columns: a trigram index of either finds
    # the few candidate rows. A rare substring scanned the table twice
    # (`customer_id__icontains=99999`: 2.7 s at 3M). A pattern without a trigram made the
    # trigram index return every row to recheck (`street__icontains=qq`: 7 s at 3M, where a
    # scan takes 1.4 s), so it gets none. Outside ASCII the implication is not proven.
    if _in_search_text(column, lookup, value):
        # search_text is stored: its recheck is cheaper than computing the column's fold
        # for every candidate (`customer_id__contains=954&first_name__icontains=ria`: 22 ms
        # for the count through search_text, 68 through the two folds)
        return f"{match} AND {search_sql(value, bind, one_scan=one_scan)}"
    if column in FOLD_INDEXED_COLUMNS:
        return narrowed_by_fold(match, column, lookup, value, bind)
    return match


def _in_search_text(column: str, lookup: str, value: str) -> bool:
    """Whether _like_sql adds the filter's value as a condition on search_text."""
    return (
        column in SEARCHED_COLUMNS
        and lookup in SUBSTRING_LOOKUPS
        and value.isascii()
        and has_trigram(value)
    )


def narrowed_by_fold(match: str, column: str, lookup: str, value: str, bind: Binder) -> str:
    """`match`, like_match_sql() of `column`, with the same test on the column's fold, which
    a trigram index of crm_fold(column) serves (for an ASCII substring with a trigram, as
    _like_sql says). That index keeps the end of an `endswith`, whose last trigram narrows
    the candidates (`%092`: 3,400, not 9,400), and whose two last characters have one:
    `phone_number__endswith=01` (1% of the rows) had no index path through search_text, and
    was tested on 1.9 million rows with `address__street__contains=stra` (0.5 s)."""
    at_end = lookup.endswith("endswith")
    if (
        lookup not in SUBSTRING_LOOKUPS
        or not value.isascii()
        or not has_trigram(value, at_end=at_end)
    ):
        return match
    folded = _like_pattern(lookup, value.lower())
    return f"{match} AND crm_fold({column}) LIKE {bind(folded, Kind.TEXT)}"


def search_sql(term: str, bind: Binder, *, indexed: bool = True, one_scan: bool = False) -> str:
    if not (indexed and term_has_trigram(term)):
        # A term without a trigram (`am`, `서준`) made search_text's trigram index return
        # every row to recheck: 2.8 s at 3M for `address__country__endswith=HU&search=서준`.
        # crm_holds() is the same test, which no trigram index serves, so the planner takes
        # another path, and tests it after the cheaper filters (crm/db/schema.sql). (The
        # fields' own folds keep `~`: their statistics estimate it.) So does a term that the
        # other conditions narrow far more (facts.resolve_search).
        return f"crm_holds(search_text, crm_search_pattern({bind(term, Kind.TEXT)}))"
    return fold_contains_sql("search_text", term, bind, one_scan=one_scan)


# term -> searched column -> its values that hold the term; a column whose values crm_value
# does not keep (the customer id, the phone number) with no values: id_holds_sql() tests it
Held = dict[str, dict[str, tuple[str, ...]]]
VALUE_COLUMNS = frozenset(FIELDS[name].column for name in SEARCHED_VALUE_FIELDS)
# What the fold of a customer id and of a phone number can hold (crm/models.py, which the
# database checks): a customer id's letters, digits and `._-`; a phone number's digits, after
# a `+` only at its start (E.164).
ID_FOLDS = {
    FIELDS["customer_id"].column: re.compile(r"[a-z0-9._-]+"),
    FIELDS["phone_number"].column: re.compile(r"\+?[0-9]*"),
}


def held_sql(term: str, values: dict[str, tuple[str, ...]], bind: Binder) -> str:
    """A term read as the values that hold it (crm/selectors/facts.py resolve_held_terms):
    the rows with one of them, read by each column's (column, id) b-tree, or whose customer
    id or phone number holds the term (id_holds_sql)."""
    either = " OR ".join(
        in_sql(column, Kind.TEXT, v, bind)
        if column in VALUE_COLUMNS
        else id_holds_sql(column, term, bind)
        for column, v in values.items()
    )
    return f"({either})" if either else "FALSE"


def id_holds_sql(column: str, term: str, bind: Binder) -> str:
    """Whether a customer id's or a phone number's fold holds `term`.

    An ASCII term is its own fold there (lower case), so ID_FOLDS says here whether the
    column can hold it at all, and a phone number holds a term with a `+` only as its start:
    the range of its (phone_number, id) b-tree, where the fold's trigram index read the
    posting lists of digit trigrams that most numbers have (`search=+491519573519`: 52 ms
    for the one match at 3M; by the range, 0.1 ms). Under a collation that does not order
    text by code point, no range is exact (crm/case_variants.py): the trigram index then.

    Otherwise the fold is tested on lower() first, which is the fold of these ASCII columns,
    where crm_fold()'s unaccent() costs about 2 us a row (a walk or a block sample tests each
    row it reads: 30 ms more for the sample of `mull wien`); the fold's test after it is the
    one its trigram index serves."""
    if term.isascii():
        fold = term.lower()
        if not ID_FOLDS[column].fullmatch(fold):
            return "FALSE"
        if fold.startswith("+") and (cuts := exact_prefix_range(fold)):
            ((low, high),) = cuts
            return f"({cut_sql(column, low, high, bind)})"
    return (
        f"({fold_contains_sql(f'lower({column})', term, bind)} "
        f"AND {fold_contains_sql(f'crm_fold({column})', term, bind)})"
    )


def anywhere_sql(term: str, bind: Binder) -> str:
    """Whether a searched field's fold contains the term: the rows of its search_text match,
    which the planner estimates from those columns' statistics where search_text's are blind
    (`search=yilmaz`: 300 expected, 49,397 match). Only EXPLAINed, never run."""
    return " OR ".join(
        fold_contains_sql(f"crm_fold({FIELDS[name].column})", term, bind) for name in SEARCH_FIELDS
    )


def search_count_sql(term: str, bind: Binder, cap: int | None) -> str:
    """The number of rows whose search_text holds `term`, read without the table where it can:
    the rows of each SEARCHED_VALUE_FIELDS column whose value's fold holds the term
    (crm_value's trigram index finds the values, the column's (column, id) b-tree the rows,
    index only), with the rows whose other searched columns' folds hold it (their trigram
    indexes, which visit the table: at most `cap` + 1 of them are read, and the second column
    says whether there were more, which leaves the count unknown). Exactly search_sql()'s
    matches, since search_text is those folds joined by spaces; no row for a term whose fold
    has whitespace (`½` folds to ` 1/2`), which could span two. count(DISTINCT) rather than
    UNION: the planner expects each column's rows to be hundreds of thousands, and a UNION's
    hash table sized for them took longer to set up than the count (7 of 15 ms at 3M)."""
    by_value = " UNION ALL ".join(
        f"SELECT id FROM crm_contactrow WHERE {FIELDS[name].column} = ANY "
        f"(ARRAY(SELECT value FROM v WHERE field = '{FIELDS[name].column}'))"
        for name in SEARCHED_VALUE_FIELDS
    )
    others = (
        " OR ".join(
            id_holds_sql(FIELDS[name].column, term, bind)
            for name in SEARCH_FIELDS
            if name not in SEARCHED_VALUE_FIELDS
        )
        or "FALSE"
    )
    fields = ", ".join(f"'{FIELDS[name].column}'" for name in SEARCHED_VALUE_FIELDS)
    limit, more = ("", "false") if cap is None else (f" LIMIT {cap + 1}", f"count(*) > {cap}")
    return (
        f"WITH v AS MATERIALIZED (SELECT field, value FROM crm_value "
        f"WHERE field IN ({fields}) AND {fold_contains_sql('crm_fold(value)', term, bind)}), "
        f"others AS MATERIALIZED (SELECT id FROM crm_contactrow WHERE {others}{limit}) "
        f"SELECT CASE WHEN NOT {more} THEN (SELECT count(DISTINCT id) FROM "
        f"(SELECT id FROM others UNION ALL {by_value}) m) END, {more} FROM others "
        f"HAVING crm_fold({bind(term, Kind.TEXT)}) !~ '[[:space:]]'"
    )


def fold_contains_sql(text: str, term: str, bind: Binder, *, one_scan: bool = False) -> str:
    """Whether the folded `text` (search_text, crm_fold() of a searched column, which
    crm/db/indexes.sql indexes for the customer id and the phone number, or of a crm_value
    value) contains the search term in any of its spellings: LIKE ANY
    of them written out where there are at most 16 (crm_search_spellings(), whose estimates
    and rechecks are LIKE's), else the regular expression (crm_search_pattern(), both in
    crm/db/schema.sql). The functions are immutable, so with a literal argument they are
    folded at plan time, the CASE keeps one branch, and a trigram index serves the match.

    `one_scan`, where another term is matched on the same trigram index: a term of several
    spellings as its regular expression, one search of the index. As LIKE ANY, the index
    was searched once for each combination of the terms' spellings, each time reading every
    term's trigrams (`search=+491515246502 daniela`: 9 searches, 0.4 s at 3M; 53 ms)."""
    t = bind(term, Kind.TEXT)
    several = f" OR cardinality(crm_search_spellings({t})) > 1" if one_scan else ""
    return (
        f"(CASE WHEN crm_search_spellings({t}) IS NULL{several} "
        f"THEN {text} ~ crm_search_pattern({t}) "
        f"ELSE {text} LIKE ANY (crm_search_spellings({t})) END)"
    )


def folded_value_sql(f: Field) -> str:
    """The field's value folded for search, from its own column or from its sort key's."""
    return f"crm_fold(crm_sort_value({f.column}))" if f.key_of else f"crm_fold({f.column})"


def where_sql(
    filters: list[Filter], search: list[str], bind: Binder, *, ranged: Field | None = None,
    rechecked: frozenset[str] = frozenset(), held: Held | None = None,
) -> str:  # fmt: skip
    """The filters and search terms ANDed; a field whose case-insensitive filter the page
    already reads as ranges (`ranged`) gets no redundant ranges (each cost planning time),
    a `rechecked` term is tested without the trigram index (ListQuery.rechecked), and a
    `held` one is the values that hold it (ListQuery.held)."""
    # the conditions on search_text's trigram index: search terms, and substrings of the
    # searched fields (_like_sql); with more than one, each is one search of the index
    held = held or {}
    terms = [t for t in search if t not in rechecked and t not in held and term_has_trigram(t)]
    substrings = [
        f for f in filters
        if f.matching is None and not f.field.key_of
        and _in_search_text(f.field.column, f.lookup, f.value)
    ]  # fmt: skip
    one_scan = len(terms) + len(substrings) > 1
    # and a field whose sort key's prefix is ANDed has that for its index path
    # (_case_insensitive_sql)
    unranged = {f.field.key_of for f in filters if f.lookup == "sortprefix"}
    unranged |= {ranged.name} if ranged else set()
    parts = [
        filter_sql(f, bind, ranges=f.field.name not in unranged, one_scan=one_scan) for f in filters
    ]
    parts += [
        held_sql(t, held[t], bind)
        if t in held
        else search_sql(t, bind, indexed=t not in rechecked, one_scan=one_scan)
        for t in search
    ]
    return " AND ".join(parts) or "TRUE"


def query_where_sql(
    query: ListQuery, bind: Binder, *, filters: list[Filter] | None = None,
    ranged: Field | None = None,
) -> str:  # fmt: skip
    """where_sql() of the query's filters (or of `filters`) and its search, as the facts
    resolved its terms (ListQuery.rechecked, ListQuery.held)."""
    return where_sql(query.filters if filters is None else filters, query.search, bind,
                     ranged=ranged, rechecked=query.rechecked, held=query.held)  # fmt: skip


def order_sql(keys: list[OrderKey], *, unindexed: bool = False) -> str:
    """ORDER BY keys; `unindexed` wraps each column in a no-op expression so that no index
    can provide the order and the planner must use the filter's access path instead."""
    return ", ".join(
        f"{_unindexed(k.field) if unindexed else k.field.column} "
        f"{'DESC NULLS FIRST' if k.descending else 'ASC NULLS LAST'}"
        for k in keys
    )


def _unindexed(f: Field) -> str:
    if f.kind is Kind.TEXT:
        return f"({f.column} || '')"
    if f.kind is Kind.DATETIME:
        return f"({f.column} + interval '0')"
    return f"({f.column} + 0)"


def _after_value(k: OrderKey, value: Any, bind: Binder, *, nullable: bool) -> list[str]:
    """Predicates for 'strictly after `value`' on one key, each a separate index range."""
    column = k.field.column
    if value is None:  # NULLs are last ascending, first descending
        return [f"{column} IS NOT NULL"] if k.descending else []
    op = "<" if k.descending else ">"
    branches = [f"{column} {op} {bind(value, k.field.kind)}"]
    if nullable and not k.descending:
        branches.append(f"{column} IS NULL")
    return branches


def non_null_columns(filters: Iterable[Filter]) -> frozenset[str]:
    """The columns that the filters hold no NULL in: every filter but `isnull=true` is false
    on a NULL."""
    return frozenset(f.field.column for f in filters if not (f.lookup == "isnull" and f.value))


def equal_sql(k: OrderKey, value: Any, bind: Binder) -> str:
    if value is None:
        return f"{k.field.column} IS NULL"
    return f"{k.field.column} = {bind(value, k.field.kind)}"


@dataclass(frozen=True)
class Branch:
    """One of a keyset's disjoint ranges of rows: the first `fixed` keys equal to the
    cursor's (`equal`, a condition on them) and after it on the next key (`after`, a range
    of that key's index, which a walk of it reads; TRUE when the branch is a whole group)."""

    fixed: int
    equal: str
    after: str

    @property
    def sql(self) -> str:
        return f"{self.equal} AND {self.after}"


def keyset_branches(
    keys: list[OrderKey], values: list[Any], bind: Binder, *, non_null: frozenset[str] = frozenset()
) -> list[Branch]:
    """'After the row with these key values' as disjoint predicates, in sort order, each with
    the number of leading keys it fixes (its rows are ordered by the keys after those).

    Rows after (v1, ..., vn) are: same v1..v(n-1) and after vn, then same v1..v(n-2) and
    after v(n-1), and so on. Each branch is one index range scan; a single OR of them
    could not use an index at all, which made deep pages scan from the start.

    A nullable key's NULLs are a branch of their own, unless the query's filters hold no
    NULL in its column (`non_null`, non_null_columns): read a month at a time for a month
    filter on the key (plan.CALENDAR_PARTS), that empty branch read every such month of
    the key's index, 370,000 rows (1.2 s of a cursor page of `relationship__last_activity__
    month=10&...&ordering=relationship__last_activity` on PostgreSQL 15 at 3M).
    """
    branches = []
    for i in range(len(keys) - 1, -1, -1):
        prefix = [equal_sql(k, v, bind) for k, v in zip(keys[:i], values[:i], strict=True)]
        nullable = keys[i].field.nullable and keys[i].field.column not in non_null
        for after in _after_value(keys[i], values[i], bind, nullable=nullable):
            branches.append(Branch(i, " AND ".join(prefix) or "TRUE", after))
    return branches


def iso_utc(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _json_value(f: Field) -> str:
    return iso_utc(f.column) if f.kind is Kind.DATETIME else f.column


def _json_object(names: list[str], key: Callable[[str], str]) -> str:
    return ", ".join(f"'{key(n)}', {_json_value(FIELDS[n])}" for n in names)


CONTACT_FIELDS = [n for n in FIELDS if "__" not in n]
ADDRESS_FIELDS = [n for n in FIELDS if n.startswith("address__")]
RELATIONSHIP_FIELDS = [n for n in FIELDS if n.startswith("relationship__")]


def row_json_sql(avatar_url: str) -> str:
    """One contact as a json value, built by PostgreSQL (cheaper than Python dicts + dumps);
    crm/selectors/db.py loads it as bytes."""
    return (
        f"json_build_object({_json_object(CONTACT_FIELDS, str)}, "
        f"'address', json_build_object({_json_object(ADDRESS_FIELDS, _suffix)}), "
        f"'relationship', CASE WHEN relationship_id IS NULL THEN NULL ELSE "
        f"json_build_object({_json_object(RELATIONSHIP_FIELDS, _suffix)}) END, "
        f"'avatar_url', {avatar_url})"
    )


def _suffix(name: str) -> str:
    return name.partition("__")[2]
