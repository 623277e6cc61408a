"""Working days and holidays: the calendar arithmetic, the shipped list of Vietnam's holidays,
and the administrator's changes (each audited; a bad file writes nothing)."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, delete, func, select
from starlette.applications import Starlette

from server.accounts.models import User
from server.audit.models import AuditEntry
from server.csvfile import ImportFailed
from server.db import Database
from server.errors import Conflict, InvalidInput, NotFound
from server.workdays import service
from server.workdays.calendar import WorkingCalendar
from server.workdays.models import Holiday

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
D = dt.date
# Mùng 1 Tết by the Vietnamese lunar calendar (UTC+7, Hồ Ngọc Đức's algorithm). 2030 is the
# year it differs from the Chinese calendar (UTC+8), which has 2030-02-03.
LUNAR_NEW_YEAR = {2026: D(2026, 2, 17), 2027: D(2027, 2, 6), 2028: D(2028, 1, 26), 2029: D(2029, 2, 13), 2030: D(2030, 2, 2)}
HUNG_KINGS = {2026: D(2026, 4, 26), 2027: D(2027, 4, 16), 2028: D(2028, 4, 4), 2029: D(2029, 4, 23), 2030: D(2030, 4, 12)}


@pytest.fixture
def db(app: Starlette) -> Database:
    database: Database = app.state.giaoban.db
    with database.session() as session:  # the demo database comes seeded; these tests start empty
        session.exec(delete(Holiday))  # type: ignore[call-overload]
    return database


@pytest.fixture
def admin(db: Database) -> User:
    with db.session() as session:
        user = session.exec(select(User).where(User.username == "admin")).one()
    return user


def local(year: int, month: int, day: int, hour: int = 8, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=LOCAL).astimezone(dt.UTC)


def audit_actions(session: Session) -> list[str]:
    return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all())


def shipped() -> list[service.HolidayLine]:
    return service.read_file(service.DATA_FILE.read_bytes())


def tet_calendar() -> WorkingCalendar:
    return WorkingCalendar(line.day for line in shipped())


# --- the arithmetic ---------------------------------------------------------------------------


def test_announced_monday_a_friday_meeting_has_three_working_days_and_a_thursday_one_two() -> None:
    calendar = WorkingCalendar()
    monday = D(2026, 3, 2)
    assert calendar.working_days_between(monday, D(2026, 3, 6)) == 3  # Tue, Wed, Thu
    assert calendar.working_days_between(monday, D(2026, 3, 5)) == 2
    assert calendar.meets_notice(local(2026, 3, 2, 9), local(2026, 3, 6, 8))
    assert not calendar.meets_notice(local(2026, 3, 2, 9), local(2026, 3, 5, 8))


def test_weekends_do_not_count() -> None:
    calendar = WorkingCalendar()
    assert calendar.working_days_between(D(2026, 3, 5), D(2026, 3, 11)) == 3  # Thu → Wed: Fri, Mon, Tue
    assert calendar.working_days_between(D(2026, 3, 6), D(2026, 3, 11)) == 2  # Fri → Wed: Mon, Tue
    assert calendar.working_days_between(D(2026, 3, 6), D(2026, 3, 9)) == 0  # Fri → Mon
    assert calendar.working_days_between(D(2026, 3, 6), D(2026, 3, 6)) == 0
    assert calendar.working_days_between(D(2026, 3, 9), D(2026, 3, 2)) == 0  # a meeting in the past
    assert not calendar.is_working_day(D(2026, 3, 7)) and calendar.is_working_day(D(2026, 3, 9))


def test_tet_2026_leaves_one_working_day_between_the_friday_before_and_the_tuesday_after() -> None:
    calendar = tet_calendar()
    # 14-15/2 weekend, 16-20/2 Tết, 21-22/2 weekend: only Monday 23/2 counts.
    assert calendar.working_days_between(D(2026, 2, 13), D(2026, 2, 24)) == 1
    assert not calendar.meets_notice(local(2026, 2, 13, 9), local(2026, 2, 24, 8))
    # The latest day to announce a meeting on Tuesday 24/2: Mon 23, Fri 13 and Thu 12 count.
    assert calendar.last_announcement_day(D(2026, 2, 24)) == D(2026, 2, 11)
    assert calendar.working_days_between(D(2026, 2, 11), D(2026, 2, 24)) == 3
    assert calendar.working_days_between(D(2026, 2, 12), D(2026, 2, 24)) == 2


def test_a_holiday_on_a_weekend_changes_nothing_but_its_day_off_in_lieu_does() -> None:
    calendar = tet_calendar()
    # Giỗ Tổ 2026 is Sunday 26/4; Monday 27/4 is off in lieu; 30/4 and 1/5 are Thu and Fri.
    assert calendar.working_days_between(D(2026, 4, 24), D(2026, 5, 4)) == 2  # Tue 28, Wed 29


def test_notice_is_counted_in_local_dates_not_utc() -> None:
    calendar = WorkingCalendar()
    # 17:30 UTC on Monday is 00:30 on Tuesday in Cần Thơ: the announcement day is Tuesday.
    late_monday_utc = dt.datetime(2026, 3, 2, 17, 30, tzinfo=dt.UTC)
    assert not calendar.meets_notice(late_monday_utc, local(2026, 3, 6, 8))
    assert calendar.meets_notice(dt.datetime(2026, 3, 2, 16, 30, tzinfo=dt.UTC), local(2026, 3, 6, 8))
    with pytest.raises(ValueError):
        calendar.meets_notice(dt.datetime(2026, 3, 2, 9), local(2026, 3, 6))


def test_the_counting_formula_agrees_with_walking_the_days() -> None:
    calendar = tet_calendar()
    rng = random.Random(45)
    for _ in range(500):
        start = D(2025, 12, 1) + dt.timedelta(days=rng.randrange(0, 1900))
        stop = start + dt.timedelta(days=rng.randrange(-3, 120))
        walked = sum(
            1 for i in range(1, (stop - start).days) if calendar.is_working_day(start + dt.timedelta(days=i))
        )
        assert calendar.working_days_between(start, stop) == walked, (start, stop)


def test_the_last_announcement_day_meets_the_notice_and_the_next_day_does_not() -> None:
    calendar = tet_calendar()
    for meeting in (D(2026, 3, 6), D(2026, 2, 24), D(2027, 2, 11), D(2030, 2, 7), D(2026, 9, 3)):
        deadline = calendar.last_announcement_day(meeting)
        assert calendar.working_days_between(deadline, meeting) >= 3
        assert calendar.working_days_between(deadline + dt.timedelta(days=1), meeting) < 3


# --- the shipped list -------------------------------------------------------------------------


def test_the_shipped_file_loads_and_is_nfc() -> None:
    lines = shipped()
    assert {line.day.year for line in lines} == {2026, 2027, 2028, 2029, 2030}
    for line in lines:
        assert unicodedata.is_normalized("NFC", line.name), line.name


@pytest.mark.parametrize("year", sorted(LUNAR_NEW_YEAR))
def test_every_year_has_five_days_of_tet_around_the_vietnamese_lunar_new_year(year: int) -> None:
    lines = [line for line in shipped() if line.day.year == year]
    by_day = {line.day: line for line in lines}
    new_year = LUNAR_NEW_YEAR[year]
    assert by_day[new_year].name == "Tết Nguyên đán (mùng 1 tháng Giêng)"
    legal_tet = sorted(line.day for line in lines if line.name.startswith("Tết Nguyên đán") and not line.observed)
    assert len(legal_tet) == 5
    assert (legal_tet[-1] - legal_tet[0]).days == 4 and legal_tet[0] < new_year <= legal_tet[-1]
    assert legal_tet[0] >= new_year - dt.timedelta(days=2)  # one or two days of the old year


@pytest.mark.parametrize("year", sorted(LUNAR_NEW_YEAR))
def test_every_year_has_the_other_legal_holidays_and_a_day_in_lieu_for_each_on_a_weekend(year: int) -> None:
    lines = [line for line in shipped() if line.day.year == year]
    days = {line.day for line in lines}
    assert {D(year, 1, 1), HUNG_KINGS[year], D(year, 4, 30), D(year, 5, 1), D(year, 9, 2)} <= days
    assert D(year, 9, 1) in days or D(year, 9, 3) in days
    on_weekend = [line for line in lines if not line.observed and line.day.weekday() >= 5]
    in_lieu = [line for line in lines if "(nghỉ bù)" in line.name]
    assert len(in_lieu) == len(on_weekend)
    assert all(line.observed and line.day.weekday() < 5 for line in in_lieu)


def test_2026_follows_the_governments_decisions() -> None:
    days = {line.day for line in shipped()}
    assert {D(2026, 1, 2), D(2026, 4, 27), D(2026, 8, 31), D(2026, 9, 1)} <= days
    assert all(D(2026, 2, d) in days for d in range(16, 21))


# --- changes ----------------------------------------------------------------------------------


def test_seeding_fills_an_empty_table_once_and_is_audited(db: Database) -> None:
    with db.session() as session:
        assert service.seed_if_empty(session) == len(shipped())
    with db.session() as session:
        assert service.seed_if_empty(session) == 0
        assert audit_actions(session).count("holidays_seeded") == 2  # once by the demo database, once here
        assert service.years(session) == [2026, 2027, 2028, 2029, 2030]
        assert not service.calendar(session).is_working_day(D(2030, 2, 4))
        assert [h.day for h in service.list_holidays(session, 2029)][:2] == [D(2029, 1, 1), D(2029, 2, 12)]


def test_seeding_leaves_an_administrators_list_alone(db: Database, admin: User) -> None:
    with db.session() as session:
        service.add(session, D(2031, 1, 1), "Tết Dương lịch", actor=admin)
    with db.session() as session:
        assert service.seed_if_empty(session) == 0
        assert service.years(session) == [2031]


def test_add_and_remove_a_day_are_audited(db: Database, admin: User) -> None:
    with db.session() as session:
        holiday = service.add(session, D(2026, 11, 24), "  Ngày Văn hóa Việt Nam ", actor=admin, ip="10.0.0.1")
        assert holiday.name == "Ngày Văn hóa Việt Nam"
    with db.session() as session:
        assert not service.calendar(session).is_working_day(D(2026, 11, 24))
        service.remove(session, D(2026, 11, 24), actor=admin)
    with db.session() as session:
        assert service.list_holidays(session) == []
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        assert [(e.action, e.target, e.actor) for e in entries[-2:]] == [
            ("holiday_added", "2026-11-24", "admin"), ("holiday_removed", "2026-11-24", "admin"),
        ]


def test_adding_a_day_twice_or_without_a_name_is_refused(db: Database, admin: User) -> None:
    with db.session() as session:
        service.add(session, D(2026, 11, 24), "Ngày Văn hóa Việt Nam", actor=admin)
    with db.session() as session, pytest.raises(Conflict) as twice:
        service.add(session, D(2026, 11, 24), "Khác", actor=admin)
    assert str(twice.value.fields["day"]) == "24/11/2026 is already a holiday: Ngày Văn hóa Việt Nam."
    with db.session() as session, pytest.raises(InvalidInput) as bad:
        service.add(session, D(1999, 1, 1), "   ", actor=admin)
    assert set(bad.value.fields) == {"day", "name"}
    with db.session() as session, pytest.raises(NotFound):
        service.remove(session, D(2026, 12, 25), actor=admin)


def test_an_import_adds_renames_and_with_replace_removes_only_the_files_years(db: Database, admin: User) -> None:
    with db.session() as session:
        service.seed_if_empty(session)
    data = (
        "date,name,observed\n"
        "2027-01-01,Tết Dương lịch,0\n"  # unchanged
        "2027-04-16,Giỗ Tổ Hùng Vương,0\n"  # renamed
        "2027-04-29,Nghỉ hoán đổi,1\n"  # new
    ).encode()
    with db.session() as session:
        merged = service.import_file(session, data, actor=admin, replace_years=False)
    assert (merged.created, merged.updated, merged.removed, merged.unchanged, merged.years) == (1, 1, 0, 1, (2027,))
    with db.session() as session:
        replaced = service.import_file(session, data, actor=admin, replace_years=True)
        assert (replaced.created, replaced.updated, replaced.unchanged) == (0, 0, 3)
        assert replaced.removed == len([line for line in shipped() if line.day.year == 2027]) - 2
    with db.session() as session:
        assert [(h.day, h.observed) for h in service.list_holidays(session, 2027)] == [
            (D(2027, 1, 1), False), (D(2027, 4, 16), False), (D(2027, 4, 29), True),
        ]
        assert len(service.list_holidays(session, 2028)) == len([line for line in shipped() if line.day.year == 2028])
        assert audit_actions(session).count("holidays_imported") == 2


def test_a_bad_file_names_every_bad_line_and_writes_nothing(db: Database, admin: User) -> None:
    data = (
        "# Lịch nghỉ năm 2031\n"
        "# (comments keep their line numbers)\n"
        "date,name\n"
        "2031-01-01,Tết Dương lịch\n"
        "# mid-file comment\n"
        "01/02/2031,Tết Nguyên đán\n"  # line 6: not ISO
        "2031-02-30,Tết Nguyên đán\n"  # line 7: no such day
        "2031-01-01,Trùng\n"  # line 8: twice
        "2031-05-01,\n"  # line 9: no name
        "1890-05-01,Xưa\n"  # line 10: out of range
    ).encode()
    with db.session() as session, pytest.raises(ImportFailed) as failed:
        service.import_file(session, data, actor=admin, replace_years=True)
    assert [(e.line, e.column) for e in failed.value.errors] == [
        (6, "date"), (7, "date"), (8, "date"), (9, "name"), (10, "date"),
    ]
    assert "already on line 4" in str(failed.value.errors[2].message)
    with db.session() as session:
        assert session.exec(select(func.count()).select_from(Holiday)).one() == 0
        assert "holidays_imported" not in audit_actions(session)


def test_a_bad_header_after_comments_is_reported_on_its_own_line(db: Database, admin: User) -> None:
    with db.session() as session, pytest.raises(ImportFailed) as failed:
        service.import_file(session, b"# one\n# two\nday,name\n2031-01-01,X\n", actor=admin, replace_years=False)
    assert [e.line for e in failed.value.errors] == [3]
    with db.session() as session, pytest.raises(ImportFailed) as empty:
        service.import_file(session, b"date,name\n# nothing here\n", actor=admin, replace_years=False)
    assert "no holidays" in str(empty.value.errors[0].message)


def test_imported_names_are_stored_nfc(db: Database, admin: User) -> None:
    decomposed = unicodedata.normalize("NFD", "Giỗ Tổ Hùng Vương")
    with db.session() as session:
        service.import_file(session, f"date,name\n2031-04-02,{decomposed}\n".encode(), actor=admin, replace_years=False)
    with db.session() as session:
        assert service.list_holidays(session, 2031)[0].name == unicodedata.normalize("NFC", decomposed)
