"""iCalendar objects for meetings (RFC 5545): iTIP messages (RFC 5546) and subscription feeds.

Pure: plain typed values in, bytes out; no database, no web framework. What real clients
accept is collected in ``shared/notes/calendar-interop.md``; the rules that follow from it:

- one VTIMEZONE for Asia/Ho_Chi_Minh with a single STANDARD block at +0700 (Vietnam has no
  daylight saving; Outlook is confused by zones built from many RDATEs), and every time is
  written with that TZID, UNTIL excepted, which RFC 5545 wants in UTC;
- no calendar-level UID (it breaks some sync tools); ORGANIZER is the service mailbox;
- the join link goes in URL, LOCATION, DESCRIPTION and CONFERENCE, because most clients
  ignore CONFERENCE;
- text is NFC before it is folded, so that a tone mark never lands on the next line apart
  from its letter; the icalendar package folds at 75 octets between characters (the tests
  check every line) and ends lines with CRLF.

Feeds have no METHOD, so RFC 5545 lets DTSTAMP be the time the event was last changed
rather than the time of sending: each event then serialises to the same bytes until it
changes, which is what lets :class:`BlockCache` keep them and the feed's ETag stay stable.
"""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from icalendar import Alarm, Calendar, Event, Timezone, TimezoneStandard, vCalAddress, vDuration, vRecur, vUri

from server.clock import LOCAL, TZID

PRODID = "-//Giao Ban//Giao Ban//VI"
REMINDER = dt.timedelta(minutes=15)
FEED_REFRESH = dt.timedelta(hours=1)
END = b"END:VCALENDAR\r\n"

Cutype = Literal["INDIVIDUAL", "ROOM"]
Role = Literal["CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT"]
Partstat = Literal["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"]
Status = Literal["CONFIRMED", "CANCELLED"]
# What an object is for decides what its events carry (RFC 5546 §3.2 tables).
_Use = Literal["request", "cancel", "publish", "feed"]


@dataclass(frozen=True)
class Mailbox:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Attendee:
    """An invited person (INDIVIDUAL) or an invited unit's mailbox (ROOM)."""

    email: str
    name: str = ""
    cutype: Cutype = "INDIVIDUAL"
    role: Role = "REQ-PARTICIPANT"
    partstat: Partstat = "NEEDS-ACTION"
    rsvp: bool = True
    delegated_to: str = ""  # a mailbox, written as DELEGATED-TO when partstat is DELEGATED


@dataclass(frozen=True)
class Override:
    """One occurrence of a series that differs from the rule (RECURRENCE-ID = its original start)."""

    recurrence_id: dt.datetime
    start: dt.datetime
    end: dt.datetime
    title: str = ""  # empty: the series' title
    cancelled: bool = False
    # The SEQUENCE written on this occurrence; never below the series' own (see _sequence).
    sequence: int = 0


@dataclass(frozen=True)
class EventData:
    """A meeting (one event or a series) as the calendar sees it. Times are aware (UTC)."""

    uid: str
    sequence: int
    title: str
    start: dt.datetime
    end: dt.datetime
    organizer: Mailbox
    description: str = ""
    agenda: tuple[str, ...] = ()
    rrule: str = ""  # as stored: no DTSTART, UNTIL in UTC
    exdates: tuple[dt.datetime, ...] = ()
    status: Status = "CONFIRMED"
    attendees: tuple[Attendee, ...] = ()
    join_url: str = ""
    overrides: tuple[Override, ...] = ()
    host: str = ""
    chair: str = ""
    updated_at: dt.datetime | None = None  # LAST-MODIFIED, and a feed's DTSTAMP


@dataclass(frozen=True)
class Labels:
    """The words written inside the objects, in the reader's language (the caller translates)."""

    agenda: str = "Agenda"
    host: str = "Host unit"
    chair: str = "Chair"
    join: str = "Join online"
    conference: str = "Video meeting"
    reminder: str = "The meeting starts in 15 minutes"


DEFAULT_LABELS = Labels()


# --- the cache of serialised events -------------------------------------------------------------


