"""The dashboard's contact page end to end, in Debian's headless Chromium driven by Playwright:
open a contact (click, Enter, a shared URL), edit it (inline errors, a conflict), change its
points, create one and delete one. Each write is checked on the page, in the table behind the
dialog (without a reload) and in the database.

The live server, login and browser set-up are those of tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from crm.models import AppUser, CustomerRelationship, PointsChange
from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, login, wait_for_query

pytestmark = pytest.mark.browser
LIST_URL = re.compile(r"^http://[^/]+/$")  # the list, no contact open

PEOPLE = [("Anna", "Adler", "Wien", "AT", "1010"),
          ("Ben", "Bauer", "Graz", "AT", "8010"),
          ("Clara", "Berger", "Berlin", "DE", "10115"),
          ("David", "Brunner", "Zürich", "CH", "8001"),
          ("Emma", "Eder", "München", "DE", "80331"),
          ("Felix", "Fischer", "Wien", "AT", "1020"),
          ('<img src=x onerror="window.pwned=1">', "Fuchs <b>bold</b>", "Linz", "AT", "4020"),
          ("Hannes", "Gruber", "Salzburg", "AT", "5020")]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def fast_hashing(settings: Any) -> None:
    """The live server hashes with this too (it runs in this process): login stays fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def contacts(transactional_db: None, fast_hashing: None, user: Any,
             make_contact: Callable[..., AppUser]) -> Iterator[list[AppUser]]:  # fmt: skip
    """A few contacts, committed for the live server; the read model is emptied around the
    test (the flush TRUNCATEs the tables, which fires no trigger)."""
    truncate_read_model()
    made = [
        make_contact(first_name=first, last_name=last, city=city, country=country,
                     city_code=code, street="Hauptstraße", street_number=f"{i + 1}a",
                     points=None if i == 1 else i * 125 + 7, gender="FMXU"[i % 4],
                     birthday=date(1970 + i, i + 1, 5),
                     last_activity=datetime(2024, i + 1, 10, 12, tzinfo=UTC))
        for i, (first, last, city, country, code) in enumerate(PEOPLE)
    ]  # fmt: skip
    yield made
    truncate_read_model()


def truncate_read_model() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE crm_contactrow")


@pytest.fixture
def page(browser: Browser, live_server: Any, contacts: list[AppUser]) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page)
    wait_for_query(page, {"page": "1"})
    mark_document(page)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def dialog(page: Page) -> Locator:
    return page.locator("#contact-dialog")


def row(page: Page, contact: AppUser | int) -> Locator:
    contact_id = contact if isinstance(contact, int) else contact.pk
    return page.locator(f'#rows tr[data-id="{contact_id}"]')


def fact(page: Page, name: str) -> Locator:
    return dialog(page).locator(f'[data-show="{name}"]')


def error_next_to(page: Page, param: str) -> Locator:
    return dialog(page).locator(f'[id="ce-{param}"]')


def expect_open(page: Page, contact: AppUser) -> None:
    expect(dialog(page)).to_be_visible()
    expect(dialog(page).locator("#contact-title")).to_have_text(
        f"{contact.first_name} {contact.last_name}"
    )
    expect(dialog(page).locator(".contact-panel")).to_have_attribute("data-mode", "view")
    assert page.url.endswith(f"#contact={contact.pk}")


def open_by_click(page: Page, contact: AppUser) -> None:
    row(page, contact).click()
    expect_open(page, contact)


def mark_document(page: Page) -> None:
    page.evaluate("window.sameDocument = true")  # a reload would lose it


def still_same_document(page: Page) -> None:
    """The table changed by a fetch, not by loading the page again."""
    assert page.evaluate("window.sameDocument") is True


