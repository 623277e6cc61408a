"""Calendar feeds and downloads: the secret feed links (create, revoke, list, resolve), which
meetings a feed shows, and a stored meeting as :class:`server.calendar.ics.EventData` (the
invitation mail builds on the same mapping).

A person's feed shows the meetings they are invited to themselves or through their unit; a
unit's feed the meetings it hosts or is invited to. Both reach 60 days back and two years
ahead and keep cancelled meetings, so that a subscribed client strikes them out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Literal

from sqlmodel import Session, col, or_, select

from server import permissions
from server.accounts.models import Role, User
from server.audit import service as audit
from server.calendar import ics
from server.calendar.models import FeedToken
from server.db import utcnow
from server.errors import Forbidden, NotFound
from server.i18n import N_, Translations
from server.meetings import service as meetings
from server.meetings.models import Meeting, MeetingParticipant, OccurrenceOverride, as_list
from server.units import service as units
from server.units.models import Unit

FEED_PAST = dt.timedelta(days=60)
FEED_AHEAD = dt.timedelta(days=2 * 366)
# A feed is polled about hourly by every subscriber: writing last_used_at on each poll would
# turn reads into writes; once in a while is enough to tell a living link from a dead one.
LAST_USED_EVERY = dt.timedelta(minutes=10)
DEFAULT_MAIL_FROM = "giaoban@cantho.gov.vn.test"
SERVICE_NAME = "Giao Ban"
PARTSTAT: dict[str, ics.Partstat] = {
    "needs_action": "NEEDS-ACTION", "accepted": "ACCEPTED", "declined": "DECLINED",
    "tentative": "TENTATIVE", "delegated": "DELEGATED",
}


@dataclass(frozen=True, eq=False)
class Owner:
    """Whose calendar a feed shows: a person (``user``) or a unit (``unit``)."""

    kind: Literal["user", "unit"]
    user: User | None = None
    unit: Unit | None = None

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.full_name
        assert self.unit is not None
        return self.unit.name


@dataclass(frozen=True)
class UnitFeed:
    token: FeedToken
    unit: Unit


@dataclass(frozen=True)
class FeedList:
    """What the feeds page shows one person: their link, their units' links, and the units
    they may make a link for (secretaries and administrators)."""

    own: FeedToken | None
    units: list[UnitFeed]
    choices: list[Unit]


# --- secrets --------------------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _active(query: Any) -> Any:
    return query.where(col(FeedToken.revoked_at).is_(None))


def _acting_unit_ids(session: Session, user: User) -> set[int] | None:
    """Units ``user`` acts for (None: all of them, an administrator); see permissions."""
    if permissions.is_admin(user):
        return None
    if user.role != Role.secretary.value:
        return set()
    return units.descendant_ids(session, user.unit_id)


def create(session: Session, actor: User, *, unit: Unit | None = None, ip: str = "") -> tuple[FeedToken, str]:
    """A new link for ``actor`` (or for ``unit``, which they must act for); the owner's previous
    link stops working, so "new link" is also how a leaked one is replaced. Returns the secret,
    which is never stored and cannot be shown again."""
    if unit is not None and not permissions.can_act_for_unit(session, actor, unit):
        raise Forbidden(N_("Only secretaries of {unit} or of a unit above it manage its calendar feed.", unit=unit.name))
    now = utcnow()
    kind = "unit" if unit is not None else "user"
    owner_id = unit.id if unit is not None else actor.id
    owned = FeedToken.unit_id == owner_id if unit is not None else FeedToken.user_id == owner_id
    for old in session.exec(_active(select(FeedToken)).where(FeedToken.owner_kind == kind, owned)).all():
        old.revoked_at = now
        session.add(old)
    secret = secrets.token_urlsafe(32)  # 256 bits: guessing one is not a threat worth a rate limit
    token = FeedToken(
        token_hash=hash_secret(secret), owner_kind=kind, user_id=owner_id if unit is None else None,
        unit_id=owner_id if unit is not None else None, created_by_id=actor.id, created_at=now,
    )
    session.add(token)
    session.flush()
    audit.record(session, "feed_created", actor=actor, target=f"unit:{unit.code}" if unit is not None else f"user:{actor.username}", ip=ip)
    return token, secret


def _may_manage(session: Session, user: User, token: FeedToken) -> bool:
    if permissions.is_admin(user):
        return True
    if token.owner_kind == "user":
        return token.user_id == user.id
    unit = session.get(Unit, token.unit_id) if token.unit_id is not None else None
    return unit is not None and permissions.can_act_for_unit(session, user, unit)


def revoke(session: Session, actor: User, token_id: int, *, ip: str = "") -> FeedToken:
    """Stop a link at once. A link one may not manage answers as a missing one (404)."""
    token = session.get(FeedToken, token_id)
    if token is None or not _may_manage(session, actor, token):
        raise NotFound(N_("No such calendar feed."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record(session, "feed_revoked", actor=actor, target=str(token.id), ip=ip)
    return token


def listing(session: Session, user: User) -> FeedList:
    own = session.exec(
        _active(select(FeedToken)).where(FeedToken.owner_kind == "user", FeedToken.user_id == user.id)
        .order_by(col(FeedToken.id).desc())
    ).first()
    acting = _acting_unit_ids(session, user)
    if acting is not None and not acting:
        return FeedList(own, [], [])
    every = units.all_units(session, include_inactive=True)
    mine = [u for u in every if acting is None or u.id in acting]
    by_id = {u.id: u for u in mine}
    query = _active(select(FeedToken)).where(FeedToken.owner_kind == "unit")
    if acting is not None:
        query = query.where(col(FeedToken.unit_id).in_(acting))
    unit_feeds = [UnitFeed(t, by_id[t.unit_id]) for t in session.exec(query.order_by(col(FeedToken.unit_id))).all() if t.unit_id in by_id]
    return FeedList(own, unit_feeds, [u for u in mine if u.active])


def resolve(session: Session, secret: str, *, now: dt.datetime | None = None) -> Owner | None:
    """The owner of a working link, or None (unknown, revoked, or its person disabled). A
    merged unit's link keeps working: its past meetings are still worth showing."""
    if not secret or len(secret) > 200:
        return None
    token = session.exec(select(FeedToken).where(FeedToken.token_hash == hash_secret(secret))).first()
    if token is None or token.revoked_at is not None:
        return None
    owner: Owner | None = None
    if token.owner_kind == "user" and token.user_id is not None:
        user = session.get(User, token.user_id)
        owner = Owner("user", user=user) if user is not None and user.active else None
    elif token.owner_kind == "unit" and token.unit_id is not None:
        unit = session.get(Unit, token.unit_id)
        owner = Owner("unit", unit=unit) if unit is not None else None
    now = now or utcnow()
    if owner is not None and (token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY):
        token.last_used_at = now
        session.add(token)
    return owner


