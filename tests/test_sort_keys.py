"""Dictionary order of names and places (crm_sort_key(), crm/db/schema.sql): the keys'
definition, checked over every character, and the order the list gives with it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from crm.params import parse_list_params
from crm.readmodel import sync_now
from crm.sql import Binder, query_where_sql
from tests.test_appuser_list import MakeContact, get, ids

pytestmark = pytest.mark.django_db

EVERY_CHARACTER = "generate_series(1, 1114111) c WHERE c NOT BETWEEN 55296 AND 57343"


def _scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # the checks of every character
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_a_characters_letters_depend_on_its_upper_case_alone() -> None:
    """What a case-insensitive prefix's range of the key rests on (crm/params.py
    on_sort_keys): characters that upper() makes one have the same letters."""
    apart = _scalar(
        f"SELECT array_agg(u) FROM (SELECT upper(chr(c)) u FROM {EVERY_CHARACTER} "  # noqa: S608
        "GROUP BY 1 HAVING count(DISTINCT crm_sort_letters(chr(c))) > 1) g"
    )
    assert apart is None


def test_letters_are_made_one_character_at_a_time() -> None:
    """...and that a prefix of a value gives a prefix of its letters: no character's letters
    change with what follows it."""
    joined = _scalar(
        f"SELECT array_agg(c) FROM {EVERY_CHARACTER} AND c > 1 "  # noqa: S608
        "AND crm_sort_letters(chr(c) || 'Ab-c') <> crm_sort_letters(chr(c)) || 'abc'"
    )
    assert joined is None


@pytest.mark.parametrize(("value", "letters"), [
    ("Müller", "mueller"), ("MÜLLER", "mueller"), ("Mueller", "mueller"), ("Straße", "strasse"),
    ("de Vries", "devries"), ("O'Brien", "obrien"), ("Öztürk", "oeztuerk"),
    ("Østergaard", "ostergaard"), ("İlknur", "ilknur"), ("Işıl", "isil"), ("Łódź", "lodz"),
    ("Anne-Marie", "annemarie"), ("田中", "田中"), ("---", ""),
])  # fmt: skip
def test_letters(value: str, letters: str) -> None:
    assert _scalar("SELECT crm_sort_letters(%s)", [value]) == letters
    assert _scalar("SELECT crm_sort_key(%s)", [value]) == f"{letters}\x01{value}"


NAMES = ["Zimmer", "Müller", "Mz", "Ostermann", "de Vries", "MÜLLER", "Öztürk", "Mueller"]
# by letters (de Vries among the D's, Müller as Mueller, Öztürk as Oeztuerk), then by code
# point (Mueller < MÜLLER < Müller: u < Ü < ü)
DICTIONARY = ["de Vries", "Mueller", "MÜLLER", "Müller", "Mz", "Öztürk", "Ostermann", "Zimmer"]


def test_names_sort_in_dictionary_order(api_client: Client, make_contact: MakeContact) -> None:
    by_name = {make_contact(last_name=n, first_name=n, street=n, city=n).pk: n for n in NAMES}
    for field in ("last_name", "first_name", "address__street", "address__city"):
        assert [by_name[i] for i in ids(get(api_client, {"ordering": field}))] == DICTIONARY
        assert [by_name[i] for i in ids(get(api_client, {"ordering": f"-{field}"}))] == (
            DICTIONARY[::-1]
        )


def test_cursors_and_page_numbers_walk_the_same_order(
    api_client: Client, make_contact: MakeContact
) -> None:
    by_name = {make_contact(last_name=n).pk: n for n in NAMES}
    walked, params = [], {"ordering": "last_name", "page_size": "3"}
    body = get(api_client, params).json()
    while True:
        walked += [by_name[r["id"]] for r in body["results"]]
        if not body["next"]:
            break
        body = api_client.get(body["next"]).json()
    assert walked == DICTIONARY
    numbered = [
        by_name[r["id"]]
        for page in (1, 2, 3)
        for r in get(api_client, {**params, "page": str(page)}).json()["results"]
    ]
    assert numbered == DICTIONARY


@pytest.mark.parametrize(("params", "expected"), [
    ({"last_name": "Müller"}, ["Müller"]),  # an equality is exact, on the key
    ({"last_name__in": "Mz,Müller,Nobody"}, ["Müller", "Mz"]),
    ({"last_name__istartswith": "mü"}, ["MÜLLER", "Müller"]),  # the key's range holds Mueller
    ({"last_name__startswith": "M"}, ["Mueller", "MÜLLER", "Müller", "Mz"]),
    ({"last_name__iexact": "müller"}, ["MÜLLER", "Müller"]),
    ({"last_name__icontains": "ü"}, ["MÜLLER", "Müller", "Öztürk"]),
])  # fmt: skip
def test_filters_on_a_name_sorted_by_it(
    api_client: Client, make_contact: MakeContact, params: dict[str, str], expected: list[str]
) -> None:
    by_name = {make_contact(last_name=n).pk: n for n in NAMES}
    for ordering, order in (("last_name", expected), ("-last_name", expected[::-1])):
        found = ids(get(api_client, {**params, "ordering": ordering}))
        assert [by_name[i] for i in found] == order
    assert sorted(by_name[i] for i in ids(get(api_client, params))) == sorted(expected)


@pytest.mark.parametrize(("prefix", "end"), [
    ("ab", "ac"), ("mue", "muf"), ("田", "由"), ("", None), ("a\ud7ff", "a\ue000"),
    ("\U0010ffff", None),
])  # fmt: skip
def test_a_prefix_ends_before_its_last_characters_successor(prefix: str, end: str | None) -> None:
    """crm_prefix_end(), the end of a name's case-insensitive prefix's range of keys and of
    upper()'s (crm/sql.py): none where the letters have no successor, whose range then has
    no end."""
    assert _scalar("SELECT crm_prefix_end(%s)", [prefix]) == end


@pytest.mark.parametrize(("prefix", "expected"), [
    ("-", ["-Weber"]), ("\ud7ff", ["\ud7ffA", "\ud7ffb"]), ("\U0010ffff", ["\U0010ffffz"]),
    ("w", ["Weber"]),
])  # fmt: skip
def test_a_prefix_without_letters_or_an_end_finds_its_names(
    api_client: Client, make_contact: MakeContact, prefix: str, expected: list[str]
) -> None:
    """A prefix whose letters are none (punctuation) or end in a character without a
    successor reads a key range without an end, and the names' own ranges pick its rows."""
    names = ["-Weber", "Weber", "\ud7ffA", "\ud7ffb", "\U0010ffffz", "Zimmer"]
    by_name = {make_contact(last_name=n).pk: n for n in names}
    params = {"last_name__istartswith": prefix, "ordering": "last_name"}
    assert [by_name[i] for i in ids(get(api_client, params))] == expected


