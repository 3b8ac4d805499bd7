"""A live gunicorn through a database outage and a statement timeout.

A throw-away embedded PostgreSQL (config.embedded_pg under tmp_path, not the dev server)
and a gunicorn with 2 workers pointed at it through DATABASE_URL. Stopping PostgreSQL must
turn every request into a quick 503 (and /healthz into 503), and starting it again must
bring full service back within 2 s, without restarting gunicorn or its workers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from config import embedded_pg
from tests.live_gunicorn import ROOT, http_json, running_gunicorn, server_env

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT_MS = 500
SETUP = """
import django
django.setup()
from django.core.management import call_command
from crm.models import Address, AppUser
call_command("migrate", verbosity=0)
address = Address.objects.create(street="Ring", street_number="1", city_code="1010",
                                 city="Wien", country="AT")
AppUser.objects.create(address=address, first_name="Anna", last_name="Muster", gender="F",
                       customer_id="OUT000001", phone_number="+436640000001")
call_command("create_api_token", "outage")
"""


@dataclass
class Live:
    port: int
    token: str
    pgdata: Path
    database_url: str
    server: subprocess.Popen[bytes]

    def get(self, path: str, *, token: bool = True, timeout: float = 10) -> tuple[int, Any, dict]:
        return http_json(self.port, "GET", path, token=self.token if token else None,
                         timeout=timeout)  # fmt: skip

    def workers(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.server.pid).children()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    pgdata = tmp_path_factory.mktemp("outage") / "pg18"
    database_url = embedded_pg.ensure_running(pgdata)
    env = server_env(DATABASE_URL=database_url, STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS))
    try:
        setup = subprocess.run(
            [sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=300, check=True,
        )  # fmt: skip
        token = setup.stdout.strip().splitlines()[-1]
        with running_gunicorn(env, pgdata.parent / "gunicorn.log") as (server, port):
            yield Live(port, token, pgdata, database_url, server)
    finally:
        embedded_pg.stop(pgdata)


def timed(live: Live, path: str, **kwargs: Any) -> tuple[int, Any, dict, float]:
    started = time.monotonic()
    status, body, headers = live.get(path, **kwargs)
    return status, body, headers, time.monotonic() - started


PATHS = [
    "/crm/appusers",
    "/crm/appusers?search=anna&ordering=last_name",
    "/crm/appusers/1/avatar.png",
]


def test_outage_answers_503_quickly_and_recovers_within_2_s(live: Live) -> None:
    workers = live.workers()
    for path in PATHS:  # both workers hold a persistent connection (CONN_MAX_AGE)
        for _ in range(3):
            assert live.get(path)[0] == 200, path

    assert embedded_pg.stop(live.pgdata)
    try:
        for _ in range(3):
            for path in PATHS:
                status, body, headers, seconds = timed(live, path)
                assert status == 503, (path, status, body)
                assert seconds < 3, (path, seconds)
                assert headers["Retry-After"] == "2"
                assert body["errors"][0]["message"] == "the database is unavailable; retry shortly"
            status, body, _, seconds = timed(live, "/healthz", token=False)
            assert status == 503 and body["status"] == "error" and seconds < 3, (status, body)
    finally:
        embedded_pg.ensure_running(live.pgdata)
    back = time.monotonic()

    recovered = None
    while time.monotonic() - back < 10:
        if all(live.get(path)[0] == 200 for path in PATHS):
            recovered = time.monotonic() - back
            break
        time.sleep(0.05)
    assert recovered is not None and recovered <= 2, recovered
    for _ in range(10):  # every worker, every kind of request: full service
        for path in [*PATHS, "/healthz"]:
            assert live.get(path)[0] == 200, path
    assert live.workers() == workers  # no worker was restarted


def test_statement_timeout_on_the_live_worker(live: Live) -> None:
    """The list query waits on a lock past statement_timeout: 503 with the timeout message,
    and the same workers answer the next requests normally."""
    workers = live.workers()
    with psycopg.connect(live.database_url) as other:
        other.execute("LOCK TABLE crm_contactrow IN ACCESS EXCLUSIVE MODE")
        for _ in range(4):
            status, body, headers, seconds = timed(live, "/crm/appusers")
            assert status == 503, (status, body)
            assert headers["Retry-After"] == "2"
            assert "took too long" in body["errors"][0]["message"]
            assert seconds < STATEMENT_TIMEOUT_MS / 1000 * 3 + 1, seconds
        assert live.get("/healthz", token=False)[0] == 200
        other.rollback()
    for _ in range(6):
        status, body, _ = live.get("/crm/appusers")
        assert status == 200 and len(body["results"]) == 1
    assert live.workers() == workers
