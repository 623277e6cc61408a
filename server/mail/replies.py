"""iMIP REPLY (RFC 5546 §3.2.3 over RFC 6047): an attendee's calendar answers the invitation
("Accept" in Outlook, Zimbra, Thunderbird) with a mail carrying ``METHOD:REPLY``.

A reply is accepted only when everything checks: exactly one VEVENT with exactly one
ATTENDEE, a known UID, an attendee who is a participant (by mailbox), the mail's sender being
that attendee, and a PARTSTAT we record. Anything else raises :class:`InvalidInput` before
anything is changed. An answer for one occurrence (``RECURRENCE-ID``) is kept as a comment:
answers are stored per meeting, not per occurrence.
"""

from __future__ import annotations

import datetime as dt
import email
from dataclasses import dataclass
from email.message import Message
from email.policy import default as default_policy
from email.utils import parseaddr

import icalendar
from sqlmodel import Session, select

from server.audit import service as audit
from server.clock import LOCAL, moment_text
from server.db import utcnow
from server.errors import InvalidInput
from server.i18n import N_, Text
from server.mail import rsvp
from server.meetings import recurrence
from server.meetings.models import Meeting

PARTSTATS = {"ACCEPTED": "accepted", "TENTATIVE": "tentative", "DECLINED": "declined", "DELEGATED": "delegated"}


@dataclass(frozen=True)
class ParsedReply:
    uid: str
    attendee: str  # mailbox, as written
    attendee_name: str
    response: str  # one of rsvp.RESPONSES
    partstat: str  # as sent: kept in the comment of a one-occurrence answer
    delegated_to: str
    recurrence_id: dt.datetime | None  # aware, UTC
    comment: str


@dataclass(frozen=True)
class ReplyResult:
    meeting_id: int
    meeting_title: str
    attendee: str
    participant_name: str
    response: str
    delegated_to: str = ""
    deputy_added: bool = False
    occurrence: dt.datetime | None = None  # the occurrence a RECURRENCE-ID reply answered
    note: Text | None = None  # what was done differently from a plain answer


def _refuse(message: Text) -> InvalidInput:
    return InvalidInput(N_("The calendar reply was not applied: {reason}", reason=message))


def _mailbox(value: object) -> str:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip()


def _utc(value: object) -> dt.datetime:
    """A RECURRENCE-ID as UTC, whatever zone names the client used: icalendar reads the
    VTIMEZONE sent with the reply (Outlook's "SE Asia Standard Time"); a time without a
    usable zone is taken as Vietnam time."""
    if isinstance(value, dt.datetime):
        try:
            if value.tzinfo is not None and value.utcoffset() is not None:
                return value.astimezone(dt.UTC)
        except Exception:  # a VTIMEZONE icalendar cannot use
            pass
        return value.replace(tzinfo=LOCAL).astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=LOCAL).astimezone(dt.UTC)
    raise _refuse(N_("RECURRENCE-ID is not a date or time."))


def parse_reply(data: bytes) -> ParsedReply:
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception:
        raise _refuse(N_("the file is not an iCalendar object.")) from None
    if not isinstance(cal, icalendar.Calendar) or cal.name != "VCALENDAR":
        raise _refuse(N_("the file is not an iCalendar object."))
    method = str(cal.get("METHOD", "")).strip().upper()
    if method != "REPLY":
        raise _refuse(N_("METHOD is {method}, not REPLY.", method=method or "—"))
    events = cal.walk("VEVENT")
    if len(events) != 1:
        raise _refuse(N_("a reply carries exactly one event, this one has {n}.", n=len(events)))
    event = events[0]
    uid = str(event.get("UID", "")).strip()
    if not uid:
        raise _refuse(N_("the event has no UID."))
    attendees = event.get("ATTENDEE")
    if attendees is None:
        attendees = []
    elif not isinstance(attendees, list):
        attendees = [attendees]
    if len(attendees) != 1:
        raise _refuse(N_("a reply names exactly one ATTENDEE, this one has {n}.", n=len(attendees)))
    attendee = attendees[0]
    params = getattr(attendee, "params", {})
    partstat = str(params.get("PARTSTAT", "")).strip().upper()
    if partstat not in PARTSTATS:
        raise _refuse(N_("PARTSTAT {partstat} is not an answer (ACCEPTED, TENTATIVE, DECLINED or DELEGATED).",
                         partstat=partstat or "—"))
    delegated_to = ""
    if partstat == "DELEGATED":
        raw = params.get("DELEGATED-TO", "")
        targets = [_mailbox(v) for v in (raw if isinstance(raw, list) else [raw]) if _mailbox(v)]
        if len(targets) != 1:
            raise _refuse(N_("PARTSTAT=DELEGATED needs exactly one DELEGATED-TO."))
        delegated_to = targets[0]
    recurrence_id = None
    if "RECURRENCE-ID" in event:
        try:
            decoded = event.decoded("RECURRENCE-ID")
        except Exception:
            raise _refuse(N_("RECURRENCE-ID is not a date or time.")) from None
        recurrence_id = _utc(decoded)
    return ParsedReply(uid=uid, attendee=_mailbox(attendee), attendee_name=str(params.get("CN", "")),
                       response=PARTSTATS[partstat], partstat=partstat, delegated_to=delegated_to, recurrence_id=recurrence_id,
                       comment=str(event.get("COMMENT", "")).strip())


