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

from crm.models import Address, AppUser
from crm.selectors import budget, plan
from crm.selectors import count as counting
from tests.test_appuser_list import MakeContact, get, ids, walk


@pytest.fixture
def contacts(make_contact: MakeContact, monkeypatch: pytest.MonkeyPatch) -> list[AppUser]:
    made = [make_contact() for _ in range(60)]
    moved = made[2]
    moved.address = Address.objects.create(street="Ring", street_number="1", city_code="1010",
                                           city="Wien", country="AT")  # fmt: skip
    moved.save()
    with connection.cursor() as db:
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
