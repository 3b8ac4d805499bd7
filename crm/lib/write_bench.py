"""The write part of `manage.py bench`: real HTTP against the bench's gunicorn server.

Two latency scenarios, sequential requests on contacts drawn at random from the whole table
(as the list scenarios are sequential): a PATCH of one field (the first name, to the value
it already has, so the data stays as it was) and a points change (a small positive delta).
Then the write load: `clients` concurrent clients change points on random contacts back to
back for `seconds`, while one more client reads a few list scenarios in a loop. Afterwards
the total of all points, as the read model (crm_contactrow) and as the relationships hold
it, must have changed by exactly the sum of the deltas the server answered 200 for: an
increment that was answered but not stored (or stored twice) shows up there.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from django.db import connection

from crm.lib.bench import Client, Result, exchange, percentile

REASON = "manage.py bench"
MAX_DELTA = 10  # deltas are 1..MAX_DELTA: never refused, and the seeded data stays valid
PATCH_SCENARIO = "PATCH first_name (to its current value)"
POINTS_SCENARIO = f"points change (+1..{MAX_DELTA})"

# method, path, JSON body
Request = tuple[str, str, bytes]


def points_path(contact_id: int) -> str:
    return f"/crm/appusers/{contact_id}/points"


def points_body(delta: int) -> bytes:
    return orjson.dumps({"delta": delta, "reason": REASON})


@dataclass(frozen=True)
class Totals:
    """The total of all points: as the list's read model holds it, and as the relationships."""

    contactrow: int
    relationships: int


def points_totals() -> Totals:
    """Both totals in one statement, so from one snapshot."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT coalesce(sum(relationship_points), 0) FROM crm_contactrow),"
            " (SELECT coalesce(sum(points), 0) FROM crm_customerrelationship)"
        )
        contactrow, relationships = cursor.fetchone()
    return Totals(int(contactrow), int(relationships))


@dataclass(frozen=True)
class IncrementCheck:
    """The deltas the server confirmed against what the two totals show."""

    changes: int  # points changes answered 200
    applied: int  # the sum of their deltas
    before: Totals
    after: Totals

    @property
    def lost_contactrow(self) -> int:
        """Confirmed but missing from the read model's total (negative: counted twice)."""
        return self.applied - (self.after.contactrow - self.before.contactrow)

    @property
    def lost_relationships(self) -> int:
        return self.applied - (self.after.relationships - self.before.relationships)

    @property
    def ok(self) -> bool:
        return self.lost_contactrow == 0 and self.lost_relationships == 0


def id_range() -> tuple[int, int]:
    """The lowest and the highest contact id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM crm_appuser")
        low, high = cursor.fetchone()
    if low is None:
        raise RuntimeError("no contacts to write to")
    return int(low), int(high)


def sample_contacts(count: int, seed: int = 1) -> list[tuple[int, str]]:
    """`count` contacts (id, first name) drawn uniformly from the whole id range, with
    replacement; an id that is not in the table is drawn again."""
    low, high = id_range()
    pick = random.Random(seed)
    with connection.cursor() as cursor:
        found: list[tuple[int, str]] = []
        while len(found) < count:
            ids = [pick.randint(low, high) for _ in range(count - len(found))]
            cursor.execute("SELECT id, first_name FROM crm_appuser WHERE id = ANY(%s)", [ids])
            names = dict(cursor.fetchall())
            if not names:
                raise RuntimeError("the id range is too sparse to draw contacts from")
            found += [(i, names[i]) for i in ids if i in names]
    return found


def patch_requests(contacts: Iterable[tuple[int, str]]) -> list[Request]:
    return [
        ("PATCH", f"/crm/appusers/{contact_id}", orjson.dumps({"first_name": name}))
        for contact_id, name in contacts
    ]


def points_requests(contact_ids: Iterable[int], seed: int = 2) -> list[Request]:
    pick = random.Random(seed)
    return [("POST", points_path(i), points_body(pick.randint(1, MAX_DELTA))) for i in contact_ids]


def delta_of(request: Request) -> int:
    return int(orjson.loads(request[2])["delta"])


def summary(samples: list[float], *, scenario: str, target: str, status: int = 200) -> Result:
    return Result(
        scenario,
        target,
        statistics.median(samples),
        percentile(samples, 0.95),
        percentile(samples, 0.99),
        len(samples),
        status,
        1,
        None,
        None,
        samples,
    )


def measure_requests(
    client: Client, requests: list[Request], *, warmup: int, scenario: str
) -> Result:
    """The first `warmup` requests untimed, then each one timed; any answer but 200 fails
    the run (the points check counts every delta sent here as applied)."""
    samples: list[float] = []
    for n, (method, path, body) in enumerate(requests):
        started = time.perf_counter()
        status, answer, _ = client.send(method, path, body)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {answer[:200]!r}")
        if n >= warmup:
            samples.append(elapsed)
    return summary(samples, scenario=scenario, target="write")


@dataclass
class Load:
    clients: int
    seconds: float  # asked for
    elapsed_s: float  # from the start until the last client's last answer
    changes: int  # answered 200
    refused: int  # answered 409 (the balance would leave its range): not applied
    missing: int  # answered 404 (no contact with the drawn id): not applied
    applied: int  # the sum of the deltas answered 200
    writes: Result  # each points change's latency under the load
    reads: list[Result] = field(default_factory=list)  # each list scenario read meanwhile

    @property
    def writes_per_s(self) -> float:
        return self.changes / self.elapsed_s if self.elapsed_s else 0.0


def http_request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + (f"Authorization: Bearer {token}\r\n" if token else "")
        + (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP/1.x answer, 0 if it is none."""
    if not answer.startswith(b"HTTP/1.") or len(answer) < 12 or not answer[9:12].isdigit():
        return 0
    return int(answer[9:12])


