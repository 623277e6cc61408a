"""Meetings send their invitations: each change writes mails to the outbox in its own
transaction, the app's sender delivers them to a real SMTP server, and what arrives is a
REQUEST, an update with a higher SEQUENCE, or a CANCEL, as the change calls for."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import icalendar
import pytest
from pydantic import SecretStr
from sqlmodel import func, select
from starlette.applications import Starlette

from server.app import create_app
from server.mail.models import OutboxMessage
from server.settings import Settings
from tests.server.mail.conftest import Received, Recorder, SmtpServer
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token

PEOPLE = {"units": ["ct.so-tttt", "ct.ninh-kieu.tan-an"], "levels": [], "users": ["canbo.tanan"]}
EVERYONE = {"ct.so-tttt@cantho.gov.vn.test", "ct.ninh-kieu.tan-an@cantho.gov.vn.test",
            "canbo.tanan@cantho.gov.vn.test", "lanhdao@cantho.gov.vn.test"}


@pytest.fixture
def mailing_app(settings: Settings, smtp_server: SmtpServer) -> Iterator[Starlette]:
    settings.smtp_url = SecretStr(smtp_server.url)  # the app's own sender delivers to the test's SMTP server
    application = create_app(settings)
    yield application
    application.state.giaoban.db.dispose()


@pytest.fixture
def client(mailing_app: Starlette) -> Iterator[Browser]:
    with Browser(mailing_app, raise_server_exceptions=False) as browser:
        yield browser


def arrived(recorder: Recorder, count: int, timeout: float = 20.0) -> list[Received]:
    """Wait (bounded) until ``count`` mails have arrived, then return them."""
    deadline = time.monotonic() + timeout
    while len(recorder.received) < count:
        assert time.monotonic() < deadline, f"{len(recorder.received)} of {count} mails arrived"
        time.sleep(0.05)
    time.sleep(0.2)  # and no more than that
    assert len(recorder.received) == count, [r.rcpt_tos for r in recorder.received]
    return list(recorder.received)


def calendar_of(mail: Received) -> tuple[str, icalendar.Calendar, bytes]:
    part = next(p for p in mail.message.walk() if p.get_content_type() == "text/calendar")
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return str(part.get_param("method")), icalendar.Calendar.from_ical(data), data


def by_recipient(mails: list[Received]) -> dict[str, Received]:
    return {mail.rcpt_tos[0]: mail for mail in mails}


def test_a_new_meeting_invites_every_unit_and_person_by_mail(client: Browser, recorder: Recorder,
                                                             icaljs: Callable[[bytes], dict[str, Any]]) -> None:
    token = api_token(client, "thuky")
    created = client.post("/api/meetings", json=plan(participants=PEOPLE), headers=token)
    assert created.status_code == 201, created.text
    mails = by_recipient(arrived(recorder, 4))
    assert set(mails) == EVERYONE
    method, cal, data = calendar_of(mails["ct.ninh-kieu.tan-an@cantho.gov.vn.test"])
    assert method == "REQUEST" and cal["METHOD"] == "REQUEST"
    [event] = [c for c in cal.walk("VEVENT")]
    assert str(event["UID"]) == created.json()["uid"] and int(event.get("SEQUENCE", 0)) == 0
    attendees = {str(a).lower().removeprefix("mailto:"): a.params for a in event["ATTENDEE"]}
    assert attendees["ct.ninh-kieu.tan-an@cantho.gov.vn.test"]["CUTYPE"] == "ROOM"
    assert attendees["lanhdao@cantho.gov.vn.test"]["ROLE"] == "CHAIR"
    assert "Giấy mời" in str(mails["canbo.tanan@cantho.gov.vn.test"].message["Subject"])
    read = icaljs(data)  # Thunderbird's parser reads the same time: 08:00 in Cần Thơ is 01:00 UTC
    assert read["events"][0]["dtstart"].startswith(f"{monday().isoformat()}T01:00:00")
    assert read["events"][0]["dtstart_zone"] == "Asia/Ho_Chi_Minh"


def test_an_update_goes_to_those_still_invited_and_a_cancel_to_the_one_removed(client: Browser, recorder: Recorder) -> None:
    token = api_token(client, "thuky")
    created = client.post("/api/meetings", json=plan(participants=PEOPLE), headers=token).json()
    arrived(recorder, 4)
    recorder.received.clear()
    changed = client.patch(f"/api/meetings/{created['id']}", headers=token, json={
        "version": created["version"], "start": at(monday(), 9), "end": at(monday(), 11),
        "participants": {"units": ["ct.so-tttt"], "levels": [], "users": ["canbo.tanan"]}})
    assert changed.status_code == 200, changed.text
    mails = by_recipient(arrived(recorder, 4))
    method, cal, _ = calendar_of(mails["ct.ninh-kieu.tan-an@cantho.gov.vn.test"])
    assert method == "CANCEL" and [str(e["STATUS"]) for e in cal.walk("VEVENT")] == ["CANCELLED"]
    method, cal, _ = calendar_of(mails["ct.so-tttt@cantho.gov.vn.test"])
    [event] = cal.walk("VEVENT")
    assert method == "REQUEST" and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART").hour == 9


def test_cancelling_sends_a_cancel_to_everyone(client: Browser, recorder: Recorder) -> None:
    token = api_token(client, "thuky")
    created = client.post("/api/meetings", json=plan(participants=PEOPLE), headers=token).json()
    arrived(recorder, 4)
    recorder.received.clear()
    assert client.post(f"/api/meetings/{created['id']}/cancel", json={}, headers=token).status_code == 200
    mails = arrived(recorder, 4)
    assert {calendar_of(m)[0] for m in mails} == {"CANCEL"}
    assert all(not list(calendar_of(m)[1].walk("VALARM")) for m in mails)


def test_one_occurrence_moved_and_one_cancelled_carry_their_recurrence_id(client: Browser, recorder: Recorder) -> None:
    token = api_token(client, "thuky")
    created = client.post("/api/meetings", json=plan(participants=PEOPLE, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"), headers=token).json()
    arrived(recorder, 4)
    recorder.received.clear()
    second = monday(4)
    moved = client.patch(f"/api/meetings/{created['id']}/occurrences/{at(second, 8)}", headers=token,
                         json={"start": at(second, 14), "end": at(second, 16)})
    assert moved.status_code == 200, moved.text
    method, cal, _ = calendar_of(arrived(recorder, 4)[0])
    assert method == "REQUEST"
    assert any("RECURRENCE-ID" in e for e in cal.walk("VEVENT"))
    recorder.received.clear()
    third = monday(5)
    assert client.post(f"/api/meetings/{created['id']}/occurrences/{at(third, 8)}/cancel", json={}, headers=token).status_code == 200
    method, cal, _ = calendar_of(arrived(recorder, 4)[0])
    [event] = cal.walk("VEVENT")
    assert method == "CANCEL" and "RECURRENCE-ID" in event


def test_a_refused_change_writes_no_mail(client: Browser, recorder: Recorder, mailing_app: Starlette) -> None:
    token = api_token(client, "thuky")
    client.post("/api/meetings", json=plan(participants=PEOPLE), headers=token)
    arrived(recorder, 4)
    clash = plan(title="Trùng lịch", chair="thuky", participants={"units": ["ct.ninh-kieu.tan-an"], "levels": [], "users": []})
    assert client.post("/api/meetings", json=clash, headers=token).status_code == 409
    with mailing_app.state.giaoban.db.session() as session:
        assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == 4
    assert len(recorder.received) == 4
