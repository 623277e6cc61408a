"""Conflicts of a planned meeting with what the bridge already carries (DESIGN.md, "Government
practice"): a unit or the chair needed in two meetings at once, more endpoints than the media
plane carries, and, as a warning only, a regular meeting announced with less than 3 working
days' notice (QĐ 45/2018/QĐ-TTg).

Pure: plain values in, plain values out; no database and no web framework. The caller turns
every occurrence in the window into a :class:`Slot` and leaves out the meeting being edited.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.clock import date_text, moment_text
from server.i18n import N_, Text
from server.workdays.calendar import WorkingCalendar, local_date

HARD = "hard"
WARNING = "warning"
UNIT_BUSY = "unit_busy"
CHAIR_BUSY = "chair_busy"
CAPACITY = "capacity"
SHORT_NOTICE = "short_notice"
DAY_OFF = "day_off"
NAMED_UNITS = 5  # a message names this many units, then says how many more


@dataclass(frozen=True)
class Slot:
    """One occurrence of a meeting as conflict checking sees it."""

    meeting_id: int | None  # None for the meeting being checked
    title: str
    start: dt.datetime  # aware UTC
    end: dt.datetime
    unit_ids: frozenset[int]  # invited units (each is one endpoint)
    user_ids: frozenset[int]  # invited people, the chair included
    chair_id: int  # a user id; 0 when the plan has no chair yet
    endpoints: int  # units + people that may join

    def __post_init__(self) -> None:
        # Comparing a naive time with an aware one raises deep inside the sweep; fail here,
        # where the caller can see which slot was built wrong.
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"slot {self.title!r}: times must carry their zone")
        if self.end < self.start:
            raise ValueError(f"slot {self.title!r} ends before it starts")


@dataclass(frozen=True)
class Conflict:
    kind: str  # "unit_busy" | "chair_busy" | "capacity" | "short_notice"
    severity: str  # "hard" | "warning"
    message: Text  # English source with {param} placeholders, translated when shown
    occurrence: dt.datetime  # the start (UTC) of the checked occurrence it concerns
    other_meeting_id: int | None = None
    other_title: str = ""
    units: tuple[int, ...] = ()  # unit ids involved (for unit_busy), in the message's order
    endpoints: int = 0  # peak concurrent endpoints (for capacity)
    other_start: dt.datetime | None = None  # start of the other meeting's clashing occurrence
    peak_at: dt.datetime | None = None  # first instant the peak is reached (for capacity)


def _by_start(slot: Slot) -> dt.datetime:
    return slot.start


# --- hard conflicts ---------------------------------------------------------------------------


def find_conflicts(
    candidate: Sequence[Slot],
    existing: Sequence[Slot],
    *,
    max_endpoints: int,
    unit_names: Mapping[int, str],
    user_names: Mapping[int, str],
) -> list[Conflict]:
    """Every hard conflict of every candidate occurrence, in occurrence order.

    Two slots overlap when ``a.start < b.end and b.start < a.end``: a meeting ending at 10:00
    leaves the units free for one starting at 10:00. One sweep over both lists sorted by start
    keeps only the booked slots still running, so a two-year daily series against thousands
    of bookings costs a sort plus the overlaps, never every pair.
    """
    booked = sorted(existing, key=_by_start)
    running: list[tuple[dt.datetime, int, Slot]] = []  # heap by end of booked slots begun so far
    taken = 0
    found: list[Conflict] = []
    for slot in sorted(candidate, key=_by_start):
        while taken < len(booked) and booked[taken].start < slot.end:
            heapq.heappush(running, (booked[taken].end, taken, booked[taken]))
            taken += 1
        # Candidates come in start order, so a booking over before this one starts is over
        # for every later one too and can leave the heap for good.
        while running and running[0][0] <= slot.start:
            heapq.heappop(running)
        # A booking pushed for an earlier, longer candidate may start after this one ends.
        overlapping = sorted((entry[2] for entry in running if entry[2].start < slot.end), key=_by_start)
        if overlapping:
            found.extend(_busy(slot, overlapping, unit_names, user_names))
        over = _over_capacity(slot, overlapping, max_endpoints)
        if over is not None:
            found.append(over)
    return found


def _busy(slot: Slot, overlapping: list[Slot], unit_names: Mapping[int, str], user_names: Mapping[int, str]) -> list[Conflict]:
    """``unit_busy`` and ``chair_busy``: one of each per other meeting, however many of its
    occurrences overlap this one."""
    shared_by: dict[int, tuple[Slot, set[int]]] = {}
    chair_in: dict[int, Slot] = {}
    for other in overlapping:
        key = other.meeting_id if other.meeting_id is not None else -id(other)
        shared = slot.unit_ids & other.unit_ids
        if shared:
            if key in shared_by:
                shared_by[key][1].update(shared)
            else:
                shared_by[key] = (other, set(shared))
        if slot.chair_id > 0 and (other.chair_id == slot.chair_id or slot.chair_id in other.user_ids):
            chair_in.setdefault(key, other)
    found = [_unit_busy(slot, other, units, unit_names) for other, units in shared_by.values()]
    found += [_chair_busy(slot, other, user_names) for other in chair_in.values()]
    return found


def _unit_busy(slot: Slot, other: Slot, shared: set[int], unit_names: Mapping[int, str]) -> Conflict:
    ordered = sorted(shared, key=lambda unit: (unit_names.get(unit, ""), unit))
    names = ", ".join(unit_names.get(unit, f"#{unit}") for unit in ordered[:NAMED_UNITS])
    more = len(ordered) - NAMED_UNITS
    params = {"title": other.title, "time": moment_text(other.start), "units": names}
    message = (
        N_("Already invited to “{title}” at {time}: {units} and {more} more.", more=more, **params)
        if more > 0
        else N_("Already invited to “{title}” at {time}: {units}.", **params)
    )
    return Conflict(
        UNIT_BUSY, HARD, message, slot.start, other.meeting_id, other.title,
        units=tuple(ordered), other_start=other.start,
    )


def _chair_busy(slot: Slot, other: Slot, user_names: Mapping[int, str]) -> Conflict:
    params = {
        "chair": user_names.get(slot.chair_id, f"#{slot.chair_id}"),
        "title": other.title,
        "time": moment_text(other.start),
    }
    message = (
        N_("{chair} already chairs “{title}” at {time}.", **params)
        if other.chair_id == slot.chair_id
        else N_("{chair} is already invited to “{title}” at {time}.", **params)
    )
    return Conflict(CHAIR_BUSY, HARD, message, slot.start, other.meeting_id, other.title, other_start=other.start)


def _over_capacity(slot: Slot, overlapping: list[Slot], max_endpoints: int) -> Conflict | None:
    """The true peak of endpoints connected at once during ``slot``: a sweep over the starts
    and ends of what overlaps it. Two bookings that overlap the slot but not each other never
    add up, so the plain sum of everything overlapping would cry wolf."""
    events: list[tuple[dt.datetime, int, int]] = []
    for other in overlapping:
        # Order key 1 for starts, 0 for ends: at one instant, what ends leaves before what
        # starts joins (touching slots do not overlap).
        events.append((max(other.start, slot.start), 1, other.endpoints))
        if other.end < slot.end:
            events.append((other.end, 0, -other.endpoints))
    events.sort()
    level = peak = slot.endpoints
    peak_at = slot.start
    for when, _, change in events:
        level += change
        if level > peak:
            peak, peak_at = level, when
    if peak <= max_endpoints:
        return None
    message = N_(
        "At {time}, {endpoints} endpoints would be connected at once; the bridge carries at most {max}.",
        time=moment_text(peak_at), endpoints=peak, max=max_endpoints,
    )
    return Conflict(CAPACITY, HARD, message, slot.start, endpoints=peak, peak_at=peak_at)


# --- warnings ---------------------------------------------------------------------------------


def notice_conflicts(
    candidate: Sequence[Slot], *, announced_at: dt.datetime, calendar: WorkingCalendar, days: int = 3
) -> list[Conflict]:
    """``short_notice`` for each occurrence announced with fewer than ``days`` working days
    between the announcement day and the meeting day (both excluded, local dates). The caller
    asks this only of regular meetings; it never blocks saving."""
    announced = local_date(announced_at)
    found: list[Conflict] = []
    for slot in sorted(candidate, key=_by_start):
        if calendar.meets_notice(announced_at, slot.start, days):
            # Notice only grows with the meeting date: every later occurrence meets it too.
            break
        meeting_day = local_date(slot.start)
        message = N_(
            "Only {count} working day(s) of notice before {time}; a regular meeting needs {days}, so the invitation should have gone out by {deadline}.",
            count=calendar.working_days_between(announced, meeting_day),
            time=moment_text(slot.start),
            days=days,
            deadline=date_text(calendar.last_announcement_day(meeting_day, days)),
        )
        found.append(Conflict(SHORT_NOTICE, WARNING, message, slot.start))
    return found


def day_off_conflicts(
    candidate: Sequence[Slot], *, calendar: WorkingCalendar, holiday_names: Mapping[dt.date, str]
) -> list[Conflict]:
    """``day_off`` warnings for occurrences on a weekend or a public holiday (a weekly series
    easily lands on Tết). Like every warning, it never blocks saving."""
    found: list[Conflict] = []
    for slot in sorted(candidate, key=_by_start):
        day = local_date(slot.start)
        if calendar.is_working_day(day):
            continue
        if day in calendar.holidays:
            message = N_("{date} is a public holiday ({name}).", date=date_text(day), name=holiday_names.get(day, ""))
        else:
            message = N_("{date} is a weekend day.", date=date_text(day))
        found.append(Conflict(DAY_OFF, WARNING, message, slot.start))
    return found
