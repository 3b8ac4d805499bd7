"""The dashboard end to end, in Debian's headless Chromium driven by Playwright.

The browser talks to pytest-django's live server, so each test commits its contacts
(transactional_db). Every table shown is checked against the list API, fetched with the
page's own session for the same query string.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.db import connection

# Playwright's sync API runs an event loop in this thread; the ORM calls in the fixtures
# are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

pytestmark = pytest.mark.browser
expect.set_options(timeout=10_000)  # CI machines are small and busy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
PASSWORD = "staff-password-123"
CONTACTS = 40
PLACES = [("Wien", "AT", "1010"), ("Graz", "AT", "8010"), ("Berlin", "DE", "10115"),
          ("Zürich", "CH", "8001"), ("München", "DE", "80331")]  # fmt: skip
FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes"]
LAST = ["Adler", "Bauer", "Berger", "Brunner", "Eder", "Fischer", "Fuchs", "Gruber", "Haas",
        "Hofer", "Huber", "Jäger", "Kaiser", "Koch", "Lang", "Lehner", "Mayer", "Moser",
        "Müller", "Neumann", "Novak", "Pichler", "Reiter", "Schmid", "Schneider", "Schwarz",
        "Steiner", "Wagner", "Weber", "Wolf", "Winkler", "Wimmer", "Zimmermann", "Egger",
        "Aigner", "Bergmann", "Lindner", "Pirker", "Ortner", "Sommer"]  # fmt: skip
JS_ROWS = "rows => rows.map(row => row.cells[2].textContent)"  # customer ids, in table order


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def clean_read_model(transactional_db: None) -> Iterator[None]:
    """The flush after a transactional test TRUNCATEs the tables, which fires no trigger,
    so the read model would keep the rows: empty it before and after."""

    def truncate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE crm_contactrow")

    truncate()
    yield
    truncate()


@pytest.fixture
def fast_hashing(settings: Any) -> None:
    """The live server runs in this process, so it hashes with this too; PBKDF2 would spend
    most of each test creating and logging in the user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contacts(fast_hashing: None, clean_read_model: None, user: Any,
             make_contact: Callable[..., Any]) -> list[Any]:  # fmt: skip
    made = []
    for i in range(CONTACTS):
        city, country, code = PLACES[i % len(PLACES)]
        made.append(make_contact(
            first_name=FIRST[i % len(FIRST)], last_name=LAST[i], gender="FMXU"[i % 4],
            city=city, country=country, city_code=code,
            points=None if i % 13 == 12 else i * 125 + 7,
            birthday=date(1970 + i, i % 12 + 1, 5),
            last_activity=datetime(2024, i % 12 + 1, 10, 12, tzinfo=UTC),
        ))  # fmt: skip
    return made


