"""The count of a search of one term by value (crm/sql.py search_count_sql, crm_value in
crm/db/words.sql): the rows of the names and places whose values hold the term, with those
whose customer id or phone number does. At 3M it counts a term the planner expects more than
COUNT_BY_VALUE_FROM matches of; here every term, so that it runs on a few rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

from crm.models import AppUser
from crm.selectors import count
from crm.sql import Binder, search_count_sql
from tests.test_appuser_list import MakeContact, get

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def by_value() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(count, "COUNT_BY_VALUE_FROM", -1)
        yield


def counted(client: Client, query: dict[str, str]) -> tuple[int, bool, str]:
    """The list's count, whether exact, and the way it was made (Server-Timing)."""
    response = get(client, query)
    assert response.status_code == 200, response.content
    method = response["Server-Timing"].split("count;", 1)[1].split('desc="', 1)[1]
    return response.json()["count"], response.json()["count_exact"], method.split('"')[0]


def test_a_term_is_counted_in_every_searched_field_once(
    api_client: Client, make_contact: MakeContact
) -> None:
    make_contact(last_name="Berger")
    make_contact(first_name="Bergit")
    make_contact(street="Bergstraße")
    make_contact(city="Bergen")
    make_contact(last_name="Berg", first_name="Bergit", city="Berg", street="Bergweg")  # once
    make_contact(customer_id="BERG-1")
    make_contact()
    assert counted(api_client, {"search": "berg"}) == (6, True, "values")
    assert counted(api_client, {"search": "berg", "count": "exact"}) == (6, True, "exact")


def test_spellings_of_a_term_are_counted_alike(
    api_client: Client, make_contact: MakeContact
) -> None:
    for name in ("Müller", "Mueller", "MÜLLER", "Muller", "Miller"):
        make_contact(last_name=name)
    for term in ("müller", "mueller", "muller", "MULL"):
        assert counted(api_client, {"search": term}) == (4, True, "values"), term


def test_a_renamed_contact_is_counted_by_its_new_name(
    api_client: Client, make_contact: MakeContact
) -> None:
    """The trigger that keeps crm_value adds the values that writes bring."""
    contact = make_contact(last_name="Huber")
    assert counted(api_client, {"search": "zauner"})[0] == 0
    AppUser.objects.filter(pk=contact.pk).update(last_name="Zauner")
    assert counted(api_client, {"search": "zauner"}) == (1, True, "values")
    with connection.cursor() as cursor:
        cursor.execute("SELECT field FROM crm_value WHERE value = 'Zauner'")
        assert cursor.fetchall() == [("last_name",)]


def test_a_term_whose_fold_has_a_space_is_counted_another_way(
    api_client: Client, make_contact: MakeContact
) -> None:
    """`½` folds to ` 1/2` on PostgreSQL 18 (to `1/2` on 15), which could span two fields'
    folds in search_text: the count by value has no answer for a term whose fold has
    whitespace, and the other ways count search_text itself."""
    make_contact(first_name="Anna", last_name="1/2")  # across its first and last names
    make_contact(last_name="Anna 1/2")
    make_contact(last_name="Anna1/2")
    for term, answers in (("anna 1/2", False), ("anna", True)):
        bind = Binder()
        with connection.cursor() as cursor:
            cursor.execute(search_count_sql(term, bind, 10_000), bind.params)
            assert bool(cursor.fetchall()) is answers, term
            cursor.execute(
                "SELECT count(*) FROM crm_contactrow"
                " WHERE search_text LIKE ANY (crm_search_spellings('anna½'))"
            )
            (truth,) = cursor.fetchone()
    assert counted(api_client, {"search": "anna½"})[:2] == (truth, True)


def test_a_term_without_a_trigram_is_counted_another_way(
    api_client: Client, make_contact: MakeContact
) -> None:
    """No trigram index finds the customer ids and phone numbers that hold `刘` or `wu`:
    counted by value, their folds were computed for every row (18 s at 3M)."""
    make_contact(last_name="刘")
    make_contact(last_name="Wu")
    make_contact(first_name="Wulf")
    assert counted(api_client, {"search": "刘"}) == (1, True, "capped")
    assert counted(api_client, {"search": "wu"}) == (2, True, "capped")
    assert counted(api_client, {"search": "wul"})[2] == "values"


def test_more_matches_of_the_other_fields_than_it_reads_leave_the_count_to_another_way(
    api_client: Client, make_contact: MakeContact, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer ids and phone numbers are read through the table, at most the cap + 1
    of them: past that their count is unknown, and so is the whole."""
    monkeypatch.setattr(count, "EXACT_COUNT_LIMIT", 3)
    for n in range(5):
        make_contact(customer_id=f"KX-{n}")
    value, exact, method = counted(api_client, {"search": "kx-"})
    assert (value >= 4, exact) == (True, False)
    assert method != "values"
    make_contact(last_name="Lindqvist")
    assert counted(api_client, {"search": "lindqvist"}) == (1, True, "values")
