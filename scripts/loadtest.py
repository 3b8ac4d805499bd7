#!/usr/bin/env python
"""HTTP load test of the contact list, search and avatars: loopback only, bounded in time.

    .venv/bin/python scripts/loadtest.py                      # 5 min, 64 connections
    .venv/bin/python scripts/loadtest.py --seconds 90 --restart-db --pgdata /tmp/lt/pg18 \\
        --seed-users 100000

By default it starts its own gunicorn (`--workers 2`) on a free loopback port against the
database the app would use (DATABASE_URL, else the embedded server under .data/pg18, or a
throw-away embedded server with --pgdata), creates an API token for the user `loadtest`
(revoked at the end), runs `--connections` client threads for `--seconds`, then stops.
With `--url` and `--token` it drives a server that is already running instead.

It records status counts and latency percentiles per request kind, and the RSS of each
gunicorn worker (psutil) at the start, every few seconds, and at the end. With --restart-db it
stops the embedded PostgreSQL in the middle of the run, keeps it down for --down-seconds,
starts it again and checks: while it is down only 503s (each answered quickly), after it is
back full recovery within --recovery-seconds, and never any other 5xx or a connection error.
The exit status is 1 when a check fails. `--report FILE` writes the results as Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_pg  # noqa: E402

LIST_QUERIES: tuple[dict[str, Any], ...] = (
    {},
    {"page_size": 50},
    {"ordering": "last_name"},
    {"ordering": "-relationship__points"},
    {"ordering": "-created", "address__country": "AT"},
    {"gender": "F", "relationship__points__gte": 500},
    {"address__city": "Wien", "ordering": "last_name,first_name"},
    {"birthday__year": 1980},
    {"relationship__last_activity__isnull": "true"},
    {"last_name__istartswith": "m", "page_size": 100},
)
SEARCH_TERMS = (
    "anna", "maria", "müller", "schmidt", "wien", "graz", "berlin", "huber", "thomas",
    "stefan", "gasse", "yilmaz", "anna wien", "thomas müller", "+43", "strasse", "lena berg",
)  # fmt: skip
AVATAR_SIZES = (32, 48, 64, 128)
MIX = (("list", 0.5), ("search", 0.25), ("avatar", 0.25))
CLIENT_TIMEOUT = 30.0


@dataclass
class Sample:
    kind: str
    started: float  # seconds since the run started
    seconds: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    error: str = ""


@dataclass
class DbEvents:
    stop_begin: float | None = None
    stop_end: float | None = None
    start_begin: float | None = None
    start_end: float | None = None
    error: str = ""


@dataclass
class Run:
    args: argparse.Namespace
    host: str
    port: int
    token: str
    max_id: int
    t0: float = 0.0
    deadline: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    rss: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    db: DbEvents = field(default_factory=DbEvents)

    def now(self) -> float:
        return time.monotonic() - self.t0


# --- safety --------------------------------------------------------------------------------


def require_loopback(host: str) -> None:
    """Refuse any target that is not on this machine's loopback interface."""
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
            raise SystemExit(f"refusing to load-test {host} ({address}): loopback only")


