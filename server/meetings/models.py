"""Meetings (one event or a series), who is invited, occurrences that differ from the series.
What each occurrence records (roll-call, minutes) is in ``server.records``.

Names seen at save time (units, people, the host, the chair) are stored with the rows, so a
later rename or merge never rewrites what a past meeting showed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class Meeting(SQLModel, table=True):
    __tablename__ = "meetings"

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=100, unique=True, index=True)  # iCalendar UID, stable for the series
    title: str = Field(max_length=200)
    search_key: str = Field(default="", max_length=400, index=True)  # the title folded (server.text.fold)
    description: str = Field(default="", max_length=5000)
    agenda: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    kind: str = Field(max_length=20)  # regular | ad_hoc
    host_unit_id: int = Field(foreign_key="units.id", index=True)
    host_unit_name: str = Field(max_length=200)
    chair_id: int = Field(foreign_key="users.id", index=True)
    chair_name: str = Field(max_length=200)
    start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)  # first occurrence
    end: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    rrule: str = Field(default="", max_length=500)  # RRULE without DTSTART; empty: one event
    series_end: dt.datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)  # end of the last occurrence
    status: str = Field(default="scheduled", max_length=20)  # scheduled | cancelled
    endpoints: int = Field(default=0)  # invited units + invited people, toward media capacity
    version: int = Field(default=1)  # optimistic locking: a PATCH carries the version it read
    sequence: int = Field(default=0)  # iCalendar SEQUENCE
    previous_id: int | None = Field(default=None, foreign_key="meetings.id")  # "this and following"
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class MeetingSelection(SQLModel, table=True):
    """What the secretary chose (a unit, a level under a unit, a person), to edit it later."""

    __tablename__ = "meeting_selections"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    kind: str = Field(max_length=10)  # unit | level | user
    unit_id: int | None = Field(default=None, foreign_key="units.id")
    level: str = Field(default="", max_length=50)
    user_id: int | None = Field(default=None, foreign_key="users.id")


class MeetingParticipant(SQLModel, table=True):
    """One invited unit (its meeting room, its mailbox) or one invited person, as expanded
    when the meeting was saved, with the answer they gave."""

    __tablename__ = "meeting_participants"
    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "unit_id"),
        sa.UniqueConstraint("meeting_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    code: str = Field(max_length=100)  # unit code or username, as it was
    name: str = Field(max_length=200)  # as it was
    email: str = Field(default="", max_length=254)
    parent_name: str = Field(default="", max_length=200)  # a unit's parent, or a person's unit
    role: str = Field(default="participant", max_length=20)  # chair | participant
    response: str = Field(default="needs_action", max_length=20)  # needs_action|accepted|declined|tentative|delegated
    responded_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    delegated_to: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=500)


class OccurrenceOverride(SQLModel, table=True):
    """An occurrence of a series that was moved, retitled or cancelled (iCalendar RECURRENCE-ID)."""

    __tablename__ = "occurrence_overrides"
    __table_args__ = (sa.UniqueConstraint("meeting_id", "original_start"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    end: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    title: str = Field(default="", max_length=200)  # empty: the series' title
    cancelled: bool = Field(default=False)
    sequence: int = Field(default=0)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
