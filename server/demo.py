"""Demo data: the 2016 Cần Thơ unit map and the demo accounts of DESIGN.md.

Every mailbox is under the reserved ``.test`` domain, so demo mail can never reach anyone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, func, select

from server.accounts import service as accounts
from server.accounts.models import Role, User
from server.accounts.passwords import hash_password
from server.audit import service as audit
from server.clock import LOCAL
from server.units import csvimport
from server.units import service as units
from server.units.models import Unit

DATA_DIR = Path(__file__).resolve().parent / "data"
UNITS_FILE = DATA_DIR / "cantho-units-2016.csv"
if TYPE_CHECKING:
    from server.meetings.service import Notifier

MAIL_DOMAIN = "cantho.gov.vn.test"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    full_name: str
    unit: str
    role: Role
    about: str


PEOPLE = (
    DemoPerson("admin", "Quản trị hệ thống", "ct.so-tttt", Role.admin, "administrator"),
    DemoPerson("thuky", "Nguyễn Thị Thu", "ct", Role.secretary, "secretary of the city office (unit ct)"),
    DemoPerson("lanhdao", "Trần Văn Minh", "ct", Role.official, "city leader who chairs briefings (unit ct)"),
    DemoPerson("thuky.ninhkieu", "Lê Thị Hồng", "ct.ninh-kieu", Role.secretary, "secretary of Quận Ninh Kiều"),
    DemoPerson("canbo.tanan", "Phạm Văn Tâm", "ct.ninh-kieu.tan-an", Role.official, "official of Phường Tân An"),
)


def units_csv_with_mailboxes() -> bytes:
    """The shipped unit map with an ``email`` column: ``{code}@cantho.gov.vn.test``."""
    source = UNITS_FILE.read_text(encoding="utf-8")
    out = io.StringIO()
    reader = csv.DictReader(io.StringIO(source))
    writer = csv.DictWriter(out, [*(reader.fieldnames or []), "email"], lineterminator="\n")
    writer.writeheader()
    for row in reader:
        writer.writerow({**row, "email": f"{row['code']}@{MAIL_DOMAIN}"})
    return out.getvalue().encode("utf-8")


def is_empty(session: Session) -> bool:
    return session.exec(select(func.count()).select_from(Unit)).one() == 0


def load(session: Session, password: str, *, meetings: bool = True, notify: Notifier | None = None) -> bool:
    """Load the demo when the database has no units; returns whether it did. With
    ``meetings``, the city's weekly briefing is scheduled too (tests start without it)."""
    if not is_empty(session):
        return False
    csvimport.import_units(session, units_csv_with_mailboxes(), actor="demo", batch="demo")
    shared_hash = hash_password(password)  # one hash for all: the password is public anyway
    for person in PEOPLE:
        unit = units.by_code(session, person.unit)
        session.add(
            User(
                username=person.username,
                full_name=person.full_name,
                email=f"{person.username}@{MAIL_DOMAIN}",
                unit_id=unit.id or 0,
                role=person.role.value,
                password_hash=shared_hash,
                is_demo=True,
            )
        )
    session.flush()
    accounts.sync_endpoint_accounts(session, password_hash=shared_hash, is_demo=True)
    if meetings:
        schedule_weekly_briefing(session, notify=notify)
        schedule_practice_rooms(session, notify=notify)
    audit.record(session, "demo_loaded", target="cantho-units-2016")
    return True


def schedule_weekly_briefing(session: Session, today: dt.date | None = None, notify: Notifier | None = None) -> None:
    """The city-wide Monday briefing (city, 9 districts, 85 wards, 21 departments), from the
    Monday after next, for twelve weeks, as the city office's secretary would plan it."""
    from server.meetings import service as meetings
    from server.meetings.participants import Choice, LevelChoice

    today = today or dt.date.today()
    monday = today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7)
    start = dt.datetime.combine(monday, dt.time(8, 0), tzinfo=LOCAL)
    levels = tuple(LevelChoice("ct", level) for level in ("district", "ward", "department"))
    plan = meetings.MeetingInput(
        title="Giao ban tuần — UBND thành phố",
        start=start,
        end=start + dt.timedelta(hours=2),
        host_unit="ct",
        chair="lanhdao",
        kind="regular",
        agenda=("Tình hình kinh tế - xã hội tuần qua", "Nhiệm vụ trọng tâm tuần tới", "Ý kiến các đơn vị"),
        participants=Choice(units=("ct",), levels=levels),
        recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=12",
    )
    secretary = accounts.by_username(session, "thuky")
    meetings.create(session, secretary, plan, max_endpoints=10_000, confirm=True, notify=notify)


PRACTICE_TITLE = "Phòng họp dùng thử"


def schedule_practice_rooms(session: Session, today: dt.date | None = None, notify: Notifier | None = None) -> None:
    """Two daily series (07:00–19:00 and 19:00–07:00) whose rooms are open at any hour, so that
    whoever runs the demo can try the meeting room at once, with the demo people and the
    Phường Tân An meeting room invited."""
    from server.meetings import service as meetings
    from server.meetings.participants import Choice

    today = today or dt.date.today()
    secretary = accounts.by_username(session, "thuky")
    for label, hour in (("ban ngày", 7), ("buổi tối", 19)):
        start = dt.datetime.combine(today, dt.time(hour, 0), tzinfo=LOCAL)
        plan = meetings.MeetingInput(
            title=f"{PRACTICE_TITLE} ({label})", start=start, end=start + dt.timedelta(hours=12), host_unit="ct",
            chair="lanhdao", kind="ad_hoc", agenda=("Thử camera, micrô và đường truyền",),
            participants=Choice(units=("ct.ninh-kieu.tan-an",), users=("thuky.ninhkieu", "canbo.tanan")),
            recurrence="FREQ=DAILY;COUNT=365",
        )
        meetings.create(session, secretary, plan, max_endpoints=10_000, confirm=True, notify=notify)


def logins_text(password: str, public_url: str) -> str:
    lines = [f"Giao Ban demo at {public_url}  (password for every demo account: {password})"]
    for person in PEOPLE:
        lines.append(f"  {person.username:<16} {person.about}")
    lines.append("  <unit code>      a unit's meeting-room endpoint, e.g. ct.ninh-kieu.tan-an")
    return "\n".join(lines)
