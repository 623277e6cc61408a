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


class SessionKind(enum.StrEnum):
    """How a login is carried: the browser's cookie or an API bearer token."""

    browser = "browser"
    token = "token"


class AuthSession(SQLModel, table=True):
    """One login that can end: a browser session or an API token.

    The cookie or token carries a random secret; only its SHA-256 is kept here, so a copy of
    this table lets nobody in. A row ends by ``revoked_at`` (logout, password reset, disable,
    "end all sessions"), by ``expires_at`` (the absolute lifetime) or by idleness
    (``last_seen_at``, updated at most once a minute).
    """

    __tablename__ = "auth_sessions"

    id: int | None = Field(default=None, primary_key=True)
    secret_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=10)
    # The user's auth_version when the session began: a bump (reset, disable) ends it even if
    # a store could not mark the row (defence in depth, and what a Redis store would rely on).
    auth_version: int
    created_at: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    ip: str = Field(default="", max_length=45)
    user_agent: str = Field(default="", max_length=200)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str = Field(default="", max_length=20)
