"""Answers to an invitation: signed links in the mail (no login) and the one place where an
answer, from a link or from an iMIP REPLY (``server.mail.replies``), is recorded.

A link's token (itsdangerous, salt ``giaoban.rsvp``) names the meeting, the participant and
the meeting's UID. Nothing is stored: the token stays valid until the meeting's series ends
plus :data:`GRACE`, following the meeting when its times change. Opening a link never changes
anything (mail scanners open links); the answer is a form posted from the page.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from server.audit import service as audit
from server.db import utcnow
from server.errors import Conflict, InvalidInput, NotFound
from server.i18n import N_, Text
from server.mail.compose import RsvpLinks
from server.meetings.models import Meeting, MeetingParticipant
from server.meetings.service import Invitee
from server.text import nfc

SALT = "giaoban.rsvp"
GRACE = dt.timedelta(days=7)
RESPONSES = ("accepted", "tentative", "declined", "delegated")
LINK_ANSWERS = {"accept": "accepted", "tentative": "tentative", "decline": "declined", "delegate": "delegated"}
COMMENT_MAX = 500
NAME_MAX = 200
_MAILBOX = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RsvpClaim:
    meeting_id: int
    participant_id: int
    uid: str


class RsvpSigner:
    """Signs and reads answer tokens with the app's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)

    def issue(self, meeting: Meeting, participant_id: int) -> str:
        return self._serializer.dumps([meeting.id, participant_id, meeting.uid])

    def read(self, token: str) -> RsvpClaim | None:
        """The claim, or None for a forged or malformed token (expiry is the meeting's)."""
        try:
            value = self._serializer.loads(token)
        except BadSignature:  # SignatureExpired is a BadSignature too
            return None
        if (isinstance(value, list) and len(value) == 3 and isinstance(value[2], str)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value[:2])):
            return RsvpClaim(value[0], value[1], value[2])
        return None


def links(signer: RsvpSigner, public_url: str, meeting: Meeting, participant_id: int) -> RsvpLinks:
    base = f"{public_url.rstrip('/')}/rsvp/{signer.issue(meeting, participant_id)}"
    return RsvpLinks(accept=f"{base}?answer=accept", tentative=f"{base}?answer=tentative",
                     decline=f"{base}?answer=decline", delegate=f"{base}?answer=delegate#deputy")


def links_for(session: Session, signer: RsvpSigner, public_url: str, meeting: Meeting, email: str) -> RsvpLinks | None:
    """The links of whoever receives mail at ``email`` (the first such participant), if any."""
    participant = participant_by_mailbox(session, meeting, email)
    if participant is None or participant.id is None:
        return None
    return links(signer, public_url, meeting, participant.id)


def participant_by_mailbox(session: Session, meeting: Meeting, email: str) -> MeetingParticipant | None:
    wanted = email.strip().lower()
    if not wanted:
        return None
    rows = session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id)
                        .order_by(col(MeetingParticipant.id))).all()
    return next((p for p in rows if p.email.strip().lower() == wanted), None)


# --- opening a link -------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """What a link opens: the meeting and the participant one answers for."""

    meeting: Meeting
    participant: MeetingParticipant

    @property
    def cancelled(self) -> bool:
        return self.meeting.status == "cancelled"


def expires_at(meeting: Meeting) -> dt.datetime:
    return meeting.series_end + GRACE


def open_invitation(session: Session, signer: RsvpSigner, token: str, *, now: dt.datetime | None = None) -> Invitation:
    """The invitation a token names, or 404 for a forged, malformed or expired token, or one
    whose participant is no longer invited."""
    claim = signer.read(token)
    if claim is None:
        raise NotFound(N_("This answer link is not valid. Use the link from your most recent invitation mail."))
    meeting = session.get(Meeting, claim.meeting_id)
    participant = session.get(MeetingParticipant, claim.participant_id)
    if meeting is None or meeting.uid != claim.uid or participant is None or participant.meeting_id != meeting.id:
        raise NotFound(N_("This answer link no longer names an invitation: you may have been removed from the meeting."))
    if (now or utcnow()) > expires_at(meeting):
        raise NotFound(N_("This answer link has expired: the meeting ended more than 7 days ago."))
    return Invitation(meeting, participant)


