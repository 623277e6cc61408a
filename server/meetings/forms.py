"""The meeting form of the pages, both ways: what a secretary types (a local date and 24-hour
times, a simple "repeat" choice, participants by checkbox, by level row or by typed code) and
the whole plan the service takes (:class:`~server.meetings.service.MeetingInput`).

Pure: no database and no web framework. What cannot be read (a date, a time, a repeat count)
becomes a field error here; the service names every other bad field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.clock import LOCAL, YEARS, clock_text
from server.edge import whole_number
from server.i18n import N_, Text
from server.meetings.participants import Choice, LevelChoice
from server.meetings.service import MeetingInput

REPEATS = ("none", "daily", "weekdays", "weekly", "monthly", "custom")
REPEAT_LABELS: dict[str, Text] = {
    "none": N_("Does not repeat"),
    "daily": N_("Every day"),
    "weekdays": N_("Every working day (Monday to Friday)"),
    "weekly": N_("Every week, on the same weekday"),
    "monthly": N_("Every month, on the same day"),
    "custom": N_("Advanced: a recurrence rule (RRULE)"),
}
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKING_DAYS = "MO,TU,WE,TH,FR"
DEFAULT_COUNT = "10"
LEVEL_ROWS_MIN = 3  # empty rows offered, so more levels need no script
LEVEL_ROWS_MAX = 50
QUICK_SEPARATOR = "|"  # never in a unit code (see units.csvimport.CODE_RE)
_TIME = re.compile(r"^(\d{1,2})(?:[:hH.](\d{2}))?(?::(\d{2}))?$")
_LIST_SPLIT = re.compile(r"[\s,;]+")
# Which service errors a form error makes meaningless (they were computed on stand-in values).
_MASKED_BY = {"date": ("start", "end", "recurrence"), "start": ("start", "end", "recurrence"), "end": ("end",)}


class FormValues(Protocol):
    """What a posted form offers (Starlette's ``FormData``, or a ``MultiDict`` in tests)."""

    def get(self, key: str, /) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


# --- dates and times ----------------------------------------------------------------------


def parse_date(text: str) -> dt.date | None:
    """``yyyy-mm-dd`` (what a date input sends) or ``dd/mm/yyyy`` (typed where it is plain text)."""
    text = text.strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            day = dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        return day if day.year in YEARS else None  # 9999-12-31: no week, no time zone after it
    return None


def parse_clock(text: str) -> dt.time | None:
    """24-hour ``HH:MM`` (a time input), also ``8:30``, ``8h30`` and ``08:30:00``."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def local(day: dt.date, clock: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=LOCAL)


def local_date_iso(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL).date().isoformat()


def local_clock(moment: dt.datetime) -> str:
    return clock_text(moment)


def split_list(text: str) -> list[str]:
    """Codes or usernames typed one a line, or separated by commas, semicolons or spaces."""
    return [item for item in _LIST_SPLIT.split(text) if item]


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


# --- the repeat choice --------------------------------------------------------------------


class FormError(ValueError):
    """A field that cannot be read; ``message`` says why."""

    def __init__(self, message: Text) -> None:
        super().__init__(str(message))
        self.message = message


def build_rule(repeat: str, day: dt.date, ends: str, count: str, until: str, custom: str) -> str:
    """The RRULE of a simple choice ("" for none); :class:`FormError` when it cannot be built."""
    if repeat == "none":
        return ""
    if repeat == "custom":
        if not custom.strip():
            raise FormError(N_("Write the rule, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10."))
        return custom.strip()
    parts = {
        "daily": "FREQ=DAILY",
        "weekdays": f"FREQ=WEEKLY;BYDAY={WORKING_DAYS}",
        "weekly": f"FREQ=WEEKLY;BYDAY={WEEKDAY_CODES[day.weekday()]}",
        "monthly": f"FREQ=MONTHLY;BYMONTHDAY={day.day}",
    }
    if repeat not in parts:
        raise FormError(N_("Choose how the meeting repeats."))
    if ends == "until":
        last = parse_date(until)
        if last is None:
            raise FormError(N_("Give the last date as dd/mm/yyyy."))
        return f"{parts[repeat]};UNTIL={last.strftime('%Y%m%d')}"
    times = whole_number(count.strip())
    if not times:
        raise FormError(N_("Give the number of times as a whole number."))
    return f"{parts[repeat]};COUNT={times}"


def _rule_parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        name, _, value = item.partition("=")
        parts[name.strip().upper()] = value.strip().upper()
    return parts


@dataclass(frozen=True)
class Repeat:
    """The form's repeat fields."""

    repeat: str = "none"
    repeat_end: str = "count"
    repeat_count: str = DEFAULT_COUNT
    repeat_until: str = ""
    rrule: str = ""


def simple_repeat(rule: str, start: dt.datetime) -> Repeat:
    """The form's repeat fields for a stored rule: a simple choice when the rule is one the
    form builds (so saving unchanged keeps the very same rule), the rule as text otherwise."""
    if not rule:
        return Repeat()
    custom = Repeat(repeat="custom", rrule=rule)
    parts = _rule_parts(rule)
    day = start.astimezone(LOCAL).date()
    by = {k: v for k, v in parts.items() if k not in ("FREQ", "COUNT", "UNTIL")}
    shapes: dict[str, tuple[str, dict[str, str]]] = {
        "daily": ("DAILY", {}),
        "weekdays": ("WEEKLY", {"BYDAY": WORKING_DAYS}),
        "weekly": ("WEEKLY", {"BYDAY": WEEKDAY_CODES[day.weekday()]}),
        "monthly": ("MONTHLY", {"BYMONTHDAY": str(day.day)}),
    }
    repeat = next((name for name, (freq, extra) in shapes.items() if parts.get("FREQ") == freq and by == extra), "")
    if not repeat:
        return custom
    if "COUNT" in parts:
        return Repeat(repeat=repeat, repeat_count=parts["COUNT"])
    try:
        until = dt.datetime.strptime(parts.get("UNTIL", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).astimezone(LOCAL)
    except ValueError:
        return custom
    # The form's "until a date" means the end of that local day; any other UNTIL (a series cut
    # before one occurrence) is kept exactly, as a rule.
    if until.time() != dt.time(23, 59, 59):
        return custom
    return Repeat(repeat=repeat, repeat_end="until", repeat_until=until.date().isoformat())


# --- the whole form -----------------------------------------------------------------------


@dataclass(frozen=True)
class LevelRow:
    under: str = ""
    level: str = ""


@dataclass(frozen=True)
class PlanForm:
    """Everything the form shows, exactly as typed (re-rendered as is after an error)."""

    title: str = ""
    kind: str = "regular"
    host_unit: str = ""
    chair: str = ""
    date: str = ""
    start_time: str = "08:00"
    end_time: str = "10:00"
    repeat: str = "none"
    repeat_end: str = "count"
    repeat_count: str = DEFAULT_COUNT
    repeat_until: str = ""
    rrule: str = ""
    agenda: str = ""
    description: str = ""
    units: tuple[str, ...] = ()  # ticked unit checkboxes
    units_text: str = ""  # other unit codes, typed
    quick_levels: tuple[str, ...] = ()  # ticked "under|level" checkboxes
    level_rows: tuple[LevelRow, ...] = ()
    users: str = ""
    version: int | None = None
    confirm: bool = False

    @classmethod
    def from_form(cls, form: FormValues) -> PlanForm:
        def text(name: str, limit: int = 20000) -> str:
            value = form.get(name)
            return value[:limit] if isinstance(value, str) else ""

        rows = []
        for index in range(LEVEL_ROWS_MAX):
            row = LevelRow(text(f"level-{index}-under", 100).strip(), text(f"level-{index}-level", 50).strip())
            if row.under or row.level:
                rows.append(row)
        version = text("version", 20).strip()
        return cls(
            title=text("title", 1000), kind=text("kind", 20), host_unit=text("host_unit", 100).strip(),
            chair=text("chair", 100).strip(), date=text("date", 20).strip(), start_time=text("start_time", 20).strip(),
            end_time=text("end_time", 20).strip(), repeat=text("repeat", 20) or "none", repeat_end=text("repeat_end", 10),
            repeat_count=text("repeat_count", 10).strip(), repeat_until=text("repeat_until", 20).strip(),
            rrule=text("rrule", 500), agenda=text("agenda"), description=text("description"),
            units=tuple(_unique(v for v in form.getlist("units") if isinstance(v, str))),
            units_text=text("units_text"),
            quick_levels=tuple(_unique(v for v in form.getlist("quick_levels") if isinstance(v, str))),
            level_rows=tuple(rows), users=text("users"),
            version=whole_number(version), confirm=form.get("confirm") == "1",
        )

    @classmethod
    def from_input(cls, data: MeetingInput, *, checkable: set[str], quick: set[tuple[str, str]], version: int | None = None) -> PlanForm:
        """The form of a stored plan: units that have a checkbox are ticked, the others typed;
        level choices that have a checkbox are ticked, the others are rows."""
        levels = [(lv.under, lv.level) for lv in data.participants.levels]
        repeat = simple_repeat(data.recurrence, data.start)
        return cls(
            title=data.title, kind=data.kind, host_unit=data.host_unit, chair=data.chair,
            date=local_date_iso(data.start), start_time=local_clock(data.start), end_time=local_clock(data.end),
            repeat=repeat.repeat, repeat_end=repeat.repeat_end, repeat_count=repeat.repeat_count,
            repeat_until=repeat.repeat_until, rrule=repeat.rrule,
            agenda="\n".join(data.agenda), description=data.description,
            units=tuple(c for c in data.participants.units if c in checkable),
            units_text="\n".join(c for c in data.participants.units if c not in checkable),
            quick_levels=tuple(f"{u}{QUICK_SEPARATOR}{lv}" for u, lv in levels if (u, lv) in quick),
            level_rows=tuple(LevelRow(u, lv) for u, lv in levels if (u, lv) not in quick),
            users="\n".join(data.participants.users), version=version,
        )

    def rows_to_show(self) -> list[LevelRow]:
        """The typed level rows, then empty ones to add more."""
        return [*self.level_rows, *[LevelRow()] * max(LEVEL_ROWS_MIN - len(self.level_rows), 1)]

    def to_input(self) -> Parsed:
        errors: dict[str, Text] = {}
        day = parse_date(self.date)
        if day is None:
            errors["date"] = N_("Give the date as dd/mm/yyyy.") if self.date else N_("Choose the date.")
        start_clock, end_clock = parse_clock(self.start_time), parse_clock(self.end_time)
        if start_clock is None:
            errors["start"] = N_("Give the time as HH:MM (24-hour).")
        if end_clock is None:
            errors["end"] = N_("Give the time as HH:MM (24-hour).")
        # Stand-ins let the service check every other field in the same answer.
        start = local(day or dt.date.today(), start_clock or dt.time(8))
        end = local(day or dt.date.today(), end_clock or dt.time(9))
        if start_clock is None and end_clock is not None:
            start = end - dt.timedelta(hours=1)
        if end_clock is None:
            end = start + dt.timedelta(hours=1)
        rule = ""
        try:
            rule = build_rule(self.repeat, start.date(), self.repeat_end, self.repeat_count, self.repeat_until, self.rrule)
        except FormError as exc:
            errors["recurrence"] = exc.message
        levels: list[LevelChoice] = []
        for value in self.quick_levels:
            under, _, level = value.partition(QUICK_SEPARATOR)
            levels.append(LevelChoice(under, level))
        for row in self.level_rows:
            if not (row.under and row.level):
                errors["participants.levels"] = N_("Choose both a level and a unit in each row.")
                continue
            levels.append(LevelChoice(row.under, row.level))
        data = MeetingInput(
            title=self.title, start=start, end=end, host_unit=self.host_unit, chair=self.chair, kind=self.kind,
            description=self.description, agenda=tuple(line.strip() for line in self.agenda.splitlines() if line.strip()),
            participants=Choice(
                units=tuple(_unique([*self.units, *(c.lower() for c in split_list(self.units_text))])),
                levels=tuple(_unique(levels)), users=tuple(_unique(split_list(self.users))),
            ),
            recurrence=rule,
        )
        masked = {name for key in errors for name in _MASKED_BY.get(key, ())}
        return Parsed(data, errors, masked)


@dataclass(frozen=True)
class Parsed:
    """The plan read from the form, the fields that could not be read, and the service's
    fields to ignore because they were computed on stand-in values."""

    data: MeetingInput
    errors: dict[str, Text] = field(default_factory=dict)
    masked: set[str] = field(default_factory=set)

    def merge(self, service_errors: dict[str, Text | str]) -> dict[str, Text | str]:
        return {**{k: v for k, v in service_errors.items() if k not in self.masked}, **self.errors}