def write_load(
    port: int,
    token: str,
    *,
    next_change: Callable[[], tuple[int, int]],
    reads: list[tuple[str, str]],
    seconds: float,
    clients: int,
) -> Load:
    """`clients` clients POST points changes (contact id, delta from `next_change`) back to
    back for `seconds`, while one more reads the `reads` (scenario name, path) in turn.

    asyncio on raw sockets, as bench.throughput: every request opens a new connection, and
    a thread per client would spend the client's share of the two cores on http.client and
    the GIL. A client
    finishes its request in flight when the time is up, so every change sent has an answer.
    An answer other than 200, 409 or 404 to a change, or other than 200 to a read, fails the
    run: a change without a known outcome would make the points check meaningless.
    """
    return asyncio.run(_write_load(port, token, next_change, reads, seconds, clients))


async def _write_load(
    port: int,
    token: str,
    next_change: Callable[[], tuple[int, int]],
    reads: list[tuple[str, str]],
    seconds: float,
    clients: int,
) -> Load:
    started = time.monotonic()
    stop_at = started + seconds
    tally = {200: 0, 409: 0, 404: 0}
    applied = 0
    write_ms: list[float] = []
    read_ms: dict[str, list[float]] = {name: [] for name, _ in reads}

    async def writer() -> None:
        nonlocal applied
        while time.monotonic() < stop_at:
            contact_id, delta = next_change()
            request = http_request("POST", points_path(contact_id), token, points_body(delta))
            sent = time.perf_counter()
            answer = await exchange(port, request)
            write_ms.append((time.perf_counter() - sent) * 1000)
            status = status_of(answer)
            if status not in tally:
                raise RuntimeError(f"points of {contact_id}: {answer[:300]!r}")
            tally[status] += 1
            if status == 200:
                applied += delta

    async def reader() -> None:
        n = 0
        while time.monotonic() < stop_at:
            name, path = reads[n % len(reads)]
            n += 1
            sent = time.perf_counter()
            answer = await exchange(port, http_request("GET", path, token))
            read_ms[name].append((time.perf_counter() - sent) * 1000)
            if status_of(answer) != 200:
                raise RuntimeError(f"{path}: {answer[:300]!r}")

    await asyncio.gather(*(writer() for _ in range(clients)), *([reader()] if reads else []))
    elapsed = time.monotonic() - started
    every_read = [ms for samples in read_ms.values() for ms in samples]
    return Load(
        clients=clients,
        seconds=seconds,
        elapsed_s=elapsed,
        changes=tally[200],
        refused=tally[409],
        missing=tally[404],
        applied=applied,
        writes=summary(write_ms, scenario=POINTS_SCENARIO, target="under load"),
        reads=[
            summary(samples, scenario=name, target="read under load")
            for name, samples in read_ms.items()
            if samples
        ]
        + ([summary(every_read, scenario="all reads", target="read under load")] if reads else []),
    )


@dataclass
class WriteReport:
    contacts: int
    machine: dict[str, Any]
    latency: list[Result]  # the PATCH and the points change, sequential
    load: Load
    increments: IncrementCheck
    separate_run: bool = False  # measured by `manage.py bench --only writes`

    def as_json(self) -> dict[str, Any]:
        def plain(r: Result) -> dict[str, Any]:
            return {k: v for k, v in asdict(r).items() if k != "samples_ms"}

        load = {k: v for k, v in asdict(self.load).items() if k not in ("writes", "reads")}
        return {
            "contacts": self.contacts,
            "machine": self.machine,
            "separate_run": self.separate_run,
            "latency": [plain(r) for r in self.latency],
            "load": load
            | {
                "writes_per_s": self.load.writes_per_s,
                "writes": plain(self.load.writes),
                "reads": [plain(r) for r in self.load.reads],
            },
            "increments": asdict(self.increments)
            | {
                "lost_contactrow": self.increments.lost_contactrow,
                "lost_relationships": self.increments.lost_relationships,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteReport:
        load = dict(data["load"])
        load.pop("writes_per_s", None)
        load["writes"] = Result(**load["writes"])
        load["reads"] = [Result(**r) for r in load["reads"]]
        increments = {k: v for k, v in data["increments"].items() if not k.startswith("lost_")}
        return cls(
            contacts=data["contacts"],
            machine=data["machine"],
            latency=[Result(**r) for r in data["latency"]],
            load=Load(**load),
            increments=IncrementCheck(
                increments["changes"],
                increments["applied"],
                Totals(**increments["before"]),
                Totals(**increments["after"]),
            ),
            separate_run=data.get("separate_run", False),
        )
