"""One contact by id, outside the list: its names for its avatar, its row for its own URL."""

from __future__ import annotations

from crm.selectors.db import connection, fetch_rows
from crm.selectors.pages import ROW_JSON


def contact_names(contact_id: int) -> tuple[str, str] | None:
    """(first_name, last_name) of one contact, for its avatar. Raw SQL by primary key: the
    ORM's query building cost more than rendering a cached avatar."""
    if not 0 < contact_id < 2**63:  # beyond bigint it would be compared as numeric: a scan
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT first_name, last_name FROM crm_appuser WHERE id = %s", [contact_id])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def contact_row(contact_id: int) -> bytes | None:
    """One contact as the list serialises it (GET /crm/appusers/<id>), from the read model."""
    rows = fetch_rows(f"SELECT {ROW_JSON} FROM crm_contactrow WHERE id = %s", [contact_id])
    return rows[0][0] if rows else None
