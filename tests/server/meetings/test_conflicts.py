"""The conflicts engine: a unit or the chair in two meetings at once, the bridge's capacity at
its true peak, short notice for regular meetings; touching slots never clash. (Its speed is
measured by ``python -m bench.conflicts``, not here.)"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from zoneinfo import ZoneInfo

import pytest

from server.meetings.conflicts import Conflict, Slot, find_conflicts, notice_conflicts
from server.workdays import service as workdays
from server.workdays.calendar import WorkingCalendar

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
UNITS = {i: f"Phường {name}" for i, name in enumerate(
    ["An Bình", "An Cư", "An Hòa", "An Khánh", "An Lạc", "An Nghiệp", "An Phú", "Cái Khế", "Hưng Lợi", "Tân An"], start=1
)}
PEOPLE = {1: "Trần Văn Minh", 2: "Nguyễn Thị Thu", 3: "Lê Thị Hồng"}
_ids = itertools.count(100)


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    """A local time in March 2026, as the UTC instant slots carry."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LOCAL).astimezone(dt.UTC)


def slot(
    start: dt.datetime,
    end: dt.datetime,
    *,
    units: tuple[int, ...] = (),
    users: tuple[int, ...] = (),
    chair: int = 3,
    endpoints: int | None = None,
    meeting_id: int | None = -1,
    title: str = "Giao ban",
) -> Slot:
    return Slot(
        next(_ids) if meeting_id == -1 else meeting_id, title, start, end, frozenset(units),
        frozenset({*users, chair}), chair, len(units) + len(users) + 1 if endpoints is None else endpoints,
    )


def check(candidate: list[Slot], existing: list[Slot], max_endpoints: int = 1000) -> list[Conflict]:
    return find_conflicts(candidate, existing, max_endpoints=max_endpoints, unit_names=UNITS, user_names=PEOPLE)


def plan(start: dt.datetime, end: dt.datetime, **kwargs: object) -> Slot:
    return slot(start, end, meeting_id=None, title="Kế hoạch", **kwargs)  # type: ignore[arg-type]


# --- unit_busy --------------------------------------------------------------------------------


def test_a_unit_invited_to_an_overlapping_meeting_is_a_hard_conflict_naming_it() -> None:
    other = slot(at(2, 9), at(2, 11), units=(1, 2, 3), meeting_id=7, title="Họp Sở Tài chính")
    found = check([plan(at(2, 10), at(2, 12), units=(2, 3, 4), chair=1)], [other])
    assert len(found) == 1
    conflict = found[0]
    assert (conflict.kind, conflict.severity, conflict.other_meeting_id, conflict.other_title) == (
        "unit_busy", "hard", 7, "Họp Sở Tài chính",
    )
    assert conflict.units == (2, 3) and conflict.occurrence == at(2, 10) and conflict.other_start == at(2, 9)
    assert str(conflict.message) == "Already invited to “Họp Sở Tài chính” at 02/03/2026 09:00: Phường An Cư, Phường An Hòa."
    assert conflict.message.msgid.startswith("Already invited to")  # translatable, with parameters


def test_a_long_list_of_units_names_five_and_counts_the_rest() -> None:
    other = slot(at(2, 8), at(2, 9), units=tuple(range(1, 11)), meeting_id=8, title="Hội nghị")
    (conflict,) = check([plan(at(2, 8), at(2, 9), units=tuple(range(1, 11)), chair=1)], [other])
    assert len(conflict.units) == 10
    assert str(conflict.message) == (
        "Already invited to “Hội nghị” at 02/03/2026 08:00: Phường An Bình, Phường An Cư, Phường An Hòa, "
        "Phường An Khánh, Phường An Lạc and 5 more."
    )


def test_one_conflict_per_other_meeting_even_when_two_of_its_occurrences_overlap() -> None:
    first = slot(at(2, 8), at(2, 9), units=(1,), meeting_id=9)
    second = slot(at(2, 10), at(2, 11), units=(2,), meeting_id=9)
    found = check([plan(at(2, 8), at(2, 12), units=(1, 2), chair=1)], [first, second])
    assert [(c.kind, c.other_meeting_id, c.units) for c in found] == [("unit_busy", 9, (1, 2))]


