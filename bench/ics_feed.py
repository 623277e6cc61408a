"""Benchmark of a calendar feed of 1,000 meetings (``/calendar/{token}.ics``).

    python -m bench.ics_feed [--repeat 7] [--meetings 1000] [--no-database]

Timed, each on this process:
- cold: every event serialised by the icalendar package (the block cache emptied first);
- warm: every event served from the block cache (what an hourly poll costs);
- warm, one changed: one meeting changed since the last poll;
- the ETag (SHA-256 of the body);
- with the database: a unit's feed read from a temporary SQLite database (query, mapping,
  warm render), which is what the route does before it can answer 200 or 304.

Six meetings in ten are weekly series (a tenth of them with a moved and a cancelled
occurrence), one in twenty is cancelled; titles, agendas and names are Vietnamese.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from server.calendar import ics

ORGANIZER = ics.Mailbox("giaoban@cantho.gov.vn.test", "Giao Ban")
FIRST = dt.datetime(2026, 1, 5, 1, tzinfo=dt.UTC)  # Monday 08:00 in Asia/Ho_Chi_Minh
LABELS = ics.Labels(agenda="Chương trình họp", host="Đơn vị chủ trì", chair="Người chủ trì", join="Tham gia trực tuyến",
                    conference="Họp trực tuyến", reminder="Cuộc họp bắt đầu sau 15 phút")


def events(count: int, rng: random.Random) -> list[ics.EventData]:
    found = []
    for n in range(count):
        start = FIRST + dt.timedelta(days=rng.randrange(0, 600), hours=rng.choice((0, 1, 6, 7)))
        series = n % 10 < 6
        overrides: tuple[ics.Override, ...] = ()
        if series and n % 10 == 0:
            second, third = start + dt.timedelta(weeks=1), start + dt.timedelta(weeks=2)
            overrides = (ics.Override(second, second + dt.timedelta(days=1), second + dt.timedelta(days=1, hours=2), "Dời lịch", False, 1),
                         ics.Override(third, third, third + dt.timedelta(hours=2), "", True, 2))
        found.append(ics.EventData(
            uid=f"{n:08d}-bench@giaoban", sequence=n % 3, title=f"Giao ban tuần số {n} — Ủy ban nhân dân phường",
            start=start, end=start + dt.timedelta(hours=2), organizer=ORGANIZER,
            description="Họp định kỳ đánh giá tình hình kinh tế - xã hội và công tác chỉ đạo, điều hành.",
            agenda=("Tình hình kinh tế - xã hội tuần qua", "Nhiệm vụ trọng tâm tuần tới", "Ý kiến các đơn vị"),
            rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=12" if series else "",
            status="CANCELLED" if n % 20 == 19 else "CONFIRMED",
            join_url=f"https://giaoban.cantho.gov.vn/meetings/{n}/room", overrides=overrides,
            host="Ủy ban nhân dân thành phố Cần Thơ", chair="Trần Văn Minh",
            updated_at=FIRST - dt.timedelta(days=30, seconds=n),
        ))
    return found


def timed(run: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> list[float]:
    seconds = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def database_feed(folder: Path, count: int, rng: random.Random) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """A unit's feed from SQLite in ``folder``: ``count`` meetings the unit is invited to, as the
    route reads them. Returns the render and what closes the database."""
    from server.accounts.models import User
    from server.calendar import service
    from server.calendar.models import FeedToken
    from server.db import Database
    from server.meetings.models import Meeting, MeetingParticipant
    from server.migrate import upgrade_to_head
    from server.units.models import Unit

    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade_to_head(url)
    db = Database(url)
    FeedToken.__table__.create(db.engine, checkfirst=True)  # type: ignore[attr-defined]  # until migration 0003
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        unit = Unit(code="ct", level="city", kind="thành phố", name="Thành phố Cần Thơ", search_key="thanh pho can tho")
        session.add(unit)
        session.flush()
        chair = User(username="lanhdao", full_name="Trần Văn Minh", unit_id=unit.id or 0, role="official", password_hash="-")
        session.add(chair)
        session.flush()
        for event in events(count, rng):
            start = now + (event.start - FIRST) - dt.timedelta(days=30)
            meeting = Meeting(
                uid=event.uid, title=event.title, description=event.description, agenda=list(event.agenda), kind="regular",
                host_unit_id=unit.id or 0, host_unit_name=event.host, chair_id=chair.id or 0, chair_name=event.chair,
                start=start, end=start + dt.timedelta(hours=2), rrule=event.rrule,
                series_end=start + dt.timedelta(weeks=12 if event.rrule else 0, hours=2), sequence=event.sequence,
                status="cancelled" if event.status == "CANCELLED" else "scheduled",
            )
            session.add(meeting)
            session.flush()
            session.add(MeetingParticipant(meeting_id=meeting.id or 0, unit_id=unit.id, code="ct", name=unit.name, email="ct@x.test"))
    owner = service.Owner("unit", unit=unit)

    def run() -> bytes:
        with db.session() as session:
            found = service.feed_events(session, owner, public_url="https://giaoban.cantho.gov.vn", organizer=ORGANIZER)
            return ics.feed(found, "Giao Ban: Thành phố Cần Thơ", labels=LABELS)

    return run, db.dispose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=45)
    parser.add_argument("--no-database", action="store_true", help="skip the SQLite run")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    feed_events = events(args.meetings, rng)

    def render() -> bytes:
        return ics.feed(feed_events, "Giao Ban: Phường Tân An", labels=LABELS)

    body = render()
    print(f"python {platform.python_version()} on {platform.machine()}; {args.meetings} meetings, "
          f"{len(body) / 1024:.0f} KiB, {body.count(b'BEGIN:VEVENT')} VEVENTs; {args.repeat} runs each")
    print(f"{'scenario':44} {'best ms':>8} {'median ms':>10}")

    def report(label: str, seconds: list[float]) -> None:
        print(f"{label:44} {min(seconds) * 1000:8.1f} {statistics.median(seconds) * 1000:10.1f}")

    report("cold (every event serialised)", timed(render, args.repeat, before=ics.FEED_BLOCKS.clear))
    render()
    report("warm (every event from the cache)", timed(render, args.repeat))
    changes = iter(range(10**9))

    def change_one() -> None:
        feed_events[0] = dataclasses.replace(feed_events[0], title=f"Giao ban — đổi lần {next(changes)}")

    report("warm, one meeting changed", timed(render, args.repeat, before=change_one))
    report("ETag (sha256 of the body)", timed(lambda: hashlib.sha256(body).hexdigest(), args.repeat))
    if not args.no_database:
        with tempfile.TemporaryDirectory(prefix="giaoban-bench-") as folder:
            run, close = database_feed(Path(folder), args.meetings, random.Random(args.seed))
            ics.FEED_BLOCKS.clear()
            report("SQLite: query + map + render, cold", timed(run, 1))
            report("SQLite: query + map + render, warm", timed(run, args.repeat))
            close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
