"""Authentication on every endpoint except /healthz and the login page.

The dashboard uses Django's session login; the JSON API also accepts
`Authorization: Bearer <token>`. Anonymous or bad-token API requests get 401 with the
errors body; anonymous page requests are redirected to the login page.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import partial
from typing import cast

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from crm.middleware import PAGE_PATHS, database_error_response
from crm.models import ApiToken
from crm.replicas import USER_ID_ATTR
from crm.responses import error_response

# The only paths open to anonymous requests (tests/test_urls_require_auth.py checks every
# route of the URLconf against this list). Matched against path_info, which is what the
# URL resolver routes on, so a SCRIPT_NAME prefix cannot make a private view look public.
PUBLIC_PATHS = ("/healthz", "/accounts/login/")
PUBLIC_PREFIXES = ("/static/",)  # STATIC_URL: WhiteNoise serves it before this middleware
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200  # a token is 43 characters; anything much longer is not one


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User) -> str:
    """A new token for `user`; the plain text is returned once and never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    ApiToken.objects.create(user=user, key_hash=hash_token(token), prefix=token[:8])
    return token


def revoke_tokens(*, user: User, prefix: str | None = None) -> int:
    tokens = ApiToken.objects.filter(user=user, revoked__isnull=True)
    if prefix:
        tokens = tokens.filter(prefix=prefix)
    return tokens.update(revoked=timezone.now())


# Runs on every API request, so it is one indexed lookup (the unique key_hash) in raw SQL:
# building the equivalent ORM query cost more than the avatar it guarded (0.5 ms a request).
# Checked on every request, never cached, so a revoked token stops working at once.
TOKEN_USER_SQL = """
SELECT t.user_id FROM crm_apitoken t JOIN auth_user u ON u.id = t.user_id
 WHERE t.key_hash = %s AND t.revoked IS NULL AND u.is_active
"""


def user_id_for_token(token: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_USER_SQL, [hash_token(token)])
        row = cursor.fetchone()
    return row[0] if row else None


def _user_or_anonymous(user_id: int) -> User | AnonymousUser:
    # Deleted between the token check and the view's first look: anonymous, not a 500.
    return User.objects.filter(pk=user_id).first() or AnonymousUser()


def _bearer(request: HttpRequest) -> str | None:
    """The token of `Authorization: Bearer <token>`; "" for a Bearer header without one (a
    bad token, refused), None without a Bearer header (the session decides)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _is_public(path_info: str) -> bool:
    return path_info in PUBLIC_PATHS or path_info.startswith(PUBLIC_PREFIXES)


def _unauthorized(message: str) -> HttpResponse:
    response = error_response(None, message, 401)
    response["WWW-Authenticate"] = 'Bearer realm="crm"'
    return response


class AuthenticationRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_public(request.path_info):
            return self.get_response(request)
        try:
            denied = self._deny(request)
        except DatabaseError as error:  # the session or token lookup needs the database
            return database_error_response(error)
        return denied or self.get_response(request)

    def _deny(self, request: HttpRequest) -> HttpResponse | None:
        """None when the request is authenticated, else the response that refuses it."""
        token = _bearer(request)
        if token is not None:
            user_id = user_id_for_token(token) if 0 < len(token) <= MAX_TOKEN_LENGTH else None
            if user_id is None:
                return _unauthorized("the bearer token is invalid or revoked")
            # Loaded only if a view asks for it; the list and avatar views never do.
            request.user = cast(User, SimpleLazyObject(partial(_user_or_anonymous, user_id)))
            setattr(request, USER_ID_ATTR, user_id)  # read-your-writes keys on it
            # A cross-site page cannot set the Authorization header (no CORS here), so unlike
            # the session cookie a token carries no ambient authority: no CSRF check needed.
            setattr(request, "_dont_enforce_csrf_checks", True)  # noqa: B010
        elif not request.user.is_authenticated:
            if request.path_info in PAGE_PATHS:
                return redirect_to_login(request.get_full_path())
            return _unauthorized(
                "authentication required: log in or send Authorization: Bearer <token>"
            )
        return None
