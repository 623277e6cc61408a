"""The reply reader against a real IMAP server (Debian's dovecot on 127.0.0.1): an Outlook
"Accept" mail in the service mailbox records the answer and is marked read; a foreign or
non-calendar mail is marked read and changes nothing; a mail the database could not take
stays unread for the next pass. And the IMAP URL setting."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlmodel import Session, func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.app import create_app
from server.audit.models import AuditEntry
from server.db import Database
from server.mail.imap import ReplyReader
from server.mail.models import OutboxMessage
from server.mail.urls import ImapTarget, parse_imap_url
from server.meetings.models import MeetingParticipant
from server.settings import Settings, UnsafeSettings, load_settings
from tests.server.mail.conftest import PEOPLE, WARD
from tests.support.dovecot import MAILBOX_PASSWORD, MAILBOX_USER, DovecotServer
from tests.support.meetings import monday, plan
from tests.support.web import Browser, api_token

pytestmark = pytest.mark.anyio



@pytest.fixture
def session(app: Starlette) -> Iterator[Session]:
    with app.state.giaoban.db.session() as s:
        yield s


def outlook_accept(uid: str, attendee: str = WARD) -> bytes:
    """An "Accept" as Outlook/Exchange mails it: multipart/alternative, a Windows zone, CRLF."""
    day = f"{monday():%Y%m%d}"
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0",
        "BEGIN:VTIMEZONE", "TZID:SE Asia Standard Time",
        "BEGIN:STANDARD", "DTSTART:16010101T000000", "TZOFFSETFROM:+0700", "TZOFFSETTO:+0700", "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        f'ATTENDEE;PARTSTAT=ACCEPTED;CN="Phuong Tan An":mailto:{attendee.upper()}',
        "SUMMARY;LANGUAGE=vi-VN:Đã chấp nhận: Giao ban tuần",
        f"DTSTART;TZID=SE Asia Standard Time:{day}T080000",
        f"DTEND;TZID=SE Asia Standard Time:{day}T100000",
        f"UID:{uid}", "CLASS:PUBLIC", "PRIORITY:5", "DTSTAMP:20261201T010000Z", "SEQUENCE:0",
        "END:VEVENT", "END:VCALENDAR", "",
    ]).encode()
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Phường Tân An <{attendee}>"
    message["To"] = "Giao Ban <giaoban@cantho.gov.vn.test>"
    message["Subject"] = "Đã chấp nhận: Giao ban tuần — UBND thành phố"
    message["Message-ID"] = "<a1b2c3@EXCH01.cantho.gov.vn.test>"
    message.set_content("Đã chấp nhận")
    message.add_alternative(ics, maintype="text", subtype="calendar", params={"method": "REPLY"})
    return message.as_bytes()


def plain_mail() -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"<{WARD}>"
    message["To"] = "giaoban@cantho.gov.vn.test"
    message["Subject"] = "Hỏi về cuộc họp"
    message.set_content("Xin cho hỏi phòng họp ở đâu?")
    return message.as_bytes()


def reader(db: Database, server: DovecotServer) -> ReplyReader:
    return ReplyReader(db, parse_imap_url(server.url), interval=3600, timeout=10)


def answer(session: Session, meeting_id: int, email: str = WARD) -> str:
    session.expire_all()
    row = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting_id,
                                                        func.lower(MeetingParticipant.email) == email)).one()
    return row.response


def snapshot(session: Session) -> tuple[Any, ...]:
    session.expire_all()
    rows = session.exec(select(MeetingParticipant)).all()
    return (tuple((p.id, p.response, p.comment, p.responded_at) for p in rows),
            session.exec(select(func.count()).select_from(AuditEntry)).one(),
            session.exec(select(func.count()).select_from(OutboxMessage)).one())


# --- the URL ----------------------------------------------------------------------------------


def test_imap_urls_are_read_with_encoded_credentials() -> None:
    assert parse_imap_url("imaps://giaoban%40cantho.gov.vn:p%40ss%2Fw@mail.cantho.gov.vn") == ImapTarget(
        "mail.cantho.gov.vn", 993, "giaoban@cantho.gov.vn", "p@ss/w", True)
    assert parse_imap_url("imap://u:p@127.0.0.1:1143") == ImapTarget("127.0.0.1", 1143, "u", "p", False)
    assert parse_imap_url("IMAP://u:p@host").port == 143
    assert "secret" not in repr(parse_imap_url("imaps://u:secret@host"))


@pytest.mark.parametrize(("url", "says"), [
    ("smtp://u:secret@host", "imap:// or imaps://"),
    ("imaps://host:993", "user and a password"),
    ("imaps://u@host", "user and a password"),
    ("imaps://u:secret@:993", "no host"),
    ("imaps://u:secret@host:99999", "not readable"),
    ("imaps://u:secret@host/Archive", "always INBOX"),
])
def test_a_bad_imap_url_is_refused_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_imap_url(url)
    assert says in str(refused.value) and "secret" not in str(refused.value)


def test_the_setting_is_checked_when_read(settings: Settings) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        load_settings(demo=True, database_url=settings.database_url, imap_url="ftp://u:secret@host")
    assert "GIAOBAN_IMAP_URL" in str(refused.value) and "secret" not in str(refused.value)
    assert load_settings(demo=True, database_url=settings.database_url).imap_url.get_secret_value() == ""


# --- against dovecot --------------------------------------------------------------------------


async def test_an_outlook_accept_in_the_mailbox_is_recorded_and_marked_read(
    app: Starlette, session: Session, meeting: dict[str, Any], dovecot: DovecotServer,
) -> None:
    dovecot.deliver(outlook_accept(meeting["uid"]))
    assert dovecot.flags() == [set()]
    outcomes = await reader(app.state.giaoban.db, dovecot).poll_once()
    assert [o.status for o in outcomes] == ["applied"], outcomes
    assert outcomes[0].sender == WARD and "accepted" in outcomes[0].detail
    assert answer(session, meeting["id"]) == "accepted"
    assert dovecot.flags() == [{"\\Seen"}]
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "rsvp_answered")).one()
    assert '"via": "imip"' in entry.detail
    assert await reader(app.state.giaoban.db, dovecot).poll_once() == []  # read once only


async def test_foreign_and_plain_mails_are_marked_read_and_change_nothing(
    app: Starlette, session: Session, meeting: dict[str, Any], dovecot: DovecotServer,
) -> None:
    before = snapshot(session)
    dovecot.deliver(outlook_accept("khong-co@giaoban"))
    dovecot.deliver(plain_mail())
    dovecot.deliver(outlook_accept(meeting["uid"], "la@cantho.gov.vn.test"))
    the_reader = reader(app.state.giaoban.db, dovecot)
    outcomes = await the_reader.poll_once()
    assert [o.status for o in outcomes] == ["refused"] * 3
    assert "no meeting has the UID khong-co@giaoban" in outcomes[0].detail
    assert "no calendar object" in outcomes[1].detail
    assert "is not invited" in outcomes[2].detail
    assert list(the_reader.outcomes) == outcomes
    assert dovecot.flags() == [{"\\Seen"}] * 3
    assert snapshot(session) == before


async def test_a_mail_the_database_could_not_take_stays_unread(
    app: Starlette, session: Session, meeting: dict[str, Any], dovecot: DovecotServer, tmp_path: Any,
) -> None:
    dovecot.deliver(outlook_accept(meeting["uid"]))
    broken = Database(f"sqlite:///{tmp_path}/missing/dir/giaoban.db")  # cannot be opened
    try:
        outcomes = await reader(broken, dovecot).poll_once()
    finally:
        broken.dispose()
    assert [o.status for o in outcomes] == ["deferred"]
    assert dovecot.flags() == [set()]
    assert answer(session, meeting["id"]) == "needs_action"
    # The next pass, with the database back, applies it.
    outcomes = await reader(app.state.giaoban.db, dovecot).poll_once()
    assert [o.status for o in outcomes] == ["applied"]
    assert dovecot.flags() == [{"\\Seen"}]
    assert answer(session, meeting["id"]) == "accepted"


async def test_a_batch_is_bounded(app: Starlette, dovecot: DovecotServer) -> None:
    for _ in range(3):
        dovecot.deliver(plain_mail())
    the_reader = ReplyReader(app.state.giaoban.db, parse_imap_url(dovecot.url), batch=2, timeout=10)
    assert len(await the_reader.poll_once()) == 2
    assert sorted(len(f) for f in dovecot.flags()) == [0, 1, 1]
    assert len(await the_reader.poll_once()) == 1


async def test_a_wrong_password_is_an_error_of_the_pass(app: Starlette, dovecot: DovecotServer) -> None:
    target = ImapTarget(dovecot.host, dovecot.port, MAILBOX_USER, MAILBOX_PASSWORD + "x", False)
    with pytest.raises(Exception) as failed:
        await ReplyReader(app.state.giaoban.db, target, timeout=10).poll_once()
    assert MAILBOX_PASSWORD not in str(failed.value)


def test_the_app_reads_the_mailbox_when_configured(settings: Settings, dovecot: DovecotServer) -> None:
    configured = settings.model_copy(update={"imap_url": load_settings(
        demo=True, database_url=settings.database_url, imap_url=dovecot.url).imap_url, "imap_interval": 1})
    app = create_app(configured)
    try:
        with Browser(app, raise_server_exceptions=False) as browser:
            created = browser.post("/api/meetings", json=plan(participants=PEOPLE), headers=api_token(browser, "thuky"))
            assert created.status_code == 201, created.text
            meeting = created.json()
            the_reader = app.state.giaoban.reply_reader
            assert the_reader is not None and the_reader.running
            dovecot.deliver(outlook_accept(meeting["uid"]))
            deadline = dt.datetime.now() + dt.timedelta(seconds=20)
            with app.state.giaoban.db.session() as session:
                while answer(session, meeting["id"]) != "accepted":
                    assert dt.datetime.now() < deadline, list(the_reader.outcomes)
                    time.sleep(0.1)
        assert app.state.giaoban.reply_reader is None  # closed with the lifespan
    finally:
        app.state.giaoban.db.dispose()
    assert dovecot.flags() == [{"\\Seen"}]


def test_no_reader_without_the_setting(app: Starlette) -> None:
    with TestClient(app):
        assert app.state.giaoban.reply_reader is None


async def test_closing_does_not_wait_for_a_silent_server(app: Starlette) -> None:
    with socket.socket() as silent:  # accepts connections, never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        target = ImapTarget("127.0.0.1", silent.getsockname()[1], "u", "p", False)
        the_reader = ReplyReader(app.state.giaoban.db, target, interval=3600, timeout=3)
        the_reader.start()
        await asyncio.sleep(0.2)
        assert the_reader.running
        started = time.monotonic()
        await the_reader.close(grace=0.2)
        assert time.monotonic() - started < 2 and not the_reader.running