# --- what a feed shows ----------------------------------------------------------------------------


def feed_meetings(session: Session, owner: Owner, *, now: dt.datetime | None = None) -> list[Meeting]:
    now = now or utcnow()
    takes_part: Any
    if owner.user is not None:
        invited = select(MeetingParticipant.meeting_id).where(
            or_(MeetingParticipant.user_id == owner.user.id, MeetingParticipant.unit_id == owner.user.unit_id))
        takes_part = col(Meeting.id).in_(invited)
    else:
        assert owner.unit is not None
        invited = select(MeetingParticipant.meeting_id).where(MeetingParticipant.unit_id == owner.unit.id)
        takes_part = or_(col(Meeting.id).in_(invited), col(Meeting.host_unit_id) == owner.unit.id)
    query = select(Meeting).where(takes_part, col(Meeting.start) < now + FEED_AHEAD, col(Meeting.series_end) > now - FEED_PAST)
    return list(session.exec(query.order_by(col(Meeting.start), col(Meeting.id))).all())


def _overrides(session: Session, meeting_ids: Sequence[int]) -> dict[int, list[OccurrenceOverride]]:
    found: dict[int, list[OccurrenceOverride]] = {}
    if meeting_ids:
        rows = session.exec(select(OccurrenceOverride).where(col(OccurrenceOverride.meeting_id).in_(meeting_ids))).all()
        for row in rows:
            found.setdefault(row.meeting_id, []).append(row)
    return found