def test_open_by_click_and_by_enter_then_share_and_reload_the_url(
    page: Page, contacts: list[AppUser]
) -> None:
    clara, ben, evil = contacts[2], contacts[1], contacts[6]
    open_by_click(page, clara)
    expect(dialog(page).locator(".contact-sub")).to_have_text(f"Customer {clara.customer_id}")
    expect(fact(page, "customer_id")).to_have_text(clara.customer_id)
    expect(fact(page, "phone_number")).to_have_text(clara.phone_number)
    expect(fact(page, "gender")).to_have_text("Diverse / non-binary")
    expect(fact(page, "birthday")).to_have_text("Mar 5, 1972")
    expect(fact(page, "address")).to_have_text("Hauptstraße 3a\n10115 Berlin\nGermany (DE)")
    expect(fact(page, "points")).to_have_text("257")
    expect(fact(page, "last_activity")).to_have_text("Mar 10, 2024, 12:00 PM")
    body = page.request.get(f"/crm/appusers/{clara.pk}").json()
    avatar = dialog(page).locator(".avatar-large img")
    expect(avatar).to_have_attribute("src", body["avatar_url"])
    page.wait_for_function(
        "() => document.querySelector('#contact-dialog .avatar-large img').naturalWidth > 0"
    )
    expect(row(page, clara)).to_have_attribute("aria-current", "true")

    # Close: the address bar is the list's again and the row has the focus back.
    dialog(page).get_by_role("button", name="Close").click()
    expect(dialog(page)).to_be_hidden()
    expect(page).to_have_url(LIST_URL)
    expect(row(page, clara)).to_be_focused()
    expect(row(page, clara)).not_to_have_attribute("aria-current", "true")

    # The keyboard: rows are tab stops, arrows move between them, Enter opens one.
    expect(row(page, ben)).to_have_attribute("tabindex", "0")
    page.keyboard.press("ArrowUp")
    expect(row(page, ben)).to_be_focused()
    page.keyboard.press("Enter")
    expect_open(page, ben)
    expect(fact(page, "points")).to_have_text("No loyalty account")
    expect(fact(page, "last_activity")).to_have_text("—")
    expect(dialog(page).get_by_label("Add or remove points")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    expect(page).to_have_url(LIST_URL)

    # A shared URL: the list's own query and the contact, after a reload as well.
    page.goto(f"/?ordering=-last_name#contact={clara.pk}")
    expect_open(page, clara)
    wait_for_query(page, {"page": "1", "ordering": "-last_name"})
    page.reload()
    expect_open(page, clara)
    expect(fact(page, "points")).to_have_text("257")
    wait_for_query(page, {"page": "1", "ordering": "-last_name"})
    # Back closes a contact opened from the list.
    page.keyboard.press("Escape")
    open_by_click(page, evil)
    page.go_back()
    expect(dialog(page)).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/\?ordering=-last_name$"))

    # Names are text, never markup.
    open_by_click(page, evil)
    expect(dialog(page).locator("#contact-title img, #contact-title b")).to_have_count(0)
    assert page.evaluate("window.pwned") is None

    # A contact that does not exist.
    page.goto("/#contact=987654321")
    expect(dialog(page).locator("#contact-title")).to_have_text("Contact not found")
    expect(dialog(page).get_by_role("alert")).to_have_text(
        "There is no such contact: it may have been deleted."
    )


def test_edit_saves_and_the_table_shows_it_at_once(page: Page, contacts: list[AppUser]) -> None:
    anna = contacts[0]
    open_by_click(page, anna)
    dialog(page).get_by_role("button", name="Edit").click()
    form = dialog(page).get_by_role("form", name="Edit contact")
    expect(form.get_by_label("First name")).to_be_focused()
    expect(form.get_by_label("Last name")).to_have_value("Adler")
    expect(form.get_by_label("Country code")).to_have_value("AT")
    form.get_by_label("Last name").fill("Adler-Nowak")
    form.get_by_label("City").fill("Linz")
    form.get_by_label("Postal code").fill("4020")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        form.get_by_role("button", name="Save changes").click()
    # Only the changed fields, based on the version shown.
    assert sent.value.post_data_json == {
        "last_name": "Adler-Nowak", "address": {"city": "Linz", "city_code": "4020"}}  # fmt: skip
    assert (sent.value.header_value("If-Match") or "").startswith('"')

    expect(dialog(page).get_by_role("status")).to_have_text("Saved.")
    expect(dialog(page).locator("#contact-title")).to_have_text("Anna Adler-Nowak")
    expect(fact(page, "address")).to_have_text("Hauptstraße 1a\n4020 Linz\nAustria (AT)")
    expect(row(page, anna).locator("td.name")).to_have_text("Anna Adler-Nowak")
    expect(row(page, anna).locator("td").nth(4)).to_have_text("Linz")
    still_same_document(page)
    stored = AppUser.objects.select_related("address").get(pk=anna.pk)
    assert (stored.last_name, stored.address.city, stored.address.city_code) == (
        "Adler-Nowak", "Linz", "4020")  # fmt: skip

    # Nothing changed: nothing is sent.
    dialog(page).get_by_role("button", name="Edit").click()
    form.get_by_role("button", name="Save changes").click()
    expect(dialog(page).get_by_role("status")).to_have_text(
        "Nothing to save: no field was changed."
    )
    expect(dialog(page).locator(".contact-panel")).to_have_attribute("data-mode", "view")


def test_a_400_puts_each_message_next_to_its_field(page: Page, contacts: list[AppUser]) -> None:
    anna = contacts[0]
    open_by_click(page, anna)
    dialog(page).get_by_role("button", name="Edit").click()
    form = dialog(page).get_by_role("form", name="Edit contact")
    form.get_by_label("Phone number").fill("123")
    form.get_by_label("Country code").fill("Austria")
    form.get_by_label("First name").fill("Annabel")
    form.get_by_role("button", name="Save changes").click()

    phone = error_next_to(page, "phone_number")
    country = error_next_to(page, "address.country")
    expect(phone).to_have_text("Expects a value such as +436641234567 (E.164)")
    expect(country).to_have_text(
        "Expects an ISO 3166-1 alpha-2 country code in capitals, such as AT"
    )
    expect(form.get_by_label("Phone number")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Country code")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("First name")).not_to_have_attribute("aria-invalid", "true")
    expect(error_next_to(page, "first_name")).to_be_hidden()
    expect(dialog(page).get_by_role("status")).to_have_text("Not saved: 2 fields need correcting.")
    expect(form.get_by_label("Phone number")).to_be_focused()
    stored = AppUser.objects.select_related("address").get(pk=anna.pk)
    assert (stored.first_name, stored.phone_number, stored.address.country) == (
        "Anna", anna.phone_number, "AT")  # fmt: skip

    # Corrected (a lower-case code is sent in capitals), it saves and the errors go.
    form.get_by_label("Phone number").fill("+436641234567")
    form.get_by_label("Country code").fill("de")
    form.get_by_role("button", name="Save changes").click()
    expect(dialog(page).get_by_role("status")).to_have_text("Saved.")
    expect(phone).to_be_hidden()
    expect(country).to_be_hidden()
    expect(row(page, anna).locator("td").nth(5)).to_have_text("DE")
    stored = AppUser.objects.select_related("address").get(pk=anna.pk)
    assert (stored.first_name, stored.phone_number, stored.address.country) == (
        "Annabel", "+436641234567", "DE")  # fmt: skip


def test_a_conflict_is_reported_and_nothing_is_overwritten(
    page: Page, contacts: list[AppUser]
) -> None:
    emma = contacts[4]
    open_by_click(page, emma)
    dialog(page).get_by_role("button", name="Edit").click()
    form = dialog(page).get_by_role("form", name="Edit contact")
    form.get_by_label("First name").fill("Mine")
    form.get_by_label("Last name").fill("Mine too")
    # Someone else changes the contact between opening and saving.
    AppUser.objects.filter(pk=emma.pk).update(last_name="Theirs")
    form.get_by_role("button", name="Save changes").click()

    alert = dialog(page).get_by_role("alert")
    expect(alert).to_contain_text(
        "This contact was changed by someone else since you opened it. "
        "Your changes were not saved: load the current version, then make them again."
    )
    stored = AppUser.objects.get(pk=emma.pk)
    assert (stored.first_name, stored.last_name) == ("Emma", "Theirs")
    expect(form.get_by_label("First name")).to_have_value("Mine")  # still there to copy

    # Load the current version, say what changed, then save on top of it.
    alert.get_by_role("button", name="Load the current version").click()
    expect(dialog(page).get_by_role("status")).to_have_text(
        "Loaded the current version. Changed meanwhile: last name."
    )
    expect(alert).to_be_hidden()
    expect(form.get_by_label("Last name")).to_have_value("Theirs")
    expect(form.get_by_label("First name")).to_have_value("Emma")
    expect(row(page, emma).locator("td.name")).to_have_text("Emma Theirs")
    form.get_by_label("First name").fill("Mine")
    form.get_by_role("button", name="Save changes").click()
    expect(dialog(page).get_by_role("status")).to_have_text("Saved.")
    expect(row(page, emma).locator("td.name")).to_have_text("Mine Theirs")
    stored = AppUser.objects.get(pk=emma.pk)
    assert (stored.first_name, stored.last_name) == ("Mine", "Theirs")

    # A delete of a version that is no longer current is refused the same way.
    AppUser.objects.filter(pk=emma.pk).update(phone_number="+4312345678")
    dialog(page).get_by_role("button", name="Delete…").click()
    dialog(page).get_by_role("button", name="Delete permanently").click()
    expect(alert).to_contain_text("It was not deleted: check the current version first.")
    assert AppUser.objects.filter(pk=emma.pk).exists()


def test_points_change_the_balance_shown_and_in_the_table(
    page: Page, contacts: list[AppUser]
) -> None:
    clara = contacts[2]  # 257 points
    open_by_click(page, clara)
    points_form = dialog(page).locator('[data-slot="points-form"]')
    points_form.get_by_label("Add or remove points").fill("50")
    points_form.get_by_label("Reason").fill("Purchase #4711")
    points_form.get_by_role("button", name="Apply").click()
    expect(dialog(page).get_by_role("status")).to_have_text(
        "Points changed by +50: the balance is now 307."
    )
    expect(fact(page, "points")).to_have_text("307")
    expect(row(page, clara).locator("td.num")).to_have_text("307")
    expect(points_form.get_by_label("Add or remove points")).to_have_value("")
    today = datetime.now(UTC).strftime("%b %-d, %Y")
    expect(fact(page, "last_activity")).to_contain_text(today)  # refreshed from the server
    still_same_document(page)
    assert CustomerRelationship.objects.get(appuser=clara).points == 307
    ledger = PointsChange.objects.get(appuser=clara)
    assert (ledger.delta, ledger.reason, ledger.balance) == (50, "Purchase #4711", 307)

    # Redeeming more than the balance is refused, next to the field; nothing changes.
    points_form.get_by_label("Add or remove points").fill("-1000")
    points_form.get_by_label("Reason").fill("Voucher")
    points_form.get_by_role("button", name="Apply").click()
    expect(error_next_to(page, "delta")).to_have_text(
        "Changing by -1000 would make the balance of 307 negative"
    )
    expect(points_form.get_by_label("Add or remove points")).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(fact(page, "points")).to_have_text("307")
    assert CustomerRelationship.objects.get(appuser=clara).points == 307
    assert PointsChange.objects.filter(appuser=clara).count() == 1

    # A reason is required; the API says so next to it.
    points_form.get_by_label("Add or remove points").fill("-7")
    points_form.get_by_label("Reason").fill("")
    points_form.get_by_role("button", name="Apply").click()
    expect(error_next_to(page, "reason")).to_have_text("Must not be blank")
    expect(error_next_to(page, "delta")).to_be_hidden()
    points_form.get_by_label("Reason").fill("Correction")
    points_form.get_by_role("button", name="Apply").click()
    expect(fact(page, "points")).to_have_text("300")
    expect(row(page, clara).locator("td.num")).to_have_text("300")
    assert CustomerRelationship.objects.get(appuser=clara).points == 300


def test_new_contact_creates_one_and_the_row_appears(page: Page, contacts: list[AppUser]) -> None:
    page.goto("/?ordering=last_name")
    wait_for_query(page, {"page": "1", "ordering": "last_name"})
    mark_document(page)
    page.get_by_role("button", name="New contact").click()
    expect(dialog(page).locator("#contact-title")).to_have_text("New contact")
    assert page.url.endswith("/?ordering=last_name#contact=new")
    form = dialog(page).get_by_role("form", name="New contact")
    expect(form.get_by_label("First name")).to_be_focused()
    expect(form.get_by_label("Gender")).to_have_value("U")

    # Nothing filled in: the API's messages, each next to its field.
    form.get_by_role("button", name="Create contact").click()
    expect(error_next_to(page, "first_name")).to_have_text("Must not be blank")
    expect(error_next_to(page, "address.city")).to_have_text("Must not be blank")
    expect(error_next_to(page, "address.country")).to_contain_text("Expects an ISO 3166-1")

    form.get_by_label("First name").fill("Zoë")
    form.get_by_label("Last name").fill("Aaberg")
    form.get_by_label("Gender").select_option("F")
    form.get_by_label("Birthday").fill("1990-07-14")
    form.get_by_label("Customer ID").fill(contacts[0].customer_id)  # taken
    form.get_by_label("Phone number").fill("+436641112233")
    form.get_by_label("Street").fill("Ringstraße")
    form.get_by_label("House number").fill("7")
    form.get_by_label("Postal code").fill("1010")
    form.get_by_label("City").fill("Wien")
    form.get_by_label("Country code").fill("AT")
    form.get_by_label("Starting points").fill("25")
    form.get_by_role("button", name="Create contact").click()
    expect(error_next_to(page, "customer_id")).to_have_text("Is already used by another contact")
    expect(error_next_to(page, "first_name")).to_be_hidden()
    assert not AppUser.objects.filter(last_name="Aaberg").exists()

    form.get_by_label("Customer ID").fill("C-NEW-1")
    form.get_by_role("button", name="Create contact").click()
    expect(dialog(page).get_by_role("status")).to_have_text("Contact created.")
    created = AppUser.objects.select_related("address", "relationship").get(customer_id="C-NEW-1")
    assert (created.first_name, created.last_name, created.gender) == ("Zoë", "Aaberg", "F")
    assert created.birthday == date(1990, 7, 14)
    assert (created.address.street, created.address.city, created.address.country) == (
        "Ringstraße", "Wien", "AT")  # fmt: skip
    assert created.relationship.points == 25
    expect_open(page, created)
    expect(fact(page, "points")).to_have_text("25")
    # The table shows it at once: first by last name, and counted.
    expect(page.locator("#rows tr").first).to_have_attribute("data-id", str(created.pk))
    expect(row(page, created).locator("td.name")).to_have_text("Zoë Aaberg")
    expect(row(page, created)).to_have_attribute("aria-current", "true")
    expect(page.locator("#result-status")).to_have_text(f"{len(contacts) + 1} contacts")
    still_same_document(page)

    # Its URL is the new contact's.
    page.reload()
    expect_open(page, created)


def test_delete_asks_first_then_the_row_disappears(page: Page, contacts: list[AppUser]) -> None:
    felix = contacts[5]
    open_by_click(page, felix)
    dialog(page).get_by_role("button", name="Delete…").click()
    confirm = dialog(page).get_by_role("alertdialog")
    expect(confirm.locator("p")).to_have_text(
        "Delete Felix Fischer with their address and points history? This cannot be undone."
    )
    expect(confirm.get_by_role("button", name="Keep contact")).to_be_focused()
    confirm.get_by_role("button", name="Keep contact").click()
    expect(confirm).to_be_hidden()
    assert AppUser.objects.filter(pk=felix.pk).exists()

    dialog(page).get_by_role("button", name="Delete…").click()
    with page.expect_request(lambda r: r.method == "DELETE") as sent:
        confirm.get_by_role("button", name="Delete permanently").click()
    assert (sent.value.header_value("If-Match") or "").startswith('"')
    expect(dialog(page)).to_be_hidden()
    expect(page.locator("#page-notice")).to_have_text("Deleted Felix Fischer.")
    expect(row(page, felix)).to_have_count(0)
    expect(page.locator("#result-status")).to_have_text(f"{len(contacts) - 1} contacts")
    expect(page).to_have_url(LIST_URL)
    still_same_document(page)
    assert not AppUser.objects.filter(pk=felix.pk).exists()

    # Its URL now says so.
    page.goto(f"/#contact={felix.pk}")
    expect(dialog(page).locator("#contact-title")).to_have_text("Contact not found")