def test_different_units_at_the_same_time_do_not_clash() -> None:
    assert check([plan(at(2, 8), at(2, 10), units=(1, 2), chair=1)], [slot(at(2, 8), at(2, 10), units=(3, 4))]) == []


def test_touching_slots_do_not_overlap() -> None:
    before = slot(at(2, 8), at(2, 10), units=(1,), chair=1, endpoints=600)
    after = slot(at(2, 12), at(2, 13), units=(1,), chair=1, endpoints=600)
    candidate = plan(at(2, 10), at(2, 12), units=(1,), chair=1, endpoints=600)
    assert check([candidate], [before, after], max_endpoints=1000) == []


# --- chair_busy -------------------------------------------------------------------------------


def test_the_chair_chairing_or_invited_elsewhere_is_a_hard_conflict() -> None:
    chaired = slot(at(3, 8), at(3, 9), chair=1, meeting_id=11, title="Giao ban tuần")
    invited = slot(at(3, 8, 30), at(3, 9, 30), users=(1,), chair=2, meeting_id=12, title="Họp báo")
    found = check([plan(at(3, 8), at(3, 10), chair=1)], [chaired, invited])
    assert [(c.kind, c.severity, c.other_meeting_id) for c in found] == [("chair_busy", "hard", 11), ("chair_busy", "hard", 12)]
    assert str(found[0].message) == "Trần Văn Minh already chairs “Giao ban tuần” at 03/03/2026 08:00."
    assert str(found[1].message) == "Trần Văn Minh is already invited to “Họp báo” at 03/03/2026 08:30."


def test_the_chair_elsewhere_at_another_time_is_no_conflict() -> None:
    assert check([plan(at(3, 8), at(3, 10), chair=1)], [slot(at(3, 10), at(3, 11), chair=1), slot(at(3, 8), at(3, 9), chair=2)]) == []


# --- capacity ---------------------------------------------------------------------------------


def test_capacity_counts_the_true_peak_not_the_sum_of_everything_overlapping() -> None:
    # 08-09 with 50 and 10-11 with 50 both overlap the 08-12 plan, but never each other.
    existing = [slot(at(4, 8), at(4, 9), endpoints=50), slot(at(4, 10), at(4, 11), endpoints=50)]
    candidate = plan(at(4, 8), at(4, 12), endpoints=40, chair=1)
    assert check([candidate], existing, max_endpoints=100) == []  # the sum would be 140
    existing.append(slot(at(4, 8, 30), at(4, 10, 30), endpoints=20, chair=2))
    (conflict,) = check([candidate], existing, max_endpoints=100)
    assert (conflict.kind, conflict.severity, conflict.endpoints, conflict.peak_at) == ("capacity", "hard", 110, at(4, 8, 30))
    assert str(conflict.message) == "At 04/03/2026 08:30, 110 endpoints would be connected at once; the bridge carries at most 100."


def test_a_slot_ending_as_another_starts_never_adds_up() -> None:
    existing = [slot(at(4, 8), at(4, 9), endpoints=60), slot(at(4, 9), at(4, 10), endpoints=60)]
    assert check([plan(at(4, 8), at(4, 10), endpoints=40, chair=1)], existing, max_endpoints=100) == []


def test_a_meeting_bigger_than_the_bridge_on_its_own_is_over_capacity() -> None:
    (conflict,) = check([plan(at(4, 8), at(4, 10), endpoints=130, chair=1)], [], max_endpoints=120)
    assert (conflict.kind, conflict.endpoints, conflict.peak_at) == ("capacity", 130, at(4, 8))


# --- a series ---------------------------------------------------------------------------------


def test_a_daily_series_reports_only_the_occurrences_that_clash() -> None:
    series = [plan(at(day, 14), at(day, 16), units=(1, 2), chair=1, endpoints=3) for day in range(2, 12)]
    existing = [
        slot(at(4, 15), at(4, 17), units=(2,), meeting_id=21),  # unit, on the 4th
        slot(at(9, 13), at(9, 14, 30), users=(1,), chair=2, meeting_id=22),  # chair, on the 9th
        slot(at(6, 16), at(6, 18), units=(1, 2), chair=1, meeting_id=23),  # touching: nothing
        slot(at(10, 8), at(10, 9), units=(1, 2), chair=1, meeting_id=24),  # morning: nothing
    ]
    found = check(list(reversed(series)), existing)  # the order given does not matter
    assert [(c.occurrence, c.kind, c.other_meeting_id) for c in found] == [
        (at(4, 14), "unit_busy", 21), (at(9, 14), "chair_busy", 22),
    ]


