"""Concurrent writes through the services, each thread on its own connection: no points
increment is lost, and edits and points changes of one contact leave the list true."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from crm.contact_input import ContactInput, PointsChange
from crm.models import ContactRow, CustomerRelationship
from crm.models import PointsChange as Ledger
from crm.readmodel import differences
from crm.services import contact_update, points_add

pytestmark = pytest.mark.django_db(transaction=True)  # real commits on several connections

THREADS = 8
CHANGES = 25


def _in_threads(work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(THREADS, timeout=30)
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_concurrent_points_changes_never_lose_an_increment(make_contact) -> None:
    contact = make_contact(points=1000)

    def work(n: int) -> None:
        for i in range(CHANGES):
            delta = (n + 1) * (1 if i % 3 else -1)
            points_add(contact_id=contact.pk, change=PointsChange(delta, f"t{n}"))

    _in_threads(work)
    expected = 1000 + sum(
        (n + 1) * (1 if i % 3 else -1) for n in range(THREADS) for i in range(CHANGES)
    )
    assert CustomerRelationship.objects.get().points == expected
    assert ContactRow.objects.get().relationship_points == expected
    assert Ledger.objects.count() == THREADS * CHANGES


def test_edits_and_points_of_one_contact_at_once_leave_the_list_true(make_contact) -> None:
    contact = make_contact(points=0)

    def work(n: int) -> None:
        for i in range(CHANGES):
            if n % 2:
                points_add(contact_id=contact.pk, change=PointsChange(1, "visit"))
            else:
                data = ContactInput(contact={"first_name": f"N{n}-{i}"}, address={"city": f"C{i}"})
                contact_update(contact_id=contact.pk, data=data, if_match=None)

    _in_threads(work)
    assert ContactRow.objects.get().relationship_points == THREADS // 2 * CHANGES
    assert list(differences()) == []
