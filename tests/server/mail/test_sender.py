"""The sender against a real SMTP server (aiosmtpd on 127.0.0.1): pending mail arrives, an
outage delays it without losing or doubling any, a refused recipient dies alone, two senders
never send one mail twice, a crashed sender's mail is picked up, and close() stops the task."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlmodel import select

from server.db import Database, utcnow
from server.mail.models import OutboxMessage
from server.mail.retry import RetryPolicy
from server.mail.sender import OutboxSender
from server.mail.transport import FileTransport, SmtpTransport, Transport
from server.migrate import upgrade_to_head
from tests.server.mail.conftest import (
    ENVELOPE_FROM,
    REFUSED,
    Recorder,
    SmtpServer,
    add_mail,
    by_state,
    eventually,
    rows,
)
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio

# Milliseconds instead of minutes, so that an outage and its retries fit in a second.
FAST = RetryPolicy(max_attempts=8, base=dt.timedelta(milliseconds=20), cap=dt.timedelta(milliseconds=200))


def sender_for(db: Database, transport: Transport, **options: object) -> OutboxSender:
    values: dict[str, object] = dict(policy=FAST, poll_interval=0.05, unavailable_cap=dt.timedelta(milliseconds=100))
    values.update(options)
    return OutboxSender(db, transport, envelope_from=ENVELOPE_FROM, **values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(*senders: OutboxSender) -> AsyncIterator[None]:
    for sender in senders:
        sender.start()
    try:
        yield
    finally:
        for sender in senders:
            await asyncio.wait_for(sender.close(), 10)
            assert not sender.running


def all_sent(db: Database, count: int) -> bool:
    return by_state(db) == {"sent": count}


async def test_pending_mail_is_delivered(db: Database, smtp_server: SmtpServer, recorder: Recorder) -> None:
    ids = add_mail(db, 3)
    async with running(sender_for(db, SmtpTransport.from_url(smtp_server.url))):
        await eventually(lambda: all_sent(db, 3), what="three mails sent")

    assert recorder.message_ids() == {message_id: 1 for message_id in ids}
    stored = {row.message_id: row for row in rows(db)}
    for received in recorder.received:
        message = received.message
        row = stored[message["Message-ID"]]
        assert received.mail_from == ENVELOPE_FROM and received.rcpt_tos == [row.recipient]
        assert received.data == row.body.encode("ascii")  # what was stored is what went out
        assert message["Subject"].startswith("Giấy mời: Giao ban tháng 5")
        assert message.get_content_type() == "multipart/mixed"
        calendar = list(next(message.iter_parts()).iter_parts())[2]
        assert calendar.get_content_type() == "text/calendar" and calendar.get_param("method") == "REQUEST"
        assert row.attempts == 1 and row.sent_at is not None and row.last_error == ""


async def test_an_outage_delays_mail_and_every_mail_arrives_exactly_once(
    db: Database, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    sender = sender_for(db, SmtpTransport.from_url(smtp_server.url))
    async with running(sender):
        before = add_mail(db, 5)
        sender.wake()
        await eventually(lambda: all_sent(db, 5), what="the first five mails")

        smtp_server.stop()  # the mail server goes down with mail still coming in
        during = add_mail(db, 5)
        sender.wake()
        await eventually(lambda: any("cannot reach" in row.last_error for row in rows(db)), what="a refused connection")
        await asyncio.sleep(0.3)  # several retries while it is down
        waiting = [row for row in rows(db) if row.message_id in during]
        assert all(row.state == "pending" for row in waiting)
        assert any("Connect" in row.last_error or "refused" in row.last_error.lower() for row in waiting)

        smtp_server.start()  # and comes back up
        await eventually(lambda: all_sent(db, 10), what="every mail after the outage")

    assert recorder.message_ids() == {message_id: 1 for message_id in before + during}
    # An outage is not the mail's fault: no attempt was used up by it.
    assert {row.attempts for row in rows(db)} == {1}


async def test_a_refused_recipient_dies_alone_and_a_busy_one_is_retried(
    db: Database, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    recorder.refuse_once["busy@cantho.gov.vn.test"] = "451 4.3.0 Mailbox busy, try again"
    addresses = ["a@cantho.gov.vn.test", REFUSED, "busy@cantho.gov.vn.test", "b@cantho.gov.vn.test"]
    add_mail(db, 4, recipient=lambda n: addresses[n])
    async with running(sender_for(db, SmtpTransport.from_url(smtp_server.url))):
        await eventually(lambda: by_state(db) == {"sent": 3, "dead": 1}, what="three sent, one dead")

    by_recipient = {row.recipient: row for row in rows(db)}
    dead = by_recipient[REFUSED]
    assert dead.state == "dead" and dead.attempts == 1 and "550 5.1.1" in dead.last_error
    assert by_recipient["busy@cantho.gov.vn.test"].attempts == 2  # 451 once, then accepted
    assert sorted(r.rcpt_tos[0] for r in recorder.received) == sorted(a for a in addresses if a != REFUSED)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, db: Database) -> Iterator[Database]:
    """The database two sender processes share: SQLite, and PostgreSQL (row locks)."""
    if request.param == "sqlite":
        yield db
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.new_database(f"outbox_{uuid.uuid4().hex[:12]}")
    upgrade_to_head(url)
    database = Database(url)
    yield database
    database.dispose()


class CountingTransport(SmtpTransport):
    """Counts what this sender handed to the server."""

    sent = 0

    async def send(self, *, sender: str, recipient: str, message_id: str, data: bytes) -> None:
        await super().send(sender=sender, recipient=recipient, message_id=message_id, data=data)
        self.sent += 1


async def test_two_senders_never_send_the_same_mail_twice(
    shared_db: Database, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    ids = add_mail(shared_db, 40)
    transports = [CountingTransport.from_url(smtp_server.url), CountingTransport.from_url(smtp_server.url)]
    first = sender_for(shared_db, transports[0])
    second = sender_for(Database(shared_db.url), transports[1])  # another process's connection pool
    try:
        async with running(first, second):
            await eventually(lambda: all_sent(shared_db, 40), what="forty mails sent", timeout=30)
    finally:
        second.db.dispose()
    assert recorder.message_ids() == {message_id: 1 for message_id in ids}
    counts = [t.sent for t in transports]
    assert sum(counts) == 40 and min(counts) > 0  # both senders did take part


async def test_a_crashed_senders_mail_is_sent_and_sent_mail_never_again(
    db: Database, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    interrupted, done = add_mail(db, 2)
    long_ago = utcnow() - dt.timedelta(hours=1)
    with db.session() as session:
        for row in session.exec(select(OutboxMessage)).all():
            if row.message_id == interrupted:  # a sender died while sending this one
                row.state, row.claimed_at = "sending", long_ago
            else:  # this one went out; its old due time must not bring it back
                row.state, row.sent_at, row.attempts, row.next_attempt_at = "sent", long_ago, 1, long_ago
            session.add(row)

    async with running(sender_for(db, SmtpTransport.from_url(smtp_server.url))):
        await eventually(lambda: all_sent(db, 2), what="the interrupted mail sent")
        await asyncio.sleep(0.2)
    assert recorder.message_ids() == {interrupted: 1}
    assert {row.message_id: row.attempts for row in rows(db)} == {interrupted: 2, done: 1}


async def test_wake_from_a_worker_thread_sends_at_once(db: Database, smtp_server: SmtpServer, recorder: Recorder) -> None:
    sender = sender_for(db, SmtpTransport.from_url(smtp_server.url), poll_interval=30.0)
    async with running(sender):
        await asyncio.sleep(0.1)  # asleep for 30 s now
        started = time.monotonic()
        add_mail(db, 1)
        await asyncio.to_thread(sender.wake)  # as a service running under Database.run would
        await eventually(lambda: all_sent(db, 1), timeout=5, what="the woken sender")
        assert time.monotonic() - started < 5


async def test_close_stops_an_idle_sender_at_once(db: Database, smtp_server: SmtpServer) -> None:
    sender = sender_for(db, SmtpTransport.from_url(smtp_server.url), poll_interval=30.0)
    sender.start()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sender.close()
    assert time.monotonic() - started < 1 and not sender.running
    await sender.close()  # twice is harmless


async def test_close_cancels_a_hanging_delivery_and_the_mail_is_not_lost(
    db: Database, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    recorder.data_delay = 3.0  # the server hangs before answering DATA
    [message_id] = add_mail(db, 1)
    sender = sender_for(db, SmtpTransport.from_url(smtp_server.url))
    sender.start()
    await eventually(lambda: by_state(db) == {"sending": 1}, what="the delivery under way")
    started = time.monotonic()
    await sender.close(grace=0.2)
    assert time.monotonic() - started < 2 and not sender.running
    # Still claimed: a later sender gives it back once the claim is old (it may have arrived).
    [row] = rows(db)
    assert row.state == "sending" and row.claimed_at is not None
    recorder.data_delay = 0.0
    later = sender_for(db, SmtpTransport.from_url(smtp_server.url), claim_timeout=dt.timedelta(milliseconds=100))
    async with running(later):
        await eventually(lambda: all_sent(db, 1), what="the mail sent after the restart")
    assert message_id in recorder.message_ids()


async def test_without_a_server_mail_becomes_files(db: Database, tmp_path: Path) -> None:
    ids = add_mail(db, 2)
    directory = tmp_path / "var" / "outbox"
    async with running(sender_for(db, FileTransport(directory))):
        await eventually(lambda: all_sent(db, 2), what="two files")
    written = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert sorted(written) == sorted(message_id.strip("<>") + ".eml" for message_id in ids)
    for data in written.values():
        assert email.message_from_bytes(data, policy=default_policy)["Message-ID"] in ids
