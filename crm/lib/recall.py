"""The search's recall for misspelt names (`manage.py bench --recall N --seed S`): N names
drawn from the data (last and first names), each misspelt by a seeded generator the way
staff mistype what they hear, searched over HTTP as typed. A name is found when a contact
with that name is on the first page of the answer (a fuzzy page counts: it is what the
dashboard shows). Bench code: nothing in the request path imports it."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

import orjson
from django.db import connection

from crm.lib.bench import Client

KINDS = ("one edit", "umlaut", "phonetic")
# spelt as heard: each pair is one way round of a variant
UMLAUTS = [("ü", "ue"), ("ö", "oe"), ("ä", "ae"), ("ß", "ss"), ("ue", "ü"), ("oe", "ö"),
           ("ae", "ä"), ("ss", "ß")]  # fmt: skip
PHONETIC = [("ei", "ai"), ("ai", "ei"), ("ey", "ei"), ("ay", "ei"), ("dt", "tt"), ("tt", "dt"),
            ("ph", "f"), ("f", "ph"), ("ck", "k"), ("tz", "z"), ("z", "tz"), ("ie", "i"),
            ("th", "t"), ("ll", "l"), ("mm", "m"), ("nn", "n"), ("v", "w"), ("w", "v")]  # fmt: skip
LETTERS = "abcdefghijklmnopqrstuvwxyz"
_VARIANTS = {"umlaut": UMLAUTS, "phonetic": PHONETIC}


@dataclass(frozen=True)
class Attempt:
    field: str
    name: str
    kind: str
    typed: str
    found: bool
    fuzzy: bool
    ms: float


def sample_names(count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` distinct (kind, field, name) triples, the kinds in turn, each name one that
    its kind applies to: names of four letters or more in the Latin alphabet, drawn from the
    read model's distinct last and first names."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'last_name', last_name FROM crm_contactrow GROUP BY 2 "
            "UNION ALL SELECT 'first_name', first_name FROM crm_contactrow GROUP BY 2 ORDER BY 1, 2"
        )
        pool = [
            (f, n) for f, n in cursor.fetchall() if len(n) >= 4 and n.isalpha() and n < "\u0250"
        ]
    rng, chosen = random.Random(seed), []
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        fits = [
            (f, name) for f, name in pool if _applies(kind, name) and (kind, f, name) not in chosen
        ]
        if fits:
            chosen.append((kind, *rng.choice(fits)))
    return chosen


def _applies(kind: str, name: str) -> bool:
    return kind == "one edit" or any(a in name.lower() for a, _ in _VARIANTS[kind])


def misspell(name: str, kind: str, rng: random.Random) -> str:
    """`name` as typed with one mistake of `kind` (one edit when no variant applies)."""
    present = [(a, b) for a, b in _VARIANTS.get(kind, []) if a in name.lower()]
    if present:
        a, b = rng.choice(present)
        at = name.lower().index(a)
        typed = name[:at] + b + name[at + len(a) :]
        return typed if at else typed[:1].upper() + typed[1:]
    return _one_edit(name, rng)


def _one_edit(name: str, rng: random.Random) -> str:
    while True:
        at = rng.randrange(1, len(name))  # staff get the first letter right
        how = rng.choice(["delete", "insert", "substitute", "transpose"])
        if how == "delete":
            typed = name[:at] + name[at + 1 :]
        elif how == "insert":
            typed = name[:at] + rng.choice(LETTERS) + name[at:]
        elif how == "substitute":
            typed = name[:at] + rng.choice(LETTERS) + name[at + 1 :]
        else:
            typed = name[: at - 1] + name[at] + name[at - 1] + name[at + 1 :]
        if typed.lower() != name.lower():
            return typed


def run_recall(client: Client, names: list[tuple[str, str, str]], seed: int) -> list[Attempt]:
    rng, attempts = random.Random(seed), []
    for kind, field, name in names:
        typed = misspell(name, kind, rng)
        started = time.perf_counter()
        status, body, _ = client.get("/crm/appusers?" + urlencode({"search": typed}))
        ms = (time.perf_counter() - started) * 1000
        page = orjson.loads(body) if status == 200 else {"results": [], "fuzzy": False}
        found = any(row[field] == name for row in page["results"])
        attempts.append(Attempt(field, name, kind, typed, found, page["fuzzy"], ms))
    return attempts


def summary(attempts: list[Attempt]) -> dict[str, object]:
    def share(chosen: list[Attempt]) -> float:
        return sum(a.found for a in chosen) / len(chosen) if chosen else 0.0

    fuzzy = [a.ms for a in attempts if a.fuzzy]
    return {
        "names": len(attempts),
        "found": share(attempts),
        "by_kind": {k: share([a for a in attempts if a.kind == k]) for k in KINDS},
        "p50_ms": statistics.median(a.ms for a in attempts),
        "fuzzy_p50_ms": statistics.median(fuzzy) if fuzzy else None,
        "attempts": [asdict(a) for a in attempts],
    }
