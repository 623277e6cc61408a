"""What a meeting room keeps about one occurrence: its state (locked, ended, who was removed),
every join and leave, and the chat."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class RoomState(SQLModel, table=True):
    __tablename__ = "room_states"
    __table_args__ = (sa.UniqueConstraint("meeting_id", "original_start"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    locked: bool = Field(default=False)
    ended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_by: str = Field(default="", max_length=200)
    removed: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # person keys that must be admitted to return


class RoomAttendance(SQLModel, table=True):
    """One stay in the room: from a join to the matching leave."""

    __tablename__ = "room_attendance"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    person: str = Field(max_length=40)  # "user:12" or "participant:40"
    user_id: int | None = Field(default=None, foreign_key="users.id")
    name: str = Field(max_length=200)
    kind: str = Field(max_length=10)  # person | room | guest
    role: str = Field(max_length=20)  # chair | host | participant | guest
    unit_code: str = Field(default="", max_length=100)
    unit_name: str = Field(default="", max_length=200)
    joined_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    left_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=20)  # left | removed | ended | dropped | replaced
    rtt_ms: float | None = Field(default=None)
    loss_percent: float | None = Field(default=None)


class RoomChat(SQLModel, table=True):
    __tablename__ = "room_chat"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    original_start: dt.datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    person: str = Field(max_length=40)
    name: str = Field(max_length=200)
    unit_name: str = Field(default="", max_length=200)
    text: str = Field(max_length=2000)
