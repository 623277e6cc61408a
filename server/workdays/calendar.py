"""Working-day arithmetic: weekdays that are not public holidays.

Pure (standard library only) so that the conflicts engine and any other rule can use it
without a database. Built once per request from the ``holidays`` table by
:func:`server.workdays.service.calendar`.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable

from server.clock import local_day

ONE_DAY = dt.timedelta(days=1)


def local_date(moment: dt.datetime) -> dt.date:
    """The calendar day in Cần Thơ: notice is counted in the days people live, not UTC's."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give times with their zone")
    return local_day(moment)


def _weekdays_in(start: dt.date, stop: dt.date) -> int:
    """Monday-to-Friday days in ``[start, stop)``, without walking the range."""
    days = (stop - start).days
    if days <= 0:
        return 0
    full_weeks, rest = divmod(days, 7)
    first = start.weekday()
    return full_weeks * 5 + sum(1 for i in range(rest) if (first + i) % 7 < 5)


class WorkingCalendar:
    """Saturdays, Sundays and the given holidays are not working days.

    Make-up working Saturdays (ngày làm bù, when the government swaps a bridge day) are not
    modelled: such a Saturday still counts as a day off, which only ever asks for earlier
    notice, never later.
    """

    def __init__(self, holidays: Iterable[dt.date] = ()) -> None:
        self._holidays = frozenset(holidays)
        # Only holidays on weekdays change a count of weekdays; sorted for bisection.
        self._weekday_holidays = sorted(d for d in self._holidays if d.weekday() < 5)

    @property
    def holidays(self) -> frozenset[dt.date]:
        return self._holidays

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def working_days_in(self, start: dt.date, stop: dt.date) -> int:
        """Working days in the half-open range ``[start, stop)``; O(log holidays)."""
        if stop <= start:
            return 0
        closed = bisect.bisect_left(self._weekday_holidays, stop) - bisect.bisect_left(self._weekday_holidays, start)
        return _weekdays_in(start, stop) - closed

    def working_days_between(self, announced: dt.date, meeting: dt.date) -> int:
        """Working days strictly after the announcement day and strictly before the meeting
        day: neither the day the invitation goes out nor the meeting day itself counts."""
        return self.working_days_in(announced + ONE_DAY, meeting)

    def meets_notice(self, announced_at: dt.datetime, starts_at: dt.datetime, days: int = 3) -> bool:
        """Was the meeting announced at least ``days`` working days ahead (local dates)?"""
        return self.working_days_between(local_date(announced_at), local_date(starts_at)) >= days

    def last_announcement_day(self, meeting: dt.date, days: int = 3) -> dt.date:
        """The latest day an invitation can go out and still give ``days`` working days."""
        if days <= 0:
            return meeting
        day, counted = meeting, 0
        while counted < days:
            day -= ONE_DAY
            if self.is_working_day(day):
                counted += 1
        return day - ONE_DAY
