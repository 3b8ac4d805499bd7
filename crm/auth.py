"""Authentication on every endpoint except /healthz and the login page.

The dashboard uses Django's session login; the JSON API also accepts
`Authorization: Bearer <token>`. Anonymous or bad-token API requests get 401 with the
errors body; anonymous page requests are redirected to the login page.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from crm.middleware import database_error_response
from crm.models import ApiToken
from crm.responses import error_response

PUBLIC_PATHS = ("/healthz", "/accounts/login/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)
PAGE_PATHS = ("/", "/crm/", "/crm/docs", "/accounts/logout/")  # HTML: redirect, not 401
TOKEN_BYTES = 32


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


def user_for_token(token: str) -> User | None:
    found = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(token), revoked__isnull=True, user__is_active=True)
        .first()
    )
    return found.user if found else None


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _unauthorized(message: str) -> HttpResponse:
    response = error_response(None, message, 401)
    response["WWW-Authenticate"] = 'Bearer realm="crm"'
    return response


class AuthenticationRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_public(request.path):
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
            user = user_for_token(token)
            if user is None:
                return _unauthorized("the bearer token is invalid or revoked")
            request.user = user
        elif not request.user.is_authenticated:
            if request.path in PAGE_PATHS:
                return redirect(f"{settings.LOGIN_URL}?next={request.path}")
            return _unauthorized(
                "authentication required: log in or send Authorization: Bearer <token>"
            )
        return None
