"""The outbox service: mail written with the change that caused it, claimed by one sender
only, retried with backoff, dead after a permanent refusal or its last attempt, resent by an
administrator (audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from server.accounts.models import User
from server.audit.models import AuditEntry
from server.db import Database
from server.errors import Conflict, NotFound
from server.mail import outbox
from server.mail.models import OutboxMessage
from server.mail.retry import RetryPolicy
from tests.server.mail.conftest import add_mail, invitation, rows

T0 = dt.datetime(2025, 5, 5, 1, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def test_mail_is_written_in_the_callers_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as session:
        outbox.enqueue(session, kind="invitation", recipient="a@cantho.gov.vn.test", message=invitation("a@cantho.gov.vn.test"))
        raise Boom  # the change that caused the mail failed: no mail either
    assert rows(db) == []

    message = invitation("a@cantho.gov.vn.test")
    with db.session() as session:
        row = outbox.enqueue(session, kind="invitation", recipient="a@cantho.gov.vn.test", message=message, now=T0)
    [stored] = rows(db)
    assert stored.id == row.id and stored.state == "pending" and stored.attempts == 0 and stored.next_attempt_at == T0
    assert stored.message_id == message["Message-ID"] and stored.subject == "Giấy mời: Giao ban tháng 5 số 0"
    assert stored.body.encode("ascii") == message.as_bytes()  # the exact bytes every attempt sends


def test_enqueue_refuses_a_message_for_someone_else(db: Database) -> None:
    with db.session() as session:
        with pytest.raises(ValueError, match="alone"):
            outbox.enqueue(session, kind="invitation", recipient="b@cantho.gov.vn.test", message=invitation("a@cantho.gov.vn.test"))
        with pytest.raises(ValueError, match="kind"):
            outbox.enqueue(session, kind="spam", recipient="a@cantho.gov.vn.test", message=invitation("a@cantho.gov.vn.test"))
        with pytest.raises(ValueError, match="bare address"):
            outbox.enqueue(session, kind="invitation", recipient="A <a@cantho.gov.vn.test>", message=invitation("a@cantho.gov.vn.test"))


def test_a_mail_is_claimed_by_one_sender_only(db: Database) -> None:
    [message_id] = add_mail(db, 1, now=T0)
    with db.session() as first:
        envelope = outbox.claim_next(first, T0 + SECOND)
    assert envelope is not None and envelope.message_id == message_id
    with db.session() as second:
        assert outbox.claim_next(second, T0 + SECOND) is None  # "sending" now: nobody else takes it
        assert envelope.id is not None and not outbox.claim(second, envelope.id, T0 + SECOND)
    with db.session() as session:
        assert outbox.mark_sent(session, envelope.id, T0 + 2 * SECOND, claimed_at=envelope.claimed_at)
    with db.session() as session:
        assert outbox.claim_next(session, T0 + dt.timedelta(days=365)) is None  # sent mail is never claimed again
        assert not outbox.mark_sent(session, envelope.id, T0, claimed_at=envelope.claimed_at)
    [row] = rows(db)
    assert row.state == "sent" and row.attempts == 1 and row.sent_at == T0 + 2 * SECOND


def test_due_mail_comes_oldest_first_and_not_before_its_time(db: Database) -> None:
    add_mail(db, 3, now=T0)
    with db.session() as session:
        first, second, third = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()  # type: ignore[arg-type]
        first.next_attempt_at, second.next_attempt_at, third.next_attempt_at = T0 + 2 * SECOND, T0, T0 + dt.timedelta(hours=1)
        session.add_all([first, second, third])
    with db.session() as session:
        assert [m.id for m in outbox.due(session, T0 + 5 * SECOND)] == [second.id, first.id]
        assert outbox.next_due_at(session) == T0


def test_failures_back_off_exponentially_and_the_last_attempt_kills(db: Database) -> None:
    policy = RetryPolicy(max_attempts=8)
    assert [policy.delay(n).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    add_mail(db, 1, now=T0)
    now = T0
    waits = []
    for attempt in range(1, 9):
        now = now + dt.timedelta(hours=2)
        with db.session() as session:
            envelope = outbox.claim_next(session, now)
            assert envelope is not None
        with db.session() as session:
            state = outbox.mark_failed(session, envelope.id, error="451 4.3.0 try later", permanent=False, now=now,
                                       policy=policy, claimed_at=envelope.claimed_at)
        [row] = rows(db)
        assert row.attempts == attempt and row.last_error == "451 4.3.0 try later"
        if attempt < 8:
            assert state == "pending"
            waits.append((row.next_attempt_at - now).total_seconds())
        else:
            assert state == "dead"
    assert waits == [30, 60, 120, 240, 480, 960, 1920]


def test_a_permanent_refusal_kills_at_once_and_the_error_is_trimmed(db: Database) -> None:
    add_mail(db, 1, now=T0)
    with db.session() as session:
        envelope = outbox.claim_next(session, T0 + SECOND)
        assert envelope is not None
        outbox.mark_failed(session, envelope.id, error="550 5.1.1 no such user\r\n" + "x" * 5000, permanent=True, now=T0)
    [row] = rows(db)
    assert row.state == "dead" and row.attempts == 1
    assert row.last_error.startswith("550 5.1.1 no such user x") and len(row.last_error) == 1000 and "\n" not in row.last_error


def test_an_unreachable_server_postpones_without_counting(db: Database) -> None:
    add_mail(db, 1, now=T0)
    with db.session() as session:
        envelope = outbox.claim_next(session, T0 + SECOND)
        assert envelope is not None
        assert outbox.postpone(session, envelope.id, error="connection refused", until=T0 + dt.timedelta(minutes=5),
                               claimed_at=envelope.claimed_at)
    [row] = rows(db)
    assert (row.state, row.attempts, row.next_attempt_at, row.last_error) == (
        "pending", 0, T0 + dt.timedelta(minutes=5), "connection refused")


def test_a_claim_taken_over_after_a_crash_is_not_marked_by_the_old_sender(db: Database) -> None:
    add_mail(db, 1, now=T0)
    with db.session() as session:
        old = outbox.claim_next(session, T0)
        assert old is not None
    later = T0 + dt.timedelta(minutes=20)
    with db.session() as session:  # the old sender looks dead: its claim is given back …
        assert outbox.release_stale(session, later, dt.timedelta(minutes=10)) == 1
    with db.session() as session:  # … and another sender takes the mail
        new = outbox.claim_next(session, later)
        assert new is not None and new.id == old.id
    with db.session() as session:
        assert not outbox.mark_sent(session, old.id, later, claimed_at=old.claimed_at)
        assert outbox.mark_failed(session, old.id, error="late", permanent=True, now=later, claimed_at=old.claimed_at) == ""
        assert outbox.mark_sent(session, new.id, later, claimed_at=new.claimed_at)
    [row] = rows(db)
    assert row.state == "sent" and row.attempts == 2  # the interrupted try counts


def test_stale_claims_are_released_and_young_ones_kept(db: Database) -> None:
    add_mail(db, 2, now=T0)
    with db.session() as session:
        first = outbox.claim_next(session, T0)
        second = outbox.claim_next(session, T0 + dt.timedelta(minutes=9))
        assert first is not None and second is not None
    with db.session() as session:
        assert outbox.release_stale(session, T0 + dt.timedelta(minutes=11), dt.timedelta(minutes=10), RetryPolicy()) == 1
    states = {row.id: (row.state, row.attempts) for row in rows(db)}
    assert states == {first.id: ("pending", 1), second.id: ("sending", 0)}
    # A mail whose sender keeps dying (it crashes the process?) dies after the last attempt.
    with db.session() as session:
        assert outbox.release_stale(session, T0 + dt.timedelta(hours=1), dt.timedelta(minutes=10), RetryPolicy(max_attempts=1)) == 1
    assert {row.id: row.state for row in rows(db)}[second.id] == "dead"


def admin(db: Database) -> User:
    with db.session() as session:
        user = session.exec(select(User).where(User.username == "admin")).one()
    return user


def test_resend_puts_dead_or_sent_mail_back_and_is_audited(db: Database) -> None:
    add_mail(db, 2, now=T0)
    with db.session() as session:
        dead = outbox.claim_next(session, T0)
        sent = outbox.claim_next(session, T0)
        assert dead is not None and sent is not None
        outbox.mark_failed(session, dead.id, error="550 no such user", permanent=True, now=T0)
        outbox.mark_sent(session, sent.id, T0)
    actor = admin(db)
    for envelope in (dead, sent):
        with db.session() as session:
            outbox.resend(session, envelope.id, actor=actor, ip="10.0.0.1", now=T0 + SECOND)
    for row in rows(db):
        assert (row.state, row.attempts, row.next_attempt_at, row.sent_at, row.last_error) == ("pending", 0, T0 + SECOND, None, "")
    with db.session() as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "mail_resent").order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
        assert [(e.actor, e.target, e.ip) for e in entries] == [
            ("admin", f"outbox:{dead.id}", "10.0.0.1"), ("admin", f"outbox:{sent.id}", "10.0.0.1")]
        assert '"previous_error": "550 no such user"' in entries[0].detail and '"previous_state": "dead"' in entries[0].detail
        # Waiting mail cannot be "resent"; unknown mail is not found.
        with pytest.raises(Conflict):
            outbox.resend(session, dead.id, actor=actor)
        with pytest.raises(NotFound):
            outbox.resend(session, 10_000, actor=actor)


def test_the_list_pages_and_filters_by_state(db: Database) -> None:
    add_mail(db, 5, now=T0)
    with db.session() as session:
        envelope = outbox.claim_next(session, T0 + dt.timedelta(days=1))
        assert envelope is not None
        outbox.mark_failed(session, envelope.id, error="550", permanent=True, now=T0)
    with db.session() as session:
        page, total = outbox.list_messages(session, offset=0, limit=2)
        assert total == 5 and len(page) == 2 and page[0].id > page[1].id  # newest first
        dead, total = outbox.list_messages(session, state="dead")
        assert total == 1 and dead[0].id == envelope.id
        assert outbox.counts(session) == {"pending": 4, "sending": 0, "sent": 0, "dead": 1}