def test_a_caseless_prefix_with_its_keys_range_is_sized_once(make_contact: MakeContact) -> None:
    """With its key's range, a name's `istartswith` is upper()'s range (crm/sql.py), which
    the statistics of the name, its key and its upper() size together with the key's: 60 of
    120 contacts are Fischers. Tested by LIKE, or with its case variants' ranges as a
    second index path, the planner multiplied the selectivities (30)."""
    for n in range(120):
        make_contact(last_name="Fischer" if n % 2 else "Weber")
    bind = Binder()
    where = query_where_sql(parse_list_params({"last_name__istartswith": ["fisc"]}), bind)
    assert "last_name >=" not in where  # no range of the name's own index
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contactrow")
        explain = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM crm_contactrow WHERE {where}"  # noqa: S608
        cursor.execute(explain, bind.params)
        assert 50 <= cursor.fetchone()[0][0]["Plan"]["Plan Rows"] <= 70


KEYS_SQL = (
    "SELECT first_name_key, last_name_key, address_street_key, address_city_key"
    " FROM crm_contactrow WHERE id = %s"
)


def _keys(contact_id: int) -> tuple[str, ...]:
    with connection.cursor() as cursor:
        cursor.execute(KEYS_SQL, [contact_id])
        return tuple(cursor.fetchone())


def _expected(*values: str) -> tuple[str, ...]:
    return tuple(_scalar("SELECT crm_sort_key(%s)", [v]) for v in values)


def test_the_keys_follow_every_write_of_a_name(make_contact: MakeContact) -> None:
    """The keys are kept by a trigger on the read row (schema.sql), not computed by the
    callers: a new contact, a renamed one, a moved address and a key written by hand."""
    contact = make_contact(first_name="Jörg", last_name="Öztürk", street="Gasse", city="Wien")
    sync_now()
    assert _keys(contact.pk) == _expected("Jörg", "Öztürk", "Gasse", "Wien")
    contact.last_name = "Mueller"
    contact.save()
    contact.address.street, contact.address.city = "Äußere Straße", "Ünye"
    contact.address.save()
    sync_now()
    assert _keys(contact.pk) == _expected("Jörg", "Mueller", "Äußere Straße", "Ünye")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_contactrow SET last_name_key = 'a' WHERE id = %s", [contact.pk])
    assert _keys(contact.pk) == _expected("Jörg", "Mueller", "Äußere Straße", "Ünye")
