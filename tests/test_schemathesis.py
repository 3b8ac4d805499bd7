"""Schemathesis, a real client generating requests from the OpenAPI document, against a real
gunicorn on the test database: every check (schemathesis.toml says the few things a check
cannot know of this API) and every phase, the stateful one included (create, read, patch,
points, delete through the document's links). Seeded and budgeted here for CI; `make fuzz`
runs the same with SCHEMATHESIS_MAX_EXAMPLES=40 (over 10,000 cases).

Clean means: Schemathesis exits 0, and the server logged no unhandled exception."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from crm.auth import create_token
from crm.seeding import seed
from tests.live_gunicorn import ROOT, running_gunicorn, server_env

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20"))
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "6"))
MIN_CASES = int(os.environ.get("SCHEMATHESIS_MIN_CASES", "1000"))  # `make fuzz`: 10,000
SERVER_FAILURES = re.compile(r"Traceback|Internal Server Error|\[ERROR\]|Error handling request")


def database_url(settings: dict[str, Any]) -> str:
    """The test database as a DATABASE_URL for the server (a socket directory or a host)."""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    if settings["HOST"].startswith("/"):
        return f"postgresql://{settings['USER']}@/{settings['NAME']}?host={settings['HOST']}"
    return f"postgresql://{settings['USER']}@{settings['HOST']}{port}/{settings['NAME']}"


@pytest.fixture
def live(transactional_db: None, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    """A gunicorn on the test database with 300 seeded contacts and a token."""
    seed(users=300, seed=7, as_of=datetime(2026, 1, 1, tzinfo=UTC), truncate=True,
         on_progress=lambda progress: None)  # fmt: skip
    token = create_token(User.objects.create_user("fuzz"))
    env = server_env(DATABASE_URL=database_url(connection.settings_dict), LOG_LEVEL="WARNING")
    log = tmp_path / "gunicorn.log"
    with running_gunicorn(env, log) as (_, port):
        yield port, token, log


def test_schemathesis_finds_nothing(live: tuple[int, str, Path]) -> None:
    port, token, log = live
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run",
         f"http://127.0.0.1:{port}/crm/openapi.json", "--checks", "all",
         "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
         "--header", f"Authorization: Bearer {token}", "--no-color",
         "--request-timeout", "30"],
        cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=1800,
    )  # fmt: skip
    summary = run.stdout[run.stdout.rfind("SUMMARY") - 40 :]
    print(summary)  # `make fuzz` shows it
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    cases = re.search(r"(\d+) generated", summary)
    assert cases and int(cases[1]) >= MIN_CASES, summary
    server_log = log.read_text()
    assert not SERVER_FAILURES.search(server_log), server_log[-20_000:]
