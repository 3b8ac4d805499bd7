"""A range filter on a column that follows the table's order, read in the order of another
such column (plan.probe_bound, RowRanges._bound): the probe of the filter's own index bounds
the page's keys, and the fallback reads the matches within the bound by bitmaps
(crm_bitmap_ids(), crm/db/walk.sql). The bound is exact whatever the data: here one early
contact is moved to the newest address, out of the table's order."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from crm.models import Address, AppUser, ContactRow
from crm.selectors import budget, plan
from crm.selectors import count as counting
from tests.test_appuser_list import MakeContact, get, ids, walk


@pytest.fixture
def contacts(make_contact: MakeContact, monkeypatch: pytest.MonkeyPatch) -> list[AppUser]:
    made = [make_contact(points=None if 5 <= n < 8 else 0) for n in range(120)]  # (no relationship)
    moved = made[2]
    moved.address = Address.objects.create(street="Ring", street_number="1", city_code="1010",
                                           city="Wien", country="AT")  # fmt: skip
    moved.save()
    with connection.cursor() as db:
        # in id order, whatever rows earlier tests left behind (a table whose rows were
        # written into reused space follows no order, and gets no probe)
        db.execute("CLUSTER crm_contactrow USING crm_contactrow_pkey")
        db.execute("ANALYZE crm_contactrow")
    # as at scale: counts estimated, too many matches to collect, walks of two rows, which
    # fall short here, so that the fallback gives the pages
    monkeypatch.setattr(counting, "EXACT_COUNT_LIMIT", 5)
    monkeypatch.setattr(counting, "KEEP_PAGE_IDS", 5)
    monkeypatch.setattr(plan, "SMALL_RESULT", 0)
    monkeypatch.setattr(budget, "MIN_WALK", 2)
    monkeypatch.setattr(budget, "MAX_WALK", 2)
    return [AppUser.objects.get(pk=c.pk) for c in made]


def _recorded(statements: list[str]) -> Any:
    def record(execute: Any, sql: str, params: Any, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, *args)

    return connection.execute_wrapper(record)


def test_every_page_of_a_probed_range_is_exact(api_client: Client, contacts: list[AppUser]) -> None:
    cut = contacts[40].address_id
    above = sorted(c.pk for c in contacts if c.address_id > cut)
    assert contacts[2].pk in above  # the moved contact, first in id order
    statements: list[str] = []
    with _recorded(statements):
        first = get(api_client, {"address__id__gt": cut, "page_size": 5})
        assert [i for page in walk(api_client, first, "next") for i in page] == above
        assert (
            ids(get(api_client, {"address__id__gt": cut, "page_size": 5, "page": 2}))
            == (above[5:10])
        )
    assert any("crm_bitmap_ids(" in sql for sql in statements)
    assert any("ORDER BY address_id ASC" in sql for sql in statements)  # the probe


def test_a_descending_order_is_bounded_from_below(
    api_client: Client, contacts: list[AppUser]
) -> None:
    cut = contacts[20].address_id
    below = sorted((c.pk for c in contacts if c.address_id <= cut), reverse=True)
    statements: list[str] = []
    with _recorded(statements):
        first = get(api_client, {"address__id__lte": cut, "ordering": "-id", "page_size": 4})
        assert [i for page in walk(api_client, first, "next") for i in page] == below
    assert any("ORDER BY address_id DESC" in sql for sql in statements)


def test_a_nullable_key_keeps_its_nulls_where_its_order_puts_them(
    api_client: Client, contacts: list[AppUser]
) -> None:
    """Contacts without a relationship (5 to 7) sort last by relationship id, and first
    descending: the bound of a descending page keeps them."""
    cut = contacts[30].address_id
    rows = ContactRow.objects.filter(pk__in=[c.pk for c in contacts], address_id__lt=cut)
    # descending: NULLs first, then the highest relationship id
    keyed = [pk for _, _, pk in sorted(
        ((r is None, r or 0, pk) for pk, r in rows.values_list("id", "relationship_id")),
        key=lambda t: (not t[0], -t[1], -t[2]))]  # fmt: skip
    assert keyed[:3] == [contacts[7].pk, contacts[6].pk, contacts[5].pk]
    statements: list[str] = []
    with _recorded(statements):
        query = {"address__id__lt": cut, "ordering": "-relationship__id", "page_size": 4}
        first = get(api_client, query)
        assert [i for page in walk(api_client, first, "next") for i in page] == keyed
    assert any("crm_bitmap_ids(" in sql for sql in statements)
