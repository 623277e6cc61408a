"""The scheduling pages, used as a secretary, a leader and a ward official would: plan the
city-wide briefing, check it, save it, see conflicts, fix mistakes, move and cancel
occurrences, browse the list and the agenda. Pages are read in English (the source strings),
so the assertions hold whatever the Vietnamese catalogue says."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from starlette.applications import Starlette

from server.i18n import LANG_COOKIE
from server.meetings.forms import PlanForm, build_rule, simple_repeat
from server.meetings.participants import Choice, LevelChoice
from server.meetings.service import MeetingInput
from tests.support.web import Browser, api_token, other_browser

LOCAL = dt.timezone(dt.timedelta(hours=7))
CITY_LEVELS = [("district", "ct"), ("ward", "ct"), ("department", "ct")]


def monday(weeks_ahead: int = 3) -> dt.date:
    today = dt.date.today()
    return today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7 * weeks_ahead)


def dmy(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def utc_key(day: dt.date, hour: int) -> str:
    """An occurrence's name in addresses: the original start in UTC, the + escaped."""
    moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL).astimezone(dt.UTC)
    return quote(moment.isoformat(), safe=":")


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def briefing(**changes: Any) -> dict[str, str]:
    """The weekly city-wide briefing as the secretary fills in the form."""
    form = {
        "title": "Giao ban tuần — UBND thành phố", "kind": "regular", "host_unit": "ct", "chair": "lanhdao",
        "date": monday().isoformat(), "start_time": "08:00", "end_time": "10:00",
        "repeat": "weekly", "repeat_end": "count", "repeat_count": "10", "repeat_until": "", "rrule": "",
        "agenda": "Tình hình kinh tế - xã hội tuần qua\nNhiệm vụ tuần tới", "description": "",
        "units_text": "ct", "users": "", "action": "save",
    }
    for index, (level, under) in enumerate(CITY_LEVELS):
        form[f"level-{index}-level"], form[f"level-{index}-under"] = level, under
    form.update(changes)
    return form


@pytest.fixture
def secretary(browser: Browser) -> Browser:
    browser.cookies.set(LANG_COOKIE, "en")
    return browser.login("thuky")


def as_user(app: Starlette, username: str) -> Browser:
    client = other_browser(app)
    client.cookies.set(LANG_COOKIE, "en")
    return client.login(username)


Listed = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def saved_occurrences(app: Starlette) -> Listed:
    """What the API lists for the city's secretary in the coming year (a client of its own:
    the API token is asked for without the page session's cookie)."""

    def listed() -> list[dict[str, Any]]:
        with other_browser(app) as client:
            token = api_token(client, "thuky")
            start = dt.datetime.combine(dt.date.today(), dt.time(0), tzinfo=LOCAL)
            window = {"start": start.isoformat(), "end": (start + dt.timedelta(days=399)).isoformat()}
            items: list[dict[str, Any]] = client.get("/api/meetings", params=window, headers=token).json()["items"]
        return items

    return listed


def save(client: Browser, **changes: Any) -> int:
    response = client.submit("/meetings/new", briefing(**changes))
    assert response.status_code == 200, text_of(response.text)[:3000]
    found = re.search(r"/meetings/(\d+)\?saved=1$", str(response.url))
    assert found, response.url
    return int(found.group(1))


# --- planning the city-wide briefing ------------------------------------------------------


