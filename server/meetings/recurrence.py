"""Series of meetings: RRULE parsing, limits and expansion (RFC 5545 §3.3.10, via dateutil).

Times are expanded in Asia/Ho_Chi_Minh wall time (no daylight saving there), so a weekly
08:00 briefing stays at 08:00 across months and years; they are stored and returned in UTC.
The stored rule has no DTSTART and gives UNTIL in UTC (``...Z``), as RFC 5545 asks when
DTSTART carries a time zone.
"""

from __future__ import annotations

import datetime as dt

from dateutil.rrule import rrule, rrulestr

from server.clock import LOCAL, date_text
from server.errors import InvalidInput
from server.i18n import N_, Text

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY")
MAX_SPAN = dt.timedelta(days=366 * 2)
MAX_OCCURRENCES = 800
_UNTIL_FORMATS = ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d")


def _invalid(message: Text) -> InvalidInput:
    return InvalidInput(N_("The recurrence rule is invalid."), fields={"recurrence": message})


def _local_naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(LOCAL).replace(tzinfo=None)


def _utc(local_naive: dt.datetime) -> dt.datetime:
    return local_naive.replace(tzinfo=LOCAL).astimezone(dt.UTC)


def _parts(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for item in body.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise _invalid(N_("Each part must look like NAME=VALUE: {part}", part=item))
        if name in parts:
            raise _invalid(N_("{name} is given twice.", name=name))
        if name == "DTSTART":
            raise _invalid(N_("Give the start as the meeting's start, not in the rule."))
        parts[name] = value.strip().upper()
    return parts


def _until_utc(value: str, start: dt.datetime) -> dt.datetime:
    for fmt in _UNTIL_FORMATS:
        try:
            parsed = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        if fmt.endswith("Z"):
            return parsed.replace(tzinfo=dt.UTC)
        if fmt == "%Y%m%d":  # a date: the whole local day counts
            parsed = parsed.replace(hour=23, minute=59, second=59)
        return _utc(parsed)
    raise _invalid(N_("UNTIL must be a date (20271231) or a UTC time (20271231T170000Z)."))


def _to_text(parts: dict[str, str]) -> str:
    order = ["FREQ", "INTERVAL", "COUNT", "UNTIL"]
    names = [n for n in order if n in parts] + sorted(n for n in parts if n not in order)
    return ";".join(f"{n}={parts[n]}" for n in names)


def _build(parts: dict[str, str], start: dt.datetime) -> rrule:
    local = dict(parts)
    if "UNTIL" in local:
        local["UNTIL"] = _local_naive(_until_utc(local["UNTIL"], start)).strftime("%Y%m%dT%H%M%S")
    try:
        rule = rrulestr(_to_text(local), dtstart=_local_naive(start))
    except (ValueError, TypeError, KeyError) as exc:
        raise _invalid(N_("It could not be read: {detail}", detail=str(exc))) from None
    assert isinstance(rule, rrule)
    return rule


def normalise(text: str, start: dt.datetime) -> str:
    """Check ``text`` for a series starting at ``start`` and return it in stored form."""
    parts = _parts(text)
    if parts.get("FREQ") not in FREQUENCIES:
        raise _invalid(N_("FREQ must be DAILY, WEEKLY or MONTHLY."))
    if ("COUNT" in parts) == ("UNTIL" in parts):
        raise _invalid(N_("Give exactly one of COUNT or UNTIL: a series must end."))
    if "COUNT" in parts and not (parts["COUNT"].isdigit() and 1 <= int(parts["COUNT"]) <= MAX_OCCURRENCES):
        raise _invalid(N_("COUNT must be between 1 and {max}.", max=MAX_OCCURRENCES))
    if "INTERVAL" in parts and not (parts["INTERVAL"].isdigit() and 1 <= int(parts["INTERVAL"]) <= 12):
        raise _invalid(N_("INTERVAL must be between 1 and 12."))
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_utc(parts["UNTIL"], start).strftime("%Y%m%dT%H%M%SZ")
    rule = _build(parts, start)
    starts = list(rule.xafter(_local_naive(start) - dt.timedelta(seconds=1), count=MAX_OCCURRENCES + 1, inc=True))
    if not starts:
        raise _invalid(N_("The rule gives no occurrence."))
    if len(starts) > MAX_OCCURRENCES:
        raise _invalid(N_("A series has at most {max} occurrences.", max=MAX_OCCURRENCES))
    if _utc(starts[-1]) - start > MAX_SPAN:
        raise _invalid(N_("A series may last at most two years."))
    if _utc(starts[0]) != start:
        raise _invalid(N_("The first occurrence must be the meeting's start; pick a start the rule includes."))
    return _to_text(parts)


def starts(start: dt.datetime, rule_text: str, *, after: dt.datetime | None = None, before: dt.datetime | None = None) -> list[dt.datetime]:
    """The original starts (UTC) of a meeting's occurrences, optionally those in [after, before)."""
    if not rule_text:
        found = [start]
    else:
        rule = _build(_parts(rule_text), start)
        found = [_utc(s) for s in rule]
    return [s for s in found if (after is None or s >= after) and (before is None or s < before)]


def last_start(start: dt.datetime, rule_text: str) -> dt.datetime:
    return starts(start, rule_text)[-1]


def split(rule_text: str, start: dt.datetime, at: dt.datetime) -> tuple[str, str]:
    """End a series before the occurrence ``at`` and give the rule of the series that follows.

    The old series keeps its occurrences before ``at`` (UNTIL just before it); the new one
    keeps what is left: the same UNTIL, or the remaining COUNT.
    """
    parts = _parts(rule_text)
    all_starts = starts(start, rule_text)
    before = [s for s in all_starts if s < at]
    remaining = [s for s in all_starts if s >= at]
    if not before or not remaining:
        raise InvalidInput(N_("This occurrence is the first of its series; change the whole series instead."))
    old = {k: v for k, v in parts.items() if k != "COUNT"}
    old["UNTIL"] = (at - dt.timedelta(seconds=1)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    new = dict(parts)
    if "COUNT" in parts:
        new["COUNT"] = str(len(remaining))
    return _to_text(old), _to_text(new)


def describe(rule_text: str, start: dt.datetime) -> Text:
    """A short human description of the rule, for pages ("until" names the last occurrence,
    not the technical UNTIL, which a split series sets just before the cut)."""
    if not rule_text:
        return N_("Once")
    parts = _parts(rule_text)
    frequency = {"DAILY": N_("Daily"), "WEEKLY": N_("Weekly"), "MONTHLY": N_("Monthly")}[parts["FREQ"]]
    if "COUNT" in parts:
        return N_("{frequency}, {count} times", frequency=frequency, count=parts["COUNT"])
    return N_("{frequency}, until {date}", frequency=frequency, date=date_text(last_start(start, rule_text)))
