"""The iCalendar objects, read back by two independent parsers: the icalendar package (with
dateutil expanding the series) and Mozilla's ical.js (Thunderbird's parser).

Golden files: ``golden/*.ics`` hold the exact bytes of a REQUEST, an update, a CANCEL and an
occurrence change (DTSTAMP fixed through ``now=``). After an intended change of the output,
regenerate them and review the diff before committing:

    GIAOBAN_REGOLD=1 /tmp/v/bin/pytest -q tests/server/calendar/test_ics.py -k golden
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import unicodedata
from pathlib import Path
from typing import Any

import icalendar
import pytest
from dateutil.rrule import rrulestr

from server.calendar import ics
from server.meetings import recurrence
from tests.support.icaljs import icaljs, parse_with_icaljs  # noqa: F401 - the fixture installs ical.js

pytestmark = pytest.mark.usefixtures("icaljs")

UTC = dt.UTC
GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = dt.datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
ORGANIZER = ics.Mailbox("giaoban@cantho.gov.vn.test", "Giao Ban")
JOIN = "https://giaoban.cantho.gov.vn.test/meetings/7/room"
CHAIR = ics.Attendee("lanhdao@cantho.gov.vn.test", "Trần Văn Minh", role="CHAIR", partstat="ACCEPTED")
WARD = ics.Attendee("ct.ninh-kieu.tan-an@cantho.gov.vn.test", "Phường Tân An", cutype="ROOM")
DEPARTMENT = ics.Attendee("ct.so-tttt@cantho.gov.vn.test", "Sở Thông tin và Truyền thông", cutype="ROOM", partstat="TENTATIVE")


def utc(year: int, month: int, day: int, hour: int = 1, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def iso(value: dt.datetime) -> str:
    """The form ical.js prints (Date.toISOString)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def weekly(**changes: Any) -> ics.EventData:
    """A weekly Monday 08:00 briefing (01:00Z) from 14/12/2026, eight times: into 2027."""
    event = ics.EventData(
        uid="7d1c0a52-briefing@giaoban", sequence=0, title="Giao ban tuần — UBND thành phố",
        start=utc(2026, 12, 14), end=utc(2026, 12, 14, 3), organizer=ORGANIZER,
        description="Họp giao ban định kỳ của Ủy ban nhân dân thành phố.",
        agenda=("Tình hình kinh tế - xã hội tuần qua", "Nhiệm vụ tuần tới"),
        rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=8", attendees=(CHAIR, WARD, DEPARTMENT), join_url=JOIN,
        host="Thành phố Cần Thơ", chair="Trần Văn Minh", updated_at=utc(2026, 11, 19, 9, 15),
    )
    return dataclasses.replace(event, **changes)


MOVED = ics.Override(utc(2026, 12, 28), utc(2026, 12, 29, 7), utc(2026, 12, 29, 9), "Giao ban tuần (dời sang chiều thứ Ba)", False, 1)
CANCELLED = ics.Override(utc(2027, 1, 4), utc(2027, 1, 4), utc(2027, 1, 4, 3), "", True, 2)


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def unfolded(data: bytes) -> list[str]:
    out: list[str] = []
    for line in data.decode("utf-8").split("\r\n"):
        if line.startswith(" ") and out:
            out[-1] += line[1:]
        elif line:
            out.append(line)
    return out