def test_the_secretary_checks_then_saves_the_city_wide_weekly_briefing(secretary: Browser, saved_occurrences: Listed) -> None:
    form = secretary.get("/meetings/new")
    assert form.status_code == 200
    assert 'name="action" value="check"' in form.text and 'name="action" value="save"' in form.text
    assert "Every phường / thị trấn / xã under Thành phố Cần Thơ (85)" in text_of(form.text)

    checked = secretary.submit("/meetings/new", briefing(action="check"))
    assert checked.status_code == 200
    seen = text_of(checked.text)
    assert "116 units" in seen and "1 person" in seen and "10 occurrences" in seen
    levels = dict(re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", checked.text))
    # levels are named by the kinds of their units, from the data
    assert levels == {"thành phố": "1", "quận / huyện": "9", "phường / thị trấn / xã": "85",
                      "văn phòng / sở / thanh tra / ban / đài": "21"}
    assert 'id="conflicts-title"' not in checked.text  # warnings (a holiday, short notice) may depend on the date
    assert saved_occurrences() == []  # Check saves nothing
    assert 'value="Giao ban tuần — UBND thành phố"' in checked.text  # the form keeps what was typed

    saved = secretary.submit("/meetings/new", briefing())
    assert saved.status_code == 200 and re.search(r"/meetings/\d+\?saved=1$", str(saved.url))
    page = text_of(saved.text)
    assert "The meeting was saved." in page
    assert "Weekly, 10 times" in page and "08:00–10:00" in page
    assert "Invited units (116)" in page and "Invited people (1)" in page
    # grouped by parent, in tree order: the city heads its districts and departments, each district its wards
    assert re.search(r"Thành phố Cần Thơ \(31\).*Quận Ninh Kiều \(13\).*Phường Tân An", page)
    assert "Trần Văn Minh Chair No answer yet" in page
    assert "No answer yet: 116" in page
    items = saved_occurrences()
    assert len(items) == 10 and items[0]["start"] == f"{monday().isoformat()}T08:00:00+07:00"


def test_a_second_overlapping_briefing_shows_its_conflicts_and_saves_only_when_confirmed(secretary: Browser, saved_occurrences: Listed) -> None:
    first = save(secretary, repeat="weekly", repeat_count="4")
    overlapping = briefing(title="Họp chuyên đề", chair="thuky", date=monday(1 + 3).isoformat(), start_time="09:00",
                           end_time="11:00", repeat="none", units_text="ct.ninh-kieu.tan-an ct.ninh-kieu.an-cu",
                           **{f"level-{i}-{part}": "" for i in range(3) for part in ("level", "under")})
    checked = secretary.submit("/meetings/new", {**overlapping, "action": "check"})
    assert checked.status_code == 200
    seen = text_of(checked.text)
    assert "1 conflict" in seen
    assert f"{dmy(monday(4))} 09:00" in seen
    assert f"Already invited to “Giao ban tuần — UBND thành phố” at {dmy(monday(4))} 08:00: Phường An Cư, Phường Tân An." in seen
    assert f'href="/meetings/{first}"' in checked.text
    assert 'name="confirm"' in checked.text

    refused = secretary.submit("/meetings/new", overlapping)
    assert refused.status_code == 409
    assert "1 conflict" in text_of(refused.text) and "Save anyway" in refused.text
    assert len(saved_occurrences()) == 4

    confirmed = secretary.submit("/meetings/new", {**overlapping, "confirm": "1"})
    assert confirmed.status_code == 200 and "The meeting was saved." in confirmed.text
    assert len(saved_occurrences()) == 5


def test_short_notice_is_a_warning_shown_apart_that_does_not_block(secretary: Browser) -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    checked = secretary.submit("/meetings/new", briefing(date=tomorrow.isoformat(), repeat="none", action="check"))
    assert checked.status_code == 200
    assert 'id="warnings-title"' in checked.text and 'id="conflicts-title"' not in checked.text
    assert "working day(s) of notice" in text_of(checked.text) and "Warnings do not stop saving." in checked.text
    assert secretary.submit("/meetings/new", briefing(date=tomorrow.isoformat(), repeat="none")).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"end_time": "07:00"}, "end", "The end must be after the start."),
        ({"end_time": "25:00"}, "end", "Give the time as HH:MM (24-hour)."),
        ({"date": "31/02/2027"}, "date", "Give the date as dd/mm/yyyy."),
        ({"repeat": "custom", "rrule": "FREQ=YEARLY;COUNT=3"}, "recurrence", "FREQ must be DAILY, WEEKLY or MONTHLY."),
        ({"repeat": "weekly", "repeat_count": "nhiều"}, "recurrence", "Give the number of times as a whole number."),
        ({"repeat": "daily", "repeat_count": "900"}, "recurrence", "COUNT must be between 1 and 800."),
        ({"units_text": "ct ct.khong-co"}, "participants-units", "Unknown unit codes: ct.khong-co"),
        ({"level-0-level": "galaxy"}, "participants-levels", "No active unit at level galaxy under Thành phố Cần Thơ."),
        ({"level-0-under": ""}, "participants-levels", "Choose both a level and a unit in each row."),
        ({"users": "khong.co.ai"}, "participants-users", "Unknown or disabled accounts: khong.co.ai"),
        ({"chair": "ct.ninh-kieu"}, "chair", "The chair is a person, not a meeting room."),
        ({"title": "   "}, "title", "The title is empty."),
    ],
)
def test_invalid_input_names_the_field_keeps_the_form_and_saves_nothing(
    secretary: Browser, saved_occurrences: Listed, changes: dict[str, str], field: str, message: str
) -> None:
    for action in ("check", "save"):
        response = secretary.submit("/meetings/new", briefing(action=action, **changes))
        assert response.status_code == 422, text_of(response.text)[:2000]
        error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', response.text)
        assert error and html.unescape(error.group(1)) == message, response.text
        assert "The meeting was not saved: some fields are invalid." in response.text
        assert 'value="08:00"' in response.text and "Nhiệm vụ tuần tới" in response.text  # kept as typed
    assert saved_occurrences() == []


