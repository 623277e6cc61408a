"""The city's clock: one zone, and dates written one way (day first, 24-hour time)."""

from __future__ import annotations

import datetime as dt

from server.clock import clock_text, date_text, local_day, moment_text, time_range, weekday_name

UTC = dt.UTC


def test_a_utc_evening_is_the_next_morning_in_the_city() -> None:
    late = dt.datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # 06:30 on Monday 7 December in Cần Thơ
    assert local_day(late) == dt.date(2026, 12, 7)
    assert date_text(late) == "07/12/2026" and clock_text(late) == "06:30"
    assert moment_text(late) == "07/12/2026 06:30"
    assert moment_text(late, seconds=True) == "07/12/2026 06:30:00"
    assert str(weekday_name(late)) == "Monday"


def test_a_date_is_taken_as_it_is_and_no_time_writes_nothing() -> None:
    assert date_text(dt.date(2027, 2, 6)) == "06/02/2027"
    assert moment_text(None) == ""


def test_a_range_names_the_end_day_only_when_it_is_another_day() -> None:
    start = dt.datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 08:00 local
    assert time_range(start, start + dt.timedelta(hours=2)) == "08:00–10:00"
    assert time_range(start, start + dt.timedelta(hours=17)) == "08:00–08/12/2026 01:00"
