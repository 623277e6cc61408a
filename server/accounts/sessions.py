"""Sessions and tokens that end: a server-side record of every login.

A browser's cookie and an API bearer token each carry a random secret; the ``auth_sessions``
table keeps only its SHA-256, with who, when, from where, and whether and why it ended. Every
request looks its secret up (``identify``): an unknown, revoked, expired or idle one is
anonymous. Logout ends one session; a password reset, a disable and an administrator's "end all
sessions" end every session and token of the person at once (``end_all``, in the same
transaction as the change). The functions here take a SQL session like every service;
``TableSessionStore`` puts them behind ``SessionStore``, the small interface the edge uses, so
that another store (Redis) can take the table's place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlmodel import Session, and_, col, delete, or_, select, update

from server.accounts.models import AuthSession, SessionKind, User
from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict
from server.units import service as units
from server.units.models import Unit

if TYPE_CHECKING:
    from server.db import Database

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_seen_at is written at most this often, not per request
PURGE_BATCH = 500  # rows a purge deletes at most (it runs at each login)
SECRET_BYTES = 32  # 256 bits: guessing one is not a threat worth a rate limit
USER_AGENT_LENGTH = 200
SECRET_MAX_LENGTH = 64  # token_urlsafe(32) is 43 characters; anything longer is not ours


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lives: ``idle`` seconds since it was last used, ``max_age`` since it
    began, whichever comes first — one pair for browsers, one for API tokens."""

    browser_idle: int
    browser_max_age: int
    token_idle: int
    token_max_age: int

    def idle(self, kind: str) -> dt.timedelta:
        return dt.timedelta(seconds=self.token_idle if kind == SessionKind.token else self.browser_idle)

    def max_age(self, kind: str) -> dt.timedelta:
        return dt.timedelta(seconds=self.token_max_age if kind == SessionKind.token else self.browser_max_age)


@dataclass(frozen=True)
class Identity:
    """Who a live session belongs to, and which session it is."""

    user: User
    unit: Unit
    session_id: int


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _alive(row: AuthSession, now: dt.datetime, lifetimes: Lifetimes) -> bool:
    return row.revoked_at is None and row.expires_at > now and now - row.last_seen_at < lifetimes.idle(row.kind)


def _alive_clause(now: dt.datetime, lifetimes: Lifetimes):  # type: ignore[no-untyped-def]
    """Rows neither revoked, past their absolute end, nor idle too long (SQL)."""
    return and_(
        col(AuthSession.revoked_at).is_(None),
        col(AuthSession.expires_at) > now,
        or_(
            and_(AuthSession.kind == SessionKind.browser.value, col(AuthSession.last_seen_at) > now - lifetimes.idle(SessionKind.browser)),
            and_(AuthSession.kind == SessionKind.token.value, col(AuthSession.last_seen_at) > now - lifetimes.idle(SessionKind.token)),
        ),
    )


def start(
    session: Session,
    user: User,
    kind: SessionKind,
    *,
    lifetimes: Lifetimes,
    now: dt.datetime,
    ip: str = "",
    user_agent: str = "",
) -> str:
    """Record a new session of ``user``; returns its secret (the only copy: the caller puts it
    in the cookie or the token). Old dead rows are purged on the way."""
    assert user.id is not None
    purge(session, now=now, lifetimes=lifetimes)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    session.add(
        AuthSession(
            secret_hash=hash_secret(secret),
            user_id=user.id,
            kind=kind.value,
            auth_version=user.auth_version,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetimes.max_age(kind),
            ip=ip[:45],
            user_agent=user_agent[:USER_AGENT_LENGTH],
        )
    )
    return secret


def identify(
    session: Session, secret: str, kind: SessionKind, *, lifetimes: Lifetimes, now: dt.datetime, touch: bool = True
) -> Identity | None:
    """The user behind a live session of ``kind``, or None (unknown, revoked, expired, idle, or
    the person was disabled or reset since). Marks the session used, at most once a minute."""
    if not secret or len(secret) > SECRET_MAX_LENGTH:
        return None
    row = session.exec(select(AuthSession).where(AuthSession.secret_hash == hash_secret(secret))).first()
    if (
        row is None
        or row.id is None
        or row.kind != kind.value
        or not _alive(row, now, lifetimes)
    ):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.auth_version != row.auth_version:
        return None
    if touch and now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return Identity(user, units.by_id(session, user.unit_id), row.id)


def active(session: Session, user_id: int, *, lifetimes: Lifetimes, now: dt.datetime) -> list[AuthSession]:
    """The person's live sessions and tokens, the most recently used first."""
    query = select(AuthSession).where(AuthSession.user_id == user_id, _alive_clause(now, lifetimes))
    return list(session.exec(query.order_by(col(AuthSession.last_seen_at).desc(), col(AuthSession.id).desc())).all())


