"""The read model follows every write to the three tables (triggers in migration 0002)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm.models import AppUser, ContactRow, CustomerRelationship

pytestmark = pytest.mark.django_db


def test_a_new_contact_appears_with_its_address_and_relationship(make_contact) -> None:
    contact = make_contact(first_name="Zoë", city="Zürich", points=70)
    row = ContactRow.objects.get(pk=contact.pk)
    assert (row.first_name, row.address_city, row.relationship_points) == ("Zoë", "Zürich", 70)
    assert "zoe" in row.search_text and "zurich" in row.search_text


def test_address_and_relationship_changes_are_copied(make_contact) -> None:
    contact = make_contact(points=1)
    contact.address.city = "Graz"
    contact.address.save()
    CustomerRelationship.objects.filter(appuser=contact).update(points=99)
    row = ContactRow.objects.get(pk=contact.pk)
    assert (row.address_city, row.relationship_points) == ("Graz", 99)


def test_a_deleted_relationship_leaves_nulls_and_a_deleted_contact_disappears(make_contact):
    contact = make_contact(points=5)
    CustomerRelationship.objects.filter(appuser=contact).delete()
    assert ContactRow.objects.get(pk=contact.pk).relationship_id is None
    AppUser.objects.filter(pk=contact.pk).delete()
    assert not ContactRow.objects.filter(pk=contact.pk).exists()


def test_last_updated_moves_on_every_change_even_in_bulk(make_contact) -> None:
    contact = make_contact()
    AppUser.objects.filter(pk=contact.pk).update(last_updated=datetime(2000, 1, 1, tzinfo=UTC))
    contact.refresh_from_db()
    assert contact.last_updated.year != 2000  # the trigger sets now()
    before = contact.last_updated
    AppUser.objects.filter(pk=contact.pk).update(phone_number="+43111")
    contact.refresh_from_db()
    assert contact.last_updated >= before
    assert ContactRow.objects.get(pk=contact.pk).last_updated == contact.last_updated
