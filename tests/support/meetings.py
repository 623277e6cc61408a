"""Plans of meetings for tests: dates a few Mondays ahead of today, so no test depends on the
calendar, and the body of ``POST /api/meetings`` as DESIGN.md shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

LOCAL = dt.timezone(dt.timedelta(hours=7))


def monday(weeks_ahead: int = 3) -> dt.date:
    today = dt.date.today()
    return today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7 * weeks_ahead)


def at(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL).isoformat()


def plan(**changes: Any) -> dict[str, Any]:
    day = monday()
    body: dict[str, Any] = {
        "title": "Giao ban tuần — UBND thành phố",
        "start": at(day, 8), "end": at(day, 10),
        "host_unit": "ct", "chair": "lanhdao", "kind": "regular",
        "agenda": ["Tình hình kinh tế - xã hội tuần qua", "Nhiệm vụ tuần tới"],
        "participants": {"units": ["ct.so-tttt"], "levels": [{"under": "ct.ninh-kieu", "level": "ward"}], "users": []},
    }
    body.update(changes)
    return body