# --- recording an answer --------------------------------------------------------------------


class DeputyNotifier(Protocol):
    """Invites a deputy named by an answer (the mail outbox; tests may pass None)."""

    def deputy_invited(self, session: Session, meeting: Meeting, deputy: Invitee) -> None: ...


@dataclass(frozen=True)
class Answer:
    response: str  # one of RESPONSES
    comment: str = ""
    deputy_email: str = ""  # with "delegated"
    deputy_name: str = ""


@dataclass(frozen=True)
class Recorded:
    meeting: Meeting
    participant: MeetingParticipant
    deputy: MeetingParticipant | None  # the deputy's participant row, new or already invited
    deputy_added: bool


def check_deputy(answer: Answer, participant: MeetingParticipant, *, name_required: bool) -> dict[str, Text | str]:
    errors: dict[str, Text | str] = {}
    email = answer.deputy_email.strip()
    if not _MAILBOX.match(email) or len(email) > 254:
        errors["deputy_email"] = N_("Give the deputy's mail address, e.g. ten@cantho.gov.vn.")
    elif email.lower() == participant.email.strip().lower():
        errors["deputy_email"] = N_("The deputy must have another mail address than yours.")
    name = nfc(answer.deputy_name)
    if name_required and not name:
        errors["deputy_name"] = N_("Give the deputy's name.")
    elif len(name) > NAME_MAX:
        errors["deputy_name"] = N_("At most {n} characters.", n=NAME_MAX)
    return errors


def record(
    session: Session, meeting: Meeting, participant: MeetingParticipant, answer: Answer, *, via: str, actor: object = None,
    ip: str = "", now: dt.datetime | None = None, notify: DeputyNotifier | None = None,
) -> Recorded:
    """Store ``answer`` on ``participant``, audit it, and invite a deputy in turn.

    The deputy is a participant without a unit or an account (its mailbox only); a deputy
    already invited to the meeting is not added twice."""
    if meeting.status == "cancelled":
        raise Conflict(N_("This meeting was cancelled; answers are no longer recorded."))
    if answer.response not in RESPONSES:
        raise InvalidInput(N_("Unknown answer."), fields={"answer": N_("Unknown answer.")})
    deputy: MeetingParticipant | None = None
    added = False
    delegated_to = ""
    if answer.response == "delegated":
        errors = check_deputy(answer, participant, name_required=(via == "link"))
        if errors:
            raise InvalidInput(N_("The answer was not recorded: some fields are invalid."), fields=errors)
        delegated_to = answer.deputy_email.strip()
        deputy = participant_by_mailbox(session, meeting, delegated_to)
        if deputy is None:
            name = nfc(answer.deputy_name) or delegated_to
            deputy = MeetingParticipant(meeting_id=meeting.id or 0, code=delegated_to.lower()[:100], name=name,
                                        email=delegated_to, parent_name=participant.name[:200], role="participant")
            session.add(deputy)
            added = True
    participant.response = answer.response
    participant.responded_at = now or utcnow()
    participant.delegated_to = delegated_to[:200]
    participant.comment = nfc(answer.comment)[:COMMENT_MAX]
    session.add(participant)
    audit.record(session, "rsvp_answered", actor=actor, target=str(meeting.id), ip=ip, via=via,
                 participant=participant.code, response=answer.response, delegated_to=delegated_to)
    session.flush()
    if added and deputy is not None and notify is not None:
        notify.deputy_invited(session, meeting, Invitee(deputy.email, deputy.name))
    return Recorded(meeting, participant, deputy, added)


def answer_link(
    session: Session, signer: RsvpSigner, token: str, answer: Answer, *, ip: str = "", now: dt.datetime | None = None,
    notify: DeputyNotifier | None = None,
) -> Recorded:
    """The page's form: the answer of the participant the token names."""
    invitation = open_invitation(session, signer, token, now=now)
    return record(session, invitation.meeting, invitation.participant, answer, via="link", ip=ip, now=now, notify=notify)
