# ruff: noqa: RUF001  (sample names in Cyrillic, Greek and Turkish look like Latin letters)
"""Micro-benchmark of the avatar pipeline, for `manage.py bench` (no database involved).

Every figure covers the whole path from a contact's id and names (initials, coverage,
colour) to the finished SVG text or PNG bytes, as the views run it.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from crm import avatars

# (given names, family names) per script, so the sample exercises every font and layout path.
_NAMES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("Anna", "Bernd", "Chloé", "Dmitri", "Élodie", "Fatma", "Günter", "Hana", "Ivo", "Jörg"),
        ("Müller", "Schmidt", "O'Brien", "Nguyễn", "Ångström", "Quinn", "Zola", "Kovač", "Lee"),
    ),
    (
        ("Ilker", "Ayşe", "Çağan", "Ömer", "Şule", "ılgın", "Ümit", "Gökhan", "Elif", "Deniz"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Arslan", "Doğan"),
    ),
    (
        ("Ελένη", "Γιώργος", "Δημήτρης", "Μαρία", "Νίκος", "Σοφία", "Ζωή", "Θάνος", "Ιωάννα"),
        ("Παπαδόπουλος", "Κωνσταντίνου", "Βλάχος", "Λαμπράκη", "Ξενάκης", "Ψαρρά", "Ρήγας"),
    ),
    (
        ("Анна", "Борис", "Вера", "Григорий", "Дарья", "Жанна", "Зоя", "Игорь", "Юлия", "Ярослав"),
        ("Иванов", "Щукина", "Смирнов", "Кузнецова", "Попов", "Лебедев", "Федорова", "Чернов"),
    ),
    (
        ("محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "سارة", "خالد", "نور", "عمر", "زينب"),
        ("علي", "حسن", "الخطيب", "منصور", "سعيد", "داود", "بكر", "طه", "قاسم", "رشيد"),
    ),
    (
        ("דוד", "שרה", "יוסף", "מרים", "אברהם", "רחל", "משה", "לאה", "נועה", "גיל"),
        ("כהן", "לוי", "מזרחי", "פרץ", "ביטון", "דהן", "אברהם", "פרידמן", "שלום", "טל"),
    ),
    (
        ("小明", "秀英", "伟", "芳", "민준", "서연", "さくら", "健太", "美咲", "翔太"),
        ("王", "李", "张", "刘", "陈", "김", "이", "박", "佐藤", "鈴木", "高橋", "田中"),
    ),
)


def _contacts(count: int, *, unique: bool, seed: int = 2026) -> list[tuple[int, str, str]]:
    """`count` (id, first name, last name) rows; with `unique`, no two draw the same picture."""
    rng = random.Random(seed)
    rows: list[tuple[int, str, str]] = []
    seen: set[avatars.Avatar] = set()
    for attempt in range(count * 50):
        if len(rows) == count:
            break
        given, family = _NAMES[attempt % len(_NAMES)]
        row = (rng.randrange(1, 10_000_000), rng.choice(given), rng.choice(family))
        if unique:
            avatar = avatars.avatar_for(*row)
            if avatar in seen:
                continue
            seen.add(avatar)
        rows.append(row)
    return rows


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _per_call(work: Callable[[], object], calls: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds per call of one pass of `work`, which makes `calls` calls.

    CPU time leaves out the waits for a core that other processes on the machine cause."""
    with _no_gc():
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        return (time.perf_counter() - start) / calls, (time.process_time() - start_cpu) / calls


def _best(passes: list[tuple[float, float]]) -> tuple[float, float]:
    return min(wall for wall, _ in passes), min(cpu for _, cpu in passes)


def _clear_render_caches() -> None:
    # Fonts and cmaps stay loaded: they are process-wide and loaded once at startup.
    avatars.render_png.cache_clear()
    avatars.text_ratio.cache_clear()
    avatars.font_for.cache_clear()


def run_avatar_benchmark(
    svg_count: int = 5_000, png_count: int = 400, repeats: int = 5
) -> dict[str, float]:
    """Times per avatar, each the best of `repeats` passes (other load on the machine only
    ever adds time); the cold PNG figure also comes as the median of its passes, and SVG and
    cold PNG also in CPU time. The 1-minute load average tells how quiet the machine was."""
    rows = _contacts(svg_count, unique=False)
    unique_rows = _contacts(png_count, unique=True)
    avatar_for, render_svg, render_png = avatars.avatar_for, avatars.render_svg, avatars.render_png

    def svg_pass() -> None:
        for cid, first, last in rows:
            render_svg(avatar_for(cid, first, last))

    def url_pass() -> None:
        for cid, first, last in rows:
            avatars.avatar_url(cid, first, last)

    def png_pass() -> None:
        for cid, first, last in unique_rows:
            render_png(avatar_for(cid, first, last), 128, "circle")

    svg_pass()  # loads the fonts' cmaps, as the first request of a process would
    svg, svg_cpu = _best([_per_call(svg_pass, len(rows)) for _ in range(repeats)])
    url, _ = _best([_per_call(url_pass, len(rows)) for _ in range(repeats)])
    cold_runs = []
    for _ in range(repeats):
        _clear_render_caches()
        cold_runs.append(_per_call(png_pass, len(unique_rows)))
    cold, cold_cpu = _best(cold_runs)
    cached, _ = _best([_per_call(png_pass, len(unique_rows)) for _ in range(repeats)])
    return {
        "avatar_svg_us": round(svg * 1e6, 2),
        "avatar_svg_cpu_us": round(svg_cpu * 1e6, 2),
        "avatar_url_us": round(url * 1e6, 2),
        "avatar_png128_cold_ms": round(cold * 1e3, 3),
        "avatar_png128_cold_median_ms": round(statistics.median(w for w, _ in cold_runs) * 1e3, 3),
        "avatar_png128_cold_cpu_ms": round(cold_cpu * 1e3, 3),
        "avatar_png128_cached_ms": round(cached * 1e3, 4),
        "avatar_png_sample_size": float(len(unique_rows)),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