def test_a_wrong_date_and_a_wrong_title_are_named_together(secretary: Browser) -> None:
    response = secretary.submit("/meetings/new", briefing(date="hôm nay", title=""))
    assert response.status_code == 422
    assert 'id="date-error"' in response.text and 'id="title-error"' in response.text
    assert 'id="recurrence-error"' not in response.text  # computed on a stand-in date: not shown


def test_monthly_and_until_choices_build_the_rule(secretary: Browser) -> None:
    first = next(d for d in (dt.date.today() + dt.timedelta(days=21 + n) for n in range(62)) if d.day == 31)
    until = first + dt.timedelta(days=200)
    meeting_id = save(secretary, date=first.isoformat(), repeat="monthly", repeat_end="until", repeat_until=until.isoformat())
    page = secretary.get(f"/meetings/{meeting_id}").text
    months = [first.replace(year=first.year + (first.month - 1 + k) // 12, month=(first.month - 1 + k) % 12 + 1, day=1) for k in range(8)]
    last = max(m.replace(day=31) for m in months if m.month in (1, 3, 5, 7, 8, 10, 12) and m.replace(day=31) <= until)
    assert f"Monthly, until {dmy(last)}" in text_of(page)  # the last occurrence, not the UNTIL bound
    dates = re.findall(r'<time datetime="(\d{4}-\d\d-\d\d)">', page)
    # months without a 31st are skipped, as calendars do
    assert dates and dates[0] == first.isoformat() and all(d.endswith("-31") for d in dates) and len(dates) < 7


# --- editing ------------------------------------------------------------------------------


def test_the_edit_form_shows_the_plan_and_a_stale_version_is_refused(app: Starlette, secretary: Browser) -> None:
    meeting_id = save(secretary)
    form = secretary.get(f"/meetings/{meeting_id}/edit")
    assert form.status_code == 200
    assert 'name="version" value="1"' in form.text
    assert '<option value="weekly" selected>' in form.text and 'value="10"' in form.text
    # the city's own levels come back as the ticked shortcuts, not as rows
    assert all(f'value="ct|{level}" checked' in form.text for level in ("district", "ward", "department"))
    assert '<option value="ward" selected>' not in form.text
    assert 'name="units" value="ct" checked' in form.text and re.search(r'name="units_text"[^>]*></textarea>', form.text)

    other = as_user(app, "thuky")
    changed = other.submit(f"/meetings/{meeting_id}/edit", briefing(title="Giao ban tuần (đổi giờ)", version="1"))
    assert changed.status_code == 200, text_of(changed.text)[:2000]

    stale = secretary.submit(f"/meetings/{meeting_id}/edit", briefing(title="Bản của thư ký thứ hai", version="1"))
    assert stale.status_code == 409
    assert "Someone else changed this meeting after you opened it" in text_of(stale.text)
    assert 'value="Bản của thư ký thứ hai"' in stale.text  # what was typed is not lost
    assert "Giao ban tuần (đổi giờ)" in secretary.get(f"/meetings/{meeting_id}").text


def test_saving_an_unchanged_series_keeps_its_moved_occurrences(secretary: Browser, saved_occurrences: Listed) -> None:
    meeting_id = save(secretary, repeat="weekly", repeat_count="3")
    second = monday() + dt.timedelta(weeks=1)
    moved = secretary.submit(f"/meetings/{meeting_id}/occurrences/{utc_key(second, 8)}",
                             {"action": "move", "version": "1", "date": second.isoformat(), "start_time": "14:00",
                              "end_time": "15:00", "title": "", "scope": "this"})
    assert moved.status_code == 200
    form = secretary.get(f"/meetings/{meeting_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form)
    assert version
    resaved = secretary.submit(f"/meetings/{meeting_id}/edit", briefing(repeat="weekly", repeat_count="3", version=version.group(1),
                                                                        description="Thêm mô tả"))
    assert resaved.status_code == 200
    assert [i["start"][11:16] for i in saved_occurrences()] == ["08:00", "14:00", "08:00"]


def test_a_cancelled_meeting_cannot_be_edited(secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="none")
    refused = secretary.submit(f"/meetings/{meeting_id}/cancel", {"version": "1"})
    assert refused.status_code == 422 and "Tick the box to confirm." in refused.text
    cancelled = secretary.submit(f"/meetings/{meeting_id}/cancel", {"version": "1", "confirm": "1"})
    assert cancelled.status_code == 200 and "This meeting was cancelled." in cancelled.text
    assert f"/meetings/{meeting_id}/edit" not in cancelled.text
    assert secretary.get(f"/meetings/{meeting_id}/edit").status_code == 409
    assert secretary.submit(f"/meetings/{meeting_id}/edit", briefing(version="2")).status_code == 409
    listed = secretary.get("/meetings", params={"from": monday().isoformat()})
    assert "Cancelled" in text_of(listed.text)


# --- who sees what --------------------------------------------------------------------------


def test_an_official_of_an_uninvited_ward_neither_finds_nor_opens_the_meeting(app: Starlette, secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="none", units_text="ct.ninh-kieu.an-cu",
                      **{f"level-{i}-{part}": "" for i in range(3) for part in ("level", "under")})
    official = as_user(app, "canbo.tanan")
    assert official.get(f"/meetings/{meeting_id}").status_code == 404
    assert official.get(f"/meetings/{meeting_id}/edit").status_code == 404
    listed = official.get("/meetings")
    assert listed.status_code == 200 and "Giao ban tuần" not in listed.text
    assert "New meeting" not in listed.text  # an official does not schedule
    assert official.get("/meetings/new").status_code == 403
    assert "Giao ban tuần" in secretary.get("/meetings").text and "New meeting" in secretary.get("/meetings").text


def test_a_district_secretary_plans_only_for_her_district(app: Starlette) -> None:
    district = as_user(app, "thuky.ninhkieu")
    form = district.get("/meetings/new")
    assert form.status_code == 200
    hosts = re.findall(r'<option value="([^"]+)"[^>]*>', form.text.split('id="host_unit"')[1].split("</select>")[0])
    assert hosts[0] == "ct.ninh-kieu" and len(hosts) == 14 and "ct" not in hosts
    assert "Every phường / thị trấn / xã under Quận Ninh Kiều (13)" in text_of(form.text)
    refused = district.submit("/meetings/new", briefing(action="check"))  # hosted by the city
    assert refused.status_code == 403
    assert re.search(r'id="host_unit-error">You do not act for this unit.</p>', refused.text)


def test_an_invited_official_sees_the_page_but_no_edit_controls(app: Starlette, secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="none")
    official = as_user(app, "canbo.tanan")
    page = official.get(f"/meetings/{meeting_id}")
    assert page.status_code == 200 and "Phường Tân An" in page.text
    assert f"/meetings/{meeting_id}/edit" not in page.text and "/cancel" not in page.text
    assert f"/meetings/{meeting_id}/documents" in page.text
    assert f"/meetings/{meeting_id}/occurrences/{utc_key(monday(), 8)}/record" in page.text


def test_the_list_filters_by_text_unit_and_dates(secretary: Browser) -> None:
    save(secretary, repeat="none")
    save(secretary, title="Họp Sở Tài chính", repeat="none", start_time="14:00", end_time="15:00", units_text="ct.so-tc",
         **{f"level-{i}-{part}": "" for i in range(3) for part in ("level", "under")})
    assert "Họp Sở Tài chính" in secretary.get("/meetings", params={"q": "so tai chinh"}).text
    assert "Giao ban tuần" not in secretary.get("/meetings", params={"q": "tai chinh"}).text
    by_unit = secretary.get("/meetings", params={"unit": "ct.ninh-kieu.tan-an"}).text
    assert "Giao ban tuần" in by_unit and "Họp Sở Tài chính" not in by_unit
    later = secretary.get("/meetings", params={"from": (monday() + dt.timedelta(days=1)).isoformat()}).text
    assert "Giao ban tuần" not in later
    unknown = secretary.get("/meetings", params={"unit": "ct.khong-co"})
    assert unknown.status_code == 422 and "Unknown unit code: ct.khong-co" in unknown.text
    too_long = secretary.get("/meetings", params={"from": "2027-01-01", "to": "2029-01-01"})
    assert too_long.status_code == 422 and "Ask for at most 400 days at a time." in too_long.text


# --- occurrences and the agenda -------------------------------------------------------------


def test_moving_one_occurrence_and_cancelling_another_shows_in_the_list(secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="weekly", repeat_count="4")
    second, third = monday() + dt.timedelta(weeks=1), monday() + dt.timedelta(weeks=2)
    page = secretary.get(f"/meetings/{meeting_id}/occurrences/{utc_key(second, 8)}")
    assert page.status_code == 200 and f'value="{second.isoformat()}"' in page.text
    moved_day = second + dt.timedelta(days=1)
    moved = secretary.submit(f"/meetings/{meeting_id}/occurrences/{utc_key(second, 8)}",
                             {"action": "move", "version": "1", "date": moved_day.isoformat(), "start_time": "14:00",
                              "end_time": "16:00", "title": "Giao ban tuần (dời sang thứ Ba)", "scope": "this"})
    assert moved.status_code == 200 and str(moved.url).endswith(f"/meetings/{meeting_id}?saved=1")
    unconfirmed = secretary.submit(f"/meetings/{meeting_id}/occurrences/{utc_key(third, 8)}",
                                   {"action": "cancel", "version": "2", "cancel_scope": "this"})
    assert unconfirmed.status_code == 422 and "Tick the box to confirm." in unconfirmed.text
    cancelled = secretary.submit(f"/meetings/{meeting_id}/occurrences/{utc_key(third, 8)}",
                                 {"action": "cancel", "version": "2", "cancel_scope": "this", "cancel_confirm": "1"})
    assert cancelled.status_code == 200

    listed = secretary.get("/meetings").text
    rows = re.findall(r'<tr class="([^"]*)">(.*?)</tr>', listed, re.S)
    seen = [(cls.strip(), text_of(row).strip()) for cls, row in rows]
    assert len(seen) == 4
    assert dmy(moved_day) in seen[1][1] and "14:00–16:00" in seen[1][1] and "dời sang thứ Ba" in seen[1][1] and "Changed" in seen[1][1]
    assert seen[2][0] == "cancelled" and dmy(third) in seen[2][1] and "Cancelled" in seen[2][1]
    assert seen[3][0] == "" and "Scheduled" in seen[3][1]


def test_a_stale_occurrence_change_and_this_and_following(secretary: Browser, saved_occurrences: Listed) -> None:
    meeting_id = save(secretary, repeat="weekly", repeat_count="4")
    third = monday() + dt.timedelta(weeks=2)
    url = f"/meetings/{meeting_id}/occurrences/{utc_key(third, 8)}"
    stale = secretary.submit(url, {"action": "move", "version": "7", "date": third.isoformat(), "start_time": "14:00",
                                   "end_time": "15:00", "title": "", "scope": "following"})
    assert stale.status_code == 409 and "Someone else changed this meeting" in text_of(stale.text)
    bad = secretary.submit(url, {"action": "move", "version": "1", "date": third.isoformat(), "start_time": "16:00",
                                 "end_time": "15:00", "title": "", "scope": "following"})
    assert bad.status_code == 422 and 'id="end-error"' in bad.text
    following = secretary.submit(url, {"action": "move", "version": "1", "date": third.isoformat(), "start_time": "14:00",
                                       "end_time": "15:00", "title": "", "scope": "following"})
    assert following.status_code == 200
    follower = re.search(r"/meetings/(\d+)\?saved=1$", str(following.url))
    assert follower and int(follower.group(1)) != meeting_id
    assert "The series this one continues" in following.text
    assert [i["start"][11:16] for i in saved_occurrences()] == ["08:00", "08:00", "14:00", "14:00"]


def test_the_week_agenda_of_a_ward_shows_the_briefing_on_monday(secretary: Browser) -> None:
    save(secretary)
    week = secretary.get("/agenda", params={"unit": "ct.ninh-kieu.tan-an", "date": (monday() + dt.timedelta(days=3)).isoformat()})
    assert week.status_code == 200
    days = re.findall(r'<section class="agenda-day[^"]*" aria-labelledby="day-([\d-]+)">(.*?)</section>', week.text, re.S)
    assert [d for d, _ in days] == [(monday() + dt.timedelta(days=n)).isoformat() for n in range(7)]
    assert "Giao ban tuần" in days[0][1] and "08:00–10:00" in days[0][1]
    assert all("Giao ban tuần" not in body for _, body in days[1:])
    assert "Agenda of Phường Tân An" in text_of(week.text)
    assert f"date={(monday() - dt.timedelta(weeks=1)).isoformat()}" in week.text  # previous week
    day = secretary.get("/agenda", params={"unit": "ct.cai-rang", "view": "day", "date": monday().isoformat()})
    assert day.status_code == 200 and "Giao ban tuần" in day.text  # every ward of the city is invited
    none = secretary.get("/agenda", params={"view": "day", "date": (monday() + dt.timedelta(days=1)).isoformat()})
    assert "No meeting." in none.text


def test_the_agenda_defaults_to_the_viewers_unit_and_strikes_cancelled_ones(app: Starlette, secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="none")
    secretary.submit(f"/meetings/{meeting_id}/cancel", {"version": "1", "confirm": "1"})
    ward = as_user(app, "ct.ninh-kieu.tan-an")  # the ward's meeting room
    page = ward.get("/agenda", params={"date": monday().isoformat()})
    assert "Agenda of Phường Tân An" in text_of(page.text)
    assert re.search(r'<li class="cancelled[^"]*">.*?<s>Giao ban tuần', page.text, re.S)
    me = as_user(app, "lanhdao").get("/agenda", params={"person": "lanhdao", "date": monday().isoformat()})
    assert "Agenda of Trần Văn Minh" in text_of(me.text) and "Giao ban tuần" in me.text


# --- text is text ---------------------------------------------------------------------------


def test_markup_typed_in_a_meeting_is_shown_as_text(secretary: Browser) -> None:
    meeting_id = save(secretary, repeat="none", title="<b>Họp</b><script>x()</script>",
                      description="Dòng một\n<img src=x onerror=alert(1)>", agenda="<i>Mục 1</i>")
    page = secretary.get(f"/meetings/{meeting_id}").text
    assert "<script>x()" not in page and "<img src=x" not in page and "<i>Mục" not in page
    assert "&lt;b&gt;Họp&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;" in page
    assert "Dòng một\n&lt;img src=x onerror=alert(1)&gt;" in page  # line breaks kept (CSS pre-line)
    assert "&lt;script&gt;" in secretary.get("/meetings").text
    assert "&lt;script&gt;" in secretary.get("/agenda", params={"date": monday().isoformat()}).text


def test_the_navigation_links_to_meetings_and_the_agenda(secretary: Browser) -> None:
    home = secretary.get("/").text
    assert 'href="/meetings"' in home and 'href="/agenda"' in home


def test_pages_need_a_login(browser: Browser) -> None:
    for path in ("/meetings", "/meetings/new", "/agenda", "/meetings/1"):
        response = browser.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


# --- the form's own reading (no server) -------------------------------------------------------


def test_repeat_choices_become_rules_and_come_back() -> None:
    day = dt.date(2026, 12, 9)  # a Wednesday
    assert build_rule("weekly", day, "count", "10", "", "") == "FREQ=WEEKLY;BYDAY=WE;COUNT=10"
    assert build_rule("monthly", day, "until", "", "2027-06-30", "") == "FREQ=MONTHLY;BYMONTHDAY=9;UNTIL=20270630"
    assert build_rule("weekdays", day, "count", "5", "", "") == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=5"
    assert build_rule("none", day, "count", "", "", "") == ""
    start = dt.datetime(2026, 12, 9, 1, tzinfo=dt.UTC)
    assert simple_repeat("FREQ=WEEKLY;COUNT=10;BYDAY=WE", start).repeat == "weekly"
    until = simple_repeat("FREQ=MONTHLY;UNTIL=20270630T165959Z;BYMONTHDAY=9", start)
    assert (until.repeat, until.repeat_end, until.repeat_until) == ("monthly", "until", "2027-06-30")
    cut = simple_repeat("FREQ=WEEKLY;UNTIL=20270105T005959Z;BYDAY=WE", start)  # a series cut before one occurrence
    assert (cut.repeat, cut.rrule) == ("custom", "FREQ=WEEKLY;UNTIL=20270105T005959Z;BYDAY=WE")


def test_a_stored_plan_fills_the_form_and_reads_back_the_same() -> None:
    plan = MeetingInput(
        title="Giao ban", start=dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC), end=dt.datetime(2026, 12, 7, 3, tzinfo=dt.UTC),
        host_unit="ct", chair="lanhdao", agenda=("Một", "Hai"),
        participants=Choice(units=("ct", "ct.old-ward"), levels=(LevelChoice("ct", "ward"), LevelChoice("ct.ninh-kieu", "ward")), users=("thuky",)),
        recurrence="FREQ=WEEKLY;COUNT=10;BYDAY=MO",
    )
    form = PlanForm.from_input(plan, checkable={"ct"}, quick={("ct", "ward")}, version=3)
    assert (form.date, form.start_time, form.end_time) == ("2026-12-07", "08:00", "10:00")
    assert form.units == ("ct",) and form.units_text == "ct.old-ward" and form.quick_levels == ("ct|ward",)
    parsed = form.to_input()
    assert not parsed.errors
    assert parsed.data.participants == plan.participants
    assert parsed.data.start == plan.start and parsed.data.agenda == plan.agenda
    assert parsed.data.recurrence == "FREQ=WEEKLY;BYDAY=MO;COUNT=10"
