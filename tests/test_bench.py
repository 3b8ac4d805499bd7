"""The bench's HTTP load client (crm/lib/bench.py), against a real server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from crm.auth import create_token
from crm.lib import bench


def _port(live_server: object) -> int:
    return urlsplit(str(live_server)).port or 80


def test_throughput_counts_served_requests(live_server: object, db: None) -> None:
    asked = 0

    def path() -> str:
        nonlocal asked
        asked += 1
        return "/healthz"

    rate = bench.throughput(_port(live_server), "", path, seconds=0.5, concurrency=2)
    assert 0 < rate * 0.5 == asked


def test_throughput_sends_the_token(live_server: object, user: User) -> None:
    token = create_token(user)
    rate = bench.throughput(
        _port(live_server), token, lambda: "/crm/appusers", seconds=0.3, concurrency=1
    )
    assert rate > 0


def test_throughput_fails_on_any_answer_but_200(live_server: object, db: None) -> None:
    with pytest.raises(RuntimeError, match="401"):
        bench.throughput(
            _port(live_server), "", lambda: "/crm/appusers", seconds=0.3, concurrency=1
        )
