"""Read replicas: which server a read runs on.

The list, its counts, the exports and the avatars read from a streaming replica
(DATABASE_REPLICA_URLS, config/settings.py), picked at random among the healthy ones;
every write, every read inside a write's transaction, the authentication and everything
else run on the primary ("default").

The one seam: `reads`, a stand-in for django.db.connection whose target is chosen per
request. The read paths run their raw SQL through it (crm/selectors/, crm/export.py,
crm/views.py); a view wrapped in `replica_reads` makes it point at the replica chosen for
the request, and the router sends the ORM's reads in that scope the same way.
Everywhere else, and inside an atomic block of the primary, it is the primary.

Read your writes: after a write commits, the primary's WAL position (pg_current_wal_lsn())
is kept for the user who wrote (crm_readafter, an unlogged table on the primary: shared by
every worker, no WAL of its own). That user's reads then go to a replica only if its
replayed position (as the health check last saw it) has reached that write; else to the
primary. Other users may see a write later, by at most the replica's lag.

Faults: a thread per server and worker process checks each server every POLL_SECONDS. A
replica is skipped when its last good check is older than STALE_SECONDS (down, or too
slow to answer), when it is not in recovery, or when it lags more than REPLICA_MAX_LAG_MS;
a read that fails on a replica (stopped, restarted, a recovery conflict) is marked down
and re-run on the primary, so no request fails for a replica.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from crm.middleware import is_timeout, is_unavailable

logger = logging.getLogger(__name__)
PRIMARY = DEFAULT_DB_ALIAS
POLL_SECONDS = 0.25
STALE_SECONDS = 1.5  # no good check for this long: skipped (the goal is within 2 s)
FIRST_CHECK_SECONDS = 1.0
USER_ID_ATTR = "crm_user_id"  # set by crm/auth.py for a bearer token's user

View = Callable[..., HttpResponseBase]


# -- which server: the per-request route ---------------------------------------------------

_route: ContextVar[str] = ContextVar("crm_read_alias", default=PRIMARY)


def read_alias() -> str:
    """The alias the current read runs on: the request's replica, unless a transaction of
    the primary is open (its own writes are only visible there)."""
    alias = _route.get()
    if alias != PRIMARY and connections[PRIMARY].in_atomic_block:
        return PRIMARY
    return alias


@contextmanager
def routed(alias: str) -> Iterator[None]:
    token = _route.set(alias)
    try:
        yield
    finally:
        _route.reset(token)


class _ReadConnection:
    """django.db.connection for reads: every attribute is the chosen server's connection's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(connections[read_alias()], name)


reads: BaseDatabaseWrapper = _ReadConnection()  # type: ignore[assignment]


