"""The contacts dashboard: one server-rendered page; its script reads /crm/appusers.

The page only renders the controls. Every query goes through the JSON list API with the
same parameter names, so the dashboard has no query path of its own.
"""

from __future__ import annotations

import calendar
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from crm.fields import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from crm.middleware import allow_methods
from crm.models import Gender

# A static list: SELECT DISTINCT over millions of contacts on every page view is too slow.
# ISO 3166-1 alpha-2 codes of the markets the CRM serves; any other code still works
# through the URL (?address__country=XX), which the API validates.
COUNTRIES: tuple[tuple[str, str], ...] = (
    ("AT", "Austria"),
    ("BE", "Belgium"),
    ("BG", "Bulgaria"),
    ("HR", "Croatia"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DK", "Denmark"),
    ("EE", "Estonia"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("DE", "Germany"),
    ("GR", "Greece"),
    ("HU", "Hungary"),
    ("IS", "Iceland"),
    ("IE", "Ireland"),
    ("IT", "Italy"),
    ("LV", "Latvia"),
    ("LI", "Liechtenstein"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("MT", "Malta"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("SK", "Slovakia"),
    ("SI", "Slovenia"),
    ("ES", "Spain"),
    ("SE", "Sweden"),
    ("CH", "Switzerland"),
    ("GB", "United Kingdom"),
    ("US", "United States"),
)
PAGE_SIZES = tuple(size for size in (10, 25, 50, 100, 200, 500) if size <= PAGE_SIZE_MAX)


def _first_page_url(request: HttpRequest, api_url: str) -> str:
    """The API request the page's script makes first (same rules: no cursor, no empty
    value, page 1 by default), so the browser can preload it while the script loads."""
    pairs = [(name, value) for name, values in request.GET.lists() if name != "cursor"
             for value in values if value != ""]  # fmt: skip
    if not any(name == "page" for name, _ in pairs):
        pairs.append(("page", "1"))
    return f"{api_url}?{urlencode(pairs)}"


@allow_methods("GET", "HEAD")
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    api_url = reverse("appuser-list")
    context = {
        "api_url": api_url,
        "first_page_url": _first_page_url(request, api_url),
        "genders": Gender.choices,
        "countries": COUNTRIES,
        "months": list(enumerate(calendar.month_name))[1:],
        "page_sizes": PAGE_SIZES,
        "page_size_default": PAGE_SIZE_DEFAULT,
    }
    return render(request, "crm/dashboard.html", context)
