"""The city's clock: one time zone and one way to write dates and times.

Times are stored in UTC and shown, entered and expanded in Asia/Ho_Chi_Minh (UTC+7, no
daylight saving), so a weekly 08:00 briefing stays at 08:00. The city writes a day as
``dd/mm/yyyy`` and a time on the 24-hour clock after it: ``07/12/2026 08:00``. Every page,
mail, message and export prints through these functions.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from server.i18n import N_, Text

TZID = "Asia/Ho_Chi_Minh"
LOCAL = ZoneInfo(TZID)
DATE = "%d/%m/%Y"
CLOCK = "%H:%M"
CLOCK_SECONDS = "%H:%M:%S"
# The years a time sent to the service may fall in: room either side to add days and time zones
# (0001-01-01T00:00+14:00 has no UTC; a week after 9999-12-31 does not exist).
YEARS = range(1900, 9000)
# The same as a JSON Schema, for the API description: an ISO 8601 time with offset in those years.
TIME_SCHEMA = {"type": "string", "format": "date-time", "pattern": "^(19|[2-8][0-9])[0-9][0-9]-"}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))


def local(moment: dt.datetime) -> dt.datetime:
    """The same instant on the city's wall clock."""
    return moment.astimezone(LOCAL)


def local_day(moment: dt.datetime | dt.date) -> dt.date:
    """The calendar day in the city (a date is taken as it is)."""
    return moment.astimezone(LOCAL).date() if isinstance(moment, dt.datetime) else moment


def weekday_name(moment: dt.datetime | dt.date) -> Text:
    """The local day's name (Thứ Hai … Chủ Nhật once translated)."""
    return WEEKDAYS[local_day(moment).weekday()]


def date_text(moment: dt.datetime | dt.date) -> str:
    """``dd/mm/yyyy`` of the local day."""
    return local_day(moment).strftime(DATE)


def clock_text(moment: dt.datetime, *, seconds: bool = False) -> str:
    """``HH:MM`` (or ``HH:MM:SS``) on the local 24-hour clock."""
    return moment.astimezone(LOCAL).strftime(CLOCK_SECONDS if seconds else CLOCK)


def moment_text(moment: dt.datetime | None, *, seconds: bool = False) -> str:
    """``dd/mm/yyyy HH:MM`` (or ``…:SS``), the local day then the time; empty for no time."""
    if moment is None:
        return ""
    return f"{date_text(moment)} {clock_text(moment, seconds=seconds)}"


def time_range(start: dt.datetime, end: dt.datetime) -> str:
    """``08:00–10:00``; the end's date too when it falls on another local day."""
    if local_day(start) != local_day(end):
        return f"{clock_text(start)}–{moment_text(end)}"
    return f"{clock_text(start)}–{clock_text(end)}"