class ReplicaRouter:
    """The ORM's reads follow the request's route; writes and migrations stay on the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY


# -- the health of each server, checked in the background ---------------------------------


@dataclass(frozen=True)
class ServerState:
    alias: str
    checked: float = 0.0  # time.monotonic() of the last good check; 0: none yet
    lsn: int = 0  # the primary's current WAL position, a replica's replayed one
    in_recovery: bool = False
    lag: float = 0.0  # seconds a replica is behind the primary
    error: str = ""  # why the last check failed

    def state(self, now: float) -> str:
        if not self.checked:
            return "down" if self.error else "unknown"
        if now - self.checked > STALE_SECONDS:
            return "down"
        if self.alias == PRIMARY:
            return "ok"
        if not self.in_recovery:
            return "not a replica"  # promoted or misconfigured: it no longer follows
        if self.lag * 1000 > settings.REPLICA_MAX_LAG_MS:
            return "lagging"
        return "ok"


def lag_seconds(history: Iterable[tuple[float, int]], checked: float, replayed: int) -> float:
    """How long ago the primary (sampled as (time, WAL position) pairs, oldest first) first
    stood past what a replica had replayed at `checked`: 0 if it has replayed the newest."""
    for at, lsn in history:
        if lsn > replayed:
            return max(checked - at, 0.0)
    return 0.0


PRIMARY_SQL = "SELECT pg_current_wal_lsn() - '0/0', false"
REPLICA_SQL = "SELECT coalesce(pg_last_wal_replay_lsn() - '0/0', 0), pg_is_in_recovery()"


class Health:
    """Per worker process: a daemon thread per server, each keeping its ServerState fresh."""

    def __init__(self) -> None:
        self.states: dict[str, ServerState] = {}
        self._history: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self._pid = 0

    def ensure_started(self) -> None:
        """Started lazily in each worker (threads do not survive gunicorn's fork); its first
        request waits for the first checks (milliseconds; at most FIRST_CHECK_SECONDS), so
        it reads where any later one would."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.states = {}
            aliases = [PRIMARY, *settings.REPLICA_ALIASES]
            for alias in aliases:
                threading.Thread(
                    target=self._watch, args=(alias,), name=f"health-{alias}", daemon=True
                ).start()
            deadline = time.monotonic() + FIRST_CHECK_SECONDS
            while len(self.states) < len(aliases) and time.monotonic() < deadline:
                time.sleep(0.005)
            self._pid = os.getpid()

    def readable(self) -> list[ServerState]:
        """The replicas a read may go to now."""
        self.ensure_started()
        now = time.monotonic()
        return [
            state
            for alias in settings.REPLICA_ALIASES
            if (state := self.states.get(alias)) and state.state(now) == "ok"
        ]

    def mark_down(self, alias: str, error: BaseException) -> None:
        """A read just failed there: skip it until its next good check."""
        logger.warning("replica %s failed a read, reading from the primary: %s", alias, error)
        self.states[alias] = ServerState(alias, error=str(error).strip()[:200])

    def _watch(self, alias: str) -> None:
        conn: psycopg.Connection | None = None
        while True:
            started = time.monotonic()
            try:
                conn = conn if conn and not conn.closed else _health_connection(alias)
                self._check(alias, conn)
            except Exception as error:  # any failure means down; the loop must go on
                self.states[alias] = ServerState(alias, error=str(error).strip()[:200])
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(max(POLL_SECONDS - (time.monotonic() - started), 0.01))

    def _check(self, alias: str, conn: psycopg.Connection) -> None:
        row = conn.execute(PRIMARY_SQL if alias == PRIMARY else REPLICA_SQL).fetchone()
        assert row is not None
        now = time.monotonic()
        lsn, in_recovery = int(row[0]), bool(row[1])
        if alias == PRIMARY:
            self._remember_primary(now, lsn)
            self.states[alias] = ServerState(alias, now, lsn)
            return
        with self._lock:
            lag = lag_seconds(list(self._history), now, lsn)
        self.states[alias] = ServerState(alias, now, lsn, in_recovery, lag)

    def _remember_primary(self, now: float, lsn: int) -> None:
        with self._lock:
            if not self._history or self._history[-1][1] != lsn:
                self._history.append((now, lsn))
            # enough history to tell any lag up to the bound, and a little more
            keep = settings.REPLICA_MAX_LAG_MS / 1000 + 5
            while len(self._history) > 1 and now - self._history[1][0] > keep:
                self._history.popleft()


def _health_connection(alias: str) -> psycopg.Connection:
    """Its own short-timeout connection, outside Django's per-request ones."""
    db = connections.settings[alias]
    return psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True,
        connect_timeout=1, application_name="crm-health",
        options="-c statement_timeout=1000",
    )  # fmt: skip


HEALTH = Health()


def health_report() -> dict[str, dict[str, Any]]:
    """Each server's state for /healthz."""
    HEALTH.ensure_started()
    now = time.monotonic()
    report = {}
    for alias in [PRIMARY, *settings.REPLICA_ALIASES]:
        state = HEALTH.states.get(alias, ServerState(alias))
        entry: dict[str, Any] = {
            "role": "primary" if alias == PRIMARY else "replica",
            "state": state.state(now),
        }
        if state.checked:
            entry["wal_lsn"] = f"{state.lsn >> 32:X}/{state.lsn & 0xFFFFFFFF:X}"
            entry["checked_ms_ago"] = round((now - state.checked) * 1000)
            if alias != PRIMARY:
                entry["lag_ms"] = round(state.lag * 1000)
        if state.error:
            entry["error"] = state.error
        report[alias] = entry
    return report


# -- read your writes -----------------------------------------------------------------------

# After the write's commit, so the position is at or past its commit record; greatest():
# two writes of one user that finish out of order keep the later position.
REMEMBER_SQL = """
INSERT INTO crm_readafter (user_id, lsn) VALUES (%s, pg_current_wal_lsn())
ON CONFLICT (user_id) DO UPDATE SET lsn = greatest(crm_readafter.lsn, excluded.lsn)
"""
WRITTEN_SQL = "SELECT lsn - '0/0' FROM crm_readafter WHERE user_id = %s"


def _user_id(request: HttpRequest) -> int | None:
    """The user of a bearer token (without loading it) or of the session."""
    user_id = getattr(request, USER_ID_ATTR, None)
    if user_id is None and getattr(request, "user", None) is not None:
        user_id = request.user.pk
    return int(user_id) if user_id is not None else None


def remember_write(request: HttpRequest) -> None:
    """Called once a write of `request` has committed (crm/contact_views.py)."""
    user_id = _user_id(request)
    if not settings.REPLICA_ALIASES or user_id is None:
        return

    def remember() -> None:
        try:
            with connections[PRIMARY].cursor() as cursor:
                cursor.execute(REMEMBER_SQL, [user_id])
        except DatabaseError:  # the write itself is done: answer it; reads may lag
            logger.exception("could not remember the write position of user %s", user_id)

    transaction.on_commit(remember, using=PRIMARY)  # at once outside a transaction


