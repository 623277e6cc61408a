"""Answering an invitation from the mail: each invitee's mail carries their own signed links;
the page opens without logging in, records accept / tentative / decline / a deputy (who is
then invited by mail), and refuses forged, expired and cancelled cases without changing
anything."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlmodel import select
from starlette.applications import Starlette

from server.app import create_app
from server.audit.models import AuditEntry
from server.i18n import LANG_COOKIE
from server.mail import rsvp
from server.meetings.models import Meeting, MeetingParticipant
from server.settings import Settings
from tests.server.mail.conftest import Received, Recorder, SmtpServer
from tests.server.mail.test_invitations import arrived, by_recipient, calendar_of
from tests.support.meetings import plan
from tests.support.web import Browser, api_token, other_browser

PEOPLE = {"units": ["ct.so-tttt", "ct.ninh-kieu.tan-an"], "levels": [], "users": ["canbo.tanan"]}
WARD = "ct.ninh-kieu.tan-an@cantho.gov.vn.test"
LINK = re.compile(r'href="(https?://[^"]+/rsvp/([^"?]+)\?answer=(\w+)[^"]*)"')
HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def mailing_app(settings: Settings, smtp_server: SmtpServer) -> Iterator[Starlette]:
    settings.smtp_url = SecretStr(smtp_server.url)
    application = create_app(settings)
    yield application
    application.state.giaoban.db.dispose()


@pytest.fixture
def secretary(mailing_app: Starlette) -> Iterator[Browser]:
    with Browser(mailing_app, raise_server_exceptions=False) as browser:
        yield browser


@pytest.fixture
def stranger(mailing_app: Starlette) -> Iterator[Browser]:
    """Someone who opens the mail's link and has never logged in."""
    with other_browser(mailing_app) as browser:
        yield browser


def html_of(mail: Received) -> str:
    part = next(p for p in mail.message.walk() if p.get_content_type() == "text/html")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def links_in(mail: Received) -> dict[str, str]:
    """answer → path (``/rsvp/…?answer=…``) of the links in the mail's HTML."""
    found = {answer: url for url, _token, answer in LINK.findall(html_of(mail))}
    return {answer: url[url.index("/rsvp/"):].replace("&amp;", "&") for answer, url in found.items()}


def invite(secretary: Browser, recorder: Recorder, **changes: object) -> tuple[dict[str, object], dict[str, Received]]:
    created = secretary.post("/api/meetings", json=plan(participants=PEOPLE, **changes), headers=api_token(secretary, "thuky"))
    assert created.status_code == 201, created.text
    mails = by_recipient(arrived(recorder, 4))
    recorder.received.clear()
    return created.json(), mails


def participant(app: Starlette, meeting_id: object, email: str) -> MeetingParticipant:
    with app.state.giaoban.db.session() as session:
        row = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting_id,
                                                            MeetingParticipant.email == email)).first()
        assert row is not None
        return row


def answer(browser: Browser, path: str, **fields: str):  # type: ignore[no-untyped-def]
    page = browser.get(path)
    assert page.status_code == 200, page.text
    token = HIDDEN_CSRF.search(page.text)
    assert token, "the answer page carries no CSRF field"
    return browser.post(path.split("?")[0], data={**fields, "csrf_token": token.group(1)})


def test_each_invitee_gets_their_own_answer_links(secretary: Browser, recorder: Recorder, mailing_app: Starlette) -> None:
    created, mails = invite(secretary, recorder)
    tokens = set()
    signer = rsvp.RsvpSigner(mailing_app.state.giaoban.settings.effective_secret_key)
    for address, mail in mails.items():
        links = links_in(mail)
        assert set(links) == {"accept", "tentative", "decline", "delegate"}, address
        token = links["accept"].split("/")[2].split("?")[0]
        claim = signer.read(token)
        assert claim is not None and claim.meeting_id == created["id"] and claim.uid == created["uid"]
        assert claim.participant_id == participant(mailing_app, created["id"], address).id
        tokens.add(token)
        assert "/rsvp/" in mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert len(tokens) == 4


