"""Settings helpers fail loudly on bad values; DATABASE_URL parsing; production settings
leave the bench app (CRM_BENCH) out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config.database import parse_database_url
from config.env import ImproperEnvironment, env_bool, env_int


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG") is expected


def test_env_bool_rejects_anything_else(monkeypatch) -> None:
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperEnvironment, match="FLAG"):
        env_bool("FLAG")


@pytest.mark.parametrize("raw", ["ten", "-1", "99999999999"])
def test_env_int_rejects_bad_values(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("N", raw)
    with pytest.raises(ImproperEnvironment, match="N="):
        env_int("N", 5, minimum=0, maximum=1000)


def test_env_int_defaults_when_unset(monkeypatch) -> None:
    monkeypatch.delenv("N", raising=False)
    assert env_int("N", 5) == 5


def test_database_url_with_host_and_port() -> None:
    db = parse_database_url("postgresql://postgres:s%40cret@127.0.0.1:5432/crm")
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "127.0.0.1", "5432", "crm", "postgres", "s@cret"
    )  # fmt: skip


def test_database_url_with_a_socket_directory() -> None:
    db = parse_database_url("postgresql://postgres@/crm?host=/tmp/run")
    assert (db["HOST"], db["NAME"], db["OPTIONS"]) == ("/tmp/run", "crm", {})


def test_database_url_rejects_other_engines() -> None:
    with pytest.raises(ImproperEnvironment, match="scheme"):
        parse_database_url("mysql://root@localhost/crm")


# -- the bench app: installed with CRM_BENCH=1 only ------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BENCH_APPS = {"crm_bench", "rest_framework", "django_filters"}
BENCH_PATHS = ("/crm/appusers/floor", "/crm/appusers/baseline")
# In a fresh interpreter (the test suite's own settings install the bench app): the settings,
# which bench paths resolve once the whole URLconf is loaded, and which bench modules the
# production code paths imported along the way.
INSPECT = """
import json, sys, django
from django.conf import settings
django.setup()
from django.urls import Resolver404, resolve
import config.wsgi, crm.contact_views, crm.export_views, crm.views
paths, apps = json.loads(sys.argv[1]), json.loads(sys.argv[2])

def resolves(path):
    try:
        resolve(path)
    except Resolver404:
        return False
    return True

print(json.dumps({
    "apps": settings.INSTALLED_APPS,
    "middleware": settings.MIDDLEWARE,
    "has_rest_framework_settings": hasattr(settings, "REST_FRAMEWORK"),
    "resolves": {path: resolves(path) for path in paths},
    "list_resolves": resolves("/crm/appusers"),
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in apps),
}))
"""


def _inspect(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("CRM_BENCH", "DJANGO_SETTINGS_MODULE")
    }
    return subprocess.run(
        [sys.executable, "-c", INSPECT, json.dumps(BENCH_PATHS), json.dumps(sorted(BENCH_APPS))],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=clean | {"DJANGO_SETTINGS_MODULE": "config.settings"} | env,
    )  # fmt: skip


def _settings(**env: str) -> dict[str, Any]:
    run = _inspect(**env)
    assert run.returncode == 0, run.stderr
    found: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("env", [{}, {"CRM_BENCH": ""}, {"CRM_BENCH": "0"}])
def test_production_settings_have_no_bench(env: dict[str, str]) -> None:
    """Neither the bench app nor DRF and django-filter, no ablation middleware, no floor or
    baseline route (a 404), and nothing the URLconf and the views import loads them."""
    found = _settings(**env)
    assert not BENCH_APPS & set(found["apps"])
    assert not [m for m in found["middleware"] if m.startswith("crm_bench.")]
    assert not found["has_rest_framework_settings"]
    assert found["resolves"] == dict.fromkeys(BENCH_PATHS, False)
    assert found["list_resolves"]
    assert found["modules"] == []


def test_crm_bench_installs_the_bench_app() -> None:
    found = _settings(CRM_BENCH="1")
    assert set(found["apps"]) >= BENCH_APPS
    assert found["middleware"][-1] == "crm_bench.ablations.AblationMiddleware"
    assert found["resolves"] == dict.fromkeys(BENCH_PATHS, True)


def test_a_bad_crm_bench_fails_at_start_up() -> None:
    run = _inspect(CRM_BENCH="maybe")
    assert run.returncode != 0
    assert "CRM_BENCH='maybe'" in run.stderr


@pytest.mark.django_db
def test_the_app_sets_its_session_settings_on_every_server() -> None:
    """The planner and I/O settings the plans are made for (config/settings.py), whatever
    the server's own: PostgreSQL 15's effective_io_concurrency is 1, its random_page_cost 4."""
    from django.db import connection

    from config.settings import SESSION_SETTINGS

    with connection.cursor() as cursor:
        for name, value in SESSION_SETTINGS.items():
            cursor.execute("SELECT setting, unit FROM pg_settings WHERE name = %s", [name])
            setting, unit = cursor.fetchone()
            cursor.execute(f"SHOW {name}")
            shown = cursor.fetchone()[0]
            assert value in (setting, shown), (name, setting, unit, shown)
        # the capped counts' bitmap heap scans prefetch their blocks (PostgreSQL 15: 1)
        cursor.execute("SHOW effective_io_concurrency")
        assert cursor.fetchone()[0] == "16"