def apply_reply(
    session: Session, data: bytes, *, sender: str | None, actor: object = None, ip: str = "",
    notify: rsvp.DeputyNotifier | None = None, now: dt.datetime | None = None,
) -> ReplyResult:
    """Check a REPLY object and record its answer; ``sender`` is the mail's From, if any."""
    reply = parse_reply(data)
    meeting = session.exec(select(Meeting).where(Meeting.uid == reply.uid)).first()
    if meeting is None or meeting.id is None:
        raise _refuse(N_("no meeting has the UID {uid}.", uid=reply.uid))
    if meeting.status == "cancelled":
        raise _refuse(N_("the meeting was cancelled."))
    participant = rsvp.participant_by_mailbox(session, meeting, reply.attendee)
    if participant is None:
        raise _refuse(N_("{attendee} is not invited to this meeting.", attendee=reply.attendee))
    if sender is not None and _mailbox(parseaddr(sender)[1]).lower() != reply.attendee.lower():
        raise _refuse(N_("the mail comes from {sender}, not from the attendee {attendee}.",
                         sender=parseaddr(sender)[1] or sender, attendee=reply.attendee))
    via = "imip"
    if reply.recurrence_id is not None:
        starts = recurrence.starts(meeting.start, meeting.rrule)
        if reply.recurrence_id not in starts:
            raise _refuse(N_("RECURRENCE-ID names no occurrence of this meeting."))
        local = moment_text(reply.recurrence_id)
        line = f"{local}: {reply.partstat}"
        if reply.delegated_to:
            line += f" → {reply.delegated_to}"
        comment = f"{participant.comment}\n{line}" if participant.comment else line
        participant.comment = comment[-rsvp.COMMENT_MAX:]
        participant.responded_at = now or utcnow()
        session.add(participant)
        audit.record(session, "rsvp_answered", actor=actor, target=str(meeting.id), ip=ip, via=via, participant=participant.code,
                     response=reply.response, occurrence=reply.recurrence_id.isoformat(), delegated_to=reply.delegated_to)
        session.flush()
        return ReplyResult(meeting.id, meeting.title, reply.attendee, participant.name, reply.response,
                           delegated_to=reply.delegated_to, occurrence=reply.recurrence_id,
                           note=N_("An answer for one occurrence: kept as a comment, the answer to the series is unchanged."))
    answer = rsvp.Answer(response=reply.response, comment=reply.comment or participant.comment,
                         deputy_email=reply.delegated_to)
    try:
        recorded = rsvp.record(session, meeting, participant, answer, via=via, actor=actor, ip=ip, now=now, notify=notify)
    except InvalidInput as exc:
        reason = next(iter(exc.fields.values()), exc.message)
        raise _refuse(N_("DELEGATED-TO is not usable: {reason}", reason=reason)) from None
    return ReplyResult(meeting.id, meeting.title, reply.attendee, participant.name, reply.response,
                       delegated_to=reply.delegated_to, deputy_added=recorded.deputy_added)


def calendar_part(message: Message) -> bytes:
    """The iCalendar object of a mail: the ``text/calendar`` part, else an ``.ics`` attachment."""
    found: list[bytes] = []
    attachments: list[bytes] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        filename = (part.get_filename() or "").lower()
        if part.get_content_type() == "text/calendar":
            found.append(payload)
        elif filename.endswith(".ics") or part.get_content_type() == "application/ics":
            attachments.append(payload)
    if found or attachments:
        return (found or attachments)[0]
    raise _refuse(N_("the mail carries no calendar object."))


def apply_reply_mail(
    session: Session, raw: bytes, *, actor: object = None, ip: str = "", notify: rsvp.DeputyNotifier | None = None,
    now: dt.datetime | None = None,
) -> ReplyResult:
    """Apply the REPLY inside an RFC 5322 message; its From is the sender checked."""
    message = email.message_from_bytes(raw, policy=default_policy)
    sender = parseaddr(str(message.get("From", "")))[1]
    if not sender:
        raise _refuse(N_("the mail has no From address."))
    return apply_reply(session, calendar_part(message), sender=sender, actor=actor, ip=ip, notify=notify, now=now)