def test_accepting_from_the_mail_without_logging_in(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                    stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    links = links_in(mails[WARD])
    page = stranger.get(links["accept"])
    assert page.status_code == 200 and "/login" not in str(page.url)
    assert "Giao ban tuần — UBND thành phố" in page.text and "Phường Tân An" in page.text
    assert "Chưa trả lời" in page.text or participant(mailing_app, created["id"], WARD).response == "needs_action"
    assert participant(mailing_app, created["id"], WARD).response == "needs_action"  # opening a link changes nothing
    done = answer(stranger, links["accept"], answer="accept", comment="Đồng chí Chủ tịch phường dự")
    assert done.status_code == 200, done.text
    row = participant(mailing_app, created["id"], WARD)
    assert row.response == "accepted" and row.responded_at is not None and row.comment == "Đồng chí Chủ tịch phường dự"
    with mailing_app.state.giaoban.db.session() as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "rsvp_answered")).one()
        assert entry.target == str(created["id"]) and '"via": "link"' in entry.detail
    # the meeting page of the secretary shows the answer
    assert secretary.login("thuky").get(f"/meetings/{created['id']}").status_code == 200


def test_declining_and_changing_ones_mind(secretary: Browser, recorder: Recorder, mailing_app: Starlette, stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    links = links_in(mails["canbo.tanan@cantho.gov.vn.test"])
    assert answer(stranger, links["decline"], answer="decline", comment="Bận họp HĐND").status_code == 200
    assert participant(mailing_app, created["id"], "canbo.tanan@cantho.gov.vn.test").response == "declined"
    assert answer(stranger, links["tentative"], answer="tentative").status_code == 200
    row = participant(mailing_app, created["id"], "canbo.tanan@cantho.gov.vn.test")
    assert row.response == "tentative" and row.comment == ""


def test_sending_a_deputy_invites_the_deputy_by_mail(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                      stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    links = links_in(mails[WARD])
    done = answer(stranger, links["delegate"], answer="delegate", deputy_name="Lê Văn Phó",
                  deputy_email="Pho.TanAn@cantho.gov.vn.test", comment="Chủ tịch đi công tác")
    assert done.status_code == 200, done.text
    row = participant(mailing_app, created["id"], WARD)
    assert (row.response, row.delegated_to) == ("delegated", "Pho.TanAn@cantho.gov.vn.test")
    deputy = participant(mailing_app, created["id"], "Pho.TanAn@cantho.gov.vn.test")
    assert deputy.unit_id is None and deputy.user_id is None and deputy.name == "Lê Văn Phó"
    assert deputy.response == "needs_action" and deputy.parent_name == "Phường Tân An"
    [mail] = arrived(recorder, 1)
    assert mail.rcpt_tos == ["Pho.TanAn@cantho.gov.vn.test"]
    method, cal, _ = calendar_of(mail)
    [event] = cal.walk("VEVENT")
    assert method == "REQUEST" and str(event["UID"]) == created["uid"]
    assert "pho.tanan@cantho.gov.vn.test" in {str(a).lower().removeprefix("mailto:") for a in event["ATTENDEE"]}
    # the deputy answers with their own links
    deputy_links = links_in(mail)
    assert answer(stranger, deputy_links["accept"], answer="accept").status_code == 200
    assert participant(mailing_app, created["id"], "Pho.TanAn@cantho.gov.vn.test").response == "accepted"
    # naming the same deputy again adds nobody and sends nothing
    assert answer(stranger, links["delegate"], answer="delegate", deputy_name="Lê Văn Phó",
                  deputy_email="pho.tanan@cantho.gov.vn.test").status_code == 200
    with mailing_app.state.giaoban.db.session() as session:
        rows = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == created["id"])).all()
        assert len(rows) == 5
    # an edit of the meeting by the secretary keeps the deputy (and sends them the update)
    token = api_token(secretary, "thuky")
    current = secretary.get(f"/api/meetings/{created['id']}", headers=token).json()
    edited = secretary.patch(f"/api/meetings/{created['id']}", json={"version": current["version"], "title": "Giao ban (đổi tên)"},
                             headers=token)
    assert edited.status_code == 200, edited.text
    assert participant(mailing_app, created["id"], "Pho.TanAn@cantho.gov.vn.test").name == "Lê Văn Phó"


@pytest.mark.parametrize("fields", [
    {"deputy_name": "Lê Văn Phó", "deputy_email": "khong-phai-dia-chi"},
    {"deputy_name": "", "deputy_email": "pho@cantho.gov.vn.test"},
    {"deputy_name": "Chính mình", "deputy_email": WARD.upper()},
])
def test_a_bad_deputy_is_refused_and_nothing_changes(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                     stranger: Browser, fields: dict[str, str]) -> None:
    created, mails = invite(secretary, recorder)
    links = links_in(mails[WARD])
    refused = answer(stranger, links["delegate"], answer="delegate", **fields)
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    row = participant(mailing_app, created["id"], WARD)
    assert (row.response, row.delegated_to, row.responded_at) == ("needs_action", "", None)
    with mailing_app.state.giaoban.db.session() as session:
        assert len(session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == created["id"])).all()) == 4


