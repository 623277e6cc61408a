"""Roll-call and minutes of an occurrence: through the page and the API, the print-ready minutes,
the attendance CSV, the bad inputs, stale minutes, and who may read or change them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any
from urllib.parse import quote

import pytest
from starlette.applications import Starlette

from server.errors import InvalidInput
from server.i18n import Catalogues
from server.records import service as records
from tests.support.meetings import at, monday, plan
from tests.support.web import Browser, api_token, other_browser

TAN_AN = "ct.ninh-kieu.tan-an"
SO_TTTT = "ct.so-tttt"



@pytest.fixture
def secretary(browser: Browser) -> dict[str, str]:
    return api_token(browser, "thuky")


@pytest.fixture
def meeting(browser: Browser, secretary: dict[str, str]) -> int:
    response = browser.post("/api/meetings", json=plan(recurrence="FREQ=WEEKLY;BYDAY=MO;COUNT=3"), headers=secretary)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def page_url(meeting: int, start: str | None = None) -> str:
    return f"/meetings/{meeting}/occurrences/{quote(start or at(monday(), 8), safe='')}/record"


def api_url(meeting: int, what: str, start: str | None = None) -> str:
    return f"/api/meetings/{meeting}/occurrences/{quote(start or at(monday(), 8), safe='')}/{what}"


def by_unit(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["unit"]: i for i in items}


# --- roll-call ------------------------------------------------------------------------------


def test_the_roll_call_round_trips_through_the_page_and_the_api(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.login("thuky")
    page = browser.get(page_url(meeting))
    assert page.status_code == 200 and "Phường Tân An" in page.text and f'name="status-{TAN_AN}"' in page.text
    saved = browser.submit(page_url(meeting), {"section": "roll_call", f"status-{TAN_AN}": "absent",
                                               f"reason-{TAN_AN}": "Đi công tác tỉnh", f"status-{SO_TTTT}": "present_online"})
    assert saved.status_code == 200 and str(saved.url).endswith("?done=roll_call"), saved.text[:2000]
    assert 'value="Đi công tác tỉnh"' in saved.text
    items = by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])
    assert len(items) == 14
    assert (items[TAN_AN]["status"], items[TAN_AN]["reason"], items[TAN_AN]["automatic"]) == ("absent", "Đi công tác tỉnh", False)
    assert items[SO_TTTT]["status"] == "present_online" and items[SO_TTTT]["reason"] == ""
    assert items["ct.ninh-kieu.an-hoa"]["status"] == "unknown" and items["ct.ninh-kieu.an-hoa"]["updated_at"] is None
    assert items[TAN_AN]["parent"] == "Quận Ninh Kiều"

    put = browser.put(api_url(meeting, "roll-call"), json={"entries": [
        {"unit": TAN_AN, "status": "present_in_person"}, {"unit": "ct.ninh-kieu.an-hoa", "status": "absent", "reason": "Ốm"}]},
        headers=secretary)
    assert put.status_code == 200, put.text
    items = by_unit(put.json()["items"])
    assert (items[TAN_AN]["status"], items[TAN_AN]["reason"]) == ("present_in_person", "")  # a reason only goes with absence
    assert items["ct.ninh-kieu.an-hoa"]["reason"] == "Ốm" and items[SO_TTTT]["status"] == "present_online"
    # another occurrence of the series has its own roll-call
    second = by_unit(browser.get(api_url(meeting, "roll-call", at(monday() + dt.timedelta(weeks=1), 8)), headers=secretary).json()["items"])
    assert {i["status"] for i in second.values()} == {"unknown"}


@pytest.mark.parametrize(("entries", "field"), [
    ([{"unit": TAN_AN, "status": "absent"}], TAN_AN),
    ([{"unit": TAN_AN, "status": "absent", "reason": "   "}], TAN_AN),
    ([{"unit": TAN_AN, "status": "late"}], TAN_AN),
    ([{"unit": TAN_AN, "status": "absent", "reason": "x" * 501}], TAN_AN),
    ([{"unit": "ct.cai-rang", "status": "present_online"}], "ct.cai-rang"),
    ([{"unit": TAN_AN, "status": "present_online"}, {"unit": TAN_AN, "status": "absent", "reason": "x"}], TAN_AN),
])
def test_a_bad_roll_call_entry_names_its_unit_and_nothing_is_saved(
    browser: Browser, meeting: int, secretary: dict[str, str], entries: list[dict[str, str]], field: str
) -> None:
    good = {"unit": SO_TTTT, "status": "present_in_person"}
    response = browser.put(api_url(meeting, "roll-call"), json={"entries": [good, *entries]}, headers=secretary)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]
    items = by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])
    assert {i["status"] for i in items.values()} == {"unknown"}


def test_the_page_shows_roll_call_errors_beside_the_unit_and_keeps_what_was_typed(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.login("thuky")
    page = browser.submit(page_url(meeting), {"section": "roll_call", f"status-{TAN_AN}": "absent", f"reason-{TAN_AN}": "",
                                              f"status-{SO_TTTT}": "present_online", "status-ct.cai-rang": "absent",
                                              "reason-ct.cai-rang": "x"})
    assert page.status_code == 422
    assert f'id="error-{TAN_AN}"' in page.text and "ct.cai-rang" in page.text
    assert re.search(rf'name="status-{re.escape(SO_TTTT)}".*?value="present_online" selected', page.text, re.S)
    items = by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])
    assert items[SO_TTTT]["status"] == "unknown"


def test_an_automatic_presence_fills_a_blank_but_never_replaces_the_secretary(app: Starlette, browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    db = app.state.giaoban.db
    start = dt.datetime.fromisoformat(at(monday(), 8))
    browser.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "absent", "reason": "Mất điện"}]}, headers=secretary)

    def unit_id(session: Any, code: str) -> int:
        from server.units import service as units

        return int(units.by_code(session, code).id or 0)

    for code in (TAN_AN, SO_TTTT):
        db.call(records.set_status, meeting, start, db.call(unit_id, code), "present_online", automatic=True)
    items = by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])
    assert (items[TAN_AN]["status"], items[TAN_AN]["automatic"]) == ("absent", False)
    assert (items[SO_TTTT]["status"], items[SO_TTTT]["automatic"]) == ("present_online", True)
    # the secretary's unchanged form leaves the automatic entry automatic
    browser.login("thuky")
    browser.submit(page_url(meeting), {"section": "roll_call", f"status-{SO_TTTT}": "present_online", f"reason-{SO_TTTT}": ""})
    assert by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])[SO_TTTT]["automatic"] is True
    with pytest.raises(InvalidInput):
        db.call(records.set_status, meeting, start, db.call(unit_id, "ct.cai-rang"), "present_online", automatic=True)


# --- minutes --------------------------------------------------------------------------------


def test_minutes_default_to_the_chair_and_the_roll_call_then_round_trip_through_the_page(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.put(api_url(meeting, "roll-call"), json={"entries": [
        {"unit": TAN_AN, "status": "absent", "reason": "Đi công tác"}, {"unit": SO_TTTT, "status": "present_in_person"}]}, headers=secretary)
    browser.login("thuky")
    page = browser.get(page_url(meeting))
    assert 'value="Trần Văn Minh"' in page.text  # the meeting's chair
    assert "Sở Thông tin và Truyền thông" in page.text and "Phường Tân An" in page.text and "Đi công tác" in page.text
    saved = browser.submit(page_url(meeting), {
        "section": "minutes", "version": "0", "chair": "Trần Văn Minh", "attendees": "Đại diện 14 đơn vị",
        "proceedings": "Sở TT&TT báo cáo.\nCác phường báo cáo.", "opinions": "Phường Tân An: đề nghị <hỗ trợ>.",
        "conclusions": "Giao các phường hoàn thành trước 15/12.",
    })
    assert saved.status_code == 200 and str(saved.url).endswith("?done=minutes"), saved.text[:2000]
    assert 'name="version" value="1"' in saved.text and "&lt;hỗ trợ&gt;" in saved.text
    minutes = browser.get(api_url(meeting, "minutes"), headers=secretary).json()
    assert minutes["version"] == 1 and minutes["saved"] is True and minutes["updated_by"] == "Nguyễn Thị Thu"
    assert minutes["proceedings"] == "Sở TT&TT báo cáo.\nCác phường báo cáo."

    stale = browser.submit(page_url(meeting), {"section": "minutes", "version": "0", "chair": "Ai đó", "attendees": "",
                                               "proceedings": "Ghi đè", "opinions": "", "conclusions": ""})
    assert stale.status_code == 409
    assert "Ghi đè" in stale.text  # what was typed is kept on the page to copy
    assert "Giao các phường hoàn thành trước 15/12." in stale.text  # what is saved is shown beside it
    assert browser.get(api_url(meeting, "minutes"), headers=secretary).json()["proceedings"] == "Sở TT&TT báo cáo.\nCác phường báo cáo."


def test_minutes_through_the_api_with_versions(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    fresh = browser.get(api_url(meeting, "minutes"), headers=secretary).json()
    assert fresh["version"] == 0 and fresh["saved"] is False and fresh["chair"] == "Trần Văn Minh"
    assert "Phường Tân An" in fresh["attendees"]
    first = browser.put(api_url(meeting, "minutes"), json={"version": 0, "proceedings": "Nội dung", "conclusions": "Kết luận"}, headers=secretary)
    assert first.status_code == 200 and first.json()["version"] == 1, first.text
    assert first.json()["chair"] == "Trần Văn Minh" and "Phường Tân An" in first.json()["attendees"]
    again = browser.put(api_url(meeting, "minutes"), json={"version": 0, "proceedings": "Ghi đè"}, headers=secretary)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict" and "version" in again.json()["error"]["fields"]
    second = browser.put(api_url(meeting, "minutes"), json={"version": 1, "conclusions": "Kết luận mới"}, headers=secretary)
    assert second.status_code == 200 and second.json()["version"] == 2
    assert second.json()["proceedings"] == "Nội dung" and second.json()["conclusions"] == "Kết luận mới"
    stale = browser.put(api_url(meeting, "minutes"), json={"version": 1, "conclusions": "Cũ"}, headers=secretary)
    assert stale.status_code == 409
    assert browser.get(api_url(meeting, "minutes"), headers=secretary).json()["conclusions"] == "Kết luận mới"


@pytest.mark.parametrize(("field", "length"), [("chair", 201), ("attendees", 5001), ("proceedings", 50_001), ("opinions", 50_001), ("conclusions", 50_001)])
def test_over_long_minutes_name_the_field_and_save_nothing(browser: Browser, meeting: int, secretary: dict[str, str], field: str, length: int) -> None:
    response = browser.put(api_url(meeting, "minutes"), json={"version": 0, "opinions": "ok", field: "a" * length}, headers=secretary)
    assert response.status_code == 422 and field in response.json()["error"]["fields"], response.text
    assert browser.get(api_url(meeting, "minutes"), headers=secretary).json()["version"] == 0


# --- who, and which occurrence --------------------------------------------------------------


def test_viewers_read_editors_write_others_are_told_nothing(app: Starlette, browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.put(api_url(meeting, "minutes"), json={"version": 0, "conclusions": "Kết luận của cuộc họp"}, headers=secretary)
    with other_browser(app) as official:
        token = api_token(official, "canbo.tanan")
        assert official.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "present_online"}]},
                            headers=token).status_code == 403
        assert official.put(api_url(meeting, "minutes"), json={"version": 1, "conclusions": "x"}, headers=token).status_code == 403
        assert official.get(api_url(meeting, "minutes"), headers=token).json()["conclusions"] == "Kết luận của cuộc họp"
        official.login("canbo.tanan")
        page = official.get(page_url(meeting))
        assert page.status_code == 200 and "Kết luận của cuộc họp" in page.text and 'name="section"' not in page.text
        assert official.submit(page_url(meeting), {"section": "minutes", "version": "1", "conclusions": "x"}).status_code == 403
        assert official.get(page_url(meeting) + "/print").status_code == 200
    with other_browser(app) as stranger:
        token = api_token(stranger, "ct.cai-rang")
        assert stranger.get(api_url(meeting, "roll-call"), headers=token).status_code == 404
        stranger.login("ct.cai-rang")
        for suffix in ("", "/print", "/attendance.csv"):
            assert stranger.get(page_url(meeting) + suffix).status_code == 404


def test_an_unknown_occurrence_is_404_and_a_malformed_one_422(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    assert browser.get(api_url(meeting, "roll-call", at(monday(), 9)), headers=secretary).status_code == 404
    assert browser.get(api_url(meeting, "minutes", at(monday() + dt.timedelta(weeks=5), 8)), headers=secretary).status_code == 404
    assert browser.get(api_url(meeting, "roll-call", "hom-nay"), headers=secretary).status_code == 422
    browser.login("thuky")
    assert browser.get(page_url(meeting, at(monday(), 9))).status_code == 404
    # the same instant written in UTC names the same occurrence
    utc = dt.datetime.fromisoformat(at(monday(), 8)).astimezone(dt.UTC).isoformat()
    assert browser.get(page_url(meeting, utc)).status_code == 200


def test_a_cancelled_occurrence_keeps_its_records_but_refuses_changes(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "absent", "reason": "Bão"}]}, headers=secretary)
    assert browser.post(f"/api/meetings/{meeting}/occurrences/{quote(at(monday(), 8), safe='')}/cancel", json={},
                        headers=secretary).status_code == 200
    refused = browser.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "present_online"}]}, headers=secretary)
    assert refused.status_code == 409
    assert by_unit(browser.get(api_url(meeting, "roll-call"), headers=secretary).json()["items"])[TAN_AN]["reason"] == "Bão"
    browser.login("thuky")
    assert 'name="section"' not in browser.get(page_url(meeting)).text


# --- exports --------------------------------------------------------------------------------


HEADINGS = {  # the Vietnamese the catalogue gives these headings
    "SOCIALIST REPUBLIC OF VIET NAM": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Independence - Freedom - Happiness": "Độc lập - Tự do - Hạnh phúc",
    "MINUTES OF THE MEETING": "BIÊN BẢN CUỘC HỌP",
    "I. Time and place": "I. Thời gian, địa điểm",
    "II. Participants": "II. Thành phần tham dự",
    "III. Content of the meeting": "III. Nội dung cuộc họp",
    "(Signature and full name)": "(Ký, ghi rõ họ tên)",
}


def test_the_print_page_is_an_a4_biên_bản_with_the_roll_call(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "absent", "reason": "Đi công tác"},
                                                                  {"unit": SO_TTTT, "status": "present_online"}]}, headers=secretary)
    browser.put(api_url(meeting, "minutes"), json={"version": 0, "proceedings": "Diễn biến", "opinions": "Ý kiến",
                                                   "conclusions": "Kết luận"}, headers=secretary)
    browser.login("thuky")
    page = browser.get(page_url(meeting) + "/print")
    assert page.status_code == 200
    vi = Catalogues().get("vi")
    for msgid, vietnamese in HEADINGS.items():
        shown = vi.gettext(msgid)
        assert shown in (msgid, vietnamese)  # the source until the catalogue has it, then exactly this
        assert shown in page.text
    text = page.text
    for expected in ("Thành phố Cần Thơ", "Giao ban tuần — UBND thành phố", "Trần Văn Minh", "Nguyễn Thị Thu",
                     "Phường Tân An", "Đi công tác", "Sở Thông tin và Truyền thông", "Diễn biến", "Ý kiến", "Kết luận",
                     vi.gettext("Absent"), vi.gettext("Present online"), "08:00", "10:00", monday().strftime("%d/%m/%Y")):
        assert expected in text, expected
    assert text.index("Phường Tân An") < text.index("Diễn biến")  # the roll-call table precedes the proceedings
    assert '<link rel="stylesheet" href="/static/css/record-print.css">' in text and "site-header" not in text
    style = browser.get("/static/css/record-print.css")
    assert style.status_code == 200 and "size: A4" in style.text and "@media print" in style.text


def test_the_attendance_csv_opens_in_excel_and_parses(browser: Browser, meeting: int, secretary: dict[str, str]) -> None:
    browser.put(api_url(meeting, "roll-call"), json={"entries": [{"unit": TAN_AN, "status": "absent", "reason": "=1+1 họp khác"}]},
                headers=secretary)
    browser.login("thuky")
    response = browser.get(page_url(meeting) + "/attendance.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    vi = Catalogues().get("vi")
    assert rows[0] == [vi.gettext(h) for h in ("Unit code", "Unit name", "Belongs to", "Status", "Reason")]
    assert len(rows) == 1 + 14
    line = {r[0]: r for r in rows[1:]}[TAN_AN]
    assert line == [TAN_AN, "Phường Tân An", "Quận Ninh Kiều", vi.gettext("Absent"), "'=1+1 họp khác"]


def test_the_api_describes_the_record_routes(browser: Browser) -> None:
    paths = browser.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/meetings/{id}/occurrences/{original_start}/roll-call"]) == {"get", "put"}
    assert set(paths["/api/meetings/{id}/occurrences/{original_start}/minutes"]) == {"get", "put"}
