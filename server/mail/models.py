"""The outbox: every mail the service sends, written in the transaction of the change that
caused it, then delivered (and retried) by :mod:`server.mail.sender`."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.db import UTCDateTime, utcnow

LAST_ERROR_LENGTH = 1000


class OutboxState(StrEnum):
    pending = "pending"  # waiting for its next attempt (next_attempt_at)
    sending = "sending"  # claimed by one sender (claimed_at); no other sender touches it
    sent = "sent"  # the SMTP server accepted it; never sent again unless an administrator resends it
    dead = "dead"  # refused for good, or out of attempts: an administrator may resend it


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    kind: str = Field(max_length=30)  # invitation | update | cancellation | rsvp-confirm | …
    meeting_id: int | None = Field(default=None, foreign_key="meetings.id", ondelete="SET NULL", index=True)
    recipient: str = Field(max_length=320)  # one address: one mail per attendee
    subject: str = Field(max_length=500)  # decoded, for the administrators' page
    # The complete RFC 5322 message (CRLF line ends, ASCII: every part is base64), so that a
    # retry or a resend sends exactly the same bytes with the same Message-ID.
    body: str = Field(sa_type=sa.Text)
    message_id: str = Field(max_length=255, unique=True)
    state: str = Field(default=OutboxState.pending.value, max_length=10)
    attempts: int = Field(default=0)  # tries that reached the server or were cut off mid-way
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    claimed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)  # when it became "sending"
    last_error: str = Field(default="", sa_type=sa.Text)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
