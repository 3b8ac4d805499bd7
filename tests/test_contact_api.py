"""The write API of one contact: POST /crm/appusers, GET/PATCH/DELETE /crm/appusers/<id>,
POST /crm/appusers/<id>/points. Each status code it can answer is tested here."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client

from crm.models import Address, AppUser, ContactRow, CustomerRelationship, PointsChange
from crm.readmodel import differences

pytestmark = pytest.mark.django_db

NEW: dict[str, Any] = {
    "first_name": "Jürgen",
    "last_name": "Öztürk",
    "gender": "M",
    "customer_id": "C-NEW-1",
    "phone_number": "+436641234567",
    "birthday": "1980-02-29",
    "address": {
        "street": "Mariahilfer Straße",
        "street_number": "12a",
        "city_code": "1060",
        "city": "Wien",
        "country": "AT",
    },
    "relationship": {"points": 10, "last_activity": "2024-05-01T12:00:00+02:00"},
}


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes | str) else orjson.dumps(body)
    return client.post(path, data, content_type="application/json", headers=headers)


def patch(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.patch(path, orjson.dumps(body), content_type="application/json", headers=headers)


def params(response: Any) -> list[str]:
    return [e["param"] for e in response.json()["errors"]]


def test_create_answers_201_with_the_stored_row_its_location_and_etag(api_client) -> None:
    response = post(api_client, "/crm/appusers", NEW)
    assert response.status_code == 201, response.content
    row = response.json()
    assert response["Location"].endswith(f"/crm/appusers/{row['id']}")
    assert response["ETag"].startswith('"')
    assert row["last_name"] == "Öztürk" and row["address"]["city"] == "Wien"
    assert row["relationship"]["points"] == 10
    assert row["relationship"]["last_activity"] == "2024-05-01T10:00:00.000000Z"
    listed = api_client.get(f"/crm/appusers?id={row['id']}").json()["results"]
    assert listed == [row]
    assert list(differences()) == []


def test_get_answers_the_row_with_an_etag_and_404_for_an_unknown_id(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    response = api_client.get(f"/crm/appusers/{row['id']}")
    assert response.status_code == 200 and response.json() == row
    again = api_client.get(
        f"/crm/appusers/{row['id']}", headers={"If-None-Match": response["ETag"]}
    )
    assert again.status_code == 304
    for missing in (row["id"] + 1, 2**63, 10**30):
        assert api_client.get(f"/crm/appusers/{missing}").status_code == 404


BAD_FIELDS = [
    ({"first_name": ""}, "first_name"),
    ({"first_name": 7}, "first_name"),
    ({"last_name": "x" * 101}, "last_name"),
    ({"last_name": "a\nb"}, "last_name"),
    ({"gender": "female"}, "gender"),
    ({"customer_id": "has space"}, "customer_id"),
    ({"phone_number": "0664 123"}, "phone_number"),
    ({"phone_number": "+0123"}, "phone_number"),
    ({"birthday": "2999-01-01"}, "birthday"),
    ({"birthday": "1980-02-30"}, "birthday"),
    ({"birthday": "01.02.1980"}, "birthday"),
    ({"address": {**NEW["address"], "country": "Austria"}}, "address.country"),
    ({"address": {**NEW["address"], "country": "at"}}, "address.country"),
    ({"address": {**NEW["address"], "country": "XX"}}, "address.country"),
    ({"address": {**NEW["address"], "city": None}}, "address.city"),
    ({"address": "Wien"}, "address"),
    ({"relationship": {"points": -1}}, "relationship.points"),
    ({"relationship": {"points": True}}, "relationship.points"),
    ({"relationship": {"points": 2**31}}, "relationship.points"),
    (
        {"relationship": {"last_activity": "2024-01-01T00:00:00+24:00"}},
        "relationship.last_activity",
    ),
    ({"relationship": {"last_activity": "2999-01-01T00:00:00Z"}}, "relationship.last_activity"),
    ({"nickname": "x"}, "nickname"),
    ({"address": {**NEW["address"], "floor": 3}}, "address.floor"),
    ({"id": 5}, "id"),
    ({"avatar_url": "/x"}, "avatar_url"),
    ({"relationship": {"id": 1}}, "relationship.id"),
]


@pytest.mark.parametrize(("change", "param"), BAD_FIELDS)
def test_create_names_each_bad_field_and_writes_nothing(api_client, change, param) -> None:
    response = post(api_client, "/crm/appusers", NEW | change)
    assert response.status_code == 400, response.content
    assert params(response) == [param]
    assert response.json()["errors"][0]["message"].startswith(param)
    assert not AppUser.objects.exists() and not Address.objects.exists()


def test_create_lists_every_missing_field_at_once(api_client) -> None:
    response = post(api_client, "/crm/appusers", {"address": {"city": "Wien"}})
    assert response.status_code == 400
    assert set(params(response)) == {
        "first_name",
        "last_name",
        "customer_id",
        "phone_number",
        "address.street",
        "address.street_number",
        "address.city_code",
        "address.country",
    }


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'"x"', b"", b"\xff\xfe", b'{"first_name": "\\ud800"}']
)
def test_a_malformed_body_is_400_naming_the_body(api_client, body) -> None:
    response = post(api_client, "/crm/appusers", body)
    assert response.status_code == 400
    assert params(response) == ["body"]


def test_a_body_over_64_kb_is_413_and_writes_nothing(api_client) -> None:
    response = post(api_client, "/crm/appusers", NEW | {"first_name": "x" * 70_000})
    assert response.status_code == 413 and params(response) == ["body"]
    assert not AppUser.objects.exists()


def test_a_duplicate_customer_id_is_409_on_create_and_on_patch(api_client) -> None:
    first = post(api_client, "/crm/appusers", NEW).json()
    again = post(api_client, "/crm/appusers", NEW)
    assert again.status_code == 409 and params(again) == ["customer_id"]
    assert AppUser.objects.count() == Address.objects.count() == 1  # nothing half-written
    other = post(api_client, "/crm/appusers", NEW | {"customer_id": "C-2"}).json()
    clash = patch(api_client, f"/crm/appusers/{other['id']}", {"customer_id": first["customer_id"]})
    assert clash.status_code == 409 and params(clash) == ["customer_id"]


def test_patch_changes_only_what_it_names_nested_parts_included(api_client) -> None:
    created = post(api_client, "/crm/appusers", NEW)
    row = created.json()
    path = f"/crm/appusers/{row['id']}"
    response = patch(
        api_client,
        path,
        {"first_name": "Anna", "address": {"city": "Graz"}, "relationship": {"points": 99}},
    )
    assert response.status_code == 200, response.content
    changed = response.json()
    assert (changed["first_name"], changed["last_name"]) == ("Anna", "Öztürk")
    assert changed["address"] | {"city": "Wien"} == row["address"]
    assert changed["relationship"]["points"] == 99
    assert changed["relationship"]["last_activity"] == row["relationship"]["last_activity"]
    assert api_client.get("/crm/appusers?search=anna graz").json()["results"] == [changed]
    assert response["ETag"] == api_client.get(path)["ETag"] != created["ETag"]
    assert list(differences()) == []


def test_patch_with_a_stale_if_match_is_412_and_writes_nothing(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW)
    path = f"/crm/appusers/{row.json()['id']}"
    first = patch(api_client, path, {"first_name": "Eva"}, **{"If-Match": row["ETag"]})
    assert first.status_code == 200
    stale = patch(api_client, path, {"last_name": "Huber"}, **{"If-Match": row["ETag"]})
    assert stale.status_code == 412 and params(stale) == ["If-Match"]
    assert AppUser.objects.get().last_name == "Öztürk"
    # a change by another path (a points change) also makes the tag stale
    post(api_client, f"{path}/points", {"delta": 5, "reason": "bonus"})
    stale = patch(api_client, path, {"last_name": "Huber"}, **{"If-Match": first["ETag"]})
    assert stale.status_code == 412
    fresh = api_client.get(path)["ETag"]
    assert patch(api_client, path, {"last_name": "Huber"}, **{"If-Match": fresh}).status_code == 200
    assert patch(api_client, path, {"gender": "X"}, **{"If-Match": "*"}).status_code == 200


def test_patch_relationship_null_removes_it_and_an_object_creates_it(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    path = f"/crm/appusers/{row['id']}"
    assert patch(api_client, path, {"relationship": None}).json()["relationship"] is None
    assert not CustomerRelationship.objects.exists()
    created = patch(api_client, path, {"relationship": {"points": 3}}).json()["relationship"]
    assert (created["points"], created["last_activity"]) == (3, None)


def test_patch_of_a_shared_address_copies_it_for_this_contact(api_client) -> None:
    first = post(api_client, "/crm/appusers", NEW).json()
    second = post(api_client, "/crm/appusers", NEW | {"customer_id": "C-2"}).json()
    AppUser.objects.filter(pk=second["id"]).update(address_id=first["address"]["id"])
    changed = patch(api_client, f"/crm/appusers/{second['id']}", {"address": {"city": "Linz"}})
    assert changed.json()["address"]["city"] == "Linz"
    assert changed.json()["address"]["id"] != first["address"]["id"]
    assert api_client.get(f"/crm/appusers/{first['id']}").json()["address"]["city"] == "Wien"


def test_patch_and_delete_of_an_unknown_contact_are_404(api_client) -> None:
    assert patch(api_client, "/crm/appusers/12345", {"first_name": "A"}).status_code == 404
    assert api_client.delete("/crm/appusers/12345").status_code == 404
    assert (
        post(api_client, "/crm/appusers/12345/points", {"delta": 1, "reason": "x"}).status_code
        == 404
    )


def test_patch_names_a_bad_field(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    response = patch(api_client, f"/crm/appusers/{row['id']}", {"address": {"country": "DEU"}})
    assert response.status_code == 400 and params(response) == ["address.country"]


def test_delete_removes_the_contact_its_relationship_ledger_and_unshared_address(
    api_client,
) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    post(api_client, f"/crm/appusers/{row['id']}/points", {"delta": 5, "reason": "x"})
    other = post(api_client, "/crm/appusers", NEW | {"customer_id": "C-2"}).json()
    AppUser.objects.filter(pk=other["id"]).update(address_id=row["address"]["id"])
    Address.objects.filter(pk=other["address"]["id"]).delete()
    response = api_client.delete(f"/crm/appusers/{row['id']}")
    assert response.status_code == 204
    assert api_client.get(f"/crm/appusers/{row['id']}").status_code == 404
    assert not PointsChange.objects.exists() and CustomerRelationship.objects.count() == 1
    assert Address.objects.filter(pk=row["address"]["id"]).exists()  # the other lives there
    assert api_client.delete(f"/crm/appusers/{other['id']}").status_code == 204
    assert not Address.objects.exists() and not ContactRow.objects.exists()


def test_delete_with_a_stale_if_match_is_412(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW)
    path = f"/crm/appusers/{row.json()['id']}"
    patch(api_client, path, {"first_name": "Eva"})
    assert api_client.delete(path, headers={"If-Match": row["ETag"]}).status_code == 412
    assert AppUser.objects.exists()


def test_points_change_the_balance_log_the_reason_and_refuse_a_negative_one(api_client):
    row = post(api_client, "/crm/appusers", NEW).json()
    path = f"/crm/appusers/{row['id']}/points"
    response = post(api_client, path, {"delta": 15, "reason": "purchase"})
    assert response.status_code == 200
    assert response.json() == {"id": row["id"], "points": 25, "delta": 15}
    refused = post(api_client, path, {"delta": -26, "reason": "redeem"})
    assert refused.status_code == 409 and params(refused) == ["delta"]
    assert post(api_client, path, {"delta": -25, "reason": "redeem"}).json()["points"] == 0
    ledger = list(PointsChange.objects.order_by("id").values_list("delta", "reason", "balance"))
    assert ledger == [(15, "purchase", 25), (-25, "redeem", 0)]
    assert ContactRow.objects.get(pk=row["id"]).relationship_points == 0


def test_an_integral_json_number_is_an_integer_as_json_schema_says(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    response = post(api_client, f"/crm/appusers/{row['id']}/points", {"delta": 5.0, "reason": "x"})
    assert response.status_code == 200 and response.json()["points"] == 15


def test_points_for_a_contact_without_relationship_create_it(api_client) -> None:
    row = post(api_client, "/crm/appusers", {k: v for k, v in NEW.items() if k != "relationship"})
    path = f"/crm/appusers/{row.json()['id']}/points"
    assert post(api_client, path, {"delta": -1, "reason": "x"}).status_code == 409
    assert post(api_client, path, {"delta": 7, "reason": "welcome"}).json()["points"] == 7
    assert CustomerRelationship.objects.get().points == 7


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"delta": 0, "reason": "x"}, "delta"),
        ({"delta": 1.5, "reason": "x"}, "delta"),
        ({"delta": "5", "reason": "x"}, "delta"),
        ({"delta": 2**31, "reason": "x"}, "delta"),
        ({"delta": 1}, "reason"),
        ({"delta": 1, "reason": "x", "extra": 1}, "extra"),
    ],
)
def test_a_bad_points_change_is_400(api_client, body, param) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    response = post(api_client, f"/crm/appusers/{row['id']}/points", body)
    assert response.status_code == 400 and params(response) == [param]


def test_points_over_the_integer_range_are_409(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    path = f"/crm/appusers/{row['id']}/points"
    assert post(api_client, path, {"delta": 2**31 - 1, "reason": "x"}).status_code == 409


def test_writes_need_authentication_and_session_writes_need_csrf(user) -> None:
    anonymous = Client()
    assert post(anonymous, "/crm/appusers", NEW).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    refused = post(strict, "/crm/appusers", NEW)
    assert refused.status_code == 403 and "errors" in refused.json()
    assert not AppUser.objects.exists()


def test_undeclared_methods_are_405(api_client) -> None:
    assert api_client.put("/crm/appusers/1").status_code == 405
    assert api_client.delete("/crm/appusers").status_code == 405
    assert api_client.get("/crm/appusers/1/points").status_code == 405


def test_patch_with_an_empty_relationship_or_address_changes_nothing(api_client) -> None:
    row = post(api_client, "/crm/appusers", NEW).json()
    path = f"/crm/appusers/{row['id']}"
    bodies: list[dict[str, Any]] = [{"relationship": {}}, {"address": {}}, {}]
    for body in bodies:
        response = patch(api_client, path, body)
        assert response.status_code == 200, (body, response.content)
        assert response.json() == row
    assert patch(api_client, path, {"relationship": None}).json()["relationship"] is None
    created = patch(api_client, path, {"relationship": {}}).json()["relationship"]
    assert (created["points"], created["last_activity"]) == (0, None)
