"""The benchmark behind `manage.py bench`: real HTTP against a real gunicorn server.

Every scenario runs against the optimised list, and (where django-filter can express it)
against the naive baseline; each optimisation is switched off in turn through the
X-Bench-Ablation header on the same data in the same run.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import runpy
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings

from crm_bench.ablations import HEADER


@dataclass(frozen=True)
class Scenario:
    name: str
    query: str
    baseline: str | None = None  # the baseline's spelling of the same request, if any


@dataclass
class Result:
    scenario: str
    target: str  # "optimised", "baseline" or "ablation:<name>"
    p50_ms: float
    p95_ms: float
    p99_ms: float
    runs: int
    status: int
    rows: int
    sql_statements: int | None
    serialize_ms: float | None = None
    samples_ms: list[float] = field(default_factory=list, repr=False)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_threads() -> int:
    """The threads per worker that gunicorn.conf.py gives every gunicorn started here."""
    return int(runpy.run_path(str(Path(settings.BASE_DIR) / "gunicorn.conf.py"))["threads"])


class Server:
    """gunicorn with 2 workers, as `make run` serves (threads: gunicorn.conf.py), plus the
    bench app (crm_bench/)."""

    def __init__(self, workers: int = 2) -> None:
        self.port = free_port()
        env = os.environ | {
            "CRM_BENCH": "1",  # installs the floor, the baseline and the ablations
            "STATEMENT_TIMEOUT_MS": "120000",
            "DATABASE_URL": settings.DATABASE_URL,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--timeout",
                "300",
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if Client(self.port, "").get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Client:
    """One keep-alive HTTP connection with the bench's bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, ablation: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        return self.send("GET", path, ablation=ablation)

    def send(
        self, method: str, path: str, body: bytes | None = None, *, ablation: str | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = self.headers | ({HEADER: ablation} if ablation else {})
        if body is not None:
            headers |= {"Content-Type": "application/json"}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        answer = response.read()
        return response.status, answer, dict(response.getheaders())


def server_timing(headers: dict[str, str], name: str) -> str | None:
    """The dur or desc of one Server-Timing entry, e.g. 'sql;desc="2"' -> '2'."""
    for part in headers.get("Server-Timing", "").split(","):
        entry, _, value = part.strip().partition(";")
        if entry == name:
            return value.partition("=")[2].strip('"')
    return None


def _rows(body: bytes) -> int:
    import orjson

    try:
        return len(orjson.loads(body).get("results", []))
    except (orjson.JSONDecodeError, AttributeError):
        return 0


def measure(
    client: Client,
    path: str,
    *,
    runs: int,
    warmup: int,
    scenario: str,
    target: str,
    ablation: str | None = None,
) -> Result:
    for _ in range(warmup):
        client.get(path, ablation)
    samples: list[float] = []
    status, body, headers = 0, b"", dict[str, str]()
    for _ in range(runs):
        started = time.perf_counter()
        status, body, headers = client.get(path, ablation)
        samples.append((time.perf_counter() - started) * 1000)
    sql = server_timing(headers, "sql")
    serialize = server_timing(headers, "serialize")
    return Result(
        scenario,
        target,
        statistics.median(samples),
        percentile(samples, 0.95),
        percentile(samples, 0.99),
        runs,
        status,
        _rows(body),
        int(sql) if sql else None,
        float(serialize) if serialize else None,
        samples,
    )


async def exchange(port: int, request: bytes) -> bytes:
    """One raw HTTP request on a connection of its own, and the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await reader.read()  # to EOF: the server closes the connection
    writer.close()
    return answer


def throughput(
    port: int, token: str, next_path: Callable[[], str], *, seconds: float, concurrency: int
) -> float:
    """Requests per second from `concurrency` concurrent clients for `seconds`.

    asyncio on raw sockets, because the client shares the machine's two cores with the
    server: a thread per client spent most of a core on http.client and the GIL. Each
    request opens a new connection (`Connection: close`), the worst case for the server.
    Any answer other than 200 fails the run rather than counting as served.
    """
    return asyncio.run(_throughput(port, token, next_path, seconds, concurrency))


async def _throughput(
    port: int, token: str, next_path: Callable[[], str], seconds: float, concurrency: int
) -> float:
    stop_at = time.monotonic() + seconds
    auth = f"Authorization: Bearer {token}\r\n" if token else ""

    async def client() -> int:
        done = 0
        while time.monotonic() < stop_at:
            path = next_path()
            head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
            answer = await exchange(port, head.encode())
            if answer[9:12] != b"200":
                raise RuntimeError(f"{path}: {answer[:200]!r}")
            done += 1
        return done

    counts = await asyncio.gather(*(client() for _ in range(concurrency)))
    return sum(counts) / seconds


def list_path(query: str) -> str:
    return "/crm/appusers" + (f"?{query}" if query else "")


def baseline_path(query: str) -> str:
    return "/crm/appusers/baseline" + (f"?{query}" if query else "")


def cursor_query(cursor: str, ordering: str | None = None) -> str:
    return (f"ordering={ordering}&" if ordering else "") + f"cursor={quote(cursor)}"


def results_as_dicts(results: list[Result]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if k != "samples_ms"} for r in results]


ProgressFn = Callable[[str], None]
