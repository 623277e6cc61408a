"""The administrators' outbox page: a mail the server refused shows why, and "Resend" puts it
back in the queue (CSRF-protected, audited, administrators only)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator

import pytest
from sqlmodel import select
from starlette.applications import Starlette

from server.audit.models import AuditEntry
from server.db import Database
from server.mail import pages as mail_pages
from server.mail.models import OutboxMessage
from server.mail.retry import RetryPolicy
from server.mail.sender import OutboxSender
from server.mail.transport import SmtpTransport
from tests.server.mail.conftest import ENVELOPE_FROM, REFUSED, Recorder, SmtpServer, add_mail, by_state, eventually, rows
from tests.support.web import Browser

ROW = re.compile(r'<tr id="mail-(\d+)" data-state="(\w+)">')


@pytest.fixture
def mail_app(app: Starlette) -> Starlette:
    # These tests deliver with senders of their own, aimed at their SMTP server.
    app.state.giaoban.settings.mail_sender = False
    return app


@pytest.fixture
def mail_db(mail_app: Starlette) -> Database:
    database: Database = mail_app.state.giaoban.db
    return database


@pytest.fixture
def admin(mail_app: Starlette) -> Iterator[Browser]:
    with Browser(mail_app, raise_server_exceptions=False) as client:
        yield client.login("admin")


def deliver(db: Database, server: SmtpServer, expected: dict[str, int]) -> None:
    """Run a sender until the outbox holds ``expected`` states, then stop it."""

    async def scenario() -> None:
        sender = OutboxSender(db, SmtpTransport.from_url(server.url), envelope_from=ENVELOPE_FROM, poll_interval=0.05,
                              policy=RetryPolicy(base=dt.timedelta(milliseconds=20)))
        sender.start()
        try:
            await eventually(lambda: by_state(db) == expected, what=str(expected))
        finally:
            await sender.close()

    asyncio.run(scenario())


def test_a_refused_mail_shows_why_and_is_resent_from_the_page(
    mail_db: Database, admin: Browser, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    addresses = ["a@cantho.gov.vn.test", REFUSED, "b@cantho.gov.vn.test"]
    ids = add_mail(mail_db, 3, recipient=lambda n: addresses[n])
    deliver(mail_db, smtp_server, {"sent": 2, "dead": 1})
    [dead] = [row for row in rows(mail_db) if row.state == "dead"]

    page = admin.get("/admin/outbox?state=dead")
    assert page.status_code == 200
    assert ROW.findall(page.text) == [(str(dead.id), "dead")]
    assert REFUSED in page.text and "550 5.1.1" in page.text and "Giấy mời: Giao ban tháng 5 số 1" in page.text
    assert f'action="/admin/outbox/{dead.id}/resend"' in page.text
    everything = admin.get("/admin/outbox")
    assert sorted(ROW.findall(everything.text)) == sorted((str(r.id), r.state) for r in rows(mail_db))

    response = admin.submit(f"/admin/outbox/{dead.id}/resend")
    assert response.status_code == 200 and str(response.url).endswith(f"/admin/outbox?resent={dead.id}")
    assert 'class="notice"' in response.text
    [again] = [row for row in rows(mail_db) if row.id == dead.id]
    assert (again.state, again.attempts, again.last_error) == ("pending", 0, "")
    with mail_db.session() as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "mail_resent")).one()
        assert entry.actor == "admin" and entry.target == f"outbox:{dead.id}" and "550 5.1.1" in entry.detail

    del recorder.refuse[REFUSED]  # the mailbox exists now
    deliver(mail_db, smtp_server, {"sent": 3})
    assert recorder.message_ids() == {message_id: 1 for message_id in ids}  # each arrived once


def test_waiting_mail_cannot_be_resent(mail_db: Database, admin: Browser) -> None:
    add_mail(mail_db, 1)
    [row] = rows(mail_db)
    page = admin.get("/admin/outbox")
    assert ROW.findall(page.text) == [(str(row.id), "pending")] and "/resend" not in page.text
    assert admin.submit(f"/admin/outbox/{row.id}/resend").status_code == 409
    assert admin.submit("/admin/outbox/999999/resend").status_code == 404


def test_resend_needs_the_forms_csrf_token(mail_db: Database, admin: Browser) -> None:
    add_mail(mail_db, 1)
    with mail_db.session() as session:
        row = session.exec(select(OutboxMessage)).one()
        row.state = "dead"
        session.add(row)
    assert admin.post(f"/admin/outbox/{row.id}/resend", data={}).status_code == 403
    assert rows(mail_db)[0].state == "dead"


def test_only_administrators_see_or_resend_mail(mail_app: Starlette, mail_db: Database) -> None:
    add_mail(mail_db, 1)
    with Browser(mail_app, raise_server_exceptions=False) as anonymous:
        response = anonymous.get("/admin/outbox", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with Browser(mail_app, raise_server_exceptions=False) as secretary:
        secretary.login("thuky")
        assert secretary.get("/admin/outbox").status_code == 403
        assert secretary.submit(f"/admin/outbox/{rows(mail_db)[0].id}/resend").status_code == 403


def test_the_list_filters_and_pages(mail_db: Database, admin: Browser) -> None:
    add_mail(mail_db, mail_pages.PAGE_SIZE + 5)
    first = admin.get("/admin/outbox")
    assert len(ROW.findall(first.text)) == mail_pages.PAGE_SIZE and "page=2" in first.text
    second = admin.get("/admin/outbox?page=2")
    assert len(ROW.findall(second.text)) == 5
    assert ROW.findall(admin.get("/admin/outbox?state=sent").text) == []
    assert len(ROW.findall(admin.get("/admin/outbox?state=nonsense").text)) == mail_pages.PAGE_SIZE  # unknown: all
