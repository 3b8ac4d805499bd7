"""crm_walk_on() (crm/db/walk.sql), the second step of a long walk: when it draws its block
sample. Its statements are the caller's; here a sample that fails if it is drawn."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.utils import DataError

pytestmark = pytest.mark.django_db

RANGE = "SELECT 100"  # the walk's range holds more rows than the first step read
SAMPLE = "SELECT 1 / 0, 1, 1"  # drawn: an error
WALK = "SELECT * FROM crm_contactrow WHERE id = -1"


def walk_on(near_hits: int) -> int:
    """The rows walked on after a first step of 10 rows that found `near_hits` of 26."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM crm_walk_on(%s, %s, %s, ARRAY[]::text[], 10, %s, 13, 26, "
            "1000, 100, 32, 4)",
            [RANGE, SAMPLE, WALK, near_hits],
        )
        (rows,) = cursor.fetchone()
    return int(rows)


def test_a_first_step_that_found_half_the_page_walks_on_without_a_sample() -> None:
    assert walk_on(13) == 0
    assert walk_on(25) == 0


def test_a_first_step_that_found_less_draws_the_sample() -> None:
    with pytest.raises(DataError, match="division by zero"):
        walk_on(12)
