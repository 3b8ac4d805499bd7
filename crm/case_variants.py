"""Case-insensitive prefixes as index ranges: the strings whose upper() starts like a prefix
start with one of its case variants, each a range of the column's b-tree.

The variants come from crm_case_variant (crm/db/schema.sql), computed by PostgreSQL's own
upper(). The ranges are only read in order when the database compares text by code point
(the builtin provider's collations; libc's C and C.UTF-8), where the strings starting with
`Mü` are exactly those from `Mü` up to `Mý`, and the ranges of distinct variants of one
length never interleave.
"""

from __future__ import annotations

from itertools import product
from math import prod

from django.db import connection

MAX_RANGES = 16  # variants of a longer prefix are cut to this many ranges (a shorter prefix)
_CODE_POINT_ORDER_SQL = """
SELECT datlocprovider = 'b'
       OR (datlocprovider = 'c' AND datcollate IN ('C', 'POSIX', 'C.UTF-8', 'C.utf8'))
  FROM pg_database WHERE datname = current_database()
"""
Variants = dict[str, list[str]]  # {char: the chars with the same upper()}
_cache: dict[str, Variants | None] = {}


def variants_by_upper() -> Variants | None:
    """The database's Variants, or None if text is not ordered by code point."""
    database = connection.settings_dict["NAME"]
    if database not in _cache:
        with connection.cursor() as cursor:
            cursor.execute(_CODE_POINT_ORDER_SQL)
            (ordered,) = cursor.fetchone()
            cursor.execute("SELECT char, variants FROM crm_case_variant")
            _cache[database] = dict(cursor.fetchall()) if ordered else None
    return _cache[database]


Cuts = list[tuple[str, str | None]]  # (low, high) ranges; (value, None): equal to it


def exact_prefix_range(prefix: str) -> Cuts | None:
    """[(low, high)]: the one range holding every string that starts with `prefix` itself
    (`startswith`, case and all); None when ranges cannot do it."""
    ordered = variants_by_upper() is not None
    return ranges_of({} if ordered else None, prefix)


def prefix_ranges(prefix: str, *, whole: bool = False, descending: bool = False) -> Cuts | None:
    """[(low, high)] ranges in sort order whose union holds every string s with upper(s)
    starting with upper(prefix), or equal to it if `whole` ((low, None): s = low, when all
    of the prefix fits in MAX_RANGES variants); None when ranges cannot do it."""
    return ranges_of(variants_by_upper(), prefix, whole=whole, descending=descending)


def ranges_of(
    table: Variants | None, prefix: str, *, whole: bool = False, descending: bool = False
) -> Cuts | None:
    """prefix_ranges() from a `table` of variants_by_upper() already read: a pure function,
    for the list's plan chooser (crm/selectors/plan.py)."""
    if table is None or not prefix:
        return None
    choices = [table.get(c, [c]) for c in prefix]
    while len(choices) > 1 and prod(map(len, choices)) > MAX_RANGES:
        choices.pop()
    if prod(map(len, choices)) > MAX_RANGES or any("\U0010ffff" in c for c in choices[-1]):
        return None
    starts = sorted(("".join(p) for p in product(*choices)), reverse=descending)
    if whole and len(choices) == len(prefix):
        return [(s, None) for s in starts]
    return [(s, s[:-1] + _next_character(s[-1])) for s in starts]


def _next_character(c: str) -> str:
    """The character after `c` in code point order that UTF-8 can encode (no surrogate)."""
    return "\ue000" if c == "\ud7ff" else chr(ord(c) + 1)


def all_equalities(cuts: Cuts | None) -> bool:
    """Whether `cuts` (of a whole value) are equalities, so that they imply its iexact."""
    return bool(cuts) and all(high is None for _, high in cuts or [])
