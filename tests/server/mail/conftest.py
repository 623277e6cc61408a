"""Fixtures for the mail tests: a database with the outbox, invitation messages, and a real
SMTP server (aiosmtpd) on 127.0.0.1 that records what arrives and can be stopped and started
again on the same port."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope as ServerEnvelope
from aiosmtpd.smtp import Session as ServerSession
from sqlmodel import col, select

from server.db import Database
from server.mail import outbox
from server.mail.compose import compose_imip
from server.mail.models import OutboxMessage
from server.settings import Settings
from tests.support.meetings import plan
from tests.support.web import Browser, api_token

SERVICE_MAILBOX = "Giao Ban Cần Thơ <giaoban@cantho.gov.vn.test>"
ENVELOPE_FROM = "giaoban@cantho.gov.vn.test"
REFUSED = "khongtontai@cantho.gov.vn.test"  # the server answers 550 to this one


def ics(method: str = "REQUEST", summary: str = "Giao ban tháng 5 — Phường Tân An") -> bytes:
    """A small iCalendar object of the kind server/calendar builds (CRLF, one folded line)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Giao Ban//Can Tho//VI",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        "UID:meeting-42@cantho.gov.vn.test",
        "DTSTAMP:20250505T010000Z",
        "DTSTART;TZID=Asia/Ho_Chi_Minh:20250512T080000",
        "DTEND;TZID=Asia/Ho_Chi_Minh:20250512T100000",
        "SEQUENCE:0",
        f"SUMMARY:{summary}",
        "ORGANIZER;CN=Giao Ban:mailto:giaoban@cantho.gov.vn.test",
        "ATTENDEE;CN=Trần Thị B;RSVP=TRUE:mailto:tran.b@cantho.gov.vn.test",
        "DESCRIPTION:Tham gia: https://giaoban.cantho.gov.vn.test/join/abc123 — chư",
        " ơng trình họp kèm theo.",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def invitation(recipient: str, n: int = 0, *, method: str = "REQUEST") -> EmailMessage:
    return compose_imip(
        sender=SERVICE_MAILBOX, recipient=recipient, recipient_name="Trần Thị B",
        subject=f"Giấy mời: Giao ban tháng 5 số {n}", text=f"Kính gửi: Trần Thị B ({n})",
        html=f"<p>Kính gửi: Trần Thị B ({n})</p>", ics=ics(method), method=method,
    )


# --- the database ---------------------------------------------------------------------------


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


def add_mail(
    db: Database, count: int, *, recipient: Callable[[int], str] | None = None, now: dt.datetime | None = None
) -> list[str]:
    """Enqueue ``count`` invitations (one transaction each, as the meetings service will);
    returns their Message-IDs."""
    ids = []
    for n in range(count):
        address = recipient(n) if recipient else f"nguoi{n}@cantho.gov.vn.test"
        with db.session() as session:
            ids.append(outbox.enqueue(session, kind="invitation", recipient=address, message=invitation(address, n), now=now).message_id)
    return ids


def rows(db: Database) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def by_state(db: Database) -> Counter[str]:
    return Counter(row.state for row in rows(db))


async def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "the condition") -> None:
    """Wait (bounded) until ``check()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- the SMTP server ------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """The aiosmtpd handler: refuses some recipients, keeps every accepted message."""

    refuse: dict[str, str] = field(default_factory=lambda: {REFUSED: "550 5.1.1 <khongtontai>: Recipient address rejected"})
    refuse_once: dict[str, str] = field(default_factory=dict)  # answered once, then accepted
    data_delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTPServer, session: ServerSession, envelope: ServerEnvelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if address in self.refuse_once:
            return self.refuse_once.pop(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: ServerSession, envelope: ServerEnvelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        data = envelope.original_content or b""
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(r.message["Message-ID"]) for r in self.received)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """A real SMTP server on 127.0.0.1:{port}; ``stop()`` and ``start()`` take it down and up."""

    def __init__(self, handler: Recorder, port: int, **options: Any) -> None:
        self.handler = handler
        self.port = port
        self.options = options
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self._controller is None
        controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.options)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def up(self) -> bool:
        return self._controller is not None


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def smtp_server(recorder: Recorder) -> Iterator[SmtpServer]:
    server = SmtpServer(recorder, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a meeting that invites two units and one person (mail tests that answer it) -------------

PEOPLE = {"units": ["ct.so-tttt", "ct.ninh-kieu.tan-an"], "levels": [], "users": ["canbo.tanan"]}
WARD = "ct.ninh-kieu.tan-an@cantho.gov.vn.test"


@pytest.fixture
def meeting(browser: Browser) -> dict[str, Any]:
    """A meeting planned through the API by the city's secretary."""
    created = browser.post("/api/meetings", json=plan(participants=PEOPLE), headers=api_token(browser, "thuky"))
    assert created.status_code == 201, created.text
    return dict(created.json())
