"""Counted results kept for the pages that follow, while the read model has not changed.

A capped count of at most KEEP_PAGE_IDS matches reads every match and sorts them (crm/db/
count.sql) to find one page; the next page read and sorted them all again: at 3M contacts
a third of the random survey's exact counts were on cursor pages, 40-60 ms each for a few
thousand matches behind a weak filter (`customer_id__endswith=81&relationship__created__
day=7`: 150 ms a page). So a first page (or a page by number) keeps all the sorted ids of
such a result, in this worker process, tagged with the read model's version (crm/db/
version.sql); a later page of the same query takes its ids from there if the version is
still the same (one statement instead of the count, and the page is read by id).

Only a version read while no writer was in flight tags a result (settled_version), so a
kept result holds every write its version stands for, and any later write changes the
version: a write shows on the next page's count as before. Under a steady write load the
version changes all the time and nothing is served from here; nothing is lost either.

Decisions: per worker process, the last KEPT_RESULTS results (a client's pages arrive on
its keep-alive connection, so at the same worker; another worker counts anew); only on the
primary, in autocommit (a replica's sequence and locks are not the primary's, and a result
counted inside a transaction may include its uncommitted writes); pages forward only (a
`previous` link counts anew).
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections

from crm.params import ListQuery, OrderKey
from crm.replicas import PRIMARY, read_alias

if TYPE_CHECKING:  # count.py imports this module
    from crm.selectors.count import Count

KEPT_RESULTS = 64  # at most 10,000 ids each: 80 kB, 5 MB a worker


@dataclass(frozen=True)
class Kept:
    version: int
    ids: array  # of int64, in the query's order
    count: Count  # the count that found them, without its page's ids


_kept: OrderedDict[str, Kept] = OrderedDict()
_lock = threading.Lock()


def result_key(query: ListQuery) -> str:
    """What decides a query's matches and their order."""
    filters = sorted(repr((f.field.name, f.lookup, f.value, f.matching)) for f in query.filters)
    order = [(k.field.name, k.descending) for k in query.ordering]
    # the values that hold a term are read from the database too (facts.resolve_held_terms)
    held = sorted(
        (t, sorted((c, sorted(v)) for c, v in by.items())) for t, by in query.held.items()
    )
    return repr([filters, query.search, held, order, query.rank_words])


def keeps(query: ListQuery, keys: list[OrderKey], after: list[Any] | None) -> bool:
    """Whether a count of this page may keep its result: a page from the start (the first,
    or one by number) in the query's own order, read from the primary outside a
    transaction."""
    return after is None and keys == query.ordering and _on_primary_autocommit()


def settled_version() -> int | None:
    """The read model's version now, None while a writer is in flight (crm/db/version.sql):
    run before the count, whose snapshot then holds every write up to it."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT crm_contactrow_settled_version()")
        version = cursor.fetchone()[0]
    return int(version) if version is not None else None


def keep(query: ListQuery, version: int, ids: list[int], count: Count) -> None:
    key = result_key(query)
    with _lock:
        _kept[key] = Kept(version, array("q", ids), count)
        _kept.move_to_end(key)
        while len(_kept) > KEPT_RESULTS:
            _kept.popitem(last=False)


def kept_page(
    query: ListQuery, keys: list[OrderKey], after: list[Any] | None, first: int, rows: int
) -> tuple[Kept, list[int]] | None:
    """The kept result of `query` and the ids of its page (`rows` ids from the `first`
    after the cursor's row `after`, or from the start), if it is still current."""
    if keys != query.ordering or not _on_primary_autocommit():
        return None
    with _lock:
        kept = _kept.get(result_key(query))
    if kept is None or kept.version != _version():
        return None
    start = first
    if after is not None:
        try:
            start = kept.ids.index(after[-1]) + 1  # a cursor's last value is its row's id
        except ValueError:
            return None
    return kept, kept.ids[start : start + rows].tolist()


def _version() -> int:
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT last_value FROM crm_contactrow_version")
        return int(cursor.fetchone()[0])


def _on_primary_autocommit() -> bool:
    return read_alias() == PRIMARY and not connections[PRIMARY].in_atomic_block


def clear() -> None:
    """Forget every kept result (the tests' isolation)."""
    with _lock:
        _kept.clear()