def feed_events(session: Session, owner: Owner, *, public_url: str, organizer: ics.Mailbox, now: dt.datetime | None = None) -> list[ics.EventData]:
    found = feed_meetings(session, owner, now=now)
    overrides = _overrides(session, [m.id for m in found if m.id is not None])
    # No attendees: a feed does not carry them (see ics.feed), and loading them would be the
    # most expensive part of a large feed.
    return [event_data(m, overrides.get(m.id or 0, []), (), public_url=public_url, organizer=organizer) for m in found]


def meeting_event(session: Session, viewer: User, meeting_id: int, *, public_url: str, organizer: ics.Mailbox,
                  with_attendees: bool = False) -> ics.EventData:
    """One meeting ``viewer`` may see (404 otherwise), for a download or a mail."""
    meeting = meetings.get_visible(session, viewer, meeting_id)
    overrides = _overrides(session, [meeting_id]).get(meeting_id, [])
    participants = meetings.participants(session, meeting) if with_attendees else []
    return event_data(meeting, overrides, participants, public_url=public_url, organizer=organizer)


# --- mapping ----------------------------------------------------------------------------------------


def join_url(public_url: str, meeting_id: int | None) -> str:
    return f"{public_url.rstrip('/')}/meetings/{meeting_id}/room"


def organizer(settings: object) -> ics.Mailbox:
    """The service mailbox that organises every meeting (replies must reach the application)."""
    name, address = parseaddr(str(getattr(settings, "mail_from", "") or DEFAULT_MAIL_FROM))
    return ics.Mailbox(address or DEFAULT_MAIL_FROM, name or SERVICE_NAME)


def attendee(participant: MeetingParticipant) -> ics.Attendee:
    return ics.Attendee(
        email=participant.email, name=participant.name,
        cutype="ROOM" if participant.unit_id is not None else "INDIVIDUAL",
        role="CHAIR" if participant.role == "chair" else "REQ-PARTICIPANT",
        partstat=PARTSTAT.get(participant.response, "NEEDS-ACTION"),
        delegated_to=participant.delegated_to,
    )


def _override(meeting: Meeting, row: OccurrenceOverride) -> ics.Override:
    # Moving one occurrence raises only the occurrence's own counter, cancelling one raises
    # both: the sum never goes down and is never below the series' SEQUENCE.
    return ics.Override(row.original_start, row.start, row.end, row.title, row.cancelled, meeting.sequence + row.sequence)


def event_data(
    meeting: Meeting, overrides: Sequence[OccurrenceOverride], participants: Sequence[MeetingParticipant], *,
    public_url: str, organizer: ics.Mailbox,
) -> ics.EventData:
    """A stored meeting as the calendar sees it. Participants without a mailbox are left out
    (ATTENDEE is a mailto: address); a one-off meeting's own override is folded into it,
    since it has no series to carry a RECURRENCE-ID."""
    start, end, title, sequence = meeting.start, meeting.end, meeting.title, meeting.sequence
    cancelled = meeting.status == "cancelled"
    kept = sorted(overrides, key=lambda o: o.original_start)
    if not meeting.rrule:
        for row in kept:
            if row.original_start == meeting.start:
                start, end, title = row.start, row.end, row.title or meeting.title
                cancelled, sequence = cancelled or row.cancelled, meeting.sequence + row.sequence
        kept = []
    return ics.EventData(
        uid=meeting.uid, sequence=sequence, title=title, start=start, end=end, organizer=organizer,
        description=meeting.description, agenda=tuple(as_list(meeting.agenda)), rrule=meeting.rrule,
        status="CANCELLED" if cancelled else "CONFIRMED",
        attendees=tuple(attendee(p) for p in participants if p.email.strip()),
        join_url=join_url(public_url, meeting.id), overrides=tuple(_override(meeting, o) for o in kept),
        host=meeting.host_unit_name, chair=meeting.chair_name, updated_at=meeting.updated_at,
    )


_LABELS = {
    "agenda": N_("Agenda items"), "host": N_("Host unit"), "chair": N_("Chair"), "join": N_("Join online"),
    "conference": N_("Video meeting"), "reminder": N_("The meeting starts in 15 minutes"),
}


def labels(translations: Translations) -> ics.Labels:
    """The words inside calendar objects, in one language (feeds use the default locale)."""
    return ics.Labels(**{name: text.render(translations) for name, text in _LABELS.items()})


def feed_name(owner: Owner, translations: Translations) -> str:
    return N_("Giao Ban: {name}", name=owner.name).render(translations)
