"""Database trouble answers 503 with a clear message and Retry-After, never a 500; API
paths answer errors in the JSON errors body, never an HTML page or a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.http import require_http_methods

from crm.responses import error_response

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "2"
QUERY_CANCELED = "57014"  # statement_timeout (or a cancel request)

# Server-rendered pages (HTML: anonymous users are redirected to the login page, errors stay
# HTML). Every other path under API_PREFIX is JSON and answers errors in the errors body.
PAGE_PATHS = ("/", "/crm/", "/crm/docs", "/accounts/login/", "/accounts/logout/")
API_PREFIX = "/crm/"

TIMEOUT_MESSAGE = "the query took too long and was cancelled; narrow the filters or retry"
UNAVAILABLE_MESSAGE = "the database is unavailable; retry shortly"
INTERNAL_MESSAGE = "internal server error; the failure was logged"
STATUS_MESSAGES = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    500: INTERNAL_MESSAGE,
}


View = TypeVar("View", bound=Callable[..., Any])


def allow_methods(*methods: str) -> Callable[[View], View]:
    """require_http_methods, with the methods readable by MethodNotAllowedMiddleware."""

    def decorate(view: View) -> View:
        checked = require_http_methods(list(methods))(view)
        checked.allowed_methods = frozenset(methods)  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate


class MethodNotAllowedMiddleware:
    """405 for a method the view does not take, before the CSRF check (placed ahead of
    CsrfViewMiddleware): a session request with an undeclared method must not meet a 403
    that suggests the method exists."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], *args: Any
    ) -> HttpResponse | None:
        allowed = getattr(view, "allowed_methods", None)
        if allowed is None or request.method in allowed:
            return None
        return HttpResponseNotAllowed(sorted(allowed))


def is_api_path(path_info: str) -> bool:
    return path_info == "/healthz" or (
        path_info.startswith(API_PREFIX) and path_info not in PAGE_PATHS
    )


def is_timeout(error: BaseException) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == QUERY_CANCELED


def is_unavailable(error: BaseException) -> bool:
    """A cancelled statement, a refused or broken connection: worth retrying. Programming,
    data and integrity errors are bugs and are not dressed up as an outage."""
    return isinstance(error, OperationalError | InterfaceError)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 and is_api_path(request.path_info):
            return json_error_page(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DatabaseError):
            return None
        return database_error_response(exception)


def json_error_page(response: HttpResponse) -> HttpResponse:
    """Django's own error pages (404 from the resolver, 405 from require_GET, 400 for too
    many query parameters, the 500 page) as the errors body; JSON responses pass through."""
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    status = response.status_code
    replacement = error_response(None, STATUS_MESSAGES.get(status, "request failed"), status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            replacement[header] = response[header]
    return replacement


def _discard_broken_connections() -> None:
    """A connection broken by a restart or an outage must not be reused by the next request
    (CONN_MAX_AGE keeps connections across requests)."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:  # an atomic block's own exit rolls back and cleans up
            conn.close_if_unusable_or_obsolete()


def database_error_response(exception: DatabaseError) -> HttpResponse:
    """503 + Retry-After for a statement timeout or an unreachable database, used wherever
    SQL runs; 500 (logged with its traceback) for any other database error."""
    if not is_unavailable(exception):
        logger.error("database error", exc_info=exception)
        return error_response(None, INTERNAL_MESSAGE, 500)
    if is_timeout(exception):
        logger.warning("statement cancelled: %s", exception)
        message = TIMEOUT_MESSAGE
    else:
        logger.warning("database unavailable: %s", exception)
        message = UNAVAILABLE_MESSAGE
        _discard_broken_connections()
    response = error_response(None, message, 503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response
