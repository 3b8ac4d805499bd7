"""Strict parsing of the list's query string into a ListQuery, or a list of errors.

Nothing is silently ignored: an unknown parameter, field or lookup, a value that does not
parse as the field's type, a repeated parameter, all answer 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm.fields import (
    CONTROL_PARAMS,
    FIELDS,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    RANK,
    Field,
    Kind,
)

MAX_VALUE_LENGTH = 1000
MAX_IN_VALUES = 1000
MAX_SEARCH_TERMS = 10
MAX_ORDERING_KEYS = 5
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PART_RANGES = {"year": (1, 9999), "month": (1, 12), "day": (1, 31)}


def short(raw: str) -> str:
    """Input echoed in an error, cut short: 100 kB in must not mean 100 kB out."""
    return raw if len(raw) <= 50 else raw[:50] + "…"


def shown(raw: str) -> str:
    return repr(short(raw))


class InvalidParams(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Filter:
    field: Field
    lookup: str
    value: Any  # already parsed: a scalar, a list (in, range) or a bool (isnull)
    # a pattern read as the field's values that it matches (crm/selectors/facts.py resolve_patterns)
    matching: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool


@dataclass(frozen=True)
class RankWords:
    """The sort letters of the words of names and places that a search's terms are
    (`whole`) or start (`start`, the whole ones too), which rank its matches
    (crm/selectors/rank.py)."""

    whole: list[str]
    start: list[str]


@dataclass
class ListQuery:
    filters: list[Filter] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    ordering: list[OrderKey] = field(default_factory=list)  # ends with id, always
    ordering_param: str = "id"
    page_size: int = PAGE_SIZE_DEFAULT
    page: int | None = None
    cursor: str | None = None
    count_exact: bool = False
    # search terms tested on the rows of the query's other conditions, not through the
    # trigram index (crm/selectors/facts.py resolve_search)
    rechecked: frozenset[str] = frozenset()
    # search terms read as the values of each searched column that hold them, and the
    # customer ids and phone numbers that may (crm/selectors/facts.py resolve_held_terms)
    held: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # the words that rank the matches of a search listed by rank (rank.resolve_rank)
    rank_words: RankWords | None = None


class ValueError_(ValueError):
    """A value that does not parse; the message says what is allowed."""


# What check_text() and parse_search() take, as ECMA-262 patterns for the OpenAPI document
# (crm/openapi.py), so that a client generating values from it never meets a 400.
TEXT_PATTERN = r"^[^\u0000]*$"
LIST_ITEM_PATTERN = r"^[^\u0000,]*$"  # the items of `in` and `range` are comma-separated
_SPACE = "".join(
    f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace()
)  # what str.split() splits on (all in the BMP)
SEARCH_PATTERN = (
    f"^[{_SPACE}]*(?:[^{_SPACE}\\u0000]+[{_SPACE}]+){{0,{MAX_SEARCH_TERMS - 1}}}"
    f"(?:[^{_SPACE}\\u0000]+)?[{_SPACE}]*$"
)


def check_text(raw: str) -> str:
    if "\x00" in raw:
        raise ValueError_("must not contain NUL characters")
    if len(raw) > MAX_VALUE_LENGTH:
        raise ValueError_(f"is longer than {MAX_VALUE_LENGTH} characters")
    return raw


def parse_scalar(f: Field, raw: str) -> Any:
    check_text(raw)
    if f.kind is Kind.TEXT:
        return raw
    if f.kind is Kind.INTEGER:
        return parse_integer(raw, -f.maximum - 1, f.maximum)
    if f.kind is Kind.DATE:
        return parse_date(raw)
    return parse_datetime(raw)


def parse_integer(raw: str, low: int, high: int) -> int:
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise ValueError_(f"expects an integer from {low} to {high}, got {shown(raw)}")
    return int(raw)


def parse_date(raw: str) -> date:
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError_(f"expects a date YYYY-MM-DD, got {shown(raw)}") from None


# PostgreSQL takes UTC offsets up to 15:59; ISO 8601 (and Python) up to 23:59.
PG_MAX_OFFSET = timedelta(hours=15, minutes=59)


def parse_datetime(raw: str) -> datetime:
    """ISO 8601; a value without an offset means UTC. An offset PostgreSQL does not take
    (16:00 to 23:59) is converted to UTC here, so no statement can fail on it."""
    try:
        if not _DATE.match(raw):
            raise ValueError
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        offset = value.utcoffset()
        if offset is not None and abs(offset) > PG_MAX_OFFSET:
            value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError_(
            f"expects an ISO 8601 timestamp from year 1 to 9999 such as "
            f"2024-05-01T12:00:00Z, got {shown(raw)}"
        ) from None
    return value


def parse_boolean(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError_(f"expects true or false, got {shown(raw)}")
    return raw == "true"


def parse_filter_value(f: Field, lookup: str, raw: str) -> Any:
    if lookup == "isnull":
        return parse_boolean(raw)
    if lookup in PART_RANGES:
        return parse_integer(raw, *PART_RANGES[lookup])
    if lookup in ("in", "range"):
        items = raw.split(",")
        if lookup == "range" and len(items) != 2:
            raise ValueError_(f"expects two comma-separated values (low,high), got {shown(raw)}")
        if len(items) > MAX_IN_VALUES:
            raise ValueError_(f"accepts at most {MAX_IN_VALUES} values")
        return [parse_scalar(f, item) for item in items]
    return parse_scalar(f, raw)


def parse_filter(name: str, raw: str) -> Filter:
    field_name, lookup = _split_lookup(name)
    f = FIELDS.get(field_name)
    if f is None:
        raise ValueError_(
            f"is not a known parameter: use {', '.join(CONTROL_PARAMS)} or a filter "
            f"<field>[__<lookup>] on one of {', '.join(FIELDS)}"
        )
    if lookup not in f.lookups:
        raise ValueError_(
            f"lookup {shown(lookup)} does not apply to {f.kind.value} field {f.name!r}; "
            f"allowed: {', '.join(f.lookups)}"
        )
    value = parse_filter_value(f, lookup, raw)
    if lookup == "in" and len(set(value)) == 1:
        # One value, however often: its equality, which the plan knows fixes the column (the
        # first column of an order's index: `address__country__in=DE&ordering=phone_number`
        # walked the phone index past every other country, 2.6 s at 3M; as `=`, 2.4 ms)
        # and the count sizes from the column's statistics.
        return Filter(f, "exact", value[0])
    return Filter(f, lookup, value)


def _split_lookup(name: str) -> tuple[str, str]:
    """'address__city__icontains' -> ('address__city', 'icontains')."""
    if name in FIELDS or "__" not in name:
        return name, "exact"
    head, _, tail = name.rpartition("__")
    return head, tail


def parse_ordering(raw: str) -> list[OrderKey]:
    names = raw.split(",")
    if len(names) > MAX_ORDERING_KEYS:
        raise ValueError_(f"accepts at most {MAX_ORDERING_KEYS} keys")
    keys: list[OrderKey] = []
    for name in names:
        f = FIELDS.get(name.removeprefix("-"))
        if f is None:
            raise ValueError_(
                f"unknown field {shown(name)}; use any of {', '.join(FIELDS)}, "
                "with - for descending"
            )
        # A field's second mention can never apply (rows it would order are equal on it),
        # like the keys after id below: dropped, not an error, as the schema allows it.
        f = f.sort_key or f  # a name sorts in dictionary order (crm/fields.py)
        if all(k.field is not f for k in keys):
            keys.append(OrderKey(f, name.startswith("-")))
    # id is the final tie-break, so the order is total; keys after id could never apply.
    ids = [n for n, k in enumerate(keys) if k.field.name == "id"]
    if ids:
        return keys[: ids[0] + 1]
    # Decision: the tie-break runs in the direction of the last key, so that one (column, id)
    # index serves `column` and `-column` (scanned backwards), and no (column DESC, id)
    # index is needed for the columns with huge groups of ties (gender, country, points...).
    return [*keys, OrderKey(FIELDS["id"], keys[-1].descending)]


def parse_search(raw: str) -> list[str]:
    """The terms, each once: a term typed twice is one condition, which the count tested
    twice on every candidate (`search=hauptstraße hauptstraße` with two filters: 0.63 s at
    3M, 0.37 s as one term)."""
    terms = check_text(raw).split()
    if len(terms) > MAX_SEARCH_TERMS:
        raise ValueError_(f"accepts at most {MAX_SEARCH_TERMS} terms")
    return list(dict.fromkeys(terms))


def _single(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params[name]
    if len(values) != 1:
        raise ValueError_("is given more than once")
    return values[0]


def _apply_control(query: ListQuery, name: str, raw: str) -> None:
    if name == "page":
        query.page = parse_integer(raw, 1, 10**9)
    elif name == "page_size":
        query.page_size = parse_integer(raw, 1, PAGE_SIZE_MAX)
    elif name == "cursor":
        query.cursor = raw
    elif name == "ordering":
        query.ordering_param = raw
        query.ordering = parse_ordering(raw)
    elif name == "search":
        query.search = parse_search(raw)
    elif name == "count":
        if raw not in ("exact", "estimate"):
            raise ValueError_(f"expects exact or estimate, got {shown(raw)}")
        query.count_exact = raw == "exact"


def parse_list_params(params: Mapping[str, Sequence[str]]) -> ListQuery:
    """Parse a query string (name -> list of values, like Django's QueryDict.lists())."""
    query = ListQuery(ordering=parse_ordering("id"))
    errors: list[dict[str, str]] = []
    for name in params:
        try:
            raw = _single(params, name)
            if name in CONTROL_PARAMS:
                _apply_control(query, name, raw)
            else:
                query.filters.append(parse_filter(name, raw))
        except ValueError_ as error:
            errors.append({"param": short(name), "message": f"{short(name)} {error}"})
    if query.page is not None and query.cursor is not None:
        errors.append({"param": "cursor", "message": "cursor cannot be combined with page"})
    if errors:
        raise InvalidParams(errors)
    if query.search and "ordering" not in params:  # best matches first (crm/selectors/ranked.py)
        query.ordering = [OrderKey(RANK, False), OrderKey(FIELDS["id"], False)]
    query.filters = [g for f in query.filters for g in on_sort_keys(f, query.ordering)]
    return query


# What a filter on a field in dictionary order says about its sort key (crm_sort_key(),
# crm/db/schema.sql), so that the key's index serves it, also in that order: the key is
# one-to-one, so an equality is the key's (`last_name=Müller&ordering=last_name` would walk
# the key's index past every name before the M's), and a prefix, case-insensitive or not,
# is a prefix of the key's letters (`sortprefix`, a range of the same index, which also
# holds other spellings: the filter stays). A case-sensitive prefix only in an order by that
# key: elsewhere it is one range of the name's own index, and the planner took the two for
# independent conditions (`first_name__startswith=Li`: 40,000 rows expected as 556), which
# sent a search's terms to be tested row by row on all 40,000 (`&search=sarah schmidt`,
# 215 -> 118 ms at 3M). A case-insensitive one keeps it in any order: its own test is an OR
# of the case variants' ranges, which the key's prefix, tested first, spares most rows
# (`address__city__istartswith=be&search=anna&ordering=-created`: 18 ms without, 11 with).
EQUAL_ON_KEY = ("exact", "in")
PREFIX_OF_KEY = ("startswith", "istartswith", "iexact")
CASELESS = ("istartswith", "iexact")


def on_sort_keys(f: Filter, ordering: Sequence[OrderKey]) -> list[Filter]:
    key = f.field.sort_key
    if key is None:
        return [f]
    if f.matching:  # a pattern read as the values it matches, one-to-one with their keys
        return [Filter(key, "in", list(f.matching), f.matching)]
    if f.lookup in EQUAL_ON_KEY:
        return [Filter(key, f.lookup, f.value)]
    ordered = any(k.field is key for k in ordering)
    if f.lookup in PREFIX_OF_KEY and (ordered or f.lookup in CASELESS):
        return [f, Filter(key, "sortprefix", f.value)]
    return [f]
