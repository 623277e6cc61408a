"""Secret links to calendar feeds (``/calendar/{secret}.ics``), one owner each: a person or a unit."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class FeedToken(SQLModel, table=True):
    """A feed link. Only the SHA-256 of its secret is kept: a copy of the database (a backup, a
    support dump) must not let anyone read the calendars it names."""

    __tablename__ = "feed_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)  # sha256 hex of the secret
    owner_kind: str = Field(max_length=10)  # user | unit
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
