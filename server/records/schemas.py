"""The records API's bodies: the roll-call and the minutes of one occurrence."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RollCallEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str = Field(max_length=100)
    status: str = Field(max_length=50)
    reason: str = Field(default="", max_length=10_000)


class RollCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[RollCallEntryIn] = Field(max_length=5000)


class AttendanceOut(BaseModel):
    unit: str
    name: str
    parent: str
    status: str  # present_in_person | present_online | absent | unknown
    reason: str
    automatic: bool
    updated_at: str | None


class RollCallOut(BaseModel):
    items: list[AttendanceOut]
    total: int


class MinutesIn(BaseModel):
    """The ``version`` read (0 before the first save); fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    version: int
    chair: str | None = Field(default=None, max_length=200_000)
    attendees: str | None = Field(default=None, max_length=200_000)
    proceedings: str | None = Field(default=None, max_length=200_000)
    opinions: str | None = Field(default=None, max_length=200_000)
    conclusions: str | None = Field(default=None, max_length=200_000)


class MinutesOut(BaseModel):
    chair: str
    attendees: str
    proceedings: str
    opinions: str
    conclusions: str
    version: int
    saved: bool
    updated_at: str | None
    updated_by: str
