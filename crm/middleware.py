"""Database trouble answers 503 with a clear message and Retry-After, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError, OperationalError, close_old_connections, connection
from django.http import HttpRequest, HttpResponse

from crm.responses import error_response

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "2"


def _is_timeout(error: DatabaseError) -> bool:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == "57014"  # query_canceled: statement_timeout


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DatabaseError):
            return None
        return database_error_response(exception)


def database_error_response(exception: DatabaseError) -> HttpResponse:
    """503 for a statement timeout or an unreachable database, used wherever SQL runs."""
    if _is_timeout(exception):
        message = "the query took too long and was cancelled; narrow the filters or retry"
    else:
        logger.warning("database unavailable: %s", exception)
        message = "the database is unavailable; retry shortly"
        if isinstance(exception, OperationalError):
            # a broken connection must not be reused by the next request
            connection.close_if_unusable_or_obsolete()
            close_old_connections()
    response = error_response(None, message, 503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response