class BlockCache:
    """A bounded LRU of serialised VEVENT blocks, shared by every feed of the process.

    The key is the whole (frozen) event with the labels, not a revision number that callers
    would have to remember to bump: hashing an event without attendees costs microseconds,
    serialising it with the icalendar package costs about half a millisecond.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._blocks: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()  # feeds render in the database worker threads

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._blocks.get(key)
            if found is not None:
                self._blocks.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        block = make()  # outside the lock: two threads may both build it, and that is harmless
        with self._lock:
            self._blocks[key] = block
            while len(self._blocks) > self.size:
                self._blocks.popitem(last=False)
        return block

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._blocks)


FEED_BLOCKS = BlockCache(20_000)


# --- values -------------------------------------------------------------------------------------


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _param(value: str) -> str:
    # A parameter value cannot hold a double quote (RFC 5545 §3.2); RFC 6868's ^' escape, which
    # the icalendar package would write, is shown raw by Outlook, so a name keeps single quotes.
    return " ".join(_text(value).replace('"', "'").split())


def _local(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be aware (UTC)")
    return value.astimezone(LOCAL).replace(microsecond=0)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be aware (UTC)")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _rrule(text: str) -> vRecur:
    rule: vRecur = vRecur.from_ical(text.strip().removeprefix("RRULE:"))
    for until in rule.get("UNTIL", []):
        if not isinstance(until, dt.datetime) or until.utcoffset() != dt.timedelta(0):
            raise ValueError(f"UNTIL must be a UTC time when DTSTART has a TZID: {text}")
    return rule


def _now(now: dt.datetime | None) -> dt.datetime:
    return _utc(now or dt.datetime.now(dt.UTC))


def _description(event: EventData, labels: Labels) -> str:
    parts: list[str] = []
    if _text(event.description):
        parts.append(_text(event.description))
    agenda = [_text(item) for item in event.agenda if _text(item)]
    if agenda:
        parts.append("\n".join([f"{labels.agenda}:", *(f"{n}. {item}" for n, item in enumerate(agenda, 1))]))
    facts = [f"{label}: {_text(value)}" for label, value in ((labels.host, event.host), (labels.chair, event.chair)) if _text(value)]
    if facts:
        parts.append("\n".join(facts))
    if event.join_url:
        parts.append(f"{labels.join}: {event.join_url}")
    return "\n\n".join(parts)


def _mailto(email: str) -> str:
    return f"mailto:{email.strip()}"


def _attendee(attendee: Attendee, *, rsvp: bool) -> vCalAddress:
    address = vCalAddress(_mailto(attendee.email))
    if _param(attendee.name):
        address.params["CN"] = _param(attendee.name)
    address.params["CUTYPE"] = attendee.cutype
    address.params["ROLE"] = attendee.role
    address.params["PARTSTAT"] = attendee.partstat
    if rsvp and attendee.rsvp:
        address.params["RSVP"] = "TRUE"
    if attendee.partstat == "DELEGATED" and "@" in attendee.delegated_to:
        address.params["DELEGATED-TO"] = _mailto(attendee.delegated_to)
    return address


def _organizer(mailbox: Mailbox) -> vCalAddress:
    address = vCalAddress(_mailto(mailbox.email))
    if _param(mailbox.name):
        address.params["CN"] = _param(mailbox.name)
    return address


def _conference(url: str, labels: Labels) -> vUri:
    # RFC 7986 §5.11. FEATURE given as a list is written AUDIO,VIDEO; given as one string the
    # icalendar package would quote it ("AUDIO,VIDEO"), which is then one unknown feature.
    value = vUri(url)
    value.params["VALUE"] = "URI"
    value.params["FEATURE"] = ["AUDIO", "VIDEO"]
    value.params["LABEL"] = _param(labels.conference)
    return value


def _sequence(event: EventData, override: Override | None) -> int:
    # An occurrence's SEQUENCE below the series' would make a client take the change for an
    # old one; callers pass the series' sequence plus the occurrence's own changes.
    return event.sequence if override is None else max(event.sequence, override.sequence)


def _find(event: EventData, recurrence_id: dt.datetime) -> Override | None:
    return next((o for o in event.overrides if o.recurrence_id == recurrence_id), None)


# --- components ---------------------------------------------------------------------------------


def _vevent(
    event: EventData, use: _Use, stamp: dt.datetime, labels: Labels, attendees: Sequence[Attendee],
    occurrence: Override | None = None, recurrence_id: dt.datetime | None = None,
) -> Event:
    """The master of ``event``, or with ``recurrence_id`` one of its occurrences (moved per
    ``occurrence`` when given)."""
    component = Event()
    component.add("uid", event.uid)
    component.add("dtstamp", stamp)
    if event.updated_at is not None:
        component.add("last-modified", _utc(event.updated_at))
    start, end, title = event.start, event.end, event.title
    if recurrence_id is not None:
        component.add("recurrence-id", _local(recurrence_id))  # same zone and type as DTSTART
        start, end = recurrence_id, recurrence_id + (event.end - event.start)
    if occurrence is not None:
        start, end, title = occurrence.start, occurrence.end, occurrence.title or event.title
    component.add("dtstart", _local(start))
    component.add("dtend", _local(end))
    component.add("sequence", _sequence(event, occurrence))
    component.add("summary", _text(title))
    cancelled = use == "cancel" or event.status == "CANCELLED"
    component.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    component.add("transp", "OPAQUE")
    if recurrence_id is None and event.rrule:
        component.add("rrule", _rrule(event.rrule))
        excluded = sorted({*event.exdates, *(o.recurrence_id for o in event.overrides if o.cancelled)})
        if excluded:
            component.add("exdate", [_local(when) for when in excluded])
    description = _description(event, labels)
    if description:
        component.add("description", description)
    if event.join_url:
        component.add("location", event.join_url)
        component.add("url", event.join_url)
        component.add("conference", _conference(event.join_url, labels))
    component.add("organizer", _organizer(event.organizer))
    if use in ("request", "cancel"):
        for attendee in attendees:
            component.add("attendee", _attendee(attendee, rsvp=use == "request"))
    if use in ("request", "publish") and not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", -REMINDER)
        alarm.add("description", _text(labels.reminder))
        component.add_component(alarm)
    return component


def _series(event: EventData, use: _Use, stamp: dt.datetime, labels: Labels, attendees: Sequence[Attendee]) -> bytes:
    """The master and one VEVENT per moved occurrence (cancelled ones are EXDATEs on the master)."""
    parts = [_vevent(event, use, stamp, labels, attendees).to_ical()]
    if event.rrule:
        for override in sorted(event.overrides, key=lambda o: o.recurrence_id):
            if not override.cancelled:
                parts.append(_vevent(event, use, stamp, labels, attendees, override, override.recurrence_id).to_ical())
    return b"".join(parts)


def _timezone() -> Timezone:
    zone = Timezone()
    zone.add("tzid", TZID)
    standard = TimezoneStandard()
    standard.add("dtstart", dt.datetime(1970, 1, 1))
    standard.add("tzoffsetfrom", dt.timedelta(hours=7))
    standard.add("tzoffsetto", dt.timedelta(hours=7))
    standard.add("tzname", "+07")
    zone.add_component(standard)
    return zone


@lru_cache(maxsize=512)
def _head(method: str, name: str) -> bytes:
    """Everything before the events: calendar properties and the VTIMEZONE."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    if name:
        calendar.add("name", _text(name))  # RFC 7986
        calendar.add("x-wr-calname", _text(name))  # what Outlook, Apple and Google read
        calendar.add("x-wr-timezone", TZID)
        refresh = vDuration(FEED_REFRESH)
        refresh.params["VALUE"] = "DURATION"  # RFC 7986 requires it; the package's helper omits it
        calendar.add("refresh-interval", refresh)
        calendar.add("x-published-ttl", vDuration(FEED_REFRESH))
    calendar.add_component(_timezone())
    body: bytes = calendar.to_ical()
    assert body.endswith(END)
    return body[: -len(END)]


