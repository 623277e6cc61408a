"""Feed links (made and revoked on /calendar/feeds), the feeds a calendar client polls, and the
download of one meeting, read by both the icalendar package and Mozilla's ical.js."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from server.calendar import api as calendar_api
from server.calendar import ics
from tests.support.icaljs import icaljs, parse_with_icaljs  # noqa: F401 - the fixture installs ical.js
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

pytestmark = pytest.mark.usefixtures("icaljs", "calendar_app")

LINK = re.compile(r"(https?://[^\s\"<]+/calendar/([A-Za-z0-9_-]+)\.ics)")
WEBCAL = re.compile(r"webcal://[^\s\"<]+/calendar/[A-Za-z0-9_-]+\.ics")


@pytest.fixture
def calendar_app(app: Starlette) -> Iterator[Starlette]:
    ics.FEED_BLOCKS.clear()
    yield app


@pytest.fixture
def secretary(browser: Browser) -> dict[str, str]:
    return api_token(browser, "thuky")


def schedule(browser: Browser, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = browser.post("/api/meetings", json=plan(confirm=True, **changes), headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def make_link(browser: Browser, unit: str = "") -> tuple[str, str]:
    """Make a link on the page, as a person would; returns the feed's path and its secret."""
    page = browser.submit("/calendar/feeds", {"action": "create", **({"unit": unit} if unit else {})})
    assert page.status_code == 200, page.text[:2000]
    assert page.headers["cache-control"] == "no-store"
    match = LINK.search(page.text)
    assert match, "the page shows no feed link"
    assert WEBCAL.search(page.text), "the page shows no webcal:// link"
    return f"/calendar/{match.group(2)}.ics", match.group(2)


def uids(data: bytes) -> set[str]:
    return {str(e["UID"]) for e in icalendar.Calendar.from_ical(data).walk("VEVENT")}


# --- a person's feed ------------------------------------------------------------------------------


