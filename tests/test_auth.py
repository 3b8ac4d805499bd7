"""Authentication: session login for the dashboard, hashed bearer tokens for the API, the two
management commands, and the safe defaults (settings, security headers, error pages)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.auth import create_token, revoke_tokens
from crm.models import ApiToken

ROOT = Path(__file__).resolve().parent.parent
API = "/crm/appusers"
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def bearer(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    errors = response.json()["errors"]
    assert errors and all(e["message"] for e in errors)


# --- bearer tokens ---------------------------------------------------------------------------


def test_valid_token_is_200(user: User) -> None:
    response = bearer(create_token(user)).get(API)
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


def test_revoked_token_is_401(user: User) -> None:
    token = create_token(user)
    assert bearer(token).get(API).status_code == 200
    assert revoke_tokens(user=user) == 1
    assert_401(bearer(token).get(API))


def test_revoking_by_prefix_spares_the_other_tokens(user: User) -> None:
    kept, revoked = create_token(user), create_token(user)
    assert revoke_tokens(user=user, prefix=revoked[:8]) == 1
    assert_401(bearer(revoked).get(API))
    assert bearer(kept).get(API).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-token",
        "Bearer ",
        "Bearer",
        "bearer " + "A" * 43,
        "Bearer " + "x" * 100_000,
        "Bearer ' OR '1'='1",
        "Bearer \u202etoken\u0301",
        "Basic dXNlcjpwYXNz",
        "Token abc",
    ],
)
def test_bad_authorization_is_401(db: None, header: str) -> None:
    assert_401(Client(HTTP_AUTHORIZATION=header).get(API))


def test_a_bad_token_is_refused_even_with_a_session(api_client: Client) -> None:
    """An explicit token that does not check out never falls back to the session."""
    assert_401(api_client.get(API, HTTP_AUTHORIZATION="Bearer wrong"))
    assert api_client.get(API).status_code == 200


def test_inactive_users_token_is_401(user: User) -> None:
    token = create_token(user)
    user.is_active = False
    user.save()
    assert_401(bearer(token).get(API))


def test_token_of_a_deleted_user_is_401(user: User) -> None:
    token = create_token(user)
    user.delete()
    assert_401(bearer(token).get(API))


def test_a_token_costs_one_query_and_the_user_is_loaded_only_when_used(user: User) -> None:
    client = bearer(create_token(user))
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/crm/appusers/987654321/avatar.svg").status_code == 404
    # 1: the token check (joined with its user), 2: the contact's names
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert "crm_apitoken" in queries[0]["sql"]
    response = client.get("/crm/")  # the dashboard shows who is signed in: now it is loaded
    assert response.status_code == 200
    assert f"<strong>{user.username}</strong>" in response.content.decode()


def test_a_user_deleted_after_the_token_check_is_anonymous_not_a_500(user: User) -> None:
    from crm.auth import _user_or_anonymous

    user_id = user.pk
    user.delete()
    assert not _user_or_anonymous(user_id).is_authenticated


def test_token_is_stored_only_as_its_sha256(user: User) -> None:
    token = create_token(user)
    row = ApiToken.objects.get(user=user)
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:8]  # for revoking one token: 48 of its 256 bits
    stored = " ".join(str(value) for value in ApiToken.objects.values_list().get())
    assert token not in stored and token[8:16] not in stored


def test_tokens_are_random_and_long(user: User) -> None:
    tokens = {create_token(user) for _ in range(20)}
    assert len(tokens) == 20 and all(TOKEN.fullmatch(t) for t in tokens)


def test_bearer_post_skips_csrf_and_other_methods_get_405_as_json(user: User) -> None:
    """A token is not ambient authority like a cookie, so CSRF does not apply to it (an
    empty body is a 400, not a 403); a method the endpoint does not take is a 405 in the
    errors body, with Allow."""
    client = bearer(create_token(user))
    assert client.post(API).status_code == 400
    response = client.put(API)
    assert response.status_code == 405
    assert "GET" in response["Allow"] and "POST" in response["Allow"]
    assert response.json()["errors"][0]["message"]


def test_anonymous_post_is_401_not_403(db: None) -> None:
    assert_401(Client(enforce_csrf_checks=True).post(API))


# --- management commands ---------------------------------------------------------------------


def test_create_api_token_creates_the_user_and_prints_the_token_last(db: None) -> None:
    out = io.StringIO()
    call_command("create_api_token", "alice", stdout=out)
    token = out.getvalue().rstrip("\n").splitlines()[-1]
    assert TOKEN.fullmatch(token)
    alice = User.objects.get(username="alice")
    assert not alice.has_usable_password()  # a token-only user cannot log in to the dashboard
    assert bearer(token).get(API).status_code == 200
    assert ApiToken.objects.get(user=alice).key_hash == hashlib.sha256(token.encode()).hexdigest()


def test_create_api_token_for_an_existing_user_adds_a_token(user: User) -> None:
    first = create_token(user)
    out = io.StringIO()
    call_command("create_api_token", user.username, stdout=out)
    second = out.getvalue().strip().splitlines()[-1]
    assert "created user" not in out.getvalue()
    assert User.objects.filter(username=user.username).count() == 1
    assert first != second
    assert bearer(first).get(API).status_code == 200
    assert bearer(second).get(API).status_code == 200


def test_revoke_api_token_command(user: User) -> None:
    token = create_token(user)
    out = io.StringIO()
    call_command("revoke_api_token", user.username, stdout=out)
    assert "revoked 1 token" in out.getvalue()
    assert_401(bearer(token).get(API))
    with pytest.raises(CommandError):
        call_command("revoke_api_token", "nobody", stdout=io.StringIO())


# --- session login for the dashboard --------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/crm/"])
def test_anonymous_dashboard_redirects_to_login(db: None, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_redirect_keeps_the_query_string_encoded(db: None) -> None:
    response = Client().get("/crm/?search=anna&address__country=AT")
    assert response.status_code == 302
    assert response["Location"] == (
        "/accounts/login/?next=/crm/%3Fsearch%3Danna%26address__country%3DAT"
    )


def test_login_with_csrf(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    credentials = {"username": "staff", "password": "staff-password-123"}
    assert client.post("/accounts/login/", credentials).status_code == 403  # no CSRF token
    csrf = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {**credentials, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get(API).status_code == 200


def test_logout_with_csrf(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/login/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    assert client.post("/accounts/logout/").status_code == 403  # logout needs CSRF too
    client.raise_request_exception = False
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf})
    assert client.get("/").status_code == 302  # logged out either way (holds today)
    assert_401(client.get(API))
    assert response.status_code == 302, response.status_code  # actual: 500
    assert response["Location"].startswith("/accounts/login/")


def test_wrong_password_stays_on_the_login_page(user: User) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "staff", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


# --- safe defaults ---------------------------------------------------------------------------


def test_security_headers(api_client: Client) -> None:
    for path in (API, "/crm/", "/accounts/login/", "/healthz"):
        response = api_client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert response["X-Frame-Options"] == "DENY", path
    cookies = Client().get("/accounts/login/").cookies
    assert cookies["csrftoken"]["samesite"] == "Lax"


def test_settings_defaults_from_the_environment(tmp_path: Path) -> None:
    """DEBUG off and the SECRET_KEY from the environment, else generated once and kept
    under .data/ (checked in a fresh interpreter: pytest-django overrides DEBUG)."""
    script = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.DEBUG); print(settings.SECRET_KEY)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"

    def run(**extra: str) -> list[str]:
        return subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env | extra, check=True,
            capture_output=True, text=True, timeout=60,
        ).stdout.split()  # fmt: skip

    debug, key = run()
    kept = ROOT / ".data" / "secret_key"
    assert debug == "False"
    assert key == kept.read_text().strip() and len(key) >= 50
    assert kept.stat().st_mode & 0o077 == 0
    assert run(SECRET_KEY="from-the-environment-" + "k" * 40)[1].startswith("from-the-env")


def test_unknown_api_path_is_404_in_the_errors_body(api_client: Client) -> None:
    response = api_client.get("/crm/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"param": "", "message": "not found"}]}


def test_anonymous_unknown_path_is_401(db: None) -> None:
    """Which paths exist is not told to anonymous requests."""
    assert_401(Client().get("/crm/no-such-thing"))
    assert_401(Client().get("/wp-admin/"))


def test_an_unhandled_error_is_a_json_500_without_details(
    api_client: Client, monkeypatch: pytest.MonkeyPatch, make_contact: Any
) -> None:
    make_contact()  # a page to read (an empty result reads none)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail: SELECT password FROM auth_user")

    monkeypatch.setattr("crm.views.contact_page", boom)
    api_client.raise_request_exception = False
    response = api_client.get(API)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["message"].startswith("internal server error")
    assert b"secret" not in response.content and b"Traceback" not in response.content


def test_a_programming_error_is_a_json_500_not_an_outage(
    api_client: Client, monkeypatch: pytest.MonkeyPatch, make_contact: Any
) -> None:
    """A bug in SQL is not dressed up as '503 retry later', and its SQL is not shown."""
    from django.db import connection

    make_contact()  # a page to read (an empty result reads none)

    def bad_sql(*args: object, **kwargs: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret_column FROM no_such_table")

    monkeypatch.setattr("crm.views.contact_page", bad_sql)
    api_client.raise_request_exception = False
    response = api_client.get(API)
    assert response.status_code == 500
    assert b"no_such_table" not in response.content and b"SELECT" not in response.content
    assert "Retry-After" not in response
