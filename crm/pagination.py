"""Opaque keyset cursors: the sort key values of a boundary row, signed so that a tampered
or forged cursor is rejected instead of running an arbitrary range query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core import signing

from crm.params import OrderKey, ValueError_, parse_scalar

SALT = "crm.cursor.v1"


@dataclass(frozen=True)
class Cursor:
    values: list[Any]  # one per ordering key, the last being id
    backwards: bool  # True: the page before the boundary row (a `previous` link)
    # the first page's estimated count, for the pages that follow (crm/views.py says why)
    estimate: list[Any] | None = None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _signature(keys: list[OrderKey]) -> list[str]:
    """The ordering a cursor belongs to, directions included."""
    return [("-" if k.descending else "") + k.field.name for k in keys]


def encode_cursor(
    keys: list[OrderKey],
    values: list[Any],
    *,
    backwards: bool,
    estimate: list[Any] | None = None,
) -> str:
    payload = {"o": _signature(keys), "v": [_plain(v) for v in values], "b": backwards}
    if estimate is not None:
        payload["e"] = estimate
    return signing.dumps(payload, salt=SALT, compress=True)


def decode_cursor(raw: str, keys: list[OrderKey]) -> Cursor:
    """Raises ValueError_ for a cursor that is tampered with or made for another ordering."""
    try:
        payload = signing.loads(raw, salt=SALT)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise ValueError_("is not a valid cursor; use the next/previous links as given") from None
    if payload.get("o") != _signature(keys):
        raise ValueError_("was made for another ordering; follow links of this ordering")
    values = [
        None if v is None else parse_scalar(k.field, str(v))
        for k, v in zip(keys, payload["v"], strict=True)
    ]
    estimate = payload.get("e")
    return Cursor(values, bool(payload.get("b")), estimate if isinstance(estimate, list) else None)
