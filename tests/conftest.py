"""Shared fixtures. Every test talks to real PostgreSQL (embedded, or DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from crm.models import Address, AppUser, CustomerRelationship
from crm.readmodel import sync_now
from crm.selectors import count, facts, ranked, results


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    """Each test builds its own tables: an estimate or a column's distinct count that a
    previous test kept must not leak in."""
    count._table_size.clear()
    facts._distinct.clear()
    facts._walk_costs.clear()
    facts._order.clear()
    count._candidates.clear()
    ranked._sizes.clear()
    results.clear()


@pytest.fixture(autouse=True)
def read_model_follows_each_statement(request: pytest.FixtureRequest) -> None:
    """A test in a rolled-back transaction never commits, and the read model's triggers are
    deferred to the commit: fire them after each statement instead, as a view does before
    it reads back its own write. Tests that commit (transaction=True) keep the deferral."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )
    if transactional or (marker is None and "db" not in request.fixturenames):
        return
    request.getfixturevalue("db")
    sync_now()


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("staff", password="staff-password-123")


@pytest.fixture
def api_client(user: User) -> Client:
    """A client logged in through the session, as the dashboard is."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def make_contact(db: None) -> Callable[..., AppUser]:
    """Create a contact with its address and (unless points=None) a relationship."""
    counter = iter(range(1, 10**9))

    def make(
        *,
        points: int | None = 0,
        street: str = "Hauptstraße",
        city: str = "Wien",
        country: str = "AT",
        city_code: str = "1010",
        street_number: str = "1",
        last_activity: datetime | None = None,
        **fields: Any,
    ) -> AppUser:
        n = next(counter)
        address = Address.objects.create(
            street=street,
            street_number=street_number,
            city_code=city_code,
            city=city,
            country=country,
        )
        defaults: dict[str, Any] = {
            "first_name": "Anna",
            "last_name": "Muster",
            "gender": "F",
            "customer_id": f"T{n:09d}",
            "phone_number": f"+4366400{n:05d}",
            "birthday": date(1980, 1, 2),
        }
        contact = AppUser.objects.create(address=address, **(defaults | fields))
        if points is not None:
            CustomerRelationship.objects.create(
                appuser=contact,
                points=points,
                last_activity=last_activity or datetime(2024, 1, 1, tzinfo=UTC),
            )
        return contact

    return make
