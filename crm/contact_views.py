"""The write API of one contact: create, read with its ETag, update, delete, and a points
change. Thin views: the body is parsed by crm/contact_input.py, written by crm/services.py."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from crm import replicas, services
from crm.contact_input import MAX_BODY_BYTES, parse_contact, parse_points_change
from crm.middleware import allow_methods
from crm.params import InvalidParams
from crm.responses import error_response, errors_response, json_response, raw_json_response
from crm.selectors import contact_row
from crm.views import appuser_list

NOT_FOUND = "no contact with this id"
STALE = "the contact has changed since it was read (If-Match): read it again and retry"


@allow_methods("GET", "POST")
def appusers(request: HttpRequest) -> HttpResponse:
    """GET lists the contacts (crm/views.py); POST creates one."""
    if request.method == "GET":
        return appuser_list(request)
    return _handled(request, lambda: _created(request))


@allow_methods("GET", "PATCH", "DELETE")
def appuser(request: HttpRequest, contact_id: int) -> HttpResponse:
    if request.method == "GET":
        return _read(request, contact_id)
    if request.method == "PATCH":
        return _handled(request, lambda: _updated(request, contact_id))
    return _handled(request, lambda: _deleted(request, contact_id))


@allow_methods("POST")
def appuser_points(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _handled(request, lambda: _points_changed(request, contact_id))


def _read(request: HttpRequest, contact_id: int) -> HttpResponse:
    row = contact_row(contact_id) if _is_bigint(contact_id) else None
    if row is None:
        return error_response("id", NOT_FOUND, 404)
    etag = services.etag_of(row)
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return HttpResponse(status=304, headers={"ETag": etag})
    return raw_json_response(row, headers={"ETag": etag})


def _created(request: HttpRequest) -> HttpResponse:
    stored = services.contact_create(data=parse_contact(_body(request), partial=False))
    location = reverse("appuser", args=[stored.id])
    return _stored_response(stored, 201, Location=request.build_absolute_uri(location))


def _updated(request: HttpRequest, contact_id: int) -> HttpResponse:
    data = parse_contact(_body(request), partial=True)
    stored = services.contact_update(
        contact_id=contact_id, data=data, if_match=request.headers.get("If-Match")
    )
    return _stored_response(stored, 200)


def _deleted(request: HttpRequest, contact_id: int) -> HttpResponse:
    services.contact_delete(contact_id=contact_id, if_match=request.headers.get("If-Match"))
    return HttpResponse(status=204)


def _points_changed(request: HttpRequest, contact_id: int) -> HttpResponse:
    change = parse_points_change(_body(request))
    balance = services.points_add(contact_id=contact_id, change=change)
    return json_response({"id": contact_id, "points": balance, "delta": change.delta})


def _stored_response(stored: services.StoredContact, status: int, **headers: str) -> HttpResponse:
    return raw_json_response(stored.row, status=status, headers={"ETag": stored.etag, **headers})


class _TooLarge(Exception):
    pass


def _body(request: HttpRequest) -> bytes:
    """At most MAX_BODY_BYTES of the body: a longer one is refused before it is read whole."""
    if _content_length(request) > MAX_BODY_BYTES:
        raise _TooLarge()
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise _TooLarge()
    return body


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _handled(request: HttpRequest, write: Callable[[], HttpResponse]) -> HttpResponse:
    """The write's answer, or the errors body for what it refused."""
    contact_id = request.resolver_match.kwargs.get("contact_id") if request.resolver_match else None
    if contact_id is not None and not _is_bigint(contact_id):
        return error_response("id", NOT_FOUND, 404)
    try:
        response = write()
    except InvalidParams as invalid:
        return errors_response(invalid.errors)
    except _TooLarge:
        return error_response("body", f"body is larger than {MAX_BODY_BYTES} bytes", 413)
    except services.ContactNotFound:
        return error_response("id", NOT_FOUND, 404)
    except services.PreconditionFailed:
        return error_response("If-Match", STALE, 412)
    except services.Conflict as conflict:
        return error_response(conflict.param, conflict.message, 409)
    replicas.remember_write(request)  # committed: this user's next reads must see it
    return response


def _is_bigint(contact_id: int) -> bool:
    return 0 < contact_id < 2**63