def test_a_person_subscribes_to_the_meetings_they_are_invited_to(browser: Browser, secretary: dict[str, str]) -> None:
    invited = schedule(browser, secretary, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=6")
    other = schedule(browser, secretary, title="Họp riêng Sở", chair="thuky", participants={"units": ["ct.so-nv"], "levels": [], "users": []},
                     start=at(monday(5), 14), end=at(monday(5), 15))
    path, _ = make_link(browser.login("lanhdao"))

    feed = other_browser(browser.app).get(path)  # a calendar client: no session, no cookie
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
    assert feed.headers["cache-control"] == "private, max-age=300"
    assert feed.headers["etag"] == calendar_api.etag_of(feed.content)
    assert feed.headers["last-modified"].endswith(" GMT")
    # lanhdao chairs the first (the chair is invited) and is not in the second; ct is not invited to it
    assert uids(feed.content) == {invited["uid"]}

    parsed = parse_with_icaljs(feed.content)
    assert parsed["method"] is None and parsed["x_wr_calname"] == "Giao Ban: Trần Văn Minh"
    assert parsed["refresh_interval"] == "PT1H" and parsed["refresh_interval_type"] == "duration"
    starts = [o["start"] for o in parsed["occurrences"][invited["uid"]]]
    assert starts == [dt.datetime.fromisoformat(at(monday() + dt.timedelta(weeks=n), 8)).astimezone(dt.UTC)
                      .strftime("%Y-%m-%dT%H:%M:%S.000Z") for n in range(6)]
    (event,) = parsed["events"]
    assert event["attendees"] == [] and event["alarms"] == [] and event["url"] == invited["join_url"]
    assert other["uid"] not in feed.text


def test_an_unchanged_feed_answers_304_and_a_change_gives_a_new_etag(browser: Browser, secretary: dict[str, str]) -> None:
    created = schedule(browser, secretary)
    path, _ = make_link(browser.login("lanhdao"))
    client = other_browser(browser.app)
    first = client.get(path)
    etag = first.headers["etag"]

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200

    changed = browser.patch(f"/api/meetings/{created['id']}", json={"version": created["version"], "title": "Giao ban tuần — đổi giờ"},
                            headers=secretary)
    assert changed.status_code == 200, changed.text
    after = client.get(path, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert "Giao ban tuần — đổi giờ" in parse_with_icaljs(after.content)["events"][0]["summary"]


def test_a_cancelled_meeting_stays_in_the_feed_as_cancelled(browser: Browser, secretary: dict[str, str]) -> None:
    created = schedule(browser, secretary)
    path, _ = make_link(browser.login("lanhdao"))
    assert browser.post(f"/api/meetings/{created['id']}/cancel", json={}, headers=secretary).status_code == 200
    (event,) = parse_with_icaljs(other_browser(browser.app).get(path).content)["events"]
    assert (event["uid"], event["status"], event["sequence"]) == (created["uid"], "CANCELLED", 1)


def test_moved_and_cancelled_occurrences_reach_the_feed(browser: Browser, secretary: dict[str, str]) -> None:
    created = schedule(browser, secretary, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4")
    second, third = monday() + dt.timedelta(weeks=1), monday() + dt.timedelta(weeks=2)
    tuesday = second + dt.timedelta(days=1)
    moved = browser.patch(f"/api/meetings/{created['id']}/occurrences/{at(second, 8)}",
                          json={"start": at(tuesday, 14), "end": at(tuesday, 16), "confirm": True}, headers=secretary)
    assert moved.status_code == 200, moved.text
    assert browser.post(f"/api/meetings/{created['id']}/occurrences/{at(third, 8)}/cancel", json={}, headers=secretary).status_code == 200
    path, _ = make_link(browser.login("lanhdao"))

    parsed = parse_with_icaljs(other_browser(browser.app).get(path).content)
    utc = [dt.datetime.fromisoformat(s).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
           for s in (at(monday(), 8), at(tuesday, 14), at(monday() + dt.timedelta(weeks=3), 8), at(second, 8), at(third, 8))]
    assert [o["start"] for o in parsed["occurrences"][created["uid"]]] == utc[:3]
    master, override = parsed["events"]
    assert master["exdates"] == [utc[4]] and override["recurrence_id"] == utc[3]
    # The occurrence's SEQUENCE is the series' plus its own changes: never below the master's.
    assert override["sequence"] >= master["sequence"] == 1


def test_a_new_link_replaces_the_old_and_a_revoked_link_answers_404(browser: Browser, secretary: dict[str, str]) -> None:
    schedule(browser, secretary)
    browser.login("lanhdao")
    old_path, _ = make_link(browser)
    new_path, _ = make_link(browser)
    client = other_browser(browser.app)
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200

    page = browser.get("/calendar/feeds")
    token_id = re.search(r'name="token" value="(\d+)"', page.text)
    assert token_id
    assert not LINK.search(page.text), "the secret is shown once, never again"
    revoked = browser.submit("/calendar/feeds", {"action": "revoke", "token": token_id.group(1)})
    assert revoked.status_code == 200 and str(revoked.url).endswith("?done=revoked")
    gone = client.get(new_path)
    assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/plain")
    assert "lịch" in gone.text.lower() or "calendar" in gone.text.lower()
    assert client.get("/calendar/not-a-real-token.ics").status_code == 404


def test_only_the_hash_of_the_secret_is_stored_and_use_is_recorded(app: Starlette, browser: Browser, secretary: dict[str, str]) -> None:
    path, secret = make_link(browser.login("lanhdao"))
    other_browser(browser.app).get(path)
    with app.state.giaoban.db.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT token_hash, last_used_at, owner_kind FROM feed_tokens")).all()
    assert [(r[0], r[2]) for r in rows] == [(hashlib.sha256(secret.encode()).hexdigest(), "user")]
    assert rows[0][1] is not None
    dump = "\n".join(app.state.giaoban.db.engine.raw_connection().iterdump())
    assert secret not in dump


def test_someone_cannot_revoke_another_persons_link(browser: Browser) -> None:
    make_link(browser.login("lanhdao"))
    token_id = re.search(r'name="token" value="(\d+)"', browser.get("/calendar/feeds").text)
    assert token_id
    stranger = other_browser(browser.app).login("canbo.tanan")
    assert stranger.submit("/calendar/feeds", {"action": "revoke", "token": token_id.group(1)}).status_code == 404


def test_a_disabled_persons_feed_stops(app: Starlette, browser: Browser) -> None:
    path, _ = make_link(browser.login("canbo.tanan"))
    with app.state.giaoban.db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE users SET active = 0 WHERE username = 'canbo.tanan'"))
    assert other_browser(browser.app).get(path).status_code == 404


# --- a unit's feed --------------------------------------------------------------------------------


def test_a_secretary_makes_a_feed_for_a_unit_below_theirs(browser: Browser, secretary: dict[str, str]) -> None:
    ward_meeting = schedule(browser, secretary)  # every ward of Ninh Kiều is invited
    hosted = schedule(browser, secretary, title="Họp nội bộ quận", host_unit="ct.ninh-kieu", chair="lanhdao",
                      participants={"units": [], "levels": [], "users": []}, start=at(monday(6), 14), end=at(monday(6), 15))
    browser.login("thuky")
    page = browser.get("/calendar/feeds")
    assert "ct.ninh-kieu.tan-an" in page.text  # the city's secretary acts for every unit below the city
    ward_path, _ = make_link(browser, "ct.ninh-kieu.tan-an")
    district_path, _ = make_link(browser, "ct.ninh-kieu")
    client = other_browser(browser.app)

    ward = client.get(ward_path)
    assert uids(ward.content) == {ward_meeting["uid"]}
    assert parse_with_icaljs(ward.content)["x_wr_calname"] == "Giao Ban: Phường Tân An"
    assert uids(client.get(district_path).content) == {hosted["uid"]}  # hosts it; not invited to the wards' one

    listed = browser.get("/calendar/feeds").text
    assert "Phường Tân An" in listed and "Quận Ninh Kiều" in listed and not LINK.search(listed)


def test_a_ward_endpoint_feed_shows_what_its_unit_is_invited_to(browser: Browser, secretary: dict[str, str]) -> None:
    created = schedule(browser, secretary)
    path, _ = make_link(browser.login("ct.ninh-kieu.tan-an"))
    assert uids(other_browser(browser.app).get(path).content) == {created["uid"]}
    assert 'name="unit"' not in browser.get("/calendar/feeds").text  # a meeting room makes no unit links


def test_a_unit_feed_needs_a_secretary_of_that_unit_or_above(browser: Browser) -> None:
    browser.login("thuky.ninhkieu")
    assert browser.submit("/calendar/feeds", {"action": "create", "unit": "ct"}).status_code == 403
    assert browser.submit("/calendar/feeds", {"action": "create", "unit": "ct.cai-rang"}).status_code == 403
    make_link(browser, "ct.ninh-kieu.tan-an")
    official = other_browser(browser.app).login("canbo.tanan")
    assert official.submit("/calendar/feeds", {"action": "create", "unit": "ct.ninh-kieu.tan-an"}).status_code == 403


def test_the_page_needs_a_login_and_the_csrf_token(browser: Browser) -> None:
    assert browser.get("/calendar/feeds", follow_redirects=False).headers["location"].startswith("/login?next=/calendar/feeds")
    browser.login("lanhdao")
    assert browser.post("/calendar/feeds", data={"action": "create"}).status_code == 403


# --- one meeting's download -----------------------------------------------------------------------


def test_a_meeting_downloads_as_publish_for_those_who_may_see_it(browser: Browser, secretary: dict[str, str]) -> None:
    created = schedule(browser, secretary, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3")
    response = browser.get(f"/api/meetings/{created['id']}/ics", headers=secretary)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="giaoban-{created["id"]}.ics"'
    parsed = parse_with_icaljs(response.content)
    assert parsed["method"] == "PUBLISH"
    (event,) = parsed["events"]
    assert event["uid"] == created["uid"] and event["alarms"] and event["attendees"] == []
    assert len(parsed["occurrences"][created["uid"]]) == 3
    assert "Chương trình họp" in event["description"]  # the reader's language (Vietnamese by default)

    invited_ward = api_token(browser, "ct.ninh-kieu.tan-an")
    assert browser.get(f"/api/meetings/{created['id']}/ics", headers=invited_ward).status_code == 200
    uninvited = api_token(browser, "ct.cai-rang.le-binh")
    missing = browser.get(f"/api/meetings/{created['id']}/ics", headers=uninvited)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert browser.get("/api/meetings/999999/ics", headers=secretary).status_code == 404
    assert other_browser(browser.app).get(f"/api/meetings/{created['id']}/ics").status_code == 401


def test_the_download_is_in_the_api_description(browser: Browser) -> None:
    spec = browser.get("/api/openapi.json").json()
    get = spec["paths"]["/api/meetings/{id}/ics"]["get"]
    assert "text/calendar" in get["responses"]["200"]["content"] and {"401", "404"} <= set(get["responses"])


def test_an_administrator_may_make_a_link_for_any_unit(browser: Browser) -> None:
    browser.login("admin")
    page = browser.get("/calendar/feeds")
    assert page.status_code == 200 and 'value="ct.cai-rang.le-binh"' in page.text
    path, _ = make_link(browser, "ct.cai-rang.le-binh")
    assert other_browser(browser.app).get(path).status_code == 200


def test_a_one_off_meeting_changed_through_its_occurrence_is_one_event(browser: Browser, secretary: dict[str, str]) -> None:
    moved = schedule(browser, secretary)
    dropped = schedule(browser, secretary, title="Họp chuyên đề", start=at(monday(4), 14), end=at(monday(4), 16))
    tuesday = monday() + dt.timedelta(days=1)
    response = browser.patch(f"/api/meetings/{moved['id']}/occurrences/{at(monday(), 8)}",
                             json={"start": at(tuesday, 9), "end": at(tuesday, 11), "confirm": True}, headers=secretary)
    assert response.status_code == 200, response.text
    response = browser.post(f"/api/meetings/{dropped['id']}/occurrences/{at(monday(4), 14)}/cancel", json={}, headers=secretary)
    assert response.status_code == 200, response.text
    path, _ = make_link(browser.login("lanhdao"))

    events = {e["uid"]: e for e in parse_with_icaljs(other_browser(browser.app).get(path).content)["events"]}
    assert len(events) == 2 and all(e["recurrence_id"] is None and e["rrule"] is None for e in events.values())
    assert events[moved["uid"]]["dtstart"] == dt.datetime.fromisoformat(at(tuesday, 9)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert events[moved["uid"]]["sequence"] == 1 and events[moved["uid"]]["status"] == "CONFIRMED"
    assert events[dropped["uid"]]["status"] == "CANCELLED"