def test_the_sweep_agrees_with_checking_every_pair() -> None:
    rng = random.Random(2026)
    start = at(2, 0)

    def random_slot(meeting_id: int | None) -> Slot:
        begin = start + dt.timedelta(minutes=30 * rng.randrange(0, 14 * 48))
        length = dt.timedelta(minutes=30 * rng.choice([1, 2, 3, 4, 8, 48]))
        return slot(begin, begin + length, units=tuple(rng.sample(range(1, 11), rng.randrange(0, 4))),
                    users=tuple(rng.sample([1, 2, 3], rng.randrange(0, 2))), chair=rng.choice([1, 2, 3]),
                    endpoints=rng.randrange(1, 40), meeting_id=meeting_id)

    candidate = [random_slot(None) for _ in range(60)]
    existing = [random_slot(i) for i in range(200)]
    found = check(candidate, existing, max_endpoints=90)

    def overlap(a: Slot, b: Slot) -> bool:
        return a.start < b.end and b.start < a.end

    expected_busy = set()
    expected_capacity: dict[dt.datetime, int] = {}
    for c in candidate:
        others = [e for e in existing if overlap(c, e)]
        for e in others:
            if c.unit_ids & e.unit_ids:
                expected_busy.add((c.start, "unit_busy", e.meeting_id))
            if c.chair_id in e.user_ids or c.chair_id == e.chair_id:
                expected_busy.add((c.start, "chair_busy", e.meeting_id))
        instants = {c.start} | {e.start for e in others if e.start > c.start}
        peak = max(c.endpoints + sum(e.endpoints for e in others if e.start <= t < e.end) for t in instants)
        if peak > 90:
            expected_capacity[c.start] = max(expected_capacity.get(c.start, 0), peak)
    assert {(c.occurrence, c.kind, c.other_meeting_id) for c in found if c.kind != "capacity"} == expected_busy
    assert {c.occurrence: c.endpoints for c in found if c.kind == "capacity"} == expected_capacity
    assert expected_busy and expected_capacity  # the data did exercise both


# --- short notice -----------------------------------------------------------------------------


def test_a_weekly_series_announced_monday_is_short_only_for_thursday_this_week() -> None:
    series = [plan(at(day, 8), at(day, 10), chair=1) for day in (5, 12, 19)]  # Thursdays
    found = notice_conflicts(series, announced_at=at(2, 15), calendar=WorkingCalendar())
    assert [(c.kind, c.severity, c.occurrence) for c in found] == [("short_notice", "warning", at(5, 8))]
    assert str(found[0].message) == (
        "Only 2 working day(s) of notice before 05/03/2026 08:00; a regular meeting needs 3, "
        "so the invitation should have gone out by 01/03/2026."
    )
    friday = [plan(at(6, 8), at(6, 10), chair=1)]
    assert notice_conflicts(friday, announced_at=at(2, 15), calendar=WorkingCalendar()) == []


def test_tet_makes_a_meeting_after_it_short_of_notice() -> None:
    calendar = WorkingCalendar(line.day for line in workdays.read_file(workdays.DATA_FILE.read_bytes()))
    after_tet = [plan(at(24, 8, month=2), at(24, 10, month=2), chair=1)]  # Tuesday 24/02/2026
    (conflict,) = notice_conflicts(after_tet, announced_at=at(13, 9, month=2), calendar=calendar)
    assert "Only 1 working day(s)" in str(conflict.message) and "gone out by 11/02/2026" in str(conflict.message)
    assert notice_conflicts(after_tet, announced_at=at(11, 9, month=2), calendar=calendar) == []


# --- slots ------------------------------------------------------------------------------------


def test_a_slot_needs_aware_times_in_order() -> None:
    with pytest.raises(ValueError):
        Slot(None, "x", dt.datetime(2026, 3, 2, 8), dt.datetime(2026, 3, 2, 9), frozenset(), frozenset(), 1, 1)
    with pytest.raises(ValueError):
        Slot(None, "x", at(2, 9), at(2, 8), frozenset(), frozenset(), 1, 1)