def _document(method: str, blocks: Iterable[bytes], name: str = "") -> bytes:
    return _head(method, name) + b"".join(blocks) + END


def _needs_attendees(attendees: Sequence[Attendee]) -> Sequence[Attendee]:
    if not attendees:
        raise ValueError("an iTIP REQUEST or CANCEL names at least one attendee")
    return attendees


# --- objects ------------------------------------------------------------------------------------


def request(
    event: EventData, *, attendees: Sequence[Attendee] | None = None, now: dt.datetime | None = None,
    labels: Labels = DEFAULT_LABELS,
) -> bytes:
    """METHOD:REQUEST for the whole meeting: an invitation or an update (send ``event`` with
    its SEQUENCE already raised). ``attendees`` defaults to the event's."""
    who = _needs_attendees(event.attendees if attendees is None else attendees)
    return _document("REQUEST", [_series(event, "request", _now(now), labels, who)])


def request_occurrence(
    event: EventData, recurrence_id: dt.datetime, *, attendees: Sequence[Attendee] | None = None,
    now: dt.datetime | None = None, labels: Labels = DEFAULT_LABELS, with_master: bool = True,
) -> bytes:
    """METHOD:REQUEST for one moved or retitled occurrence (RECURRENCE-ID).

    With the master (the default, as the interop notes advise) every other moved occurrence is
    sent too: a client that replaces the whole series on such a message keeps them. Without
    it, the object holds the one occurrence alone (RFC 5546 §4.4.3).
    """
    override = _find(event, recurrence_id)
    if override is None or override.cancelled:
        raise ValueError("the occurrence is not among the event's moved occurrences")
    who = _needs_attendees(event.attendees if attendees is None else attendees)
    stamp = _now(now)
    if with_master:
        return _document("REQUEST", [_series(event, "request", stamp, labels, who)])
    return _document("REQUEST", [_vevent(event, "request", stamp, labels, who, override, recurrence_id).to_ical()])


