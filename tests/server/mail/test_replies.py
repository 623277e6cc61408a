"""iMIP REPLY: an attendee's calendar answers for them. Replies built with the icalendar
package (and one written the way Outlook writes it) are applied to real meetings; every bad
reply is refused with a precise message and changes nothing; administrators can upload one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import icalendar
import pytest
from sqlmodel import Session, func, select
from starlette.applications import Starlette

from server.audit.models import AuditEntry
from server.errors import InvalidInput
from server.i18n import LANG_COOKIE
from server.mail import replies
from server.mail.invitations import MailDeputyNotifier, notifier
from server.mail.models import OutboxMessage
from server.meetings.models import MeetingParticipant
from tests.server.mail.conftest import PEOPLE, WARD
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

ORGANIZER = "mailto:giaoban@cantho.gov.vn.test"


@pytest.fixture
def series(browser: Browser) -> dict[str, Any]:
    created = browser.post("/api/meetings", json=plan(participants=PEOPLE, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"),
                           headers=api_token(browser, "thuky"))
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture
def session(app: Starlette, browser: Browser) -> Iterator[Session]:
    # After the browser (whose app's shutdown writes): closed first, so its open transaction
    # never holds SQLite's lock while the shutdown waits out the busy timeout (5 s a test).
    with app.state.giaoban.db.session() as s:
        yield s


def reply(uid: str, attendee: str = WARD, partstat: str = "ACCEPTED", *, method: str = "REPLY",
          recurrence_id: dt.datetime | None = None, extra_attendees: int = 0, **params: str) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test client//EN")
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("organizer", icalendar.vCalAddress(ORGANIZER))
    who = icalendar.vCalAddress(f"mailto:{attendee}")
    who.params["PARTSTAT"] = icalendar.vText(partstat)
    for name, value in params.items():
        who.params[name.replace("_", "-").upper()] = icalendar.vText(value)
    event.add("attendee", who)
    for n in range(extra_attendees):
        event.add("attendee", icalendar.vCalAddress(f"mailto:nguoi{n}@cantho.gov.vn.test"))
    if recurrence_id is not None:
        event.add("recurrence-id", recurrence_id)
    cal.add_component(event)
    return cal.to_ical()


def outlook_reply(uid: str, attendee: str, recurrence_id: str, *, with_vtimezone: bool = True) -> bytes:
    """What Outlook/Exchange sends: a Windows zone name, its own VTIMEZONE, CRLF lines."""
    zone = [
        "BEGIN:VTIMEZONE", "TZID:SE Asia Standard Time",
        "BEGIN:STANDARD", "DTSTART:16010101T000000", "TZOFFSETFROM:+0700", "TZOFFSETTO:+0700", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:16010101T000000", "TZOFFSETFROM:+0700", "TZOFFSETTO:+0700", "END:DAYLIGHT",
        "END:VTIMEZONE",
    ] if with_vtimezone else []
    lines = [
        "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0", *zone,
        "BEGIN:VEVENT",
        f'ATTENDEE;PARTSTAT=ACCEPTED;CN="Phuong Tan An":mailto:{attendee.upper()}',
        "COMMENT;LANGUAGE=vi-VN:Sẽ dự đúng giờ",
        "SUMMARY;LANGUAGE=vi-VN:Đã chấp nhận: Giao ban tuần",
        f"RECURRENCE-ID;TZID=SE Asia Standard Time:{recurrence_id}",
        f"DTSTART;TZID=SE Asia Standard Time:{recurrence_id}",
        f"UID:{uid}", "CLASS:PUBLIC", "PRIORITY:5", "DTSTAMP:20261201T010000Z", "TRANSP:OPAQUE", "STATUS:CONFIRMED",
        "SEQUENCE:0", "END:VEVENT", "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def mail_with(data: bytes, sender: str, *, as_attachment_only: bool = False) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Phường Tân An <{sender}>"
    message["To"] = "giaoban@cantho.gov.vn.test"
    message["Subject"] = "Accepted: Giao ban tuần"
    message.set_content("Đã chấp nhận")
    if as_attachment_only:
        message.add_attachment(data, maintype="application", subtype="ics", filename="reply.ics")
    else:
        message.add_alternative(data, maintype="text", subtype="calendar", params={"method": "REPLY"})
    return message.as_bytes()


def row(session: Session, meeting_id: int, email: str) -> MeetingParticipant:
    session.expire_all()
    found = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting_id,
                                                          func.lower(MeetingParticipant.email) == email.lower())).first()
    assert found is not None
    return found


def snapshot(session: Session, meeting_id: int) -> tuple[Any, ...]:
    session.expire_all()
    rows = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting_id)).all()
    audits = session.exec(select(func.count()).select_from(AuditEntry)).one()
    mails = session.exec(select(func.count()).select_from(OutboxMessage)).one()
    return tuple((p.id, p.response, p.delegated_to, p.comment, p.responded_at) for p in rows), audits, mails


def test_an_accepted_reply_is_recorded_and_audited(session: Session, meeting: dict[str, Any]) -> None:
    result = replies.apply_reply(session, reply(meeting["uid"]), sender=f"Phường Tân An <{WARD}>")
    assert (result.meeting_id, result.response, result.note) == (meeting["id"], "accepted", None)
    participant = row(session, meeting["id"], WARD)
    assert participant.response == "accepted" and participant.responded_at is not None
    entry = session.exec(select(AuditEntry).where(AuditEntry.action == "rsvp_answered")).one()
    assert '"via": "imip"' in entry.detail


def test_a_declined_reply_in_a_mail_is_checked_against_its_sender(session: Session, meeting: dict[str, Any]) -> None:
    raw = mail_with(reply(meeting["uid"], "canbo.tanan@cantho.gov.vn.test", "DECLINED"), "CanBo.TanAn@cantho.gov.vn.test")
    assert replies.apply_reply_mail(session, raw).response == "declined"
    assert row(session, meeting["id"], "canbo.tanan@cantho.gov.vn.test").response == "declined"


def test_an_ics_attachment_is_found_too(session: Session, meeting: dict[str, Any]) -> None:
    raw = mail_with(reply(meeting["uid"], partstat="TENTATIVE"), WARD, as_attachment_only=True)
    assert replies.apply_reply_mail(session, raw).response == "tentative"


def test_a_delegated_reply_invites_the_deputy(app: Starlette, session: Session, meeting: dict[str, Any]) -> None:
    data = reply(meeting["uid"], partstat="DELEGATED", delegated_to="mailto:pho.tanan@cantho.gov.vn.test")
    before = session.exec(select(func.count()).select_from(OutboxMessage)).one()
    result = replies.apply_reply(session, data, sender=WARD,
                                 notify=MailDeputyNotifier(notifier(app.state.giaoban.settings, app.state.giaoban.catalogues)))
    assert (result.response, result.delegated_to, result.deputy_added) == ("delegated", "pho.tanan@cantho.gov.vn.test", True)
    assert row(session, meeting["id"], WARD).delegated_to == "pho.tanan@cantho.gov.vn.test"
    deputy = row(session, meeting["id"], "pho.tanan@cantho.gov.vn.test")
    assert deputy.response == "needs_action" and deputy.unit_id is None and deputy.user_id is None
    mails = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()  # type: ignore[arg-type]
    assert len(mails) == before + 1
    assert mails[-1].recipient == "pho.tanan@cantho.gov.vn.test" and mails[-1].kind == "invitation"


def test_a_reply_for_one_occurrence_is_kept_as_a_comment(session: Session, series: dict[str, Any]) -> None:
    second = dt.datetime.fromisoformat(at(monday(4), 8))
    result = replies.apply_reply(session, reply(series["uid"], partstat="DECLINED", recurrence_id=second), sender=WARD)
    assert result.occurrence == second and result.note is not None
    assert "comment" in str(result.note)
    participant = row(session, series["id"], WARD)
    assert participant.response == "needs_action"  # the answer to the series is unchanged
    assert participant.comment == f"{monday(4):%d/%m/%Y} 08:00: DECLINED"


def test_outlooks_reply_with_a_windows_zone_names_the_right_occurrence(session: Session, series: dict[str, Any]) -> None:
    third = monday(5)
    data = outlook_reply(series["uid"], WARD, f"{third:%Y%m%d}T080000")
    result = replies.apply_reply_mail(session, mail_with(data, WARD.upper()))
    assert result.occurrence == dt.datetime(third.year, third.month, third.day, 1, tzinfo=dt.UTC)
    assert row(session, series["id"], WARD).comment == f"{third:%d/%m/%Y} 08:00: ACCEPTED"


def test_a_windows_zone_without_its_vtimezone_is_read_as_vietnam_time(session: Session, series: dict[str, Any]) -> None:
    data = outlook_reply(series["uid"], WARD, f"{monday(3):%Y%m%d}T080000", with_vtimezone=False)
    assert replies.apply_reply(session, data, sender=None).occurrence == dt.datetime.fromisoformat(at(monday(3), 8))


def test_outlooks_reply_to_a_single_meeting_records_its_comment(session: Session, meeting: dict[str, Any]) -> None:
    data = outlook_reply(meeting["uid"], WARD, "x").replace(b"RECURRENCE-ID;TZID=SE Asia Standard Time:x\r\n", b"")
    data = data.replace(b"DTSTART;TZID=SE Asia Standard Time:x", f"DTSTART;TZID=SE Asia Standard Time:{monday():%Y%m%d}T080000".encode())
    assert replies.apply_reply(session, data, sender=WARD).response == "accepted"
    assert row(session, meeting["id"], WARD).comment == "Sẽ dự đúng giờ"


BAD: list[tuple[str, Any, str]] = [
    ("not iCalendar", lambda m: b"hello", "not an iCalendar object"),
    ("a REQUEST", lambda m: reply(m["uid"], method="REQUEST"), "METHOD is REQUEST, not REPLY"),
    ("no METHOD", lambda m: reply(m["uid"], method=""), "METHOD is —, not REPLY"),
    ("two attendees", lambda m: reply(m["uid"], extra_attendees=1), "exactly one ATTENDEE, this one has 2"),
    ("unknown UID", lambda m: reply("khong-co@giaoban"), "no meeting has the UID khong-co@giaoban"),
    ("unknown attendee", lambda m: reply(m["uid"], "la@cantho.gov.vn.test"), "la@cantho.gov.vn.test is not invited"),
    ("no answer", lambda m: reply(m["uid"], partstat="NEEDS-ACTION"), "PARTSTAT NEEDS-ACTION is not an answer"),
    ("delegated to nobody", lambda m: reply(m["uid"], partstat="DELEGATED"), "needs exactly one DELEGATED-TO"),
    ("delegated to a bad address", lambda m: reply(m["uid"], partstat="DELEGATED", delegated_to="mailto:khong-hop-le"),
     "DELEGATED-TO is not usable"),
    ("no such occurrence", lambda m: reply(m["uid"], recurrence_id=dt.datetime.fromisoformat(at(monday(4), 9))),
     "RECURRENCE-ID names no occurrence"),
]


@pytest.mark.parametrize(("data", "message"), [(b, m) for _, b, m in BAD], ids=[n for n, _, _ in BAD])
def test_a_bad_reply_is_refused_and_changes_nothing(session: Session, meeting: dict[str, Any], data: Any, message: str) -> None:
    before = snapshot(session, meeting["id"])
    with pytest.raises(InvalidInput) as refused:
        replies.apply_reply(session, data(meeting), sender=WARD)
    assert message in str(refused.value.message)
    assert snapshot(session, meeting["id"]) == before


def test_a_reply_from_someone_else_is_refused(session: Session, meeting: dict[str, Any]) -> None:
    before = snapshot(session, meeting["id"])
    with pytest.raises(InvalidInput) as refused:
        replies.apply_reply_mail(session, mail_with(reply(meeting["uid"]), "ct.so-tttt@cantho.gov.vn.test"))
    assert "comes from ct.so-tttt@cantho.gov.vn.test, not from the attendee" in str(refused.value.message)
    with pytest.raises(InvalidInput) as no_calendar:
        replies.apply_reply_mail(session, mail_with(reply(meeting["uid"]), WARD).replace(b"text/calendar", b"text/x-other"))
    assert "no calendar object" in str(no_calendar.value.message)
    assert snapshot(session, meeting["id"]) == before


def test_a_reply_to_a_cancelled_meeting_is_refused(browser: Browser, session: Session, meeting: dict[str, Any]) -> None:
    assert browser.post(f"/api/meetings/{meeting['id']}/cancel", json={}, headers=api_token(browser, "thuky")).status_code == 200
    before = snapshot(session, meeting["id"])
    with pytest.raises(InvalidInput) as refused:
        replies.apply_reply(session, reply(meeting["uid"]), sender=WARD)
    assert "cancelled" in str(refused.value.message)
    assert snapshot(session, meeting["id"]) == before


# --- the administrators' page ---------------------------------------------------------------


def test_an_administrator_uploads_a_reply(app: Starlette, browser: Browser, meeting: dict[str, Any]) -> None:
    browser.login("admin")
    browser.cookies.set(LANG_COOKIE, "en")
    assert browser.get("/admin/replies").status_code == 200
    applied = browser.submit("/admin/replies", files={"file": ("reply.ics", reply(meeting["uid"], partstat="TENTATIVE"), "text/calendar")})
    assert applied.status_code == 200, applied.text
    assert "Applied" in applied.text and WARD in applied.text
    raw = mail_with(reply(meeting["uid"], "canbo.tanan@cantho.gov.vn.test", "DECLINED"), "canbo.tanan@cantho.gov.vn.test")
    assert browser.submit("/admin/replies", files={"file": ("reply.eml", raw, "message/rfc822")}).status_code == 200
    refused = browser.submit("/admin/replies", files={"file": ("reply.ics", reply("khong-co@giaoban"), "text/calendar")})
    assert refused.status_code == 422 and "no meeting has the UID khong-co@giaoban" in refused.text
    with app.state.giaoban.db.session() as s:
        assert row(s, meeting["id"], WARD).response == "tentative"
        assert row(s, meeting["id"], "canbo.tanan@cantho.gov.vn.test").response == "declined"
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "rsvp_answered", AuditEntry.actor == "admin")).first()
        assert entry is not None


def test_only_administrators_upload_replies_with_the_forms_token(app: Starlette, browser: Browser, meeting: dict[str, Any]) -> None:
    browser.login("thuky")
    assert browser.get("/admin/replies").status_code == 403
    files = {"file": ("reply.ics", reply(meeting["uid"]), "text/calendar")}
    assert browser.submit("/admin/replies", files=files).status_code == 403
    with other_browser(app) as admin:
        admin.login("admin")
        assert admin.post("/admin/replies", files=files).status_code == 403  # no CSRF token
    with app.state.giaoban.db.session() as s:
        assert row(s, meeting["id"], WARD).response == "needs_action"
