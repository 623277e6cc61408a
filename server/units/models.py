from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class Unit(SQLModel, table=True):
    """One administrative unit. ``level`` and ``kind`` are whatever the data says.

    A unit's ``code`` names it for good: a reorganisation that gives a new code creates a new
    row and leaves the old one inactive with ``merged_into_id`` set, so every past record keeps
    pointing at the unit as it was.
    """

    __tablename__ = "units"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=100, unique=True, index=True)
    parent_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    level: str = Field(max_length=50, index=True)
    kind: str = Field(max_length=100)
    name: str = Field(max_length=200)
    search_key: str = Field(max_length=400, index=True)
    email: str = Field(default="", max_length=254)
    active: bool = Field(default=True, index=True)
    merged_into_id: int | None = Field(default=None, foreign_key="units.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class UnitChange(SQLModel, table=True):
    """The history of a unit: created, renamed, moved, merged, dissolved, edited."""

    __tablename__ = "unit_changes"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    action: str = Field(max_length=30)
    old_value: str = Field(default="", max_length=400)
    new_value: str = Field(default="", max_length=400)
    actor: str = Field(default="", max_length=100)
    batch: str = Field(default="", max_length=100)

