"""The read model follows every write to the three tables (crm/db/contactrow_sync.sql), and
manage.py check_readmodel finds and repairs any row that does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection

from crm.models import Address, AppUser, ContactRow, CustomerRelationship
from crm.readmodel import COLUMNS, differences

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


@pytest.mark.django_db(transaction=True)  # now() is constant within one transaction
def test_last_updated_moves_on_every_change_even_in_bulk(make_contact) -> None:
    contact = make_contact()
    AppUser.objects.filter(pk=contact.pk).update(last_updated=datetime(2000, 1, 1, tzinfo=UTC))
    contact.refresh_from_db()
    assert contact.last_updated.year != 2000  # the trigger sets now()
    before = contact.last_updated
    AppUser.objects.filter(pk=contact.pk).update(phone_number="+43111")
    contact.refresh_from_db()
    assert contact.last_updated > before
    assert ContactRow.objects.get(pk=contact.pk).last_updated == contact.last_updated


def test_bulk_and_raw_sql_writes_are_copied(make_contact) -> None:
    contacts = [make_contact(points=n) for n in range(5)]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_customerrelationship SET points = points + 100")
        cursor.execute("UPDATE crm_address SET street = upper(street) || ' ' || id")
    AppUser.objects.update(last_name="Ünal")
    assert list(differences()) == []
    row = ContactRow.objects.get(pk=contacts[2].pk)
    assert (row.relationship_points, row.last_name) == (102, "Ünal")
    assert "unal" in row.search_text and "hauptstrasse" in row.search_text


def test_an_address_shared_by_several_contacts_updates_each_and_a_move_follows(
    make_contact,
) -> None:
    first, second = make_contact(city="Wien"), make_contact(city="Linz")
    AppUser.objects.filter(pk=second.pk).update(address=first.address)
    Address.objects.filter(pk=first.address_id).update(city="Salzburg")
    cities = dict(ContactRow.objects.values_list("id", "address_city"))
    assert cities == {first.pk: "Salzburg", second.pk: "Salzburg"}
    assert "salzburg" in ContactRow.objects.get(pk=second.pk).search_text
    assert list(differences()) == []


def test_check_readmodel_reports_each_difference_and_repairs_them(make_contact, capsys):
    kept, changed, lost = make_contact(), make_contact(points=3), make_contact()
    stale = make_contact(last_name="Öztürk")
    ghost = kept.pk + 1000
    with connection.cursor() as cursor:  # the read model written behind the triggers' back
        cursor.execute(
            "UPDATE crm_contactrow SET relationship_points = 4, search_text = 'x' WHERE id = %s",
            [changed.pk],
        )
        cursor.execute("DELETE FROM crm_contactrow WHERE id = %s", [lost.pk])
        cursor.execute("ALTER TABLE crm_contactrow DISABLE TRIGGER crm_contactrow_keys_update")
        cursor.execute("UPDATE crm_contactrow SET last_name_key = 'x' WHERE id = %s", [stale.pk])
        cursor.execute("ALTER TABLE crm_contactrow ENABLE TRIGGER crm_contactrow_keys_update")
        cursor.execute(
            "CREATE TEMPORARY TABLE ghost AS SELECT * FROM crm_contactrow WHERE id = %s",
            [kept.pk],
        )
        cursor.execute("UPDATE ghost SET id = %s", [ghost])
        columns = ", ".join(COLUMNS)  # (the insert's trigger writes the sort keys)
        cursor.execute(f"INSERT INTO crm_contactrow ({columns}) SELECT {columns} FROM ghost")  # noqa: S608
    with pytest.raises(SystemExit):
        call_command("check_readmodel")
    out = capsys.readouterr().out
    assert f"contact {changed.pk}: relationship_points, search_text differ" in out
    assert f"contact {lost.pk}: missing from the read model" in out
    assert f"contact {ghost}: in the read model but not in the source tables" in out
    assert f"contact {stale.pk}: sort_keys differ" in out
    assert "4 differing row(s) found" in out

    call_command("check_readmodel", "--repair", "--batch", "2")
    assert list(differences()) == []
    assert ContactRow.objects.get(pk=changed.pk).relationship_points == 3
    call_command("check_readmodel")  # exits 0 now
    assert "0 differing row(s) found" in capsys.readouterr().out