def read(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def expand_with_icalendar(data: bytes) -> dict[str, list[dict[str, str]]]:
    """Each series' occurrences as the icalendar package reads the object, dateutil expanding
    the RRULE; EXDATEs removed and moved occurrences applied, as a client does."""
    events = read(data).walk("VEVENT")
    found: dict[str, list[dict[str, str]]] = {}
    for master in (e for e in events if "RECURRENCE-ID" not in e and "RRULE" in e):
        start = master.decoded("DTSTART")
        duration = master.decoded("DTEND") - start
        rule = rrulestr(master["RRULE"].to_ical().decode(), dtstart=start)
        exdates = master.get("EXDATE", [])
        excluded = {d.dt for group in (exdates if isinstance(exdates, list) else [exdates]) for d in group.dts}
        moved = {e.decoded("RECURRENCE-ID"): e for e in events if "RECURRENCE-ID" in e and e["UID"] == master["UID"]}
        rows = []
        for original in rule:
            if original in excluded:
                continue
            item = moved.get(original)
            begin, end = (item.decoded("DTSTART"), item.decoded("DTEND")) if item is not None else (original, original + duration)
            rows.append({"recurrence_id": iso(original), "start": iso(begin), "end": iso(end),
                         "summary": str((item or master)["SUMMARY"])})
        found[str(master["UID"])] = rows
    return found


# --- series: both parsers, and the app's own expansion --------------------------------------------


@pytest.mark.parametrize("rule, first, count", [
    ("FREQ=WEEKLY;BYDAY=MO;COUNT=8", utc(2026, 12, 14), 8),
    ("FREQ=WEEKLY;BYDAY=MO;UNTIL=20270125T010000Z", utc(2026, 11, 30), 9),  # UNTIL is inclusive
])
def test_a_weekly_series_expands_the_same_in_both_parsers_at_eight_local_time(rule: str, first: dt.datetime, count: int) -> None:
    event = weekly(rrule=rule, start=first, end=first + dt.timedelta(hours=2))
    data = ics.request(event, now=NOW)

    theirs = parse_with_icaljs(data, 50)["occurrences"][event.uid]
    ours = expand_with_icalendar(data)[event.uid]
    app = [iso(s) for s in recurrence.starts(first, rule)]

    assert [o["start"] for o in theirs] == [o["start"] for o in ours] == app
    assert len(app) == count
    assert all(s.endswith("T01:00:00.000Z") for s in app)  # 08:00 in Asia/Ho_Chi_Minh, every week
    years_and_months = {s[:7] for s in app}
    assert {"2026-12", "2027-01"} <= years_and_months and len(years_and_months) >= 2


def test_the_until_of_a_series_is_written_in_utc() -> None:
    event = weekly(rrule="FREQ=WEEKLY;BYDAY=MO;UNTIL=20270125T010000Z")
    rrule_line = next(line for line in unfolded(ics.request(event, now=NOW)) if line.startswith("RRULE:"))
    assert "UNTIL=20270125T010000Z" in rrule_line
    with pytest.raises(ValueError):
        ics.request(weekly(rrule="FREQ=WEEKLY;BYDAY=MO;UNTIL=20270125T080000"), now=NOW)


def test_a_moved_and_a_cancelled_occurrence_are_read_the_same_by_both_parsers() -> None:
    event = weekly(overrides=(MOVED, CANCELLED), sequence=1)
    data = ics.request(event, now=NOW)

    theirs = parse_with_icaljs(data)
    ours = expand_with_icalendar(data)[event.uid]
    assert theirs["occurrences"][event.uid] == ours
    by_original = {o["recurrence_id"]: o for o in ours}
    assert iso(CANCELLED.recurrence_id) not in by_original  # the EXDATE took it out
    moved = by_original[iso(MOVED.recurrence_id)]
    assert (moved["start"], moved["end"], moved["summary"]) == (iso(MOVED.start), iso(MOVED.end), MOVED.title)
    assert len(ours) == 7

    master, override = theirs["events"]
    assert master["exdates"] == [iso(CANCELLED.recurrence_id)]
    assert override["recurrence_id"] == iso(MOVED.recurrence_id)
    assert override["recurrence_id_zone"] == override["dtstart_zone"] == master["dtstart_zone"] == "Asia/Ho_Chi_Minh"
    assert override["rrule"] is None and override["uid"] == master["uid"]
    assert (master["sequence"], override["sequence"]) == (1, 1)


def test_an_occurrence_never_has_a_lower_sequence_than_its_series() -> None:
    event = weekly(overrides=(dataclasses.replace(MOVED, sequence=0),), sequence=3)
    master, override = parse_with_icaljs(ics.request(event, now=NOW))["events"]
    assert master["sequence"] == override["sequence"] == 3


def test_a_one_occurrence_request_holds_that_occurrence_and_optionally_the_rest() -> None:
    event = weekly(overrides=(MOVED, CANCELLED))
    alone = parse_with_icaljs(ics.request_occurrence(event, MOVED.recurrence_id, now=NOW, with_master=False))
    assert alone["method"] == "REQUEST"
    assert [(e["recurrence_id"], e["dtstart"]) for e in alone["events"]] == [(iso(MOVED.recurrence_id), iso(MOVED.start))]
    with_master = parse_with_icaljs(ics.request_occurrence(event, MOVED.recurrence_id, now=NOW))
    assert [e["recurrence_id"] for e in with_master["events"]] == [None, iso(MOVED.recurrence_id)]
    with pytest.raises(ValueError):
        ics.request_occurrence(event, CANCELLED.recurrence_id, now=NOW)


# --- methods --------------------------------------------------------------------------------------


def test_a_request_invites_people_and_unit_mailboxes_with_their_roles() -> None:
    data = ics.request(weekly(), now=NOW)
    parsed = parse_with_icaljs(data)
    assert parsed["method"] == "REQUEST" and parsed["calendar_uid"] is None
    (event,) = parsed["events"]
    people = {a["value"]: a["params"] for a in event["attendees"]}
    assert people["mailto:lanhdao@cantho.gov.vn.test"] == {
        "cn": "Trần Văn Minh", "cutype": "INDIVIDUAL", "role": "CHAIR", "partstat": "ACCEPTED", "rsvp": "TRUE"}
    assert people["mailto:ct.ninh-kieu.tan-an@cantho.gov.vn.test"] == {
        "cn": "Phường Tân An", "cutype": "ROOM", "role": "REQ-PARTICIPANT", "partstat": "NEEDS-ACTION", "rsvp": "TRUE"}
    assert people["mailto:ct.so-tttt@cantho.gov.vn.test"]["partstat"] == "TENTATIVE"
    assert event["organizer"]["value"] == "mailto:giaoban@cantho.gov.vn.test"
    assert event["dtstamp"] == iso(NOW) and event["status"] == "CONFIRMED" and event["sequence"] == 0
    assert event["alarms"] == [{"action": "DISPLAY", "trigger": "-PT15M", "description": ics.DEFAULT_LABELS.reminder}]

    mine = read(data).walk("VEVENT")[0]
    assert {str(a): a.params["CUTYPE"] for a in mine["ATTENDEE"]} == {
        "mailto:lanhdao@cantho.gov.vn.test": "INDIVIDUAL", "mailto:ct.ninh-kieu.tan-an@cantho.gov.vn.test": "ROOM",
        "mailto:ct.so-tttt@cantho.gov.vn.test": "ROOM"}


def test_the_join_link_is_everywhere_a_client_might_look() -> None:
    data = ics.request(weekly(), now=NOW)
    (event,) = parse_with_icaljs(data)["events"]
    assert event["url"] == event["location"] == JOIN
    assert event["description"].endswith(f"{ics.DEFAULT_LABELS.join}: {JOIN}")
    assert [(c["value"], c["type"], c["params"]["feature"]) for c in event["conference"]] == [(JOIN, "uri", "AUDIO,VIDEO")]
    conference = next(line for line in unfolded(data) if line.startswith("CONFERENCE"))
    # Two features, not one quoted "AUDIO,VIDEO" (the icalendar package's quirk).
    assert ";FEATURE=AUDIO,VIDEO;" in conference and ";VALUE=URI" in conference and '"AUDIO' not in conference
    assert read(data).walk("VEVENT")[0]["CONFERENCE"].params["FEATURE"] == ["AUDIO", "VIDEO"]


def test_the_description_carries_the_agenda_host_and_chair() -> None:
    (event,) = parse_with_icaljs(ics.request(weekly(), now=NOW))["events"]
    assert event["description"] == (
        "Họp giao ban định kỳ của Ủy ban nhân dân thành phố.\n\n"
        "Agenda:\n1. Tình hình kinh tế - xã hội tuần qua\n2. Nhiệm vụ tuần tới\n\n"
        "Host unit: Thành phố Cần Thơ\nChair: Trần Văn Minh\n\n"
        f"Join online: {JOIN}"
    )


def test_a_cancel_has_status_cancelled_the_sequence_and_no_alarm() -> None:
    data = ics.cancel(weekly(sequence=4), now=NOW)
    parsed = parse_with_icaljs(data)
    assert parsed["method"] == "CANCEL"
    (event,) = parsed["events"]
    assert (event["status"], event["sequence"], event["alarms"]) == ("CANCELLED", 4, [])
    assert all("rsvp" not in a["params"] for a in event["attendees"]) and len(event["attendees"]) == 3
    assert b"VALARM" not in data
    mine = read(data)
    assert mine["METHOD"] == "CANCEL" and mine.walk("VEVENT")[0]["STATUS"] == "CANCELLED"


def test_cancelling_one_occurrence_names_it_and_leaves_the_series_alone() -> None:
    event = weekly(sequence=2, overrides=(dataclasses.replace(CANCELLED, sequence=3),))
    parsed = parse_with_icaljs(ics.cancel_occurrence(event, CANCELLED.recurrence_id, now=NOW))
    (only,) = parsed["events"]
    assert parsed["method"] == "CANCEL"
    assert (only["recurrence_id"], only["dtstart"], only["status"], only["sequence"]) == (
        iso(CANCELLED.recurrence_id), iso(CANCELLED.start), "CANCELLED", 3)
    assert only["rrule"] is None and only["alarms"] == []


def test_publish_is_a_download_without_attendees_and_with_a_reminder() -> None:
    data = ics.publish([weekly(overrides=(MOVED,))], now=NOW)
    parsed = parse_with_icaljs(data)
    assert parsed["method"] == "PUBLISH"
    assert [len(e["attendees"]) for e in parsed["events"]] == [0, 0]
    assert all(len(e["alarms"]) == 1 for e in parsed["events"])
    assert all(e["organizer"]["value"] == "mailto:giaoban@cantho.gov.vn.test" for e in parsed["events"])


def test_requests_and_cancels_need_an_attendee_and_aware_times() -> None:
    with pytest.raises(ValueError):
        ics.request(weekly(attendees=()), now=NOW)
    with pytest.raises(ValueError):
        ics.cancel(weekly(), attendees=[], now=NOW)
    with pytest.raises(ValueError):
        ics.request(weekly(start=dt.datetime(2026, 12, 14, 8)), now=NOW)


# --- the shape of the text ------------------------------------------------------------------------


def test_the_time_zone_is_one_standard_block_at_plus_seven_without_comment() -> None:
    data = ics.request(weekly(), now=NOW)
    (zone,) = parse_with_icaljs(data)["timezones"]
    assert zone == {"tzid": "Asia/Ho_Chi_Minh", "properties": ["tzid"], "daylight": 0,
                    "standard": [{"offset_from": "+07:00", "offset_to": "+07:00"}]}
    text = unfolded(data)
    block = text[text.index("BEGIN:VTIMEZONE"):text.index("END:VTIMEZONE")]
    assert not any(line.startswith("COMMENT") for line in block)
    starts = [line for line in text if line.startswith(("DTSTART;", "DTEND;", "EXDATE", "RECURRENCE-ID"))]
    assert starts and all(";TZID=Asia/Ho_Chi_Minh:" in line for line in starts)


def test_long_vietnamese_text_is_nfc_and_folded_at_75_octets_between_characters() -> None:
    decomposed = unicodedata.normalize("NFD", "Báo cáo tình hình thực hiện nhiệm vụ phát triển kinh tế - xã hội, "
                                              "quốc phòng - an ninh; chỉ đạo, điều hành của Ủy ban nhân dân thành phố. ")
    event = weekly(description=decomposed * 12, title=unicodedata.normalize("NFD", "Giao ban tuần — Ủy ban nhân dân thành phố Cần Thơ, quý IV"))
    data = ics.request(event, now=NOW)

    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF, never a bare LF
    for line in lines(data):
        assert len(line) <= 75, line
        line.decode("utf-8")  # a folded line never ends inside a character
    (parsed,) = parse_with_icaljs(data)["events"]
    assert parsed["summary"] == unicodedata.normalize("NFC", event.title)
    assert parsed["description"].startswith(unicodedata.normalize("NFC", decomposed * 12).strip())
    assert unicodedata.is_normalized("NFC", data.decode("utf-8"))
    long_lines = [line for line in lines(data) if len(line) > 70]
    assert len(long_lines) > 20  # the check above had something to check


def test_names_with_quotes_stay_readable_in_parameters() -> None:
    person = ics.Attendee("a@cantho.gov.vn.test", 'Nguyễn "Út" Văn A')
    (event,) = parse_with_icaljs(ics.request(weekly(attendees=(person,)), now=NOW))["events"]
    assert event["attendees"][0]["params"]["cn"] == "Nguyễn 'Út' Văn A"


# --- feeds ----------------------------------------------------------------------------------------


def test_a_feed_has_the_subscription_properties_and_keeps_cancelled_meetings() -> None:
    cancelled = weekly(uid="other@giaoban", status="CANCELLED", rrule="", sequence=2)
    data = ics.feed([weekly(overrides=(MOVED, CANCELLED)), cancelled], "Giao Ban: Phường Tân An")
    text = unfolded(data)
    assert "NAME:Giao Ban: Phường Tân An" in text and "X-WR-CALNAME:Giao Ban: Phường Tân An" in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text and "X-PUBLISHED-TTL:PT1H" in text
    assert not any(line.startswith(("METHOD", "UID", "ATTENDEE")) and not line.startswith("UID:") for line in text)
    assert b"VALARM" not in data and b"ATTENDEE" not in data

    parsed = parse_with_icaljs(data)
    assert parsed["method"] is None and parsed["calendar_uid"] is None
    assert (parsed["x_wr_calname"], parsed["name"]) == ("Giao Ban: Phường Tân An", "Giao Ban: Phường Tân An")
    assert (parsed["refresh_interval"], parsed["refresh_interval_type"], parsed["x_published_ttl"]) == ("PT1H", "duration", "PT1H")
    assert [(e["uid"], e["status"]) for e in parsed["events"]] == [
        (weekly().uid, "CONFIRMED"), (weekly().uid, "CONFIRMED"), ("other@giaoban", "CANCELLED")]
    # Without METHOD, DTSTAMP is when the event last changed: the same bytes until it changes.
    assert {e["dtstamp"] for e in parsed["events"]} == {iso(weekly().updated_at or NOW)}
    assert parsed["occurrences"][weekly().uid] == expand_with_icalendar(data)[weekly().uid]


def test_a_feed_serialises_each_event_once_until_it_changes() -> None:
    ics.FEED_BLOCKS.clear()
    events = [weekly(uid=f"{n}@giaoban") for n in range(5)]
    first = ics.feed(events, "Feed")
    assert (ics.FEED_BLOCKS.misses, ics.FEED_BLOCKS.hits) == (5, 0)
    assert ics.feed(events, "Feed") == first
    assert ics.FEED_BLOCKS.hits == 5
    changed = [dataclasses.replace(events[0], title="Đổi tên", updated_at=utc(2026, 11, 20)), *events[1:]]
    again = ics.feed(changed, "Feed")
    assert ics.FEED_BLOCKS.misses == 6 and again != first and "Đổi tên" in again.decode()


def test_an_empty_feed_is_still_a_calendar() -> None:
    parsed = parse_with_icaljs(ics.feed([], "Trống"))
    assert parsed["events"] == [] and parsed["x_wr_calname"] == "Trống"


# --- golden files ---------------------------------------------------------------------------------


# What the service passes in production (service.labels with the Vietnamese catalogue).
VIETNAMESE = ics.Labels(agenda="Chương trình họp", host="Đơn vị chủ trì", chair="Người chủ trì", join="Tham gia trực tuyến",
                        conference="Họp trực tuyến", reminder="Cuộc họp bắt đầu sau 15 phút")


def golden_objects() -> dict[str, bytes]:
    invitation = weekly()
    update = weekly(sequence=1, start=utc(2026, 12, 14, 2), end=utc(2026, 12, 14, 4), title="Giao ban tuần — UBND thành phố (9 giờ)",
                    updated_at=utc(2026, 11, 20, 2))
    series = weekly(sequence=2, overrides=(dataclasses.replace(MOVED, sequence=3),), updated_at=utc(2026, 11, 20, 2, 20))
    return {
        "request.ics": ics.request(invitation, now=NOW, labels=VIETNAMESE),
        "update.ics": ics.request(update, now=NOW, labels=VIETNAMESE),
        "cancel.ics": ics.cancel(weekly(sequence=3, status="CANCELLED"), now=NOW, labels=VIETNAMESE),
        "occurrence-change.ics": ics.request_occurrence(series, MOVED.recurrence_id, now=NOW, labels=VIETNAMESE),
        "occurrence-cancel.ics": ics.cancel_occurrence(
            weekly(sequence=3, overrides=(dataclasses.replace(CANCELLED, sequence=5),)), CANCELLED.recurrence_id, now=NOW,
            labels=VIETNAMESE),
    }


@pytest.mark.parametrize("name", sorted(golden_objects()))
def test_golden_files_match_byte_for_byte(name: str) -> None:
    data = golden_objects()[name]
    path = GOLDEN / name
    if os.environ.get("GIAOBAN_REGOLD") == "1":
        path.write_bytes(data)
    assert path.exists(), f"{path} is missing: GIAOBAN_REGOLD=1 pytest {__file__} -k golden writes it"
    assert data == path.read_bytes(), (
        f"{name} differs from its golden file; if the change is intended, rerun with GIAOBAN_REGOLD=1 and review the diff")
    parse_with_icaljs(data)  # and every golden file is readable by Thunderbird's parser


def test_without_node_the_calendar_checks_fail_and_say_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import icaljs as support

    monkeypatch.setattr(support.shutil, "which", lambda name: None)
    with pytest.raises(support.IcaljsUnavailable, match="make test"):
        support._tool("node")
