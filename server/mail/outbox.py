"""The outbox service: every state change of an outgoing mail, each one in the caller's session.

A mail is *enqueued* in the transaction of the change that caused it (a meeting scheduled,
moved, cancelled), so it exists exactly when the change does. A sender then *claims* it with
a compare-and-set UPDATE (``pending`` → ``sending``), delivers it, and marks it ``sent`` or
failed. Only ``pending`` mail is ever claimed and ``sent`` mail never goes back to
``pending`` except through :func:`resend`, an administrator's audited decision.

Delivery is at-least-once: a process that dies after the SMTP server accepted a mail but
before it was marked sent leaves it ``sending``; :func:`release_stale` puts it back and it is
sent again, with the same bytes and Message-ID, so that the receiving side can tell.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import parseaddr

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from server.accounts.models import User
from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict, NotFound
from server.i18n import N_
from server.mail.models import LAST_ERROR_LENGTH, OutboxMessage, OutboxState
from server.mail.retry import DEFAULT_POLICY, RetryPolicy

KINDS = ("invitation", "update", "cancellation", "rsvp-confirm")
RESENDABLE = (OutboxState.sent.value, OutboxState.dead.value)


@dataclass(frozen=True)
class Envelope:
    """A claimed mail, detached from the session: what the transport needs to send it."""

    id: int
    recipient: str
    message_id: str
    data: bytes
    claimed_at: dt.datetime  # the claim's token: marks apply only while this claim holds


# --- writing mail ---------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    message: EmailMessage,
    meeting_id: int | None = None,
    now: dt.datetime | None = None,
) -> OutboxMessage:
    """Add ``message`` to the outbox in the caller's transaction; it is due at once.

    The message is stored as the exact bytes that will be sent (every retry sends the same
    ones). It must be addressed to ``recipient`` alone and carry a Message-ID.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    address = parseaddr(recipient)[1]
    if not address or address != recipient.strip():
        raise ValueError(f"one bare address expected, got {recipient!r}")
    to = [a.addr_spec.lower() for header in message.get_all("To", []) for a in getattr(header, "addresses", ())]
    if to != [address.lower()] or message.get_all("Cc") or message.get_all("Bcc"):
        raise ValueError("the message must be addressed to its recipient alone")
    message_id = str(message.get("Message-ID", "")).strip()
    if not message_id:
        raise ValueError("the message has no Message-ID")
    data = message.as_bytes(policy=SMTP)
    try:
        body = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("the message is not 7-bit: encode its parts (base64)") from None
    when = now or utcnow()
    row = OutboxMessage(
        created_at=when, kind=kind, meeting_id=meeting_id, recipient=address, subject=str(message.get("Subject", ""))[:500],
        body=body, message_id=message_id, state=OutboxState.pending.value, attempts=0, next_attempt_at=when,
    )
    session.add(row)
    session.flush()  # the id, and the unique Message-ID checked now rather than at commit
    return row


# --- the sender's side ----------------------------------------------------------------------


