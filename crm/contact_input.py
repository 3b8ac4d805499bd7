"""Strict parsing of a contact's JSON body (POST and PATCH /crm/appusers) into the values
each source table gets, or a list of errors that names every bad field (`address.country`).

The body has the shape of a list row: the contact's own fields, a nested `address` and an
optional nested `relationship` (null removes it in a PATCH). Read-only fields (`id`,
`created`, `last_updated`, `avatar_url`, the nested ids) and unknown fields are refused,
never ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from crm.countries import ISO_3166_ALPHA2
from crm.models import CUSTOMER_ID_PATTERN, E164_PATTERN, Gender
from crm.params import InvalidParams

MAX_BODY_BYTES = 64 * 1024
MAX_POINTS = 2**31 - 1  # the column is an integer
OLDEST_BIRTHDAY = date(1900, 1, 1)
CLOCK_SKEW = timedelta(minutes=5)  # a client's clock may run this far ahead of ours
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_E164 = re.compile(E164_PATTERN)
_CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class FieldError(ValueError):
    """A value that does not fit its field; the message says what is allowed."""


@dataclass(frozen=True)
class InputField:
    """How one field of the body is parsed, and the JSON Schema that says the same
    (crm/openapi_writes.py publishes it, so the schema and the parser cannot disagree)."""

    parse: Callable[[Any], Any]
    schema: dict[str, Any]
    # For a date whose upper bound is today (a birthday, a last activity): the days the
    # parser takes, as a pattern of the schema made for a given day (see dates_through()).
    latest: Callable[[date], date] | None = None

    def json_schema(self, today: date) -> dict[str, Any]:
        if self.latest is None:
            return self.schema
        return self.schema | {"pattern": f"^(?:{dates_through(self.latest(today))})"}


def _below(n: int, width: int) -> str:
    """A regex for the zero-padded `width`-digit numbers below n (0 <= n < 10**width)."""
    if width == 0:
        return "(?!)" if n <= 0 else ""
    first, rest = divmod(n, 10 ** (width - 1))
    options = [f"{first}{_below(rest, width - 1)}"] if rest else []
    if first:
        digits = "0" if first == 1 else f"[0-{first - 1}]"
        options.insert(0, digits + r"\d" * (width - 1))
    return "(?:" + "|".join(options) + ")" if options else "(?!)"


def dates_through(last: date) -> str:
    """An ECMA-262 regex for the YYYY-MM-DD days from 1900-01-01 to `last`, so that a schema
    can state a bound of "today" (JSON Schema has no date minimum or maximum). Invalid
    days such as 02-30 are left to `format: date`."""
    years = r"19\d\d" + (f"|2{_below(last.year - 2000, 3)}" if last.year > 2000 else "")
    return (f"(?:{years})-\\d\\d-\\d\\d"
            f"|{last.year}-{_below(last.month, 2)}-\\d\\d"
            f"|{last:%Y-%m}-{_below(last.day + 1, 2)}")  # fmt: skip


# Not blank, no control characters: what text() accepts, as an ECMA-262 pattern.
TEXT_PATTERN = r"^(?=[\s\S]*\S)[^\u0000-\u001f\u007f]*$"


def text(max_length: int, pattern: re.Pattern[str] | None = None, example: str = "") -> InputField:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise FieldError("expects a string")
        if not value.strip():
            raise FieldError("must not be blank")
        if len(value) > max_length:
            raise FieldError(f"is longer than {max_length} characters")
        if _CONTROL.search(value):
            raise FieldError("must not contain control characters")
        if pattern and not pattern.fullmatch(value):
            raise FieldError(f"expects a value such as {example}")
        return value

    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    schema["pattern"] = f"^{pattern.pattern}$" if pattern else TEXT_PATTERN
    return InputField(parse, schema | ({"example": example.split()[0]} if example else {}))


def choice(values: list[str]) -> InputField:
    def parse(value: Any) -> str:
        if value not in values:
            raise FieldError(f"expects one of {', '.join(values)}")
        return str(value)

    return InputField(parse, {"type": "string", "enum": values})


def _country(value: Any) -> str:
    if not isinstance(value, str) or value not in ISO_3166_ALPHA2:
        raise FieldError("expects an ISO 3166-1 alpha-2 country code in capitals, such as AT")
    return value


def integer(low: int, high: int) -> InputField:
    def parse(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON (and JSON Schema) count 2.0 as an integer
        if type(value) is not int or not low <= value <= high:  # bool is an int subclass
            raise FieldError(f"expects an integer from {low} to {high}")
        return value

    return InputField(parse, {"type": "integer", "minimum": low, "maximum": high})


def _latest_birthday(today: date) -> date:
    return today + timedelta(days=1)  # today somewhere on Earth


def _birthday(value: Any) -> date | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise FieldError("expects a date YYYY-MM-DD or null") from None
    if not OLDEST_BIRTHDAY <= day <= _latest_birthday(datetime.now(UTC).date()):
        raise FieldError(f"expects a date from {OLDEST_BIRTHDAY} to today, not in the future")
    return day


def _past_timestamp(value: Any) -> datetime | None:
    """ISO 8601 with an offset (none means UTC), from 1900 to now; or null."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not _DATE.match(value):
            raise ValueError
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)  # PostgreSQL takes offsets only up to 15:59
    except (ValueError, OverflowError):
        raise FieldError("expects an ISO 8601 timestamp such as 2024-05-01T12:00:00Z") from None
    if not datetime(1900, 1, 1, tzinfo=UTC) <= moment <= datetime.now(UTC) + CLOCK_SKEW:
        raise FieldError("expects a timestamp from 1900 to now, not in the future")
    return moment


