"""A real gunicorn for the tests that need one (tests/test_outage.py, tests/test_schemathesis.py),
started from the project's root so that it reads gunicorn.conf.py like `make run` does."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**overrides: str) -> dict[str, str]:
    """This process's environment for the production settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    return env | {"DJANGO_SETTINGS_MODULE": "config.settings"} | overrides


def http_json(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float = 10,
) -> tuple[int, Any, dict[str, str]]:
    """One request on a fresh connection: (status, the body parsed if JSON, the headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(raw) if is_json else raw, dict(response.headers)
    finally:
        conn.close()


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def running_gunicorn(
    env: dict[str, str], log: Path, workers: int = 2
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """gunicorn on a free port, up (/healthz 200, every worker booted) until the block ends;
    its output goes to `log`."""
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers",
             str(workers), "--bind", f"127.0.0.1:{port}", "--timeout", "30",
             "--graceful-timeout", "2"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.1)
        while len(psutil.Process(server.pid).children()) < workers:
            time.sleep(0.1)
        yield server, port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
