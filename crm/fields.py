"""The one registry of what can be filtered, searched and sorted.

Every public field name maps to one column of the read model `crm_contactrow`; filters,
ordering, the OpenAPI schema and the exports are all driven from here, so a name that is not
in FIELDS can never reach SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from crm.db import btree_columns


class Kind(Enum):
    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True)
class Field:
    name: str  # public name, e.g. "address__city"
    column: str  # column of crm_contactrow
    kind: Kind
    nullable: bool = False
    maximum: int = 2**63 - 1  # for integers: the column's range
    # The field's dictionary order (SORT_KEYS): `ordering=<name>` sorts by this key instead
    sort_key: Field | None = None
    # For a sort key: the public field it orders, whose value follows U+0001 in the key
    key_of: str | None = None

    @property
    def lookups(self) -> tuple[str, ...]:
        return LOOKUPS[self.kind]


COMMON_LOOKUPS = ("exact", "in", "isnull")
TEXT_LOOKUPS = (
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
)
RANGE_LOOKUPS = ("gt", "gte", "lt", "lte", "range")
# Patterns that no range of a b-tree gives (a `startswith` is one)
SUBSTRING_LOOKUPS = frozenset({"contains", "icontains", "endswith", "iendswith"})
PART_LOOKUPS = ("year", "month", "day")
LOOKUPS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: COMMON_LOOKUPS + TEXT_LOOKUPS,
    Kind.INTEGER: COMMON_LOOKUPS + RANGE_LOOKUPS,
    Kind.DATE: COMMON_LOOKUPS + RANGE_LOOKUPS + PART_LOOKUPS,
    Kind.DATETIME: COMMON_LOOKUPS + RANGE_LOOKUPS + PART_LOOKUPS,
}

_INT32 = 2**31 - 1
_T, _I, _D, _DT = Kind.TEXT, Kind.INTEGER, Kind.DATE, Kind.DATETIME


def _sorted_by_key(name: str, column: str) -> Field:
    """A text field that sorts in dictionary order, by the column `<column>_key` that a
    trigger keeps (crm_sort_key(), crm/db/schema.sql): `Müller` among the Mue..., `de Vries`
    among the D's."""
    key = Field(f"{column}_key", f"{column}_key", _T, key_of=name)
    return Field(name, column, _T, sort_key=key)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("id", "id", _I),
        _sorted_by_key("first_name", "first_name"),
        _sorted_by_key("last_name", "last_name"),
        Field("gender", "gender", _T),
        Field("customer_id", "customer_id", _T),
        Field("phone_number", "phone_number", _T),
        Field("created", "created", _DT),
        Field("birthday", "birthday", _D, nullable=True),
        Field("last_updated", "last_updated", _DT),
        Field("address__id", "address_id", _I),
        _sorted_by_key("address__street", "address_street"),
        Field("address__street_number", "address_street_number", _T),
        Field("address__city_code", "address_city_code", _T),
        _sorted_by_key("address__city", "address_city"),
        Field("address__country", "address_country", _T),
        Field("relationship__id", "relationship_id", _I, nullable=True),
        Field("relationship__points", "relationship_points", _I, nullable=True, maximum=_INT32),
        Field("relationship__created", "relationship_created", _DT, nullable=True),
        Field("relationship__last_activity", "relationship_last_activity", _DT, nullable=True),
    )
}

# The order of a search without an `ordering`: best matches first (crm/selectors/ranked.py),
# a rank that each request computes, no column of the read model.
RANK = Field("search_rank", "search_rank", _I)

# `search` matches each term against these (through crm_contactrow.search_text).
SEARCH_FIELDS = (
    "first_name",
    "last_name",
    "customer_id",
    "phone_number",
    "address__street",
    "address__city",
)
# The fields whose distinct values crm_value holds (crm/db/words.sql, whose trigger writes
# the same columns): a substring filter on one of them is read as the values it matches
# (crm/selectors/facts.py resolve_patterns), and a search's exact count reads the rows of the
# searched ones by value, through their (column, id) indexes (crm/sql.py search_count_sql).
# The other two searched fields are near-unique.
VALUE_FIELDS = (
    "first_name",
    "last_name",
    "address__street",
    "address__city",
    "address__city_code",
)
SEARCHED_VALUE_FIELDS = tuple(name for name in VALUE_FIELDS if name in SEARCH_FIELDS)

# Orders with a b-tree of their own beyond the (column, id) ones (crm/db/indexes.sql says
# which query needs each), each also serving its tail after equality filters on its leading
# columns. Other orders of several keys are read one group of equal first keys at a time
# (crm/selectors/ranges.py), which is fast unless the first group is a few thousand rows whose
# second key is correlated with the first; an index per pair would cost seed time and disk.
# The sort keys of the fields in dictionary order: never filtered, shown or searched by name;
# crm/params.py orders by them, and reads an equality or a prefix of the field as one of them.
SORT_KEYS: dict[str, Field] = {f.name: f.sort_key for f in FIELDS.values() if f.sort_key}
_FIELD_OF_COLUMN = {f.column: f.name for f in [*FIELDS.values(), *SORT_KEYS.values()]}
ORDER_INDEXES = [
    tuple(_FIELD_OF_COLUMN[c] for c in columns) for columns in btree_columns() if len(columns) > 2
]

PAGE_SIZE_DEFAULT = 25
PAGE_SIZE_MAX = 500
EXACT_COUNT_LIMIT = 10_000  # counts up to this are exact; above, an estimate (crm_count())
CONTROL_PARAMS = ("page", "page_size", "cursor", "ordering", "search", "count")
