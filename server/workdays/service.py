"""Public holidays: the shipped list, the administrator's changes, and the working calendar
built from them. Every query and state change of holidays lives here."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from server.audit import service as audit
from server.clock import date_text
from server.csvfile import ImportFailed, Row, RowError, read_rows
from server.errors import Conflict, InvalidInput, NotFound
from server.i18n import N_, Text
from server.text import nfc
from server.workdays.calendar import WorkingCalendar
from server.workdays.models import Holiday

__all__ = [
    "DATA_FILE", "HolidayLine", "ImportResult", "WorkingCalendar", "add", "calendar", "import_file",
    "list_holidays", "parse_day", "read_file", "remove", "seed_if_empty", "years",
]

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "holidays-vn.csv"
COLUMNS = ("date", "name")
OPTIONAL = ("observed",)
NAME_MAX = 200
# Far enough either way for any real list, near enough to catch a mistyped century.
FIRST_YEAR, LAST_YEAR = 2000, 2100
ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
DMY_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")
TRUE_WORDS = frozenset({"1", "true", "yes", "x", "có"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "không"})


@dataclass(frozen=True)
class HolidayLine:
    """One checked line of a holiday file."""

    line: int
    day: dt.date
    name: str
    observed: bool


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    removed: int
    unchanged: int
    years: tuple[int, ...]


def parse_day(value: str, *, typed: bool = False) -> dt.date | None:
    """An ISO ``yyyy-mm-dd`` date (files, the browser's date input); with ``typed``, also
    ``dd/mm/yyyy`` as people type it. None when it is neither or no such day exists."""
    value = value.strip()
    match = ISO_DATE.match(value)
    if match:
        year, month, day = (int(g) for g in match.groups())
    elif typed and (match := DMY_DATE.match(value)):
        day, month, year = (int(g) for g in match.groups())
    else:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _year_error(day: dt.date) -> Text | None:
    if FIRST_YEAR <= day.year <= LAST_YEAR:
        return None
    return N_("The year must be between {first} and {last}.", first=FIRST_YEAR, last=LAST_YEAR)


def _name_error(name: str) -> Text | None:
    if not name:
        return N_("Enter the holiday's name.")
    if len(name) > NAME_MAX:
        return N_("The name is too long (at most {max} characters).", max=NAME_MAX)
    return None


# --- reading files ----------------------------------------------------------------------------


def _without_comments(data: bytes) -> tuple[bytes, int]:
    """Blank out ``#`` comment lines and drop those before the header.

    Blanked lines keep their place (the CSV reader skips empty rows), and the number of lines
    dropped from the top is returned, so every error still names the line of the file as the
    administrator sees it in an editor.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data, 0  # read_rows reports it, with its line
    lines = re.split(r"(?<=\n)", text)
    kept = [line[len(line.rstrip("\r\n")):] if line.lstrip().startswith("#") else line for line in lines]
    leading = 0
    while leading < len(kept) - 1 and not kept[leading].strip():
        leading += 1
    return "".join(kept[leading:]).encode("utf-8"), leading


def _rows(data: bytes) -> list[Row]:
    body, shift = _without_comments(data)
    try:
        rows = read_rows(body, COLUMNS, OPTIONAL)
    except ImportFailed as exc:
        if not shift:
            raise
        raise ImportFailed([RowError(e.line + shift, e.column, e.message) for e in exc.errors]) from None
    return [Row(row.line + shift, row.values) for row in rows]


def read_file(data: bytes) -> list[HolidayLine]:
    """Every line of a ``date,name[,observed]`` file, checked; :class:`ImportFailed` naming
    each bad line when any is wrong."""
    errors: list[RowError] = []
    lines: list[HolidayLine] = []
    first_line: dict[dt.date, int] = {}
    for row in _rows(data):
        values = row.values
        day = parse_day(values["date"])
        if day is None:
            errors.append(RowError(row.line, "date", N_("{value} is not a date (write yyyy-mm-dd).", value=values["date"])))
        elif (problem := _year_error(day)) is not None:
            errors.append(RowError(row.line, "date", problem))
        elif day in first_line:
            errors.append(
                RowError(row.line, "date", N_("The date {date} is already on line {first}.", date=date_text(day), first=first_line[day]))
            )
        else:
            first_line[day] = row.line
        if (problem := _name_error(values["name"])) is not None:
            errors.append(RowError(row.line, "name", problem))
        flag = values.get("observed", "").lower()
        if flag not in TRUE_WORDS | FALSE_WORDS:
            errors.append(RowError(row.line, "observed", N_("Write 1 for a day off in lieu, 0 or nothing for the holiday itself.")))
        if day is not None and not errors:
            lines.append(HolidayLine(row.line, day, values["name"], flag in TRUE_WORDS))
    if errors:
        raise ImportFailed(errors)
    if not lines:
        raise ImportFailed([RowError(1, "", N_("The file lists no holidays."))])
    return lines


# --- queries ----------------------------------------------------------------------------------


def list_holidays(session: Session, year: int | None = None) -> list[Holiday]:
    query = select(Holiday)
    if year is not None:
        query = query.where(col(Holiday.day) >= dt.date(year, 1, 1), col(Holiday.day) < dt.date(year + 1, 1, 1))
    return list(session.exec(query.order_by(col(Holiday.day))).all())


def years(session: Session) -> list[int]:
    """The years that have holidays (a few hundred rows at most, so no dialect-specific SQL)."""
    return sorted({day.year for day in session.exec(select(col(Holiday.day))).all()})


def calendar(session: Session) -> WorkingCalendar:
    return WorkingCalendar(session.exec(select(col(Holiday.day))).all())


# --- changes ----------------------------------------------------------------------------------


def seed_if_empty(session: Session) -> int:
    """Load the shipped list into an empty table; an administrator's list is never touched."""
    if session.exec(select(func.count()).select_from(Holiday)).one():
        return 0
    lines = read_file(DATA_FILE.read_bytes())
    for line in lines:
        session.add(Holiday(day=line.day, name=line.name, observed=line.observed))
    audit.record(session, "holidays_seeded", target=DATA_FILE.name, count=len(lines))
    return len(lines)


def add(session: Session, day: dt.date, name: str, *, actor: Any, observed: bool = False, ip: str = "") -> Holiday:
    name = nfc(name)
    fields: dict[str, Text] = {}
    if (problem := _year_error(day)) is not None:
        fields["day"] = problem
    if (problem := _name_error(name)) is not None:
        fields["name"] = problem
    if fields:
        raise InvalidInput(N_("Nothing was changed."), fields=fields)
    existing = session.get(Holiday, day)
    if existing is not None:
        raise Conflict(
            N_("Nothing was changed."),
            fields={"day": N_("{date} is already a holiday: {name}.", date=date_text(day), name=existing.name)},
        )
    holiday = Holiday(day=day, name=name, observed=observed)
    session.add(holiday)
    audit.record(session, "holiday_added", actor=actor, target=day.isoformat(), ip=ip, name=name, observed=observed)
    return holiday


def remove(session: Session, day: dt.date, *, actor: Any, ip: str = "") -> Holiday:
    holiday = session.get(Holiday, day)
    if holiday is None:
        raise NotFound(N_("{date} is not in the list of holidays.", date=date_text(day)))
    session.delete(holiday)
    audit.record(session, "holiday_removed", actor=actor, target=day.isoformat(), ip=ip, name=holiday.name)
    return holiday


def import_file(session: Session, data: bytes, *, actor: Any, replace_years: bool, ip: str = "") -> ImportResult:
    """Add the file's days and rename changed ones; with ``replace_years``, also remove every
    day of the years the file covers that the file leaves out (a year's official notice
    replaces that year's list). Nothing is written when any line is wrong."""
    lines = read_file(data)
    wanted = {line.day: line for line in lines}
    covered = sorted({day.year for day in wanted})
    existing = {
        holiday.day: holiday
        for holiday in session.exec(
            select(Holiday).where(
                col(Holiday.day) >= dt.date(covered[0], 1, 1), col(Holiday.day) < dt.date(covered[-1] + 1, 1, 1)
            )
        ).all()
        if holiday.day.year in covered
    }
    created = updated = unchanged = removed = 0
    for day, line in sorted(wanted.items()):
        holiday = existing.get(day)
        if holiday is None:
            session.add(Holiday(day=day, name=line.name, observed=line.observed))
            created += 1
        elif (holiday.name, holiday.observed) != (line.name, line.observed):
            holiday.name, holiday.observed = line.name, line.observed
            session.add(holiday)
            updated += 1
        else:
            unchanged += 1
    if replace_years:
        for day, holiday in existing.items():
            if day not in wanted:
                session.delete(holiday)
                removed += 1
    result = ImportResult(created, updated, removed, unchanged, tuple(covered))
    audit.record(
        session, "holidays_imported", actor=actor, ip=ip, created=created, updated=updated, removed=removed,
        unchanged=unchanged, years=list(covered), replace_years=replace_years,
    )
    return result