def due(session: Session, now: dt.datetime, limit: int = 20) -> list[OutboxMessage]:
    """Pending mail whose time has come, oldest due first (read only: claim before sending)."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.state == OutboxState.pending.value, col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    return list(session.exec(query).all())


def claim(session: Session, outbox_id: int, now: dt.datetime) -> bool:
    """Take one pending mail for this sender: a conditional UPDATE, so that of two senders
    exactly one gets it (PostgreSQL makes the second wait on the row, then re-checks)."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == outbox_id, col(OutboxMessage.state) == OutboxState.pending.value)
        .values(state=OutboxState.sending.value, claimed_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def claim_next(session: Session, now: dt.datetime) -> Envelope | None:
    """Claim the next due mail, or None when nothing is due."""
    for row in due(session, now, limit=10):
        if row.id is not None and claim(session, row.id, now):
            return Envelope(id=row.id, recipient=row.recipient, message_id=row.message_id, data=row.body.encode("ascii"),
                            claimed_at=now)
    return None


def _held(outbox_id: int, claimed_at: dt.datetime | None) -> list[sa.ColumnElement[bool]]:
    """The claim still holds: the mail is ``sending`` and (given the claim's time) by this claim,
    not by another sender that took it over after :func:`release_stale`."""
    conditions = [col(OutboxMessage.id) == outbox_id, col(OutboxMessage.state) == OutboxState.sending.value]
    if claimed_at is not None:
        conditions.append(col(OutboxMessage.claimed_at) == claimed_at)
    return conditions


def mark_sent(session: Session, outbox_id: int, now: dt.datetime, *, claimed_at: dt.datetime | None = None) -> bool:
    """The server accepted it. False if this sender no longer held the claim."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(*_held(outbox_id, claimed_at))
        .values(state=OutboxState.sent.value, sent_at=now, claimed_at=None, last_error="",
                attempts=col(OutboxMessage.attempts) + 1)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    outbox_id: int,
    *,
    error: str,
    permanent: bool,
    now: dt.datetime,
    policy: RetryPolicy = DEFAULT_POLICY,
    claimed_at: dt.datetime | None = None,
) -> str:
    """The server refused it (or the attempt failed in a way that concerns this mail).

    A permanent refusal (5xx) or the last allowed attempt makes it ``dead``; otherwise it
    waits ``policy.delay(attempts)``. Returns the new state ("" if the claim was lost).
    """
    row = session.exec(select(OutboxMessage).where(*_held(outbox_id, claimed_at)).with_for_update()).first()
    if row is None:
        return ""
    row.attempts += 1
    row.last_error = trim_error(error)
    row.claimed_at = None
    if permanent or row.attempts >= policy.max_attempts:
        row.state = OutboxState.dead.value
    else:
        row.state = OutboxState.pending.value
        row.next_attempt_at = now + policy.delay(row.attempts)
    session.add(row)
    return row.state


def postpone(
    session: Session, outbox_id: int, *, error: str, until: dt.datetime, claimed_at: dt.datetime | None = None
) -> bool:
    """Give a claimed mail back untried: the server could not be reached, which says nothing
    about this mail, so the attempt is not counted (an outage must not kill the outbox)."""
    result = session.execute(
        sa.update(OutboxMessage)
        .where(*_held(outbox_id, claimed_at))
        .values(state=OutboxState.pending.value, claimed_at=None, next_attempt_at=until, last_error=trim_error(error))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_stale(session: Session, now: dt.datetime, older_than: dt.timedelta, policy: RetryPolicy = DEFAULT_POLICY) -> int:
    """Mail left ``sending`` longer than ``older_than`` (its sender died mid-way) goes back to
    ``pending``, counted as an attempt, or to ``dead`` when that was the last one allowed."""
    # FOR UPDATE: PostgreSQL re-checks the row after any lock it waited on, so a claim taken
    # meanwhile by another sender is not undone.
    stale = select(OutboxMessage).where(
        OutboxMessage.state == OutboxState.sending.value, col(OutboxMessage.claimed_at) < now - older_than
    ).with_for_update()
    rows = list(session.exec(stale).all())
    for row in rows:
        row.attempts += 1
        row.claimed_at = None
        row.last_error = "interrupted while sending (the sender stopped); it may have been delivered"
        if row.attempts >= policy.max_attempts:
            row.state = OutboxState.dead.value
        else:
            row.state = OutboxState.pending.value
            row.next_attempt_at = now
        session.add(row)
    return len(rows)


def next_due_at(session: Session) -> dt.datetime | None:
    """When the next pending mail falls due (None: nothing pending)."""
    found = session.exec(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.state == OutboxState.pending.value)
    ).one()
    if found is None:
        return None
    # An aggregate comes back without the column's type: naive UTC on SQLite.
    return found.replace(tzinfo=dt.UTC) if found.tzinfo is None else found


def trim_error(error: str) -> str:
    error = " ".join(error.split())
    return error if len(error) <= LAST_ERROR_LENGTH else error[: LAST_ERROR_LENGTH - 1] + "…"


# --- the administrators' side ---------------------------------------------------------------


def get(session: Session, outbox_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFound(N_("This mail is not in the outbox."))
    return row


def resend(session: Session, outbox_id: int, *, actor: User, ip: str = "", now: dt.datetime | None = None) -> OutboxMessage:
    """Put a dead (or sent) mail back in the queue, with a fresh set of attempts; the same
    bytes and Message-ID go out again. Audited."""
    row = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if row is None:
        raise NotFound(N_("This mail is not in the outbox."))
    if row.state not in RESENDABLE:
        raise Conflict(N_("This mail is already waiting to be sent."))
    audit.record(
        session, "mail_resent", actor=actor, target=f"outbox:{row.id}", ip=ip,
        recipient=row.recipient, subject=row.subject, previous_state=row.state, previous_error=row.last_error,
    )
    row.state = OutboxState.pending.value
    row.attempts = 0
    row.next_attempt_at = now or utcnow()
    row.claimed_at = None
    row.sent_at = None
    row.last_error = ""
    session.add(row)
    return row


def list_messages(
    session: Session, *, state: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[OutboxMessage], int]:
    """Newest first, optionally of one state; with the total for paging."""
    query = select(OutboxMessage)
    if state:
        query = query.where(OutboxMessage.state == state)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(OutboxMessage.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def counts(session: Session) -> dict[str, int]:
    """How many mails are in each state (every state present, zero included)."""
    found = dict(session.exec(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
    return {state.value: int(found.get(state.value, 0)) for state in OutboxState}
