"""Scheduling through the JSON API: plan, check, list, change, cancel; the bad inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token

CITY_WIDE = {"units": ["ct"], "levels": [{"under": "ct", "level": "district"}, {"under": "ct", "level": "ward"},
                                         {"under": "ct", "level": "department"}], "users": []}


@pytest.fixture
def secretary(browser: Browser) -> dict[str, str]:
    return api_token(browser, "thuky")


def test_create_a_meeting_as_the_contract_shows(browser: Browser, secretary: dict[str, str]) -> None:
    response = browser.post("/api/meetings", json=plan(), headers=secretary)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 1 and body["uid"].endswith("@giaoban")
    assert body["start"] == at(monday(), 8)
    units = [p["unit"] for p in body["participants"] if "unit" in p]
    assert len(units) == 14 and "ct.ninh-kieu.tan-an" in units and "ct.so-tttt" in units
    chair = [p for p in body["participants"] if p.get("user") == "lanhdao"]
    assert chair and chair[0]["role"] == "chair"
    assert body["counts"] == {"units": 14, "people": 1, "endpoints": 15, "by_level": {"department": 1, "ward": 13}}
    assert body["join_url"].endswith(f"/meetings/{body['id']}/room")
    again = browser.get(f"/api/meetings/{body['id']}", headers=secretary).json()
    assert again["agenda"] == plan()["agenda"] and again["title"] == plan()["title"]


def test_check_expands_the_city_wide_briefing_without_saving(browser: Browser, secretary: dict[str, str]) -> None:
    response = browser.post("/api/meetings/check", json=plan(participants=CITY_WIDE), headers=secretary)
    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {
        "units": 116, "people": 1, "endpoints": 117, "by_level": {"city": 1, "district": 9, "ward": 85, "department": 21}}
    listed = browser.get("/api/meetings", params={"start": at(monday(), 0), "end": at(monday() + dt.timedelta(days=1), 0)}, headers=secretary)
    assert listed.json()["total"] == 0


def test_a_weekly_series_lists_its_occurrences_across_months(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=10"), headers=secretary).json()
    start = monday()
    window = {"start": at(start, 0), "end": at(start + dt.timedelta(weeks=20), 0)}
    items = browser.get("/api/meetings", params=window, headers=secretary).json()["items"]
    assert [i["start"] for i in items] == [at(start + dt.timedelta(weeks=n), 8) for n in range(10)]
    assert all(i["meeting"] == created["id"] for i in items)


def test_a_hard_conflict_answers_409_unless_confirmed(browser: Browser, secretary: dict[str, str]) -> None:
    first = browser.post("/api/meetings", json=plan(participants=CITY_WIDE, recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"), headers=secretary)
    assert first.status_code == 201, first.text
    second = plan(title="Họp chuyên đề", start=at(monday(1 + 3), 9), end=at(monday(1 + 3), 11),
                  participants={"units": ["ct.ninh-kieu.tan-an"], "levels": [], "users": []}, chair="thuky")
    refused = browser.post("/api/meetings", json=second, headers=secretary)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "conflict"
    kinds = {c["kind"] for c in error["conflicts"]}
    assert "unit_busy" in kinds
    busy = next(c for c in error["conflicts"] if c["kind"] == "unit_busy")
    assert busy["severity"] == "hard" and busy["meeting"] == first.json()["id"] and busy["units"] == ["ct.ninh-kieu.tan-an"]
    confirmed = browser.post("/api/meetings", json={**second, "confirm": True}, headers=secretary)
    assert confirmed.status_code == 201
    assert any(c["kind"] == "unit_busy" for c in confirmed.json()["conflicts"])


def test_the_chair_cannot_chair_two_meetings_at_once(browser: Browser, secretary: dict[str, str]) -> None:
    assert browser.post("/api/meetings", json=plan(), headers=secretary).status_code == 201
    other = plan(participants={"units": ["ct.cai-rang"], "levels": [], "users": []}, start=at(monday(), 9), end=at(monday(), 11))
    refused = browser.post("/api/meetings", json=other, headers=secretary)
    assert refused.status_code == 409
    assert [c["kind"] for c in refused.json()["error"]["conflicts"]] == ["chair_busy"]


def test_overlapping_meetings_beyond_the_media_capacity_conflict(browser: Browser, app: Starlette, secretary: dict[str, str]) -> None:
    app.state.giaoban.settings.max_endpoints = 110
    assert browser.post("/api/meetings", json=plan(participants={"units": [], "levels": [{"under": "ct", "level": "ward"}], "users": []}), headers=secretary).status_code == 201
    other = plan(chair="thuky", participants={"units": [], "levels": [{"under": "ct", "level": "department"}, {"under": "ct", "level": "district"}], "users": []})
    refused = browser.post("/api/meetings", json=other, headers=secretary)
    assert refused.status_code == 409
    capacity = [c for c in refused.json()["error"]["conflicts"] if c["kind"] == "capacity"]
    assert capacity and capacity[0]["endpoints"] == 86 + 31


def test_short_notice_for_a_regular_meeting_is_a_warning_that_does_not_block(browser: Browser, secretary: dict[str, str]) -> None:
    soon = dt.date.today() + dt.timedelta(days=1)
    while soon.weekday() >= 5:  # a weekday, so that only the notice is in question
        soon += dt.timedelta(days=1)
    response = browser.post("/api/meetings", json=plan(start=at(soon, 8), end=at(soon, 9)), headers=secretary)
    assert response.status_code == 201
    warnings = [(c["kind"], c["severity"]) for c in response.json()["conflicts"]]
    assert ("short_notice", "warning") in warnings and all(severity == "warning" for _, severity in warnings)
    ad_hoc = browser.post("/api/meetings", json=plan(kind="ad_hoc", chair="thuky", participants={"units": ["ct.co-do"], "levels": [], "users": []},
                                                      start=at(soon, 8), end=at(soon, 9)), headers=secretary)
    assert ad_hoc.status_code == 201 and "short_notice" not in [c["kind"] for c in ad_hoc.json()["conflicts"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end": at(monday(), 7)}, "end"),
        ({"end": at(monday(), 8)}, "end"),
        ({"end": at(monday(), 21)}, "end"),
        ({"recurrence": "FREQ=YEARLY;COUNT=3"}, "recurrence"),
        ({"recurrence": "FREQ=WEEKLY"}, "recurrence"),
        ({"recurrence": "FREQ=DAILY;COUNT=800"}, "recurrence"),
        ({"participants": {"units": ["ct.khong-co"], "levels": [], "users": []}}, "participants.units"),
        ({"participants": {"units": [], "levels": [{"under": "ct.ninh-kieu", "level": "galaxy"}], "users": []}}, "participants.levels"),
        ({"participants": {"units": [], "levels": [], "users": ["khong.co.ai"]}}, "participants.users"),
        ({"chair": "ct.ninh-kieu"}, "chair"),
        ({"host_unit": "ct.khong-co"}, "host_unit"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"start": "2026-12-07T08:00:00", "end": "2026-12-07T09:00:00"}, "start"),
    ],
)
def test_bad_plans_name_the_field_and_save_nothing(browser: Browser, secretary: dict[str, str], changes: dict[str, Any], field: str) -> None:
    response = browser.post("/api/meetings", json=plan(**changes), headers=secretary)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"], response.json()
    listed = browser.get("/api/meetings", params={"start": at(monday(), 0), "end": at(monday() + dt.timedelta(days=400), 0)}, headers=secretary)
    assert listed.json()["total"] == 0


def test_markup_in_text_is_kept_as_text(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(title="<b>Họp</b><script>x()</script>"), headers=secretary).json()
    assert created["title"] == "<b>Họp</b><script>x()</script>"


def test_a_stale_version_is_refused_and_nothing_is_overwritten(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(), headers=secretary).json()
    first = browser.patch(f"/api/meetings/{created['id']}", json={"version": 1, "title": "Giao ban tuần (đổi giờ)"}, headers=secretary)
    assert first.status_code == 200 and first.json()["version"] == 2
    second = browser.patch(f"/api/meetings/{created['id']}", json={"version": 1, "title": "Bản của thư ký thứ hai"}, headers=secretary)
    assert second.status_code == 409
    assert list(second.json()["error"]["fields"]) == ["version"]
    assert browser.get(f"/api/meetings/{created['id']}", headers=secretary).json()["title"] == "Giao ban tuần (đổi giờ)"


def test_cancel_then_editing_is_refused(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(), headers=secretary).json()
    cancelled = browser.post(f"/api/meetings/{created['id']}/cancel", headers=secretary)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    edit = browser.patch(f"/api/meetings/{created['id']}", json={"version": cancelled.json()["version"], "title": "x"}, headers=secretary)
    assert edit.status_code == 409


def test_one_occurrence_moved_and_another_cancelled(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"), headers=secretary).json()
    second = monday() + dt.timedelta(weeks=1)
    third = monday() + dt.timedelta(weeks=2)
    moved = browser.patch(f"/api/meetings/{created['id']}/occurrences/{at(second, 8)}",
                          json={"start": at(second + dt.timedelta(days=1), 14), "end": at(second + dt.timedelta(days=1), 16)}, headers=secretary)
    assert moved.status_code == 200, moved.text
    assert browser.post(f"/api/meetings/{created['id']}/occurrences/{at(third, 8)}/cancel", json={}, headers=secretary).status_code == 200
    window = {"start": at(monday(), 0), "end": at(monday() + dt.timedelta(weeks=5), 0)}
    items = browser.get("/api/meetings", params=window, headers=secretary).json()["items"]
    assert [(i["start"], i["status"], i["changed"]) for i in items] == [
        (at(monday(), 8), "scheduled", False),
        (at(second + dt.timedelta(days=1), 14), "scheduled", True),
        (at(third, 8), "cancelled", True),
        (at(monday() + dt.timedelta(weeks=3), 8), "scheduled", False),
    ]
    one = browser.get(f"/api/meetings/{created['id']}/occurrences/{at(second, 8)}", headers=secretary).json()
    assert one["original_start"] == at(second, 8) and one["start"] == at(second + dt.timedelta(days=1), 14)
    missing = browser.get(f"/api/meetings/{created['id']}/occurrences/{at(second, 9)}", headers=secretary)
    assert missing.status_code == 404


def test_this_and_the_following_ends_the_series_and_starts_a_new_one(browser: Browser, secretary: dict[str, str]) -> None:
    created = browser.post("/api/meetings", json=plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=6"), headers=secretary).json()
    third = monday() + dt.timedelta(weeks=2)
    response = browser.patch(f"/api/meetings/{created['id']}/occurrences/{at(third, 8)}",
                             json={"start": at(third, 14), "end": at(third, 15, 30), "scope": "following"}, headers=secretary)
    assert response.status_code == 200, response.text
    follower = response.json()
    assert follower["id"] != created["id"] and follower["previous_id"] == created["id"]
    assert follower["recurrence"] == "FREQ=WEEKLY;COUNT=4;BYDAY=MO"
    window = {"start": at(monday(), 0), "end": at(monday() + dt.timedelta(weeks=8), 0)}
    items = browser.get("/api/meetings", params=window, headers=secretary).json()["items"]
    assert [i["start"][11:16] for i in items] == ["08:00", "08:00", "14:00", "14:00", "14:00", "14:00"]
    old = browser.get(f"/api/meetings/{created['id']}", headers=secretary).json()
    assert "UNTIL=" in old["recurrence"]


def test_monthly_series_cross_the_year(browser: Browser, secretary: dict[str, str]) -> None:
    response = browser.post("/api/meetings", json=plan(start="2027-11-30T08:00:00+07:00", end="2027-11-30T09:00:00+07:00",
                                                       recurrence="FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4"), headers=secretary)
    assert response.status_code == 201, response.text
    items = browser.get("/api/meetings", params={"start": "2027-11-01T00:00:00+07:00", "end": "2028-04-01T00:00:00+07:00"}, headers=secretary).json()["items"]
    assert [i["start"][:10] for i in items] == ["2027-11-30", "2027-12-31", "2028-01-31", "2028-02-29"]


def test_only_secretaries_of_the_host_or_above_schedule(browser: Browser) -> None:
    district = api_token(browser, "thuky.ninhkieu")
    assert browser.post("/api/meetings", json=plan(host_unit="ct.ninh-kieu", chair="thuky.ninhkieu"), headers=district).status_code == 201
    refused = browser.post("/api/meetings", json=plan(), headers=district)  # hosted by the city
    assert refused.status_code == 403
    official = api_token(browser, "canbo.tanan")
    assert browser.post("/api/meetings", json=plan(host_unit="ct.ninh-kieu.tan-an", chair="canbo.tanan"), headers=official).status_code == 403


def test_people_see_only_what_they_or_their_unit_are_invited_to(browser: Browser, secretary: dict[str, str]) -> None:
    city = browser.post("/api/meetings", json=plan(), headers=secretary).json()  # Ninh Kiều wards invited
    other = browser.post("/api/meetings", json=plan(chair="thuky", start=at(monday(), 13), end=at(monday(), 14),
                                                    participants={"units": ["ct.cai-rang"], "levels": [], "users": []}), headers=secretary).json()
    window = {"start": at(monday(), 0), "end": at(monday() + dt.timedelta(days=1), 0)}
    ward_room = api_token(browser, "ct.ninh-kieu.tan-an")
    assert [i["meeting"] for i in browser.get("/api/meetings", params=window, headers=ward_room).json()["items"]] == [city["id"]]
    assert browser.get(f"/api/meetings/{other['id']}", headers=ward_room).status_code == 404
    official = api_token(browser, "canbo.tanan")  # an official of an invited ward
    assert browser.get(f"/api/meetings/{city['id']}", headers=official).status_code == 200
    district = api_token(browser, "thuky.ninhkieu")
    assert browser.get(f"/api/meetings/{other['id']}", headers=district).status_code == 404
    assert browser.patch(f"/api/meetings/{city['id']}", json={"version": 1, "title": "x"}, headers=official).status_code == 403


def test_unit_filter_and_bad_windows(browser: Browser, secretary: dict[str, str]) -> None:
    browser.post("/api/meetings", json=plan(), headers=secretary)
    window = {"start": at(monday(), 0), "end": at(monday() + dt.timedelta(days=1), 0)}
    assert browser.get("/api/meetings", params={**window, "unit": "ct.cai-rang"}, headers=secretary).json()["total"] == 0
    assert browser.get("/api/meetings", params={**window, "unit": "ct.ninh-kieu.an-cu"}, headers=secretary).json()["total"] == 1
    assert browser.get("/api/meetings", params={**window, "unit": "ct.khong-co"}, headers=secretary).status_code == 404
    assert browser.get("/api/meetings", params={"start": "yesterday", "end": window["end"]}, headers=secretary).status_code == 422
    assert browser.get("/api/meetings", params={"start": window["end"], "end": window["start"]}, headers=secretary).status_code == 422


def test_title_search_ignores_diacritics_and_case(browser: Browser, secretary: dict[str, str]) -> None:
    browser.post("/api/meetings", json=plan(title="Giao ban công tác phòng chống lụt bão"), headers=secretary)
    window = {"start": at(monday(), 0), "end": at(monday() + dt.timedelta(days=1), 0)}
    for q in ("lut bao", "LỤT BÃO", "phong chong"):
        assert browser.get("/api/meetings", params={**window, "q": q}, headers=secretary).json()["total"] == 1, q
    assert browser.get("/api/meetings", params={**window, "q": "100%_"}, headers=secretary).json()["total"] == 0


def test_a_series_landing_on_tet_or_a_weekend_is_warned_about(browser: Browser, secretary: dict[str, str]) -> None:
    # Lunar new year 2027 is Saturday 6 Feb; Monday 8 Feb 2027 is a Tết day off.
    body = plan(start="2027-01-25T08:00:00+07:00", end="2027-01-25T10:00:00+07:00", recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4")
    response = browser.post("/api/meetings", json=body, headers=secretary)
    assert response.status_code == 201, response.text
    day_off = [c for c in response.json()["conflicts"] if c["kind"] == "day_off"]
    assert [(c["occurrence"][:10], c["severity"]) for c in day_off] == [("2027-02-08", "warning")]
    assert "Tết" in day_off[0]["message"]
    saturday = plan(kind="ad_hoc", start="2027-03-06T08:00:00+07:00", end="2027-03-06T09:00:00+07:00", chair="thuky",
                    participants={"units": ["ct.co-do"], "levels": [], "users": []})
    assert [c["kind"] for c in browser.post("/api/meetings/check", json=saturday, headers=secretary).json()["conflicts"]] == ["day_off"]


def test_times_of_a_meeting_with_records_cannot_change(browser: Browser, app: Starlette, secretary: dict[str, str]) -> None:
    from server.records import service as records
    from server.units import service as units

    created = browser.post("/api/meetings", json=plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=4"), headers=secretary).json()
    with app.state.giaoban.db.session() as session:
        tan_an = units.by_code(session, "ct.ninh-kieu.tan-an")
        first = dt.datetime.fromisoformat(created["start"]).astimezone(dt.UTC)
        records.set_status(session, created["id"], first, tan_an.id or 0, "present_online")
    moved = browser.patch(f"/api/meetings/{created['id']}", json={"version": 1, "start": at(monday(), 9), "end": at(monday(), 11)}, headers=secretary)
    assert moved.status_code == 409
    assert "điểm danh" in moved.json()["error"]["message"]
    retitled = browser.patch(f"/api/meetings/{created['id']}", json={"version": 1, "title": "Giao ban tuần (mới)"}, headers=secretary)
    assert retitled.status_code == 200  # what does not touch the occurrences still changes
    later = at(monday() + dt.timedelta(weeks=2), 8)
    following = browser.patch(f"/api/meetings/{created['id']}/occurrences/{later}",
                              json={"start": at(monday() + dt.timedelta(weeks=2), 9), "end": at(monday() + dt.timedelta(weeks=2), 11), "scope": "following"},
                              headers=secretary)
    assert following.status_code == 200  # the records are before the cut