def test_an_unknown_answer_is_refused(secretary: Browser, recorder: Recorder, mailing_app: Starlette, stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    assert answer(stranger, links_in(mails[WARD])["accept"], answer="maybe").status_code == 422
    assert participant(mailing_app, created["id"], WARD).response == "needs_action"


def test_forged_malformed_and_expired_tokens_are_404(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                     stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    path = links_in(mails[WARD])["accept"]
    token = path.split("/")[2].split("?")[0]
    stranger.cookies.set(LANG_COOKIE, "en")  # English: the messages are the source strings
    forged = rsvp.RsvpSigner("another-secret-key").issue(
        Meeting(id=created["id"], uid=created["uid"], title="", kind="", host_unit_id=0, host_unit_name="", chair_id=0,  # type: ignore[arg-type]
                chair_name="", start=dt.datetime.now(dt.UTC), end=dt.datetime.now(dt.UTC), series_end=dt.datetime.now(dt.UTC)),
        participant(mailing_app, created["id"], WARD).id or 0)
    for bad in (forged, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"), "not-a-token", token + "x"):
        page = stranger.get(f"/rsvp/{bad}")
        assert page.status_code == 404 and "This answer link is not valid" in page.text, page.text[:500]
        csrf = HIDDEN_CSRF.search(stranger.get(path).text)
        assert csrf
        assert stranger.post(f"/rsvp/{bad}", data={"answer": "accept", "csrf_token": csrf.group(1)}).status_code == 404
    with mailing_app.state.giaoban.db.session() as session:  # the series ended more than 7 days ago
        meeting = session.get(Meeting, created["id"])
        assert meeting is not None
        meeting.series_end = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
        session.add(meeting)
    expired = stranger.get(path)
    assert expired.status_code == 404 and "has expired: the meeting ended more than 7 days ago" in expired.text
    assert participant(mailing_app, created["id"], WARD).response == "needs_action"


def test_a_link_of_someone_no_longer_invited_is_404(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                    stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    path = links_in(mails[WARD])["accept"]
    changed = secretary.patch(f"/api/meetings/{created['id']}", headers=api_token(secretary, "thuky"), json={
        "version": created["version"], "participants": {"units": ["ct.so-tttt"], "levels": [], "users": ["canbo.tanan"]}})
    assert changed.status_code == 200, changed.text
    gone = stranger.get(path)
    assert gone.status_code == 404 and 'role="alert"' in gone.text


def test_a_cancelled_meeting_takes_no_answers(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                              stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    path = links_in(mails[WARD])["accept"]
    csrf = HIDDEN_CSRF.search(stranger.get(path).text)
    assert csrf
    token = api_token(secretary, "thuky")
    assert secretary.post(f"/api/meetings/{created['id']}/cancel", json={}, headers=token).status_code == 200
    page = stranger.get(path)
    assert page.status_code == 200 and 'class="notice" role="alert"' in page.text
    assert 'name="answer"' not in page.text
    refused = stranger.post(path.split("?")[0], data={"answer": "accept", "csrf_token": csrf.group(1)})
    assert refused.status_code == 409
    assert participant(mailing_app, created["id"], WARD).response == "needs_action"


def test_the_answer_form_needs_the_pages_csrf_token(secretary: Browser, recorder: Recorder, mailing_app: Starlette,
                                                    stranger: Browser) -> None:
    created, mails = invite(secretary, recorder)
    path = links_in(mails[WARD])["accept"]
    stranger.get(path)
    assert stranger.post(path.split("?")[0], data={"answer": "accept"}).status_code == 403
    assert participant(mailing_app, created["id"], WARD).response == "needs_action"


def test_a_cancellation_mail_carries_no_answer_links(secretary: Browser, recorder: Recorder) -> None:
    created, _ = invite(secretary, recorder)
    assert secretary.post(f"/api/meetings/{created['id']}/cancel", json={}, headers=api_token(secretary, "thuky")).status_code == 200
    for mail in arrived(recorder, 4):
        assert "/rsvp/" not in html_of(mail)

