from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """Who did what, when. ``actor`` is the username as it was, kept even if the user goes."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    actor: str = Field(default="", max_length=100)
    action: str = Field(max_length=50, index=True)
    target: str = Field(default="", max_length=200)
    detail: str = Field(default="")
    ip: str = Field(default="", max_length=64)
