from __future__ import annotations

import datetime as dt
import enum

from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class Role(enum.StrEnum):
    """What an account may do. ``endpoint`` is a unit's meeting-room account."""

    admin = "admin"
    secretary = "secretary"
    official = "official"
    endpoint = "endpoint"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True, index=True)
    full_name: str = Field(max_length=200)
    email: str = Field(default="", max_length=254)
    unit_id: int = Field(foreign_key="units.id", index=True)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    active: bool = Field(default=True)
    is_demo: bool = Field(default=False)
    # Bumped on password reset and disable: sessions and API tokens carry it, so old ones die.
    auth_version: int = Field(default=1)
    failed_logins: int = Field(default=0)
    locked_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_login_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
