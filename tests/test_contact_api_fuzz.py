"""Random bodies for the write API never answer a 500 and never half-write: any JSON, near
misses of valid contacts, and the registry's fields with values of every JSON type."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from crm.contact_input import ADDRESS, CONTACT, RELATIONSHIP
from crm.models import Address, AppUser
from crm.readmodel import differences
from tests.test_contact_api import NEW

pytestmark = pytest.mark.django_db

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    | st.sampled_from(["", " ", "AT", "+436641234567", "1980-02-29", "2024-05-01T12:00:00+18:00",
                       "9999-12-31", "0001-01-01", "X", "\u0000", "a\nb", "x" * 250])
)  # fmt: skip
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _part(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([*names, "id", "created", "zzz"]), JSON, max_size=4)


BODIES = (
    JSON
    | _part([*CONTACT.fields, "address", "relationship"])
    | st.builds(
        lambda c, a: NEW | c | ({"address": NEW["address"] | a}),
        _part(list(CONTACT.fields)),
        _part(list(ADDRESS.fields)),
    )
    | st.builds(lambda r: NEW | {"relationship": r}, _part(list(RELATIONSHIP.fields)) | JSON)
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_random_bodies_answer_a_client_error_or_a_whole_write(
    api_client: Client, body: Any
) -> None:
    note(repr(body))
    with transaction.atomic():  # each example starts from the same database
        existing = api_client.post(
            "/crm/appusers", orjson.dumps(NEW), content_type="application/json"
        )
        path = f"/crm/appusers/{existing.json()['id']}"
        contacts, addresses = AppUser.objects.count(), Address.objects.count()
        data = json.dumps(body).encode()  # orjson cannot write integers beyond 64 bits
        created = api_client.post("/crm/appusers", data, content_type="application/json")
        assert created.status_code in (201, 400, 409), created.content
        if created.status_code != 201:
            assert (AppUser.objects.count(), Address.objects.count()) == (contacts, addresses)
        changed = api_client.patch(path, data, content_type="application/json")
        assert changed.status_code in (200, 400, 409), changed.content
        points = api_client.post(f"{path}/points", data, content_type="application/json")
        assert points.status_code in (200, 400, 409), points.content
        assert list(differences()) == []
        transaction.set_rollback(True)
