"""The practical floor of this stack, for `manage.py bench` only: GET /crm/appusers/floor
(routed only when the bench app is installed), a minimal view that runs one raw SQL page
query and serialises its rows with orjson (no filters, no count, no validation). The list
API's throughput is reported as a ratio of this view's."""

from __future__ import annotations

import orjson
from django.db import connection
from django.http import HttpRequest, HttpResponse

FLOOR_SQL = "SELECT * FROM crm_contactrow ORDER BY id LIMIT 25"


def appuser_floor(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return HttpResponse(orjson.dumps({"results": rows}), content_type="application/json")
