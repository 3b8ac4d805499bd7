"""Settings helpers fail loudly on bad values; DATABASE_URL parsing."""

from __future__ import annotations

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
