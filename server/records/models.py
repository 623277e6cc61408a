"""What each occurrence records: the roll-call (điểm danh) of every invited unit and the minutes
(biên bản). The room's own rows (every stay, the chat) are ``server.rooms.models``; this domain
reads them for the online-attendance report and the chat export."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class RollCall(SQLModel, table=True):
    """Điểm danh: one invited unit at one occurrence."""

    __tablename__ = "roll_calls"
    __table_args__ = (sa.UniqueConstraint("meeting_id", "original_start", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    unit_id: int = Field(foreign_key="units.id")
    status: str = Field(default="unknown", max_length=20)  # present_in_person|present_online|absent|unknown
    reason: str = Field(default="", max_length=500)
    automatic: bool = Field(default=False)  # filled from joins and leaves, not by the secretary
    updated_by_id: int | None = Field(default=None, foreign_key="users.id")
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Minutes(SQLModel, table=True):
    """Biên bản of one occurrence."""

    __tablename__ = "minutes"
    __table_args__ = (sa.UniqueConstraint("meeting_id", "original_start"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    chair: str = Field(default="", max_length=200)
    attendees: str = Field(default="", max_length=20000)
    proceedings: str = Field(default="", max_length=50000)
    opinions: str = Field(default="", max_length=50000)
    conclusions: str = Field(default="", max_length=50000)
    version: int = Field(default=1)
    updated_by_id: int | None = Field(default=None, foreign_key="users.id")
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
