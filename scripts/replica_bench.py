"""Reads per second with 0 and 1 replica, and the replica's lag under the write load.

    .venv/bin/python scripts/replica_bench.py [--users 200000] [--base /tmp/crm-replica-bench]

Its own primary and streaming replica (config/replication.py) under --base, seeded once
with --users contacts; never the dev server. For each setup (no replica, one replica) a
gunicorn with 2 workers, as `make run` serves: list throughput from 8 concurrent clients.
Then, with the replica: 8 clients change points for --seconds (crm/lib/write_bench.py)
while the replica's lag is sampled every 50 ms, another user reads lists (served by the
replica), and a third writes a contact and reads the list for it at once, counting any
read that misses its own write. Prints the figures for docs/scaling.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import replication  # noqa: E402
from crm.lib import bench, write_bench  # noqa: E402

SERVER = re.compile(r'server;desc="([^"]+)"')


def _server(timing: str) -> str:
    """Which server read it (Server-Timing); none is named without replicas: the primary."""
    match = SERVER.search(timing)
    return match[1] if match else "default"


READS = ["/crm/appusers", "/crm/appusers?search=muller&ordering=last_name",
         "/crm/appusers?address__city=Wien&ordering=-relationship__points"]  # fmt: skip
SETUP = """
import sys, time, django
django.setup()
from django.core.management import call_command
from django.contrib.auth.models import User
from crm.auth import create_token
from crm.seeding import table_counts
call_command("migrate", verbosity=0)
if not table_counts()["crm_appuser"]:
    started = time.monotonic()
    call_command("seed", users=int(sys.argv[1]), verbosity=0)
    print(f"seeded in {time.monotonic() - started:.1f} s", file=sys.stderr)
for name in ("loader", "reader", "checker"):
    user, _ = User.objects.get_or_create(username=name)
    print(create_token(user))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--base", type=Path, default=Path("/tmp/crm-replica-bench"))
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    primary, replicas = replication.ensure_cluster(args.base, 1)
    env = os.environ | {"DATABASE_URL": primary, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_REPLICA_URLS", None)
    setup = subprocess.run([sys.executable, "-c", SETUP, str(args.users)], env=env, cwd=ROOT,
                           capture_output=True, text=True, check=True)  # fmt: skip
    print(setup.stderr.strip())
    tokens = dict(zip(("loader", "reader", "checker"), setup.stdout.split()[-3:], strict=True))
    try:
        for label, extra in (
            ("0 replicas", {}),
            ("1 replica", {"DATABASE_REPLICA_URLS": replicas[0]}),
        ):
            port, server = _serve(env | extra)
            try:
                _throughput(label, port, tokens["reader"])
                if extra:
                    _write_load(port, tokens, primary, replicas[0], args.seconds)
            finally:
                server.terminate()
                server.wait(10)
    finally:
        replication.stop_cluster(args.base)


def _serve(env: dict[str, str]) -> tuple[int, subprocess.Popen[bytes]]:
    port = bench.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--timeout", "60"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            if _get(port, "/healthz", "")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    return port, server


def _get(
    port: int, path: str, token: str, method: str = "GET", body: Any = None
) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Server-Timing") or ""
    finally:
        conn.close()


def _throughput(label: str, port: int, token: str) -> None:
    for _ in range(20):  # warm both workers' connections and health checks
        for path in READS:
            _get(port, path, token)
    servers = {_server(_get(port, READS[0], token)[2]) for _ in range(10)}
    for path in READS:
        rps = bench.throughput(port, token, _constant(path), seconds=10, concurrency=8)
        print(f"{label}: {path}: {rps:.0f} reads/s (served by {servers or 'default'})")


def _constant(path: str) -> Callable[[], str]:
    return lambda: path


def _write_load(
    port: int, tokens: dict[str, str], primary: str, replica: str, seconds: float
) -> None:
    low, high = 1, 190_000
    pick = random.Random(3)
    stop = threading.Event()
    lag_bytes: list[int] = []
    replay_lag_ms: list[float] = []
    reader_ms: list[float] = []
    checker: dict[str, Any] = {"rounds": 0, "missing": 0, "ms": [], "servers": {}}

    def sample_lag() -> None:
        with (
            psycopg.connect(primary, autocommit=True) as p,
            psycopg.connect(replica, autocommit=True) as r,
        ):
            while not stop.is_set():
                current = _one(p, "SELECT pg_current_wal_lsn()")
                replayed = _one(r, "SELECT pg_last_wal_replay_lsn()")
                lag_bytes.append(int(_one(p, "SELECT %s::pg_lsn - %s::pg_lsn", current, replayed)))
                row = p.execute(
                    "SELECT extract(epoch FROM replay_lag) * 1000 FROM pg_stat_replication"
                ).fetchone()
                if row and row[0] is not None:
                    replay_lag_ms.append(float(row[0]))
                time.sleep(0.05)

    def read_lists() -> None:
        n = 0
        while not stop.is_set():
            started = time.perf_counter()
            status, _, _ = _get(port, READS[n % len(READS)], tokens["reader"])
            reader_ms.append((time.perf_counter() - started) * 1000)
            assert status == 200
            n += 1

    def check_own_writes() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            name = f"Ryw{n}q"
            status, _, _ = _get(
                port,
                f"/crm/appusers/{200 + n % 1000}",
                tokens["checker"],
                "PATCH",
                {"first_name": name},
            )
            assert status == 200, status
            started = time.perf_counter()
            status, body, timing = _get(port, f"/crm/appusers?first_name={name}", tokens["checker"])
            checker["ms"].append((time.perf_counter() - started) * 1000)
            checker["rounds"] += 1
            checker["missing"] += json.loads(body)["count"] != 1
            server = _server(timing)
            checker["servers"][server] = checker["servers"].get(server, 0) + 1

    threads = [threading.Thread(target=f) for f in (sample_lag, read_lists, check_own_writes)]
    for thread in threads:
        thread.start()
    load = write_bench.write_load(
        port, tokens["loader"], next_change=lambda: (pick.randint(low, high), pick.randint(1, 10)),
        reads=[(path, path) for path in READS], seconds=seconds, clients=8,
    )  # fmt: skip
    stop.set()
    for thread in threads:
        thread.join()
    rate = load.changes / load.elapsed_s
    print(f"write load: {rate:.0f} points changes/s by 8 clients for {seconds:g} s")
    print(f"replica lag in bytes: {_stats(lag_bytes)}")
    print(f"replica replay_lag (pg_stat_replication) ms: {_stats(replay_lag_ms or [0.0])}")
    everything = load.reads[-1]
    print(f"the writers' own reader: p50 {everything.p50_ms:.1f} p95 {everything.p95_ms:.1f} ms")
    print(f"another user's lists ms: {_stats(reader_ms)}")
    print(f"write then read at once: {checker['rounds']} rounds, {checker['missing']} missed")
    print(f"  its reads ms: {_stats(checker['ms'])}, servers {checker['servers']}")


def _one(conn: psycopg.Connection, sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _stats(samples: list[Any]) -> str:
    p50, p95 = statistics.median(samples), bench.percentile(samples, 0.95)
    return f"n {len(samples)} p50 {p50:.1f} p95 {p95:.1f} max {max(samples):.1f}"


if __name__ == "__main__":
    main()