def end(
    session: Session,
    session_id: int,
    *,
    user: User,
    reason: str,
    now: dt.datetime,
    lifetimes: Lifetimes,
    ip: str = "",
    audit_action: str = "",
) -> bool:
    """End one live session of ``user``; False when it is not theirs or already over."""
    row = session.get(AuthSession, session_id)
    if row is None or row.user_id != user.id or not _alive(row, now, lifetimes):
        return False
    row.revoked_at = now
    row.revoked_reason = reason[:20]
    session.add(row)
    if audit_action:
        audit.record(session, audit_action, actor=user, target=user.username, ip=ip, session_id=session_id, kind=row.kind)
    return True


def end_all(session: Session, user_id: int, *, reason: str, now: dt.datetime, keep: int | None = None) -> int:
    """End every session and token of the person (but ``keep``); returns how many ended. The
    caller audits: this runs inside a reset, a disable, or a person's own request."""
    query = update(AuthSession).where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
    if keep is not None:
        query = query.where(col(AuthSession.id) != keep)
    result = session.exec(query.values(revoked_at=now, revoked_reason=reason[:20]))
    return int(result.rowcount or 0)


def purge(session: Session, *, now: dt.datetime, lifetimes: Lifetimes, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` dead rows (revoked, expired or idle): bounded work per call."""
    dead = or_(
        col(AuthSession.revoked_at).is_not(None),
        col(AuthSession.expires_at) <= now,
        and_(AuthSession.kind == SessionKind.browser.value, col(AuthSession.last_seen_at) <= now - lifetimes.idle(SessionKind.browser)),
        and_(AuthSession.kind == SessionKind.token.value, col(AuthSession.last_seen_at) <= now - lifetimes.idle(SessionKind.token)),
    )
    ids = list(session.exec(select(AuthSession.id).where(dead).limit(limit)).all())
    if ids:
        session.exec(delete(AuthSession).where(col(AuthSession.id).in_(ids)))
    return len(ids)


class SessionStore(Protocol):
    """Where sessions are kept, as the edge (middleware, login, logout, the sessions pages and
    API) sees it. ``TableSessionStore`` is the database's; a Redis store would implement the
    same five calls (and rely on ``auth_version`` for ends written inside a SQL transaction)."""

    async def start(self, user: User, kind: SessionKind, *, ip: str, user_agent: str) -> str: ...

    async def identify(self, secret: str, kind: SessionKind) -> Identity | None: ...

    async def active(self, user: User) -> list[AuthSession]: ...

    async def end(self, session_id: int, *, user: User, reason: str, ip: str = "", audit_action: str = "") -> bool: ...

    async def end_all(self, user: User, *, reason: str, actor: User, ip: str = "", keep: int | None = None) -> int: ...


class TableSessionStore:
    """Sessions in the ``auth_sessions`` table. ``clock`` is the one source of "now" (tests pass
    their own to step past an idle timeout or a lifetime without sleeping)."""

    def __init__(self, db: Database, lifetimes: Lifetimes, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.lifetimes = lifetimes
        self.clock = clock

    async def start(self, user: User, kind: SessionKind, *, ip: str, user_agent: str) -> str:
        return await self.db.run(start, user, kind, lifetimes=self.lifetimes, now=self.clock(), ip=ip, user_agent=user_agent)

    async def identify(self, secret: str, kind: SessionKind) -> Identity | None:
        now = self.clock()
        try:
            return await self.db.run(identify, secret, kind, lifetimes=self.lifetimes, now=now)
        except Conflict:  # SQLite busy past its timeout: the touch can wait a minute, the request cannot
            return await self.db.run(identify, secret, kind, lifetimes=self.lifetimes, now=now, touch=False)

    async def active(self, user: User) -> list[AuthSession]:
        assert user.id is not None
        return await self.db.run(active, user.id, lifetimes=self.lifetimes, now=self.clock())

    async def end(self, session_id: int, *, user: User, reason: str, ip: str = "", audit_action: str = "") -> bool:
        return await self.db.run(
            end, session_id, user=user, reason=reason, now=self.clock(), lifetimes=self.lifetimes, ip=ip, audit_action=audit_action
        )

    async def end_all(self, user: User, *, reason: str, actor: User, ip: str = "", keep: int | None = None) -> int:
        return await self.db.run(_end_all_audited, user, reason=reason, actor=actor, ip=ip, keep=keep, now=self.clock())


def _end_all_audited(
    session: Session, user: User, *, reason: str, actor: User, ip: str, keep: int | None, now: dt.datetime
) -> int:
    assert user.id is not None
    count = end_all(session, user.id, reason=reason, now=now, keep=keep)
    audit.record(session, "sessions_ended", actor=actor, target=user.username, ip=ip, count=count, reason=reason)
    return count
