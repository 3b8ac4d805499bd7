"""The dashboard page itself: login required, labelled controls, the same parameter names
as the list API, and no asset from another origin."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from crm.fields import FIELDS

PAGES = ["/", "/crm/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_redirected_to_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", PAGES)
def test_logged_in_gets_the_dashboard(api_client: Client, path: str) -> None:
    response = api_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    labels = ("Search contacts", "Gender", "Country", "City", "Minimum points", "Maximum points",
              "Birthday month", "Last activity", "Rows per page")  # fmt: skip
    for label in labels:
        assert f">{label}</" in html, label
    assert 'id="export-slot"' in html
    assert 'role="status"' in html and 'aria-live="polite"' in html
    assert "/static/crm/dashboard.js" in html and "/static/crm/dashboard.css" in html


def test_every_control_has_a_label_and_an_api_parameter_name(api_client: Client) -> None:
    html = api_client.get("/").content.decode()
    controls = re.findall(r"<(?:input|select)\b[^>]*\bdata-param=\"([^\"]+)\"[^>]*>", html)
    assert len(controls) >= 9
    for tag in re.findall(r"<(?:input|select)\b[^>]*\bdata-param=[^>]*>", html):
        name = re.search(r'\bname="([^"]+)"', tag)
        param = re.search(r'\bdata-param="([^"]+)"', tag)
        control_id = re.search(r'\bid="([^"]+)"', tag)
        assert name and param and control_id and name[1] == param[1], tag
        assert f'for="{control_id[1]}"' in html, f"no label for {control_id[1]}"
        assert f'id="error-{name[1]}"' in html, f"no error slot for {name[1]}"
        field, _, lookup = name[1].rpartition("__")
        known = name[1] in {"search", "page_size"} or name[1] in FIELDS
        assert known or (field in FIELDS and lookup in FIELDS[field].lookups), name[1]


def test_sort_buttons_use_api_field_names(api_client: Client) -> None:
    html = api_client.get("/").content.decode()
    sortable = re.findall(r'<th scope="col" data-sort="([^"]+)"', html)
    assert len(sortable) == 7
    assert set(sortable) <= set(FIELDS)


def test_choices_are_rendered(api_client: Client) -> None:
    html = api_client.get("/").content.decode()
    assert '<option value="F">Female</option>' in html
    assert '<option value="AT">Austria (AT)</option>' in html
    assert '<option value="11">November</option>' in html
    assert '<option value="25" selected>25</option>' in html


def test_nothing_is_loaded_from_another_origin(api_client: Client) -> None:
    html = api_client.get("/").content.decode()
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_static_assets_are_served(api_client: Client) -> None:
    for path in ("/static/crm/dashboard.js", "/static/crm/dashboard.css"):
        response = api_client.get(path)
        assert response.status_code == 200, path


def test_username_is_escaped(db: None) -> None:
    user = User.objects.create_user("<b>x</b>", password="staff-password-123")
    client = Client()
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_post_is_not_allowed(api_client: Client) -> None:
    assert api_client.post("/").status_code == 405


@pytest.mark.parametrize(
    ("query", "preload"),
    [
        ("", "/crm/appusers?page=1"),
        ("?search=M%C3%BCller&gender=&cursor=abc", "/crm/appusers?search=M%C3%BCller&amp;page=1"),
        ("?page=3&ordering=-x", "/crm/appusers?page=3&amp;ordering=-x"),
    ],
)
def test_the_first_api_request_is_preloaded(api_client: Client, query: str, preload: str) -> None:
    """The script's first request, minus cursor and empty values, page 1 by default."""
    html = api_client.get(f"/{query}").content.decode()
    assert f'as="fetch" crossorigin="anonymous" href="{preload}"' in html
