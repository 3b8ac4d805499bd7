"""Writes to a contact: create, update, delete, and a points change. Each is one transaction
that leaves nothing half-written. Create and update answer the contact's row as the list
shows it, a points change the new balance.

An update or a delete first locks the contact's own row, so two of them on one contact run
one after the other (and a stale If-Match is caught under the lock, not before it); the
read model's triggers (crm/db/contactrow_sync.sql) are fired before the row is read back,
so the answer is what the list shows after the commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction

from crm.contact_input import MAX_POINTS, RELATIONSHIP, ContactInput, PointsChange
from crm.models import Address, AppUser, CustomerRelationship
from crm.readmodel import sync_now
from crm.selectors import contact_row

CUSTOMER_ID_UNIQUE = "crm_appuser_customer_id_key"


class ContactNotFound(Exception):
    pass


class PreconditionFailed(Exception):
    """If-Match names a version of the contact that is no longer the current one."""


class Conflict(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True)
class StoredContact:
    id: int
    row: bytes  # the row as the list serialises it
    etag: str


def etag_of(row: bytes) -> str:
    """A strong entity tag of one row: any change of any of its columns changes it."""
    return '"' + hashlib.blake2b(row, digest_size=12).hexdigest() + '"'


def if_match_allows(if_match: str | None, etag: str) -> bool:
    """RFC 9110 If-Match: absent, `*`, or a list with this strong tag (weak tags never match)."""
    if if_match is None:
        return True
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or etag in tags


def contact_create(*, data: ContactInput) -> StoredContact:
    assert data.address is not None  # parse_contact(partial=False) requires it
    with transaction.atomic(), _customer_id_unique():
        address = Address.objects.create(**data.address)
        contact = AppUser.objects.create(address=address, **data.contact)
        if data.relationship is not None:
            CustomerRelationship.objects.create(appuser=contact, **data.relationship)
        return _stored(contact.pk)


def contact_update(*, contact_id: int, data: ContactInput, if_match: str | None) -> StoredContact:
    with transaction.atomic(), _customer_id_unique():
        address_id = _lock_contact(contact_id, if_match, "NO KEY UPDATE")
        if data.contact:
            AppUser.objects.filter(pk=contact_id).update(**data.contact)
        if data.address:
            _update_address(contact_id, address_id, data.address)
        if data.remove_relationship:
            CustomerRelationship.objects.filter(appuser_id=contact_id).delete()
        elif data.relationship is not None:
            _put_relationship(contact_id, data.relationship)
        return _stored(contact_id)


def contact_delete(*, contact_id: int, if_match: str | None) -> None:
    """The contact with its relationship and points ledger, and its address unless another
    contact lives there too."""
    with transaction.atomic():
        address_id = _lock_contact(contact_id, if_match, "UPDATE")
        AppUser.objects.filter(pk=contact_id).delete()  # cascades to relationship and ledger
        # FOR UPDATE waits for a transaction that is moving another contact to this address
        # (its foreign key check holds a KEY SHARE lock), so the check below sees it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM crm_address WHERE id = %s FOR UPDATE", [address_id])
        if not AppUser.objects.filter(address_id=address_id).exists():
            Address.objects.filter(pk=address_id).delete()


def points_add(*, contact_id: int, change: PointsChange) -> int:
    """Add `change.delta` (negative to spend) to the balance and log it (crm_points_add(),
    crm/db/points.sql: one call, no transaction round trips); the new balance."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT crm_points_add(%s, %s, %s)", [contact_id, change.delta, change.reason]
        )
        (balance,) = cursor.fetchone()
    if balance is None:
        raise _points_refused(contact_id, change.delta)
    return int(balance)


def _points_refused(contact_id: int, delta: int) -> Exception:
    if not AppUser.objects.filter(pk=contact_id).exists():
        return ContactNotFound()
    balance = (
        CustomerRelationship.objects.filter(appuser_id=contact_id)
        .values_list("points", flat=True)
        .first()
    ) or 0
    if balance + delta < 0:
        return Conflict("delta", f"delta {delta} would make the balance of {balance} negative")
    return Conflict("delta", f"delta {delta} would take the balance over {MAX_POINTS}")


LOCK_SQL = {  # the row lock each write takes on the contact first
    "UPDATE": "SELECT address_id FROM crm_appuser WHERE id = %s FOR UPDATE",
    "NO KEY UPDATE": "SELECT address_id FROM crm_appuser WHERE id = %s FOR NO KEY UPDATE",
}


def _lock_contact(contact_id: int, if_match: str | None, mode: str) -> int:
    """Lock the contact's row for this transaction and check If-Match; its address id."""
    with connection.cursor() as cursor:
        cursor.execute(LOCK_SQL[mode], [contact_id])
        row = cursor.fetchone()
    if row is None:
        raise ContactNotFound()
    if if_match is not None:
        current = contact_row(contact_id)
        if current is None or not if_match_allows(if_match, etag_of(current)):
            raise PreconditionFailed()
    return int(row[0])


def _update_address(contact_id: int, address_id: int, changes: dict[str, Any]) -> None:
    """Decision: an address that other contacts share is copied for this contact with the
    changes (copy on write), so correcting one contact's address never moves another's."""
    others = AppUser.objects.filter(address_id=address_id).exclude(pk=contact_id)
    if not others.exists():
        Address.objects.filter(pk=address_id).update(**changes)
        return
    copy = Address.objects.get(pk=address_id)
    for name, value in changes.items():
        setattr(copy, name, value)
    copy.pk = None
    copy._state.adding = True
    copy.save()
    AppUser.objects.filter(pk=contact_id).update(address=copy)


def _put_relationship(contact_id: int, changes: dict[str, Any]) -> None:
    """Change the given fields of the contact's relationship, or create it with them
    (points 0 by default). One upsert: a points change may create it at the same moment."""
    assert set(changes) <= set(RELATIONSHIP.fields)  # names reach SQL from the registry only
    values = {"points": 0, "last_activity": None} | changes
    update = ", ".join(f"{name} = EXCLUDED.{name}" for name in changes)
    sql = (
        "INSERT INTO crm_customerrelationship (appuser_id, points, created, last_activity) "
        "VALUES (%s, %s, now(), %s) ON CONFLICT (appuser_id) "
        + (f"DO UPDATE SET {update}" if update else "DO NOTHING")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [contact_id, values["points"], values["last_activity"]])


def _stored(contact_id: int) -> StoredContact:
    sync_now()  # the read model's triggers, deferred to the commit, run now
    row = contact_row(contact_id)
    assert row is not None  # written in this transaction
    return StoredContact(contact_id, row, etag_of(row))


@contextmanager
def _customer_id_unique() -> Iterator[None]:
    """A duplicate customer_id as a Conflict naming the field."""
    try:
        yield
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if diag is not None and diag.constraint_name == CUSTOMER_ID_UNIQUE:
            message = "customer_id is already used by another contact"
            raise Conflict("customer_id", message) from None
        raise
