"""Who may enter a meeting's room, and when.

A room belongs to one occurrence. It is open from ``opens_before`` before the occurrence's
start (technicians check the line) until ``closes_after`` after its end, unless the occurrence
or the meeting is cancelled. Those invited may join: invited people (the chair always is) and
the endpoint account of an invited unit; the hosts (secretaries of the host unit and above)
may always enter to run it; a signed join link lets its holder in as a guest, who waits in the
lobby until admitted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import Session, select

from server import permissions
from server.accounts.models import Role, User
from server.clock import moment_text
from server.errors import DomainError, Forbidden, NotFound
from server.i18n import N_
from server.meetings import service as meetings
from server.meetings.models import Meeting, MeetingParticipant
from server.rooms.models import RoomState
from server.settings import Settings
from server.units.models import Unit

JOIN_SALT = "giaoban.join"


class NotOpen(DomainError):
    status = 409
    code = "not_open"


@dataclass(frozen=True)
class Admission:
    meeting_id: int
    room: str  # the SFU's name for the occurrence's room
    occurrence: dt.datetime  # original start (RECURRENCE-ID)
    title: str
    start: dt.datetime
    end: dt.datetime
    person: str  # stable key of who joined: "user:12" or "participant:40"
    name: str
    kind: str  # person | room | guest
    role: str  # chair | host | participant | guest
    unit_code: str
    unit_name: str
    user_id: int | None
    unit_id: int | None = None  # the invited unit this join counts for in the roll-call

    @property
    def moderates(self) -> bool:
        """The chair and the hosts run the meeting."""
        return self.role in ("chair", "host")


class JoinLinks:
    """Signed personal join links (``?invite=``): meeting and participant, no expiry of their
    own — the room's opening hours and the invitation's existence decide."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=JOIN_SALT)

    def issue(self, meeting_id: int, participant_id: int) -> str:
        return self._serializer.dumps([meeting_id, participant_id])

    def read(self, token: str) -> tuple[int, int] | None:
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            return None
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return value[0], value[1]
        return None


def room_name(meeting_id: int, original_start: dt.datetime) -> str:
    return f"{meeting_id}@{original_start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def window(occurrence: meetings.Occurrence, opens_before: dt.timedelta, closes_after: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    return occurrence.start - opens_before, occurrence.end + closes_after


def find_occurrence(
    session: Session, meeting: Meeting, requested: dt.datetime | None, now: dt.datetime,
    opens_before: dt.timedelta, closes_after: dt.timedelta,
) -> meetings.Occurrence:
    """The occurrence asked for, or the one whose room is open now; ``NotOpen`` says when the
    next one opens."""
    if meeting.status == "cancelled":
        raise NotOpen(N_("This meeting has been cancelled."))
    if requested is not None:
        occurrence = meetings.occurrence(session, meeting, requested)
    else:
        candidates = meetings.occurrences_of(session, meeting, now - closes_after, now + opens_before + dt.timedelta(seconds=1))
        live = [o for o in candidates if not o.cancelled and window(o, opens_before, closes_after)[0] <= now]
        if live:
            return live[0]
        upcoming = [o for o in meetings.occurrences_of(session, meeting, now, now + dt.timedelta(days=400)) if not o.cancelled]
        if upcoming:
            occurrence = upcoming[0]
        else:
            past = [o for o in meetings.occurrences_of(session, meeting, now - dt.timedelta(days=400), now) if not o.cancelled]
            if not past:
                raise NotOpen(N_("This meeting has no more occurrences."))
            occurrence = past[-1]
    if occurrence.cancelled:
        raise NotOpen(N_("This occurrence has been cancelled."))
    opens, closes = window(occurrence, opens_before, closes_after)
    if not opens <= now < closes:
        message = (N_("The room opens at {time}.", time=moment_text(opens)) if now < opens
                   else N_("The room closed at {time}.", time=moment_text(closes)))
        raise NotOpen(message, fields={"opens_at": opens.isoformat(), "closes_at": closes.isoformat()})
    return occurrence


