"""Contact avatars over HTTP: one query for the names, then the pure code in crm.avatars."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags

from crm import avatars
from crm.middleware import allow_methods
from crm.responses import errors_response
from crm.selectors import contact_names

# A `?v=` URL names one exact picture (see avatars.avatar_url), so it may be kept forever.
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Without a current version the picture changes whenever the name does, and contacts are
# edited: a cache revalidates every time (a 304 when the initials and colour are unchanged),
# so an avatar never shows a name the contact no longer has.
UNVERSIONED_CACHE_CONTROL = "public, no-cache"
# Nothing in an avatar loads anything; this also keeps a directly opened SVG inert.
SVG_CSP = "default-src 'none'"

_SIZE_MESSAGE = (
    f"size must be a whole number of pixels from {avatars.SIZE_MIN} to {avatars.SIZE_MAX}"
)
_SHAPE_MESSAGE = f"shape must be one of: {', '.join(avatars.SHAPES)}"

Errors = list[dict[str, str]]


def _size(raw: str | None, errors: Errors) -> int:
    if raw is None:
        return avatars.SIZE_DEFAULT
    # isascii: int() would also take "١٢٨", " 128" or "1_28"; the length cap keeps int() cheap.
    if raw.isascii() and raw.isdigit() and len(raw) <= 6:
        size = int(raw)
        if avatars.SIZE_MIN <= size <= avatars.SIZE_MAX:
            return size
    errors.append({"param": "size", "message": _SIZE_MESSAGE})
    return avatars.SIZE_DEFAULT


def _shape(raw: str | None, errors: Errors) -> str:
    if raw is None:
        return avatars.SHAPE_DEFAULT
    if raw in avatars.SHAPES:
        return raw
    errors.append({"param": "shape", "message": _SHAPE_MESSAGE})
    return avatars.SHAPE_DEFAULT


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored."""
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def _avatar(request: HttpRequest, contact_id: int, fmt: str) -> HttpResponse:
    errors: Errors = []
    size = _size(request.GET.get("size"), errors)
    shape = _shape(request.GET.get("shape"), errors)
    if errors:
        return errors_response(errors, 400)
    names = contact_names(contact_id)
    if names is None:
        return errors_response([{"param": "contact_id", "message": "no contact with this id"}], 404)
    avatar = avatars.avatar_for(contact_id, *names)
    etag = avatars.etag(avatar, fmt, size, shape)
    versioned = request.GET.get("v") == avatars.version(avatar)
    headers = {
        "ETag": etag,
        "Cache-Control": VERSIONED_CACHE_CONTROL if versioned else UNVERSIONED_CACHE_CONTROL,
    }
    if _matches(request.headers.get("If-None-Match"), etag):
        return HttpResponseNotModified(headers=headers)
    if fmt == "svg":
        headers["Content-Security-Policy"] = SVG_CSP
        body: str | bytes = avatars.render_svg(avatar, size, shape)
        content_type = "image/svg+xml; charset=utf-8"
    else:
        body = avatars.render_png(avatar, size, shape)
        content_type = "image/png"
    return HttpResponse(body, content_type=content_type, headers=headers)


@allow_methods("GET", "HEAD")
def avatar_svg(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _avatar(request, contact_id, "svg")


@allow_methods("GET", "HEAD")
def avatar_png(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _avatar(request, contact_id, "png")
