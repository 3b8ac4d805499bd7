"""HTTP behaviour of /crm/appusers/<id>/avatar.svg and avatar.png against real PostgreSQL."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from crm import avatars
from crm.avatar_views import UNVERSIONED_CACHE_CONTROL, VERSIONED_CACHE_CONTROL
from crm.models import AppUser

pytestmark = pytest.mark.django_db

MakeContact = Callable[..., AppUser]


@pytest.fixture
def client(api_client: Client) -> Client:
    """Every endpoint needs a login; api_client (tests/conftest.py) has one."""
    return api_client


@pytest.fixture
def contact(make_contact: MakeContact) -> AppUser:
    return make_contact(first_name="Anna", last_name="Berg", points=None)


def _svg_url(contact_id: int) -> str:
    return f"/crm/appusers/{contact_id}/avatar.svg"


def _png_url(contact_id: int) -> str:
    return f"/crm/appusers/{contact_id}/avatar.png"


def test_svg(client: Client, contact: AppUser) -> None:
    response = client.get(_svg_url(contact.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Cache-Control"] == UNVERSIONED_CACHE_CONTROL
    assert response["Content-Security-Policy"] == "default-src 'none'"
    avatar = avatars.avatar_for(contact.pk, "Anna", "Berg")
    assert response["ETag"] == avatars.etag(avatar, "svg", 128, "circle")
    root = ET.fromstring(response.content)
    text = root.find("{http://www.w3.org/2000/svg}text")
    assert text is not None
    assert text.text == "AB"


@pytest.mark.parametrize(("query", "size"), [("", 128), ("?size=16", 16), ("?size=512", 512)])
def test_png_size(client: Client, contact: AppUser, query: str, size: int) -> None:
    response = client.get(_png_url(contact.pk) + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (size, size)


def test_png_shapes(client: Client, contact: AppUser) -> None:
    circle = client.get(_png_url(contact.pk) + "?shape=circle")
    square = client.get(_png_url(contact.pk) + "?shape=square")
    assert circle.status_code == square.status_code == 200
    assert circle["ETag"] != square["ETag"]
    corner = Image.open(io.BytesIO(circle.content)).convert("RGBA").getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert corner[3] == 0
    corner = Image.open(io.BytesIO(square.content)).convert("RGBA").getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert corner[3] == 255


def test_versioned_url_is_immutable(client: Client, contact: AppUser) -> None:
    url = avatars.avatar_url(contact.pk, contact.first_name, contact.last_name)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == VERSIONED_CACHE_CONTROL
    png = client.get(url.replace("avatar.svg", "avatar.png") + "&size=64&shape=square")
    assert png["Cache-Control"] == VERSIONED_CACHE_CONTROL


def test_stale_version_is_not_cached_for_long(client: Client, contact: AppUser) -> None:
    url = avatars.avatar_url(contact.pk, contact.first_name, contact.last_name)
    AppUser.objects.filter(pk=contact.pk).update(last_name="Zimmer")
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == UNVERSIONED_CACHE_CONTROL
    fresh = avatars.avatar_url(contact.pk, contact.first_name, "Zimmer")
    assert fresh != url
    assert client.get(fresh)["Cache-Control"] == VERSIONED_CACHE_CONTROL


@pytest.mark.parametrize("url", [_svg_url, _png_url])
def test_if_none_match_gives_304(
    client: Client, contact: AppUser, url: Callable[[int], str]
) -> None:
    first = client.get(url(contact.pk))
    etag = first["ETag"]
    assert etag.startswith('"')
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(url(contact.pk), headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response["ETag"] == etag
        assert response["Cache-Control"] == UNVERSIONED_CACHE_CONTROL
    other = client.get(url(contact.pk), headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_etag_changes_with_the_name(client: Client, contact: AppUser) -> None:
    before = client.get(_png_url(contact.pk))["ETag"]
    AppUser.objects.filter(pk=contact.pk).update(first_name="Zoe")
    response = client.get(_png_url(contact.pk), headers={"If-None-Match": before})
    assert response.status_code == 200
    assert response["ETag"] != before


def test_etag_stays_when_the_picture_does(client: Client, contact: AppUser) -> None:
    before = client.get(_svg_url(contact.pk))["ETag"]
    AppUser.objects.filter(pk=contact.pk).update(first_name="Alex", last_name="Brown")
    response = client.get(_svg_url(contact.pk), headers={"If-None-Match": before})
    assert response.status_code == 304


@pytest.mark.parametrize("url", [_svg_url, _png_url])
def test_unknown_id_is_404(client: Client, url: Callable[[int], str]) -> None:
    for contact_id in (987654321, 10**30):  # the second is beyond bigint
        response = client.get(url(contact_id))
        assert response.status_code == 404
        assert response.json() == {
            "errors": [{"param": "contact_id", "message": "no contact with this id"}]
        }


@pytest.mark.parametrize(
    "size", ["15", "513", "0", "-20", "abc", "", "12.5", " 128", "١٢٨", "1" * 5000]
)
def test_bad_size_is_400(client: Client, contact: AppUser, size: str) -> None:
    response = client.get(_png_url(contact.pk), {"size": size})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["param"] for e in errors] == ["size"]
    assert "16" in errors[0]["message"]
    assert "512" in errors[0]["message"]


@pytest.mark.parametrize("url", [_svg_url, _png_url])
def test_bad_shape_is_400(client: Client, contact: AppUser, url: Callable[[int], str]) -> None:
    response = client.get(url(contact.pk), {"shape": "triangle"})
    assert response.status_code == 400
    assert [e["param"] for e in response.json()["errors"]] == ["shape"]


def test_every_bad_param_is_reported(client: Client, contact: AppUser) -> None:
    response = client.get(_png_url(contact.pk), {"size": "9000", "shape": "star"})
    assert response.status_code == 400
    assert [e["param"] for e in response.json()["errors"]] == ["size", "shape"]


def test_one_query_for_the_contact(client: Client, contact: AppUser) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(_png_url(contact.pk)).status_code == 200
    assert sum("crm_appuser" in q["sql"] for q in queries.captured_queries) == 1


def test_markup_in_names_stays_text(client: Client, make_contact: MakeContact) -> None:
    hostile = make_contact(
        first_name='<script>alert("x")</script>', last_name="&lt;/svg>", points=None
    )
    response = client.get(_svg_url(hostile.pk))
    assert response.status_code == 200
    assert b"<script" not in response.content
    root = ET.fromstring(response.content)
    assert all(not element.tag.endswith("script") for element in root.iter())


@pytest.mark.parametrize(("first", "last"), [("", ""), ("   ", "!!"), ("अमित", "शाह")])
def test_unusable_names_give_the_silhouette(
    client: Client, make_contact: MakeContact, first: str, last: str
) -> None:
    contact = make_contact(first_name=first, last_name=last, points=None)
    for url in (_svg_url(contact.pk), _png_url(contact.pk)):
        assert client.get(url).status_code == 200
    root = ET.fromstring(client.get(_svg_url(contact.pk)).content)
    assert root.find("{http://www.w3.org/2000/svg}text") is None


def test_head_and_post(client: Client, contact: AppUser) -> None:
    assert client.head(_png_url(contact.pk)).status_code == 200
    assert client.post(_png_url(contact.pk)).status_code == 405


def test_login_is_required(contact: AppUser) -> None:
    assert Client().get(_svg_url(contact.pk)).status_code == 401


def test_an_id_beyond_bigint_costs_no_query(client: Client, db: None) -> None:
    from crm.selectors import contact_names

    with CaptureQueriesContext(connection) as queries:
        assert contact_names(10**30) is None
        assert contact_names(2**63) is None
    assert not queries.captured_queries