@pytest.fixture
def page(browser: Browser, live_server: Any, contacts: list[Any]) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page: Page, path: str = "/") -> None:
    page.goto(path)
    page.wait_for_url(lambda url: urlsplit(url).path == "/accounts/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == path)


def wait_for_query(page: Page, expected: dict[str, str], state: str = "ready") -> None:
    """Wait until the table shows the answer to exactly these API parameters."""
    page.wait_for_function(
        """([expected, state]) => {
            const root = document.getElementById("dashboard");
            if (root.dataset.state !== state || root.dataset.query === undefined) return false;
            const shown = [...new URLSearchParams(root.dataset.query)].sort();
            return JSON.stringify(shown) === JSON.stringify(Object.entries(expected).sort());
        }""",
        arg=[expected, state],
    )


def api(page: Page, params: dict[str, str]) -> dict[str, Any]:
    response = page.request.get(f"/crm/appusers?{urlencode(params)}")
    assert response.ok, response.text()
    return response.json()  # type: ignore[no-any-return]


def shown_ids(page: Page) -> list[str]:
    return page.locator("#rows tr:not(.message)").evaluate_all(JS_ROWS)  # type: ignore[no-any-return]


def assert_matches_api(page: Page, params: dict[str, str]) -> dict[str, Any]:
    """The table and the result count are those of the API for the same parameters."""
    wait_for_query(page, params)
    body = api(page, params)
    assert shown_ids(page) == [row["customer_id"] for row in body["results"]]
    expect(page.locator("#result-status")).to_have_text(
        f"{body['count']} contact{'' if body['count'] == 1 else 's'}"
    )
    return body


def test_search_sort_filter_page_and_history(page: Page) -> None:
    # First page: 25 of 40, newest view of the API, and the page renders fast.
    body = assert_matches_api(page, {"page": "1"})
    assert body["count"] == CONTACTS and len(body["results"]) == 25
    assert float(page.locator("#dashboard").get_attribute("data-render-ms") or "999") < 100
    expect(page.locator("#page-range")).to_have_text("Showing 1\u201325 of 40")
    # The first request was the preloaded one, not a second fetch of the same page.
    resources = page.evaluate("performance.getEntriesByType('resource').map(r => r.name)")
    assert len([name for name in resources if "/crm/appusers?" in name]) == 1

    # Search as the user types; the URL follows.
    page.get_by_label("Search contacts").press_sequentially("berg", delay=20)
    assert_matches_api(page, {"page": "1", "search": "berg"})
    assert set(page.locator("#rows td.name").all_text_contents()) == {
        "Clara Berger", "David Bergmann"}  # fmt: skip
    assert page.url.endswith("/?search=berg")

    page.get_by_label("Search contacts").fill("")
    assert_matches_api(page, {"page": "1"})

    # Sort by points: ascending, then descending; aria-sort follows.
    points = page.locator('th[data-sort="relationship__points"]')
    points.get_by_role("button").click()
    assert_matches_api(page, {"page": "1", "ordering": "relationship__points"})
    expect(points).to_have_attribute("aria-sort", "ascending")
    points.get_by_role("button").click()
    body = assert_matches_api(page, {"page": "1", "ordering": "-relationship__points"})
    expect(points).to_have_attribute("aria-sort", "descending")
    assert body["results"][0]["relationship"] is None  # NULLs first when descending
    expect(page.locator("th[aria-sort]")).to_have_count(1)

    # Filter by country, then a bad value is reported next to its field.
    page.get_by_label("Country").select_option("DE")
    sorted_de = {"page": "1", "ordering": "-relationship__points", "address__country": "DE"}
    body = assert_matches_api(page, sorted_de)
    assert {row["address"]["country"] for row in body["results"]} == {"DE"}

    minimum = page.get_by_label("Minimum points")
    minimum.fill("lots")
    wait_for_query(page, sorted_de | {"relationship__points__gte": "lots"}, state="error")
    error = page.locator("#error-relationship__points__gte")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Expects an integer from -2147483648 to 2147483647, got 'lots'")
    expect(minimum).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#general-error")).to_be_hidden()
    expect(page.locator("#rows")).to_contain_text("a field needs correcting")

    minimum.fill("2000")
    body = assert_matches_api(page, sorted_de | {"relationship__points__gte": "2000"})
    assert body["results"] and all(r["relationship"]["points"] >= 2000 for r in body["results"])
    expect(error).to_be_hidden()
    expect(minimum).not_to_have_attribute("aria-invalid", "true")
    filtered_url = page.url

    # Clear the filters (ordering stays), then page forward.
    page.get_by_role("button", name="Clear filters").click()
    assert_matches_api(page, {"page": "1", "ordering": "-relationship__points"})
    expect(page.get_by_label("Country")).to_have_value("")
    page.get_by_role("link", name="Next").click()
    body = assert_matches_api(page, {"page": "2", "ordering": "-relationship__points"})
    assert len(body["results"]) == CONTACTS - 25
    assert page.url.endswith("/?ordering=-relationship__points&page=2")
    expect(page.get_by_role("link", name="Page 2")).to_have_attribute("aria-current", "page")
    expect(page.locator("#page-next")).to_have_attribute("aria-disabled", "true")

    # The URL state survives a reload ...
    page.reload()
    assert_matches_api(page, {"page": "2", "ordering": "-relationship__points"})
    expect(points).to_have_attribute("aria-sort", "descending")

    # ... and the back button walks through the earlier views.
    page.go_back()  # page 1 after clearing
    assert_matches_api(page, {"page": "1", "ordering": "-relationship__points"})
    page.go_back()  # the filtered view
    assert page.url == filtered_url
    assert_matches_api(page, sorted_de | {"relationship__points__gte": "2000"})
    expect(page.get_by_label("Country")).to_have_value("DE")
    expect(minimum).to_have_value("2000")
    page.go_forward()
    assert_matches_api(page, {"page": "1", "ordering": "-relationship__points"})


def test_a_shared_url_opens_the_same_view(page: Page) -> None:
    params = {"gender": "F", "birthday__month": "1", "address__city__iexact": "wien",
              "relationship__last_activity__gte": "2024-01-01",
              "relationship__last_activity__lte": "2024-12-31T23:59:59.999999Z"}  # fmt: skip
    page.goto("/crm/?" + "&".join(f"{k}={v}" for k, v in params.items()))
    body = assert_matches_api(page, params | {"page": "1"})
    assert body["count"] >= 1
    expect(page.get_by_label("Gender")).to_have_value("F")
    expect(page.get_by_label("Birthday month")).to_have_value("1")
    expect(page.get_by_label("City")).to_have_value("wien")
    expect(page.get_by_label("From (date)")).to_have_value("2024-01-01")
    expect(page.get_by_label("To (date, inclusive)")).to_have_value("2024-12-31")

    page.get_by_label("To (date, inclusive)").fill("2024-01-10")
    assert_matches_api(page, params | {"page": "1", "relationship__last_activity__lte":
                                       "2024-01-10T23:59:59.999999Z"})  # fmt: skip


def test_empty_result_and_errors_without_a_field(page: Page) -> None:
    page.get_by_label("Search contacts").fill("nobody-has-this-name")
    wait_for_query(page, {"page": "1", "search": "nobody-has-this-name"})
    expect(page.locator("#rows")).to_have_text("No contacts match the search and filters.")
    expect(page.locator("#result-status")).to_have_text("No contacts found")

    page.goto("/?page=9")
    wait_for_query(page, {"page": "9"}, state="error")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("page 9 is past the last page")
    alert.get_by_role("link", name="Go to the first page").click()
    assert_matches_api(page, {"page": "1"})
    expect(alert).to_be_hidden()

    page.goto("/?colour=blue")
    wait_for_query(page, {"page": "1", "colour": "blue"}, state="error")
    expect(page.get_by_role("alert")).to_contain_text("colour is not a known parameter")


def test_names_are_shown_as_text_never_as_markup(page: Page, make_contact: Any) -> None:
    evil = '<img src=x onerror="window.pwned=1">'
    make_contact(first_name=evil, last_name="<b>Bold</b>")
    page.get_by_label("Search contacts").fill("bold")
    wait_for_query(page, {"page": "1", "search": "bold"})
    cell = page.locator("#rows td.name")
    expect(cell).to_have_text(f"{evil} <b>Bold</b>")
    expect(cell.locator("img, b")).to_have_count(0)
    assert page.evaluate("window.pwned") is None


def test_a_misspelt_search_shows_what_it_found_instead(page: Page, make_contact: Any) -> None:
    """Forgiving search (crm/selectors/suggestions.py): nothing found for `Hubr`, so the page
    shows Huber's contacts and says so; `Maier` finds one, and offers Meier and Mayer."""
    make_contact(first_name="Maria", last_name="Maier")
    make_contact(first_name="Mia", last_name="Meier")
    search = page.get_by_label("Search contacts")
    offers = page.locator("#search-suggestions")
    search.fill("Hubr")
    wait_for_query(page, {"page": "1", "search": "Hubr"})
    expect(offers).to_have_text("No contacts match “Hubr”. Showing results for “Huber”.")
    body = api(page, {"page": "1", "search": "Hubr"})
    assert body["fuzzy"] and shown_ids(page) == [r["customer_id"] for r in body["results"]]
    assert [r["last_name"] for r in body["results"]] == ["Huber"]

    search.fill("Maier")
    wait_for_query(page, {"page": "1", "search": "Maier"})
    expect(offers).to_have_text(re.compile(r"^Did you mean .*\?$"))
    for name in ("Meier", "Mayer"):  # sound alike (and are one typo away)
        expect(offers.get_by_role("button", name=name, exact=True)).to_be_visible()
    offers.get_by_role("button", name="Meier").click()
    wait_for_query(page, {"page": "1", "search": "Meier"})
    expect(search).to_have_value("Meier")
    expect(page.locator("#rows td.name")).to_have_text("Mia Meier")
    expect(offers.get_by_role("button", name="Maier", exact=True)).to_be_visible()


def until(page: Page, condition: Callable[[], bool], seconds: float = 10) -> None:
    """Let the page run (and Playwright deliver its events) until `condition` holds."""
    for _ in range(int(seconds * 20)):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("timed out waiting for a condition")


def searching(url: str) -> bool:
    return "/crm/appusers?" in url and "search=" in url


def test_typing_cancels_the_previous_request(page: Page) -> None:
    held: list[Route] = []
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.route(searching, lambda route: held.append(route))
    search = page.get_by_label("Search contacts")
    search.press_sequentially("hu")
    until(page, lambda: len(held) == 1)
    page.wait_for_timeout(300)
    assert len(held) == 1  # debounced: one request for the two keystrokes
    search.press_sequentially("ber")
    until(page, lambda: len(held) == 2)
    until(page, lambda: any(urlsplit(url).query == "search=hu&page=1" for url in failed))
    page.unroute(searching)
    for route in held:
        with contextlib.suppress(Exception):  # the first one was aborted by the page
            route.continue_()
    assert_matches_api(page, {"page": "1", "search": "huber"})
    expect(page.locator("#rows td.name")).to_have_text(["Clara Huber"])


def api_url(url: str) -> bool:
    return "/crm/appusers?" in url


def test_an_estimated_count_is_shown_as_about(page: Page) -> None:
    def estimate(route: Route) -> None:
        response = route.fetch()
        body = response.json() | {"count": 1_234_567, "count_exact": False, "num_pages": 49383}
        route.fulfill(response=response, json=body)

    page.route(api_url, estimate)
    page.reload()
    wait_for_query(page, {"page": "1"})
    expect(page.locator("#result-status")).to_have_text("about 1.2 million contacts")
    expect(page.locator("#page-range")).to_have_text("Showing 1\u201325 of about 1.2 million")
    # The last page of an estimate is a guess: no link to it, only to the next few.
    expect(page.locator("#page-list a")).to_have_text(["1", "2", "3"])

    def thousands(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json=response.json() | {"count": 134_123,
                                                                 "count_exact": False})  # fmt: skip

    page.unroute(api_url)
    page.route(api_url, thousands)
    page.reload()
    wait_for_query(page, {"page": "1"})
    expect(page.locator("#result-status")).to_have_text("about 130,000 contacts")


def test_keyboard_only(page: Page) -> None:
    wait_for_query(page, {"page": "1"})
    for _ in range(10):  # skip link, sign out, then the search box
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "search":
            break
    else:
        pytest.fail("Tab never reached the search box")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.type("gruber")
    wait_for_query(page, {"page": "1", "search": "gruber"})
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    wait_for_query(page, {"page": "1"})

    name_sort = page.locator('th[data-sort="last_name"] button')
    name_sort.focus()
    page.keyboard.press("Enter")
    wait_for_query(page, {"page": "1", "ordering": "last_name"})
    expect(page.locator('th[data-sort="last_name"]')).to_have_attribute("aria-sort", "ascending")
    expect(name_sort).to_be_focused()

    page.locator("#page-next").focus()
    page.keyboard.press("Enter")
    assert_matches_api(page, {"page": "2", "ordering": "last_name"})
    # Next is disabled on the last page, so the focus moves to the current page's link.
    expect(page.get_by_role("link", name="Page 2")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    assert_matches_api(page, {"page": "1", "ordering": "last_name"})
    expect(page.get_by_role("link", name="Page 1")).to_be_focused()

    page.get_by_label("Rows per page").select_option("10")
    body = assert_matches_api(page, {"page": "1", "ordering": "last_name", "page_size": "10"})
    assert body["num_pages"] == 4
    expect(page.locator("#page-list a")).to_have_text(["1", "2", "3", "4"])


def test_the_export_button_exports_the_current_view(page: Page) -> None:
    params = {"gender": "F", "ordering": "-relationship__points"}
    page.goto("/crm/?" + urlencode(params))
    body = assert_matches_api(page, params | {"page": "1"})
    href = page.locator("#export-csv").get_attribute("href") or ""
    exported = dict(parse_qsl(href.partition("?")[2]))
    assert exported == params | {"bom": "true"}  # no page, page_size or cursor
    response = page.request.get(href)
    assert response.ok
    lines = response.body().decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + body["count"]  # header + every matching contact
    first_ids = [line.split(",")[0] for line in lines[1:4]]
    assert first_ids == [str(row["id"]) for row in body["results"][:3]]
