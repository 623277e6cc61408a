"""How long the secretary waits for *Check*: ``POST /api/meetings/check`` for the city-wide
weekly briefing (116 units, a year of Mondays) against a calendar already holding N meetings,
in process (the HTTP stack included, no network). Bounded: N and the repeats are capped.

    python -m bench.scheduling --existing 300 --repeats 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from server import demo
from server.accounts import service as accounts
from server.app import create_app
from server.db import Database
from server.meetings import service as meetings
from server.meetings.participants import Choice
from server.migrate import upgrade_to_head
from server.settings import load_settings
from server.units import service as units
from server.workdays import service as workdays

LOCAL = dt.timezone(dt.timedelta(hours=7))


def populate(db: Database, existing: int, first: dt.date) -> None:
    """``existing`` one-hour ward meetings spread over the year, each inviting 1-3 wards."""
    with db.session() as session:
        secretary = accounts.by_username(session, "thuky")
        wards = [u.code for u in units.search(session, level="ward", limit=1000)[0]]
        for n in range(existing):
            day = first + dt.timedelta(days=(n * 3) % 360)
            start = dt.datetime.combine(day, dt.time(7 + n % 9, 0), tzinfo=LOCAL)
            plan = meetings.MeetingInput(
                title=f"Họp chuyên đề {n}", start=start, end=start + dt.timedelta(hours=1), host_unit="ct",
                chair="thuky", kind="ad_hoc", participants=Choice(units=tuple(wards[(n + k) % len(wards)] for k in range(1 + n % 3))),
            )
            meetings.create(session, secretary, plan, max_endpoints=10_000, confirm=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    if not 0 <= args.existing <= 5000 or not 1 <= args.repeats <= 100:
        parser.error("--existing 0..5000, --repeats 1..100")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_to_head(url)
        db = Database(url)
        with db.session() as session:
            workdays.seed_if_empty(session)
            demo.load(session, "giaoban-demo", meetings=False)
        today = dt.date.today()
        monday = today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7)
        populate(db, args.existing, monday)
        app = create_app(load_settings(database_url=url, demo=True))
        with TestClient(app) as client:
            token = client.post("/api/auth/token", json={"username": "thuky", "password": "giaoban-demo"}).json()["access_token"]
            start = dt.datetime.combine(monday, dt.time(8, 0), tzinfo=LOCAL)
            body = {
                "title": "Giao ban tuần", "start": start.isoformat(), "end": (start + dt.timedelta(hours=2)).isoformat(),
                "host_unit": "ct", "chair": "lanhdao", "kind": "regular", "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=52",
                "participants": {"units": ["ct"], "levels": [{"under": "ct", "level": level} for level in ("district", "ward", "department")]},
            }
            timings, conflicts = [], 0
            for _ in range(args.repeats):
                began = time.perf_counter()
                response = client.post("/api/meetings/check", json=body, headers={"Authorization": f"Bearer {token}"})
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.text
                conflicts = len(response.json()["conflicts"])
        db.dispose()
    print(f"check of the city-wide weekly series (52 Mondays, 116 units) against {args.existing} meetings: "
          f"median {statistics.median(timings):.1f} ms, best {min(timings):.1f} ms, {conflicts} conflicts found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
