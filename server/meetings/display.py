"""What the meeting pages show, worked out before the templates see it: local dates and times,
labels, rows of occurrences and of conflicts, and the addresses of an occurrence's pages.

Pure: plain values and models in, frozen rows out. Templates only print these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from server.clock import LOCAL, clock_text, date_text, time_range, weekday_name
from server.edge import occurrence_path
from server.i18n import N_, Text
from server.meetings.conflicts import Conflict as PlanConflict
from server.meetings.service import Occurrence

KIND_LABELS: dict[str, Text] = {"regular": N_("Regular meeting"), "ad_hoc": N_("Ad hoc meeting")}
RESPONSES = ("accepted", "tentative", "delegated", "declined", "needs_action")
RESPONSE_LABELS: dict[str, Text] = {
    "needs_action": N_("No answer yet"),
    "accepted": N_("Accepted"),
    "declined": N_("Declined"),
    "tentative": N_("Tentative"),
    "delegated": N_("Delegated"),
}


@dataclass(frozen=True)
class OccurrenceRow:
    meeting_id: int
    url: str  # the meeting's page
    date: str
    iso_date: str
    weekday: Text
    time: str
    title: str
    host: str
    cancelled: bool
    changed: bool
    past: bool
    record_url: str
    page_url: str  # the occurrence's page; "" for those who may not change it


def occurrence_row(o: Occurrence, *, now: dt.datetime, editable: bool = False) -> OccurrenceRow:
    meeting_id = o.meeting.id or 0
    return OccurrenceRow(
        meeting_id=meeting_id, url=f"/meetings/{meeting_id}", date=date_text(o.start),
        iso_date=o.start.astimezone(LOCAL).date().isoformat(), weekday=weekday_name(o.start),
        time=time_range(o.start, o.end), title=o.title, host=o.meeting.host_unit_name,
        cancelled=o.cancelled or o.meeting.status == "cancelled", changed=o.changed, past=o.end <= now,
        record_url=occurrence_path(meeting_id, o.original_start, "record"),
        page_url=occurrence_path(meeting_id, o.original_start) if editable else "",
    )


@dataclass(frozen=True)
class ConflictRow:
    when: str  # the checked occurrence, dd/mm/yyyy HH:MM
    message: Text
    other_url: str  # the other meeting's page, "" when there is none (capacity, notice)


@dataclass(frozen=True)
class Conflicts:
    hard: list[ConflictRow]
    warnings: list[ConflictRow]

    @property
    def any(self) -> bool:
        return bool(self.hard or self.warnings)


def conflict_rows(conflicts: Iterable[PlanConflict]) -> Conflicts:
    hard: list[ConflictRow] = []
    warnings: list[ConflictRow] = []
    for c in conflicts:
        row = ConflictRow(
            when=f"{date_text(c.occurrence)} {clock_text(c.occurrence)}", message=c.message,
            other_url=f"/meetings/{c.other_meeting_id}" if c.other_meeting_id else "",
        )
        (hard if c.severity == "hard" else warnings).append(row)
    return Conflicts(hard, warnings)


NO_CONFLICTS = Conflicts([], [])