def invitation_of(session: Session, meeting: Meeting, user: User) -> MeetingParticipant | None:
    row = session.exec(select(MeetingParticipant).where(
        MeetingParticipant.meeting_id == meeting.id, MeetingParticipant.user_id == user.id)).first()
    if row is None and user.role == Role.endpoint.value:
        row = session.exec(select(MeetingParticipant).where(
            MeetingParticipant.meeting_id == meeting.id, MeetingParticipant.unit_id == user.unit_id)).first()
    return row


def admit(
    session: Session, meeting_id: int, *, user: User | None, invite: tuple[int, int] | None,
    occurrence: dt.datetime | None, now: dt.datetime, opens_before: dt.timedelta, closes_after: dt.timedelta,
) -> Admission:
    """Who is joining ``meeting_id`` now, or the reason they may not (``NotFound``, ``Forbidden``,
    ``NotOpen``). Without a user, ``invite`` (from a signed link) names the participant."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(N_("There is no such meeting."))
    participant: MeetingParticipant | None = None
    host = False
    if user is not None:
        participant = invitation_of(session, meeting, user)
        host = is_host(session, user, meeting)
        if participant is None and not host:
            raise Forbidden(N_("You are not invited to this meeting."))
    elif invite is not None:
        if invite[0] != meeting_id:
            raise Forbidden(N_("This join link is for another meeting."))
        participant = session.get(MeetingParticipant, invite[1])
        if participant is None or participant.meeting_id != meeting_id:
            raise Forbidden(N_("This join link is no longer valid: the invitation was withdrawn."))
    else:
        raise Forbidden(N_("You are not invited to this meeting."))
    found = find_occurrence(session, meeting, occurrence, now, opens_before, closes_after)
    ended = session.exec(select(RoomState.ended_at).where(
        RoomState.meeting_id == meeting_id, RoomState.original_start == found.original_start)).first()
    if ended is not None:
        raise NotOpen(N_("This meeting has ended."))
    is_room = participant is not None and participant.unit_id is not None
    unit_id: int | None = participant.unit_id if participant is not None else None
    if user is not None:
        person, name = f"user:{user.id}", user.full_name
        kind = "room" if user.role == Role.endpoint.value else "person"
        unit = session.get(Unit, user.unit_id)
        unit_code, unit_name = (unit.code, unit.name) if unit else ("", "")
        if unit_id is None and unit is not None:  # a person whose unit is invited counts for it
            unit_id = session.exec(select(MeetingParticipant.unit_id).where(
                MeetingParticipant.meeting_id == meeting_id, MeetingParticipant.unit_id == unit.id)).first()
        if user.id == meeting.chair_id:
            role = "chair"
        elif host:
            role = "host"
        else:
            role = "participant"
    else:
        assert participant is not None
        person, name, role = f"participant:{participant.id}", participant.name, "guest"
        kind = "room" if is_room else "guest"
        unit_name = participant.name if is_room else participant.parent_name
        unit_code = participant.code if is_room else ""
    return Admission(
        meeting_id=meeting_id, room=room_name(meeting_id, found.original_start), occurrence=found.original_start,
        title=found.title, start=found.start, end=found.end, person=person, name=name, kind=kind,
        role=role, unit_code=unit_code, unit_name=unit_name, user_id=user.id if user is not None else None,
        unit_id=unit_id,
    )


def admit_now(
    session: Session, settings: Settings, meeting_id: int, user: User | None, invite: tuple[int, int] | None,
    occurrence: dt.datetime | None,
) -> Admission:
    """``admit`` at this moment, with the room's opening hours from the settings (the room page
    and the signalling ask the same question)."""
    return admit(session, meeting_id, user=user, invite=invite, occurrence=occurrence, now=dt.datetime.now(dt.UTC),
                 opens_before=dt.timedelta(minutes=settings.room_opens_before),
                 closes_after=dt.timedelta(minutes=settings.room_closes_after))


def is_host(session: Session, user: User, meeting: Meeting) -> bool:
    """Secretaries of the host unit and of the units above it (and administrators)."""
    host_unit = session.get(Unit, meeting.host_unit_id)
    return host_unit is not None and permissions.can_act_for_unit(session, user, host_unit)
