"""The embedded PostgreSQL 18: start, reuse, stop, restart with the data kept."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from config import embedded_pg


@pytest.fixture
def pgdata(tmp_path: Path):
    path = tmp_path / "pg"
    yield path
    embedded_pg.stop(path)


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def test_it_starts_postgresql_18_with_the_contrib_extensions(pgdata: Path) -> None:
    url = embedded_pg.ensure_running(pgdata)
    assert _query(url, "SHOW server_version_num")[0][0].startswith("18")
    available = {row[0] for row in _query(url, "SELECT name FROM pg_available_extensions")}
    assert {"pg_trgm", "unaccent", "pg_stat_statements"} <= available
    assert _query(url, "SHOW shared_preload_libraries")[0][0] == "pg_stat_statements"
    assert _query(url, "SHOW listen_addresses")[0][0] == ""  # socket only


def test_it_reuses_a_running_server(pgdata: Path) -> None:
    first = embedded_pg.ensure_running(pgdata)
    pid = _pid(pgdata)
    assert embedded_pg.ensure_running(pgdata) == first
    assert _pid(pgdata) == pid


def test_it_stops_cleanly_and_keeps_the_data(pgdata: Path) -> None:
    url = embedded_pg.ensure_running(pgdata)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    assert embedded_pg.stop(pgdata) is True
    assert not embedded_pg.is_running(pgdata)
    assert embedded_pg.stop(pgdata) is False
    url = embedded_pg.ensure_running(pgdata)
    assert _query(url, "SELECT n FROM kept") == [(42,)]


def test_a_long_data_path_gets_a_short_socket_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120) / "pg"
    assert len(str(embedded_pg.socket_dir(deep) / ".s.PGSQL.5432")) < 108