def _written_lsn(request: HttpRequest) -> int:
    user_id = _user_id(request)
    if user_id is None:
        return 0
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute(WRITTEN_SQL, [user_id])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def choose(request: HttpRequest) -> str:
    """A replica that is healthy and has replayed this user's last write, else the primary."""
    ready = HEALTH.readable()
    if not ready:
        return PRIMARY
    needed = _written_lsn(request)
    fit = [state.alias for state in ready if state.lsn >= needed]
    return random.choice(fit) if fit else PRIMARY


# -- the views that read from replicas --------------------------------------------------------


def replica_reads(view: View) -> View:
    """GET and HEAD of `view` read from a replica (crm/urls.py names the views): the list,
    its counts, the exports, the avatars. A replica that fails is marked down and the
    read runs again on the primary: the view before its answer is made, a streamed body
    (an export) from the primary where the replica left off."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.REPLICA_ALIASES or request.method not in ("GET", "HEAD"):
            return view(request, *args, **kwargs)
        alias = choose(request)
        if alias != PRIMARY:
            try:
                with routed(alias):
                    _connect(alias)
                    response = view(request, *args, **kwargs)
                # a view may answer a failed query itself (the export's probe: 503)
                if response.status_code != 503 or _reachable(alias):
                    return _keep_route(response, alias, lambda: view(request, *args, **kwargs))
                HEALTH.mark_down(alias, DatabaseError("a read answered 503; no connection"))
            except DatabaseError as error:
                _replica_failed(alias, error)
        return view(request, *args, **kwargs)

    return wrapped


def _replica_failed(alias: str, error: DatabaseError) -> None:
    """Mark the replica down if `error` is its failure; re-raise anything else."""
    if not is_unavailable(error) or is_timeout(error):
        raise error  # a bug, or a query too slow anywhere: not the replica's fault
    HEALTH.mark_down(alias, error)
    with contextlib.suppress(DatabaseError):  # already broken: closing it is all we want
        connections[alias].close()


def _reachable(alias: str) -> bool:
    """Whether a new connection to the replica succeeds (after a 503 it answered: a
    statement timeout there is no reason to skip it, a refused connection is)."""
    with contextlib.suppress(DatabaseError):
        connections[alias].close()
    try:
        connections[alias].ensure_connection()
    except DatabaseError:
        return False
    return True


def _connect(alias: str) -> None:
    """Fail here, where the primary can still take over, if the replica went away since
    the connection was last used (CONN_MAX_AGE keeps it across requests)."""
    connection = connections[alias]
    connection.close_if_health_check_failed()
    connection.ensure_connection()


def _keep_route(
    response: HttpResponseBase, alias: str, on_primary: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    """A streamed body (an export) runs its query after the view returned: each step of it
    runs on the view's replica too, and `on_primary` makes it again if the replica fails."""
    if isinstance(response, StreamingHttpResponse) and not response.is_async:
        stream = cast(Iterator[bytes], response.streaming_content)
        response.streaming_content = _routed_stream(stream, alias, on_primary)
    return response


def _routed_stream(
    stream: Iterator[bytes], alias: str, on_primary: Callable[[], HttpResponseBase]
) -> Iterator[bytes]:
    sent = hashlib.sha256()
    size = 0
    try:
        while True:
            try:
                with routed(alias):
                    chunk = next(stream, None)
            except DatabaseError as error:
                _replica_failed(alias, error)
                yield from _resumed(on_primary(), sent.digest(), size)
                return
            if chunk is None:
                return
            sent.update(chunk)
            size += len(chunk)
            yield chunk
    finally:
        with routed(alias):
            close = getattr(stream, "close", None)
            if close is not None:
                close()


class StreamDiverged(Exception):
    """The primary's stream does not begin with what the replica had sent."""


def _resumed(response: HttpResponseBase, digest: bytes, size: int) -> Iterator[bytes]:
    """The primary's stream after its first `size` bytes, which must be the ones the replica
    sent (the same hash): then the client gets exactly the primary's file. If the data
    changed in between, the transfer is aborted, as for any failure mid-stream."""
    if not isinstance(response, StreamingHttpResponse) or response.is_async:
        raise StreamDiverged(f"the primary answered {response.status_code} instead")
    seen = hashlib.sha256()
    for chunk in cast(Iterator[bytes], response.streaming_content):
        if size > 0:
            head, chunk = chunk[:size], chunk[size:]
            seen.update(head)
            size -= len(head)
            if size == 0 and seen.digest() != digest:
                raise StreamDiverged("the rows changed since the replica sent the first ones")
        if chunk:
            yield chunk
    if size > 0:
        raise StreamDiverged("the primary's stream is shorter than what was sent")
