"""The test suite never touches the developer's own database."""

from __future__ import annotations

import re
from pathlib import Path

from django.db import connection

TESTS = Path(__file__).resolve().parent


def test_modules_with_module_scoped_data_are_marked_for_the_test_database() -> None:
    """pytest-django only sets up the test database for the tests it knows need one (the db
    fixtures or the django_db mark). A module fixture on django_db_setup alone ran against
    the real database when its module was run by itself: it seeded and truncated it."""
    unmarked = [
        path.name
        for path in TESTS.glob("test_*.py")
        if path.name != Path(__file__).name
        and "django_db_setup" in path.read_text()
        and not re.search(r"^pytestmark = .*pytest\.mark\.django_db", path.read_text(), re.M)
    ]
    assert not unmarked


def test_this_run_uses_a_test_database(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
    assert name == connection.settings_dict["NAME"] and name.startswith("test_")
