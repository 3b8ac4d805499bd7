"""A primary and streaming replicas from the embedded PostgreSQL's binaries, on demand.

`REPLICAS=N` (config/settings.py; `REPLICAS=1 make run`) runs its own cluster under
`.data/pg18-replicas/`: a primary with `wal_level=replica` and N hot standbys cloned from it
by `pg_basebackup -R`, all on Unix sockets in one directory, each server its own socket
port. Decision: the default server (`.data/pg18`) stays at `wal_level=minimal`, so its seed
skips the WAL; a replicated cluster has to write every row to the WAL, which only a run
that asks for replicas pays for. The tests build their own cluster in a temporary
directory with the same functions (tests/test_replicas.py).

    python -m config.replication stop     # stops the REPLICAS cluster (`make stop` runs it)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from config import embedded_pg

DEFAULT_BASE = embedded_pg.BASE_DIR / ".data" / "pg18-replicas"
PRIMARY_PORT = embedded_pg.DEFAULT_PORT
# What a primary needs to feed standbys; hot_standby_feedback keeps the primary's vacuum
# from removing rows a long replica read (an export) still needs, which would otherwise
# cancel that read after max_standby_streaming_delay.
REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
}


def primary_dir(base: Path) -> Path:
    return base / "primary"


def replica_dir(base: Path, number: int) -> Path:
    return base / f"replica{number}"


def replica_port(number: int) -> int:
    return PRIMARY_PORT + number


def ensure_cluster(
    base: Path = DEFAULT_BASE, replicas: int = 1, settings: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    """Start the primary and `replicas` standbys under `base` (creating them on first use)
    and return their URLs. `settings` override the embedded server's on a new primary."""
    base.mkdir(parents=True, exist_ok=True)
    conf = {**embedded_pg.SERVER_SETTINGS, **(settings or {}), **REPLICATION_SETTINGS}
    primary = embedded_pg.ensure_running(primary_dir(base), port=PRIMARY_PORT, settings=conf)
    sockets = embedded_pg.socket_dir(primary_dir(base).resolve())
    return primary, [_ensure_replica(base, n, sockets) for n in range(1, replicas + 1)]


def _ensure_replica(base: Path, number: int, sockets: Path) -> str:
    pgdata = replica_dir(base, number).resolve()
    with embedded_pg._lock(pgdata):
        if not embedded_pg.is_running(pgdata):
            if not (pgdata / "PG_VERSION").exists():
                _clone(pgdata, sockets)
            log = base / f"replica{number}.log"
            embedded_pg.start(pgdata, sockets, replica_port(number), log)
    return embedded_pg.url(sockets, replica_port(number))


def _clone(pgdata: Path, sockets: Path) -> None:
    """A hot standby of the primary: a base backup with the WAL it needs, and -R writes
    primary_conninfo and standby.signal, so it streams from the primary once started."""
    pgdata.mkdir(mode=0o700, parents=True)
    if os.geteuid() == 0:
        shutil.chown(pgdata, embedded_pg.SYSTEM_USER, embedded_pg.SYSTEM_USER)
    embedded_pg._pg(
        "pg_basebackup", "-h", str(sockets), "-p", str(PRIMARY_PORT), "-U", "postgres",
        "-R", "-X", "stream", "-c", "fast", pgdata=pgdata, timeout=600,
    )  # fmt: skip


def stop_cluster(base: Path = DEFAULT_BASE) -> list[str]:
    """Stop the standbys, then the primary (a primary that stops first makes its standbys
    retry the connection until they stop). Returns the directories that were running."""
    dirs = [*sorted(base.glob("replica*[0-9]")), primary_dir(base)]
    return [str(d) for d in dirs if d.is_dir() and embedded_pg.stop(d)]


def main(argv: list[str]) -> int:
    if argv[1:] != ["stop"]:
        print("usage: python -m config.replication stop", file=sys.stderr)
        return 2
    print(stop_cluster())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
