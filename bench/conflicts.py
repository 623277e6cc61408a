"""Benchmark of the conflicts engine: a two-year daily series (730 occurrences) checked against
about 2,000 booked occurrences, as ``POST /api/meetings/check`` does before saving.

    python -m bench.conflicts [--repeat 7] [--seed 45]

Two bookings are timed: spread over the working day (most do not touch the series), and every
booking inside the series' own hours (each occurrence clashes, so every message is built).
Pure computation on this process, no server and no database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from server.meetings.conflicts import Slot, find_conflicts, notice_conflicts
from server.workdays import service as workdays
from server.workdays.calendar import WorkingCalendar

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST_DAY = dt.date(2026, 3, 2)
OCCURRENCES = 730
BOOKED = 2000
UNITS = 200
PEOPLE = 40
MAX_ENDPOINTS = 120


def local(day: dt.date, minutes: int) -> dt.datetime:
    return (dt.datetime.combine(day, dt.time(), tzinfo=LOCAL) + dt.timedelta(minutes=minutes)).astimezone(dt.UTC)


def series() -> list[Slot]:
    """A ward briefing every day at 08:00-10:00 for two years: 80 wards, the chair, a deputy."""
    units = frozenset(range(1, 81))
    return [
        Slot(None, "Giao ban hằng ngày", local(day, 8 * 60), local(day, 10 * 60), units, frozenset({1, 2}), 1, 82)
        for day in (FIRST_DAY + dt.timedelta(days=i) for i in range(OCCURRENCES))
    ]


def bookings(rng: random.Random, *, inside_series_hours: bool) -> list[Slot]:
    slots = []
    for meeting_id in range(1, BOOKED + 1):
        day = FIRST_DAY + dt.timedelta(days=rng.randrange(OCCURRENCES))
        begin = rng.randrange(8 * 60, 9 * 60 + 30, 30) if inside_series_hours else rng.randrange(7 * 60, 17 * 60, 30)
        length = rng.choice((60, 90, 120, 180))
        units = frozenset(rng.sample(range(1, UNITS + 1), rng.randrange(5, 60)))
        users = frozenset(rng.sample(range(1, PEOPLE + 1), rng.randrange(1, 4)))
        chair = rng.choice(sorted(users))
        slots.append(
            Slot(meeting_id, f"Cuộc họp {meeting_id}", local(day, begin), local(day, begin + length), units, users,
                 chair, len(units) + len(users))
        )
    return slots


def timed(run: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=45)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    candidate = series()
    unit_names = {i: f"Phường {i}" for i in range(1, UNITS + 1)}
    user_names = {i: f"Người {i}" for i in range(1, PEOPLE + 1)}
    calendar = WorkingCalendar(line.day for line in workdays.read_file(workdays.DATA_FILE.read_bytes()))
    announced = local(FIRST_DAY - dt.timedelta(days=1), 9 * 60)

    print(f"python {platform.python_version()} on {platform.machine()}; {args.repeat} runs each")
    print(f"{'scenario':52} {'best ms':>8} {'median ms':>10} {'conflicts':>10}")
    for label, inside in (("730 daily x 2000 booked, spread over the day", False),
                          ("730 daily x 2000 booked, all in the series' hours", True)):
        existing = bookings(rng, inside_series_hours=inside)
        seconds, found = timed(
            lambda existing=existing: find_conflicts(candidate, existing, max_endpoints=MAX_ENDPOINTS, unit_names=unit_names, user_names=user_names),
            args.repeat,
        )
        count = len(found) if isinstance(found, list) else 0
        print(f"{label:52} {min(seconds) * 1000:8.1f} {statistics.median(seconds) * 1000:10.1f} {count:10d}")
    seconds, found = timed(lambda: notice_conflicts(candidate, announced_at=announced, calendar=calendar), args.repeat)
    count = len(found) if isinstance(found, list) else 0
    print(f"{'730 daily, notice (3 working days)':52} {min(seconds) * 1000:8.1f} {statistics.median(seconds) * 1000:10.1f} {count:10d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