def cancel(
    event: EventData, *, attendees: Sequence[Attendee] | None = None, now: dt.datetime | None = None,
    labels: Labels = DEFAULT_LABELS,
) -> bytes:
    """METHOD:CANCEL of the whole meeting (every occurrence): STATUS:CANCELLED, no VALARM."""
    who = _needs_attendees(event.attendees if attendees is None else attendees)
    return _document("CANCEL", [_vevent(event, "cancel", _now(now), labels, who).to_ical()])


def cancel_occurrence(
    event: EventData, recurrence_id: dt.datetime, *, attendees: Sequence[Attendee] | None = None,
    now: dt.datetime | None = None, labels: Labels = DEFAULT_LABELS,
) -> bytes:
    """METHOD:CANCEL of one occurrence: only its VEVENT, with RECURRENCE-ID (a master here
    would cancel the series). Later REQUESTs carry it as an EXDATE on the master."""
    who = _needs_attendees(event.attendees if attendees is None else attendees)
    component = _vevent(event, "cancel", _now(now), labels, who, _find(event, recurrence_id), recurrence_id)
    return _document("CANCEL", [component.to_ical()])


def publish(events: Sequence[EventData], *, now: dt.datetime | None = None, labels: Labels = DEFAULT_LABELS) -> bytes:
    """METHOD:PUBLISH (a download): the events without attendees, as RFC 5546 §3.2.1 asks."""
    stamp = _now(now)
    return _document("PUBLISH", [_series(event, "publish", stamp, labels, ()) for event in events])


def feed(events: Sequence[EventData], name: str, *, labels: Labels = DEFAULT_LABELS) -> bytes:
    """A subscription feed: no METHOD, no attendees (a feed link is a bearer secret and should
    not hand out everyone's mailbox), no alarms (a subscriber's client decides), cancelled
    meetings kept with STATUS:CANCELLED so that clients strike them out instead of guessing.

    Each event is serialised once per content and served from :data:`FEED_BLOCKS` after that.
    """
    return _document("", (_feed_block(event, labels) for event in events), name)


def _feed_block(event: EventData, labels: Labels) -> bytes:
    if event.updated_at is None:  # DTSTAMP would be the time of rendering: nothing to keep
        return _series(event, "feed", _now(None), labels, ())
    stamp = _utc(event.updated_at)
    return FEED_BLOCKS.get(("feed", event, labels), lambda: _series(event, "feed", stamp, labels, ()))