# --- server --------------------------------------------------------------------------------


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def contact_count(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM crm_contactrow").fetchone()
        return int(row[0]) if row else 0


class Server:
    """A gunicorn of our own, on a free loopback port; stopped when the run ends."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.env = os.environ.copy()
        if args.pgdata:
            self.env["DATABASE_URL"] = embedded_pg.ensure_running(Path(args.pgdata))
        elif not self.env.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = embedded_pg.ensure_running()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(args.server_log)

    def prepare(self) -> str:
        manage("migrate", "--verbosity", "0", env=self.env)
        count = contact_count(self.env["DATABASE_URL"])
        if self.args.seed_users and count == 0:  # never on a database that holds contacts
            print(f"empty database: seeding {self.args.seed_users:,} contacts", flush=True)
            manage("seed", "--users", str(self.args.seed_users), env=self.env)
            count = contact_count(self.env["DATABASE_URL"])
        print(f"database holds {count:,} contacts", flush=True)
        if count == 0:
            raise SystemExit("the database holds no contacts: pass --seed-users N")
        return manage("create_api_token", "loadtest", env=self.env).strip().splitlines()[-1]

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.args.workers),
            "--timeout", "60", "--graceful-timeout", "5", "--backlog", "2048",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}: see {self.log}")
            try:
                if get("127.0.0.1", self.port, "/healthz", None, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            manage("revoke_api_token", "loadtest", env=self.env)
        except subprocess.CalledProcessError as error:
            print(f"could not revoke the loadtest token: {error.stderr}", file=sys.stderr)


def gunicorn_master(port: int) -> psutil.Process | None:
    """The process listening on `port` (psutil needs root to see other users' sockets)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                process = psutil.Process(conn.pid)
                parent = process.parent()
                is_worker = parent and "gunicorn" in " ".join(parent.cmdline())
                return parent if is_worker else process
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        return None
    return None


def worker_rss(master: psutil.Process | None) -> dict[int, int]:
    if master is None:
        return {}
    sizes = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in master.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes[child.pid] = child.memory_info().rss
    return sizes


# --- requests ------------------------------------------------------------------------------


def get(
    host: str, port: int, path: str, token: str | None, *, timeout: float = CLIENT_TIMEOUT,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    own = conn is None
    conn = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def next_path(rng: random.Random, run: Run, cursor_links: list[str]) -> tuple[str, str]:
    r = rng.random()
    kind = "list" if r < MIX[0][1] else "search" if r < MIX[0][1] + MIX[1][1] else "avatar"
    if kind == "avatar":
        contact = rng.randint(1, run.max_id)
        size = rng.choice(AVATAR_SIZES)
        return kind, f"/crm/appusers/{contact}/avatar.png?size={size}"
    if kind == "search":
        query: dict[str, Any] = {"search": rng.choice(SEARCH_TERMS)}
        if rng.random() < 0.3:
            query["ordering"] = "last_name"
        return kind, f"/crm/appusers?{urlencode(query)}"
    roll = rng.random()
    if cursor_links and roll < 0.25:  # the next page of an earlier unfiltered list
        return kind, cursor_links.pop()
    if roll < 0.4:
        return kind, f"/crm/appusers?{urlencode({'page': rng.randint(1, 200)})}"
    return kind, f"/crm/appusers?{urlencode(rng.choice(LIST_QUERIES))}"


def client(run: Run, seed: int) -> None:
    rng = random.Random(seed)
    cursor_links: list[str] = []
    conn = http.client.HTTPConnection(run.host, run.port, timeout=CLIENT_TIMEOUT)
    while time.monotonic() < run.deadline:
        kind, path = next_path(rng, run, cursor_links)
        started = run.now()
        try:
            status, body = get(run.host, run.port, path, run.token, conn=conn)
            error = ""
        except (OSError, http.client.HTTPException) as exc:
            status, body, error = 0, b"", type(exc).__name__
            conn.close()
            time.sleep(0.05)
        run.samples.append(Sample(kind, started, run.now() - started, status, error))
        if kind == "list" and status == 200 and "?page=" not in path and len(cursor_links) < 4:
            remember_next(body, path, cursor_links)
    conn.close()


def remember_next(body: bytes, path: str, cursor_links: list[str]) -> None:
    """Only unfiltered orderings: the cursor of a filtered, non-id ordering is a known
    API bug (tests/test_appuser_list.py BUG_FILTERED_CURSOR), not what this measures."""
    query = path.partition("?")[2]
    if any(not part.startswith(("ordering=", "page_size=", "cursor=")) for part in
           query.split("&") if part):  # fmt: skip
        return
    try:
        link = json.loads(body).get("next")
    except ValueError:
        return
    if link:
        parts = urlsplit(link)
        cursor_links.append(f"{parts.path}?{parts.query}")


def monitor(run: Run, master: psutil.Process | None, stop: threading.Event) -> None:
    while not stop.wait(run.args.rss_every):
        run.rss.append((run.now(), worker_rss(master)))


def restart_db(run: Run) -> None:
    """Stop the embedded PostgreSQL at mid-run, keep it down, start it again."""
    pgdata = Path(run.args.pgdata) if run.args.pgdata else embedded_pg.DEFAULT_PGDATA
    time.sleep(max(0.0, run.args.seconds / 2 - run.args.down_seconds / 2))
    try:
        run.db.stop_begin = run.now()
        embedded_pg.stop(pgdata)
        run.db.stop_end = run.now()
        time.sleep(run.args.down_seconds)
        run.db.start_begin = run.now()
        embedded_pg.ensure_running(pgdata)
        run.db.start_end = run.now()
    except Exception as error:  # recorded and reported as a failed check
        run.db.error = repr(error)
        embedded_pg.ensure_running(pgdata)


# --- results -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def label(sample: Sample) -> str:
    return str(sample.status) if sample.status else f"error:{sample.error}"


def summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    latencies = [s.seconds * 1000 for s in samples if s.status]
    return {
        "requests": len(samples),
        "per_second": len(samples) / seconds if seconds else 0.0,
        "statuses": dict(sorted(Counter(label(s) for s in samples).items())),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
    }


def restart_checks(run: Run) -> tuple[list[tuple[str, bool, str]], dict[str, Any]]:
    db, samples = run.db, run.samples
    if db.error or None in (db.stop_begin, db.stop_end, db.start_begin, db.start_end):
        return [("PostgreSQL stopped and started", False, db.error or "incomplete")], {}
    assert db.stop_begin is not None and db.stop_end is not None
    assert db.start_begin is not None and db.start_end is not None
    limit = run.args.recovery_seconds
    down = [
        s for s in samples if s.started >= db.stop_end and s.started + s.seconds <= db.start_begin
    ]
    before = [s for s in samples if s.started + s.seconds < db.stop_begin]
    back = [s for s in samples if s.started >= db.start_end]
    late = [s for s in back if s.started >= db.start_end + limit]
    failed_after = [s.started + s.seconds for s in back if s.status != 200]
    recovered = max(failed_after, default=db.start_end) - db.start_end
    down_ms = [s.seconds * 1000 for s in down]
    phases = {
        "before the stop": summary(before, db.stop_begin),
        "while down": summary(down, db.start_begin - db.stop_end),
        "after the start": summary(back, run.args.seconds - db.start_end),
    }
    checks = [
        ("only 200 before the stop", all(s.status == 200 for s in before), ""),
        ("requests while down", bool(down), f"{len(down)} requests"),
        ("only 503 while down", all(s.status == 503 for s in down),
         str(dict(Counter(label(s) for s in down)))),
        ("each 503 while down within 3 s", max(down_ms, default=0) < 3000,
         f"max {max(down_ms, default=0):.0f} ms"),
        (f"only 200 from {limit:g} s after the start", all(s.status == 200 for s in late),
         str(dict(Counter(label(s) for s in late)))),
        (f"recovered within {limit:g} s", recovered <= limit,
         f"last non-200 answer {recovered:.2f} s after PostgreSQL was back"),
        ("PostgreSQL down for", True,
         f"{db.start_end - db.stop_begin:.1f} s (stop {db.stop_end - db.stop_begin:.2f} s, "
         f"start {db.start_end - db.start_begin:.2f} s)"),
    ]  # fmt: skip
    return checks, phases


def checks_for(run: Run) -> tuple[list[tuple[str, bool, str]], dict[str, Any]]:
    samples = run.samples
    bad = Counter(
        label(s) for s in samples if s.status == 0 or (s.status >= 500 and s.status != 503)
    )
    checks = [
        ("no 5xx other than 503, no connection error", not bad, str(dict(bad))),
        *memory_checks(run),
    ]
    if run.args.restart_db:
        more, phases = restart_checks(run)
        return checks + more, phases
    others = Counter(label(s) for s in samples if s.status != 200)
    checks.append(("only 200 answers", not others, str(dict(others))))
    return checks, {}


MAX_GROWTH = 0.10  # of a worker's RSS from the start of the run (after its warm-up at boot)


def memory_checks(run: Run) -> list[tuple[str, bool, str]]:
    """Each worker's RSS at the end against its RSS at the start; a replaced worker fails.
    No check at all when no worker could be read (--url against another user's server): the
    report's RSS table is then empty, which says as much."""
    growth = {
        pid: (end - start) / start if end else float("inf")
        for pid, (start, _, end) in rss_table(run).items()
    }
    if not growth:
        return []
    detail = ", ".join(f"{pid}: {g:+.1%}" for pid, g in growth.items())
    ok = max(growth.values()) < MAX_GROWTH
    return [(f"worker memory growth under {MAX_GROWTH:.0%}", ok, detail)]


def mib(value: int) -> str:
    return f"{value / 2**20:.1f}"


def markdown(run: Run, results: dict[str, Any]) -> str:
    a = run.args
    lines = [
        f"### {results['title']}",
        "",
        f"- date: {results['date']}; machine: {results['machine']}",
        f"- target: gunicorn {results['workers']} sync workers at 127.0.0.1, database "
        f"{results['contacts']:,} contacts; {a.connections} client connections for "
        f"{a.seconds:g} s (client: this script, same machine)",
        f"- load average at start: {results['load_start']}; at end: {results['load_end']}",
        "",
        "| kind | requests | req/s | statuses | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, s in results["kinds"].items():
        statuses = ", ".join(f"{k}: {v:,}" for k, v in s["statuses"].items())
        lines.append(
            f"| {kind} | {s['requests']:,} | {s['per_second']:.1f} | {statuses} | "
            f"{s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['p99_ms']:.0f} | {s['max_ms']:.0f} |"
        )
    if results["phases"]:
        lines += ["", "| phase | requests | statuses | p50 ms | p99 ms | max ms |",
                  "| --- | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
        for phase, s in results["phases"].items():
            statuses = ", ".join(f"{k}: {v:,}" for k, v in s["statuses"].items())
            lines.append(
                f"| {phase} | {s['requests']:,} | {statuses} | {s['p50_ms']:.0f} | "
                f"{s['p99_ms']:.0f} | {s['max_ms']:.0f} |"
            )
    lines += [
        "",
        "| worker pid | RSS at start MiB | max MiB | at end MiB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for pid, (start, peak, end) in results["rss"].items():
        lines.append(f"| {pid} | {mib(start)} | {mib(peak)} | {mib(end)} |")
    if results["rss_timeline"]:
        lines += ["", "RSS of each worker over the run, MiB (about one sample a minute):", ""]
        for pid in results["rss"]:
            timeline = results["rss_timeline"]
            samples = [f"{t:.0f} s: {mib(sizes.get(int(pid), 0))}" for t, sizes in timeline]
            lines.append(f"- {pid}: " + ", ".join(samples))
    lines += ["", "| check | result | detail |", "| --- | --- | --- |"]
    for name, ok, detail in results["checks"]:
        lines.append(f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |")
    return "\n".join(lines) + "\n"


def rss_table(run: Run) -> dict[int, tuple[int, int, int]]:
    if not run.rss:
        return {}
    first, last = run.rss[0][1], run.rss[-1][1]
    table = {}
    for pid, start in first.items():
        peak = max(sizes.get(pid, 0) for _, sizes in run.rss)
        table[pid] = (start, peak, last.get(pid, 0))  # 0 at the end: the worker was replaced
    return table


def per_minute(samples: list[tuple[float, dict[int, int]]]) -> list[tuple[float, dict[int, int]]]:
    """The first sample, about one a minute after it, and the last."""
    kept: list[tuple[float, dict[int, int]]] = []
    next_at = 0.0
    for t, sizes in samples[:-1]:
        if t >= next_at and samples[-1][0] - t > 5:
            kept.append((t, sizes))
            next_at = t + 59
    return kept + samples[-1:]


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return f"{platform.node()}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}"


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="run length (default 300)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (own server)")
    parser.add_argument("--url", help="an already running server (loopback), with --token")
    parser.add_argument("--token", default=os.environ.get("CRM_API_TOKEN"))
    parser.add_argument("--pgdata", help="a throw-away embedded PostgreSQL data directory")
    parser.add_argument("--seed-users", type=int, default=0, help="seed if the database is empty")
    parser.add_argument("--restart-db", action="store_true", help="stop/start PostgreSQL mid-run")
    parser.add_argument("--down-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-seconds", type=float, default=2.0)
    parser.add_argument("--rss-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1, help="random seed of the request mix")
    parser.add_argument("--title", default="")
    parser.add_argument("--report", help="write the results as Markdown to this file")
    parser.add_argument("--json", help="write the results as JSON to this file")
    parser.add_argument("--server-log", default="/tmp/crm-loadtest-gunicorn.log")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 3600 or not 1 <= args.connections <= 512:
        parser.error("--seconds must be 1..3600 and --connections 1..512")
    if args.url and not args.token:
        parser.error("--url needs --token (or CRM_API_TOKEN)")
    if args.restart_db and args.url and not args.pgdata:
        parser.error("--restart-db with --url needs --pgdata: the server's embedded data dir")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    if args.url:
        parts = urlsplit(args.url)
        host, port, token = parts.hostname or "127.0.0.1", parts.port or 80, args.token
        require_loopback(host)
    else:
        server = Server(args)
        token = server.prepare()
        server.start()
        host, port = "127.0.0.1", server.port
    try:
        return drive(args, host, port, token)
    finally:
        if server:
            server.stop()


def drive(args: argparse.Namespace, host: str, port: int, token: str) -> int:
    status, body = get(host, port, "/crm/appusers?ordering=-id&page_size=1", token)
    if status != 200:
        raise SystemExit(f"preflight: /crm/appusers answered {status}: {body[:200]!r}")
    first = json.loads(body)
    run = Run(args, host, port, token, max_id=first["results"][0]["id"])
    contacts = int(first["count"])
    master = gunicorn_master(port)
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started_at = datetime.now(UTC)
    run.t0 = time.monotonic()
    run.deadline = run.t0 + args.seconds
    run.rss.append((0.0, worker_rss(master)))
    stop_monitor = threading.Event()
    threads = [threading.Thread(target=monitor, args=(run, master, stop_monitor), daemon=True)]
    threads += [
        threading.Thread(target=client, args=(run, args.seed * 1000 + i), daemon=True)
        for i in range(args.connections)
    ]
    if args.restart_db:
        threads.append(threading.Thread(target=restart_db, args=(run,), daemon=True))
    print(
        f"{args.connections} connections for {args.seconds:g} s against {host}:{port}", flush=True
    )
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join(timeout=args.seconds + CLIENT_TIMEOUT + 120)
    stop_monitor.set()
    run.rss.append((run.now(), worker_rss(master)))
    elapsed = run.now()
    kinds = {"all": summary(run.samples, elapsed)}
    for kind, _ in MIX:
        kinds[kind] = summary([s for s in run.samples if s.kind == kind], elapsed)
    checks, phases = checks_for(run)
    results = {
        "title": args.title or ("restart-db run" if args.restart_db else "steady run"),
        "date": f"{started_at:%Y-%m-%d %H:%M}-{datetime.now(UTC):%H:%M} UTC",
        "machine": machine(),
        "workers": len(run.rss[0][1]) or args.workers,
        "contacts": contacts,
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "kinds": kinds,
        "phases": phases,
        "rss": {str(pid): v for pid, v in rss_table(run).items()},
        "rss_timeline": per_minute(run.rss),
        "checks": checks,
        "db_events": vars(run.db),
    }
    text = markdown(run, results)
    print(text)
    if args.report:
        Path(args.report).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
