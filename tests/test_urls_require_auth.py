"""Every route of the URLconf refuses anonymous requests, unless it is on the allowlist.

The routes are read from the resolver, not listed by hand, so a new endpoint that forgets
authentication (or is added to crm/auth.py's PUBLIC_PATHS without being added here) fails
this test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, PathConverter, UUIDConverter
from django.utils.regex_helper import normalize

# The only anonymous-access paths; static files are served by WhiteNoise, outside the URLconf.
ALLOWLIST = {"/healthz", "/accounts/login/"}
LOGIN = "/accounts/login/?next="
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def _sample(converter: Any) -> str:
    if isinstance(converter, IntConverter):
        return "1"
    if isinstance(converter, UUIDConverter):
        return str(uuid.UUID(int=1))
    if isinstance(converter, PathConverter):
        return "a/b"
    return "x"  # str, slug, and regex groups without a converter


def _walk(patterns: list[Any], prefix: str = "", converters: dict | None = None) -> Iterator[str]:
    """Each route as a concrete path, its parameters filled with sample values."""
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        merged = {**(converters or {}), **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, regex.rstrip("$").removesuffix(r"\Z"), merged)
        elif isinstance(entry, URLPattern):
            for template, params in normalize(regex.rstrip("$").removesuffix(r"\Z")):
                values = {name: _sample(merged.get(name)) for name in params}
                yield "/" + template % values


def all_paths() -> list[str]:
    paths = sorted(set(_walk(get_resolver().url_patterns)))
    for path in paths:
        resolve(path)  # the sample values fit the route (raises Resolver404 otherwise)
    return paths


PATHS = all_paths()


def test_the_urlconf_is_walked_completely() -> None:
    assert {"/", "/crm/", "/healthz", "/crm/appusers", "/crm/appusers/1/avatar.png"} <= set(PATHS)
    assert set(PATHS) >= ALLOWLIST


def assert_refused(response: Any, path: str, method: str) -> None:
    where = f"{method.upper()} {path}"
    if response.status_code == 302:
        assert response["Location"].startswith(LOGIN), where
        return
    assert response.status_code == 401, f"{where} answered {response.status_code} to anonymous"
    if method != "head":
        assert response.json()["errors"][0]["message"], where


@pytest.mark.parametrize("path", [p for p in PATHS if p not in ALLOWLIST])
def test_anonymous_requests_are_refused(db: None, path: str) -> None:
    client = Client(enforce_csrf_checks=True)
    for method in METHODS:
        assert_refused(getattr(client, method)(path), path, method)
    # with a bad token, a session cookie that is not one, and a query string
    bad = Client(HTTP_AUTHORIZATION="Bearer nope", enforce_csrf_checks=True)
    assert_refused(bad.get(path + "?page=1"), path, "get")
    client.cookies["sessionid"] = "forged"
    assert_refused(client.get(path), path, "get")


@pytest.mark.parametrize("path", sorted(ALLOWLIST))
def test_allowlisted_paths_are_open(db: None, path: str) -> None:
    assert Client().get(path).status_code == 200


def test_static_files_are_open(db: None) -> None:
    response = Client().get("/static/crm/dashboard.js")
    assert response.status_code == 200


@pytest.mark.parametrize("path", [p for p in PATHS if p not in ALLOWLIST])
def test_logged_in_requests_get_through(api_client: Client, path: str) -> None:
    """The other side: the middleware lets an authenticated request reach every route
    (which may still answer 404 for a sample id, or 405 for a method), and none fails."""
    api_client.raise_request_exception = False
    response = api_client.get(path)
    assert response.status_code not in (401, 403) and response.status_code < 500, path
    if response.status_code == 302:
        assert not response["Location"].startswith("/accounts/login/"), path


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "QUERY"])
def test_healthz_answers_other_methods_405_with_the_errors_body(db: None, method: str) -> None:
    response = Client(enforce_csrf_checks=True).generic(method, "/healthz")
    assert response.status_code == 405
    assert "GET" in response["Allow"] and response.json()["errors"]