COUNTRY = InputField(_country, {"type": "string", "enum": sorted(ISO_3166_ALPHA2)})
BIRTHDAY = InputField(
    _birthday,
    {
        "type": ["string", "null"],
        "format": "date",
        "description": f"from {OLDEST_BIRTHDAY} to today",
        "example": "1980-01-02",
    },
    latest=_latest_birthday,
)
PAST_TIMESTAMP = InputField(
    _past_timestamp,
    {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "ISO 8601 (no offset means UTC), from 1900 to now; the pattern "
        "bounds the day (a time later today is refused with 400 all the same)",
        "example": "2024-05-01T12:00:00Z",
    },
    latest=lambda today: today,
)


@dataclass(frozen=True)
class Part:
    """One object of the body: its fields, the ones a new contact must give, and defaults."""

    name: str  # "" for the contact itself, else the key it is nested under
    fields: Mapping[str, InputField]
    required: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    read_only: frozenset[str] = frozenset()


CONTACT = Part(
    "",
    {
        "first_name": text(100),
        "last_name": text(100),
        "gender": choice(Gender.values),
        "customer_id": text(32, _CUSTOMER_ID, "C0001234 (letters, digits, . _ -)"),
        "phone_number": text(20, _E164, "+436641234567 (E.164)"),
        "birthday": BIRTHDAY,
    },
    required=frozenset({"first_name", "last_name", "customer_id", "phone_number"}),
    defaults={"gender": Gender.UNSPECIFIED.value, "birthday": None},
    read_only=frozenset({"id", "created", "last_updated", "avatar_url"}),
)
ADDRESS = Part(
    "address",
    {
        "street": text(200),
        "street_number": text(16),
        "city_code": text(16),
        "city": text(100),
        "country": COUNTRY,
    },
    required=frozenset({"street", "street_number", "city_code", "city", "country"}),
    read_only=frozenset({"id"}),
)
RELATIONSHIP = Part(
    "relationship",
    {"points": integer(0, MAX_POINTS), "last_activity": PAST_TIMESTAMP},
    defaults={"points": 0, "last_activity": None},
    read_only=frozenset({"id", "created"}),
)
NESTED = {p.name: p for p in (ADDRESS, RELATIONSHIP)}


@dataclass
class ContactInput:
    """The parsed values per table; for a PATCH only what the body gives."""

    contact: dict[str, Any] = field(default_factory=dict)
    address: dict[str, Any] | None = None
    relationship: dict[str, Any] | None = None
    remove_relationship: bool = False


def read_json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:  # the view refuses it earlier from Content-Length
        raise InvalidParams([_error("body", f"is larger than {MAX_BODY_BYTES} bytes")])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidParams([_error("body", f"is not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise InvalidParams([_error("body", "must be a JSON object")])
    return data


def parse_contact(body: bytes, *, partial: bool) -> ContactInput:
    """The body of a new contact (every required field) or of a PATCH (any of them)."""
    data = read_json_object(body)
    errors: list[dict[str, str]] = []
    parsed = ContactInput(contact=_parse_part(CONTACT, data, partial, errors, NESTED))
    if "address" in data or not partial:
        parsed.address = _nested(ADDRESS, data.get("address"), partial, errors)
    if data.get("relationship", ...) is None:
        parsed.remove_relationship = partial  # null: a new contact just has none
    elif "relationship" in data:
        parsed.relationship = _nested(RELATIONSHIP, data["relationship"], partial, errors)
    if errors:
        raise InvalidParams(errors)
    return parsed


def _nested(
    part: Part, value: Any, partial: bool, errors: list[dict[str, str]]
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        errors.append(_error(part.name, "expects an object"))
        return None
    return _parse_part(part, value, partial, errors)


def _parse_part(
    part: Part,
    data: Mapping[str, Any],
    partial: bool,
    errors: list[dict[str, str]],
    nested: Mapping[str, Part] | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {} if partial else dict(part.defaults)
    for name, value in data.items():
        param = f"{part.name}.{name}" if part.name else name
        if nested and name in nested:
            continue
        if name in part.read_only:
            errors.append(_error(param, "is read-only"))
        elif name not in part.fields:
            allowed = ", ".join([*part.fields, *(nested or {})])
            errors.append(_error(param, f"is not a field; use {allowed}"))
        else:
            try:
                values[name] = part.fields[name].parse(value)
            except FieldError as error:
                errors.append(_error(param, str(error)))
    if not partial:
        for name in sorted(part.required - data.keys()):
            errors.append(_error(f"{part.name}.{name}" if part.name else name, "is required"))
    return values


def _error(param: str, message: str) -> dict[str, str]:
    return {"param": param, "message": f"{param} {message}"}


@dataclass(frozen=True)
class PointsChange:
    delta: int
    reason: str


def _nonzero(field: InputField) -> InputField:
    def parse(value: Any) -> Any:
        parsed = field.parse(value)
        if parsed == 0:
            raise FieldError("must not be 0")
        return parsed

    return InputField(parse, field.schema | {"not": {"const": 0}})


POINTS = Part(
    "",
    {"delta": _nonzero(integer(-MAX_POINTS, MAX_POINTS)), "reason": text(200)},
    required=frozenset({"delta", "reason"}),
)


def parse_points_change(body: bytes) -> PointsChange:
    data = read_json_object(body)
    errors: list[dict[str, str]] = []
    values = _parse_part(POINTS, data, False, errors)
    if errors:
        raise InvalidParams(errors)
    return PointsChange(**values)
