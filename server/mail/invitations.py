"""Invitations as mail: what each change of a meeting sends to whom (RFC 5546 over RFC 6047).

Called by the meetings service, inside the transaction of the change, through the
:class:`server.meetings.service.Notifier` protocol: every message goes to the outbox in the
same commit as the change that caused it, so nothing is sent for a change that rolled back and
nothing is lost when the mail server is down. One mail per attendee (per-person RSVP later).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from server.calendar import ics
from server.calendar import service as calendar
from server.db import utcnow
from server.i18n import Catalogues, Translations
from server.mail import outbox, rsvp
from server.mail.compose import InvitationContext, Notice, compose_imip, render_invitation
from server.meetings.models import Meeting, MeetingParticipant, OccurrenceOverride
from server.meetings.service import Invitee

if TYPE_CHECKING:
    from server.settings import Settings


def recipients(participants: list[MeetingParticipant]) -> dict[str, Invitee]:
    """Who gets mail: every invited person and every invited unit's mailbox, once each."""
    found: dict[str, Invitee] = {}
    for p in participants:
        email = p.email.strip().lower()
        if email:
            found.setdefault(email, Invitee(p.email.strip(), p.name))
    return found


@dataclass(frozen=True)
class MailNotifier:
    """Writes the invitation mails of a change; configured once per request by the views."""

    public_url: str
    mail_from: str
    translations: Translations
    rsvp_signer: rsvp.RsvpSigner | None = None  # None: mails without answer links

    def _event(self, session: Session, meeting: Meeting) -> tuple[ics.EventData, list[MeetingParticipant]]:
        participants = list(session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id)
                                         .order_by(col(MeetingParticipant.id))).all())
        overrides = list(session.exec(select(OccurrenceOverride).where(OccurrenceOverride.meeting_id == meeting.id)).all())
        event = calendar.event_data(meeting, overrides, participants, public_url=self.public_url,
                                    organizer=calendar.organizer(self))
        return event, participants

    def _send(self, session: Session, meeting: Meeting, to: Invitee, notice: Notice, data: bytes, method: str,
              start: dt.datetime, end: dt.datetime, title: str) -> None:
        mail = render_invitation(
            InvitationContext(
                notice=notice, title=title, start=start, end=end, host=meeting.host_unit_name, chair=meeting.chair_name,
                recipient_name=to.name, join_url="" if notice == "cancellation" else calendar.join_url(self.public_url, meeting.id),
                agenda=tuple(meeting.agenda or ()), description=meeting.description,
                rsvp=None if notice == "cancellation" or self.rsvp_signer is None
                else rsvp.links_for(session, self.rsvp_signer, self.public_url, meeting, to.email),
            ),
            self.translations,
        )
        message = compose_imip(sender=self.mail_from, recipient=to.email, recipient_name=to.name, subject=mail.subject,
                               text=mail.text, html=mail.html, ics=data, method=method)
        outbox.enqueue(session, kind=notice, recipient=to.email, message=message, meeting_id=meeting.id)

    def saved(self, session: Session, meeting: Meeting, *, previous: Mapping[str, Invitee], created: bool) -> None:
        """A REQUEST to everyone invited now (an invitation for those new to it, an update for
        the others) and a CANCEL to those no longer invited."""
        event, participants = self._event(session, meeting)
        labels = calendar.labels(self.translations)
        now = utcnow()
        current = recipients(participants)
        request = ics.request(event, now=now, labels=labels) if current else b""
        for email, to in current.items():
            notice: Notice = "update" if (not created and email in previous) else "invitation"
            self._send(session, meeting, to, notice, request, "REQUEST", meeting.start, meeting.end, meeting.title)
        removed = [to for email, to in previous.items() if email not in current]
        for to in removed:
            attendee = ics.Attendee(email=to.email, name=to.name, cutype="INDIVIDUAL", role="REQ-PARTICIPANT",
                                    partstat="NEEDS-ACTION")
            data = ics.cancel(event, attendees=[attendee], now=now, labels=labels)
            self._send(session, meeting, to, "cancellation", data, "CANCEL", meeting.start, meeting.end, meeting.title)

    def cancelled(self, session: Session, meeting: Meeting) -> None:
        event, participants = self._event(session, meeting)
        labels = calendar.labels(self.translations)
        data = ics.cancel(event, now=utcnow(), labels=labels)
        for to in recipients(participants).values():
            self._send(session, meeting, to, "cancellation", data, "CANCEL", meeting.start, meeting.end, meeting.title)

    def occurrence_changed(self, session: Session, meeting: Meeting, original_start: dt.datetime, *, cancelled: bool) -> None:
        """One occurrence moved, retitled or cancelled: RECURRENCE-ID, EXDATE on later masters."""
        event, participants = self._event(session, meeting)
        labels = calendar.labels(self.translations)
        now = utcnow()
        override = next((o for o in event.overrides if o.recurrence_id == original_start), None)
        start = override.start if override else original_start
        end = override.end if override else original_start + (meeting.end - meeting.start)
        title = (override.title if override and override.title else meeting.title)
        if cancelled:
            data, method, notice = ics.cancel_occurrence(event, original_start, now=now, labels=labels), "CANCEL", "cancellation"
        else:
            data, method, notice = ics.request_occurrence(event, original_start, now=now, labels=labels), "REQUEST", "update"
        for to in recipients(participants).values():
            self._send(session, meeting, to, notice, data, method, start, end, title)  # type: ignore[arg-type]


def notifier(settings: Settings, catalogues: Catalogues) -> MailNotifier:
    """The notifier of this app: mail in the default language (the officials' Vietnamese,
    whatever language the secretary's screen is in)."""
    return MailNotifier(settings.effective_public_url, settings.mail_from, catalogues.get(settings.default_locale),
                        rsvp.RsvpSigner(settings.effective_secret_key))


@dataclass(frozen=True)
class MailDeputyNotifier:
    """Sends the deputy the same invitation (REQUEST, their own answer links) as everyone."""

    mail: MailNotifier

    def deputy_invited(self, session: Session, meeting: Meeting, deputy: Invitee) -> None:
        # The notifier's own building blocks, so the deputy's mail is exactly an invitation.
        event, _ = self.mail._event(session, meeting)
        data = ics.request(event, now=utcnow(), labels=calendar.labels(self.mail.translations))
        self.mail._send(session, meeting, deputy, "invitation", data, "REQUEST", meeting.start, meeting.end, meeting.title)
