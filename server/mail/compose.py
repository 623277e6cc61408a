"""Invitation mails (iMIP, RFC 6047), built per attendee, and their Vietnamese bodies.

The structure is the one Outlook/Exchange, Gmail, Zimbra and Thunderbird all accept
(see docs in shared/notes/calendar-interop.md)::

    multipart/mixed
      multipart/alternative
        text/plain; charset=utf-8                      (base64)
        text/html; charset=utf-8                       (base64)
        text/calendar; method=REQUEST; charset=UTF-8   (base64)
      application/ics; name="invite.ics"               (attachment, base64)

Every part is base64, so the whole message is ASCII and the outbox can keep it as text and
send exactly the same bytes on every retry. Pure: values in, an ``EmailMessage`` out.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Literal

import jinja2

from server.clock import date_text, local_day, moment_text, time_range, weekday_name
from server.i18n import N_, Text, Translations, current_translations
from server.templating import make_environment

METHODS = frozenset({"PUBLISH", "REQUEST", "REPLY", "ADD", "CANCEL", "REFRESH", "COUNTER", "DECLINECOUNTER"})
ATTACHMENT_NAME = "invite.ics"
_METHOD_LINE = re.compile(rb"^METHOD(?:;[^:\r\n]*)?:(.*)$", re.IGNORECASE)


class ComposeError(ValueError):
    """The mail cannot be built from these values (a programming error, not a user's)."""


# --- the iCalendar object's METHOD ----------------------------------------------------------


def ics_method(ics: bytes) -> str:
    """The ``METHOD`` of an iCalendar object (RFC 5545 §3.7.2), upper-case.

    Read from the bytes that will be attached, so the ``method=`` parameter cannot drift
    from the object: Outlook shows "not supported calendar message" when they differ.
    """
    try:
        ics.decode("utf-8")
    except UnicodeDecodeError:
        raise ComposeError("the iCalendar object is not UTF-8") from None
    unfolded = re.sub(rb"\r?\n[ \t]", b"", ics)  # RFC 5545 §3.1: a line break + space continues
    lines = unfolded.splitlines()
    if not lines or lines[0].strip().upper() != b"BEGIN:VCALENDAR":
        raise ComposeError("the iCalendar object does not start with BEGIN:VCALENDAR")
    methods = [m.group(1).strip().decode("ascii", "replace").upper() for line in lines if (m := _METHOD_LINE.match(line))]
    if len(methods) != 1:
        raise ComposeError(f"the iCalendar object must carry exactly one METHOD, found {len(methods)}")
    if methods[0] not in METHODS:
        raise ComposeError(f"unknown iTIP method {methods[0]!r}")
    return methods[0]


# --- the MIME message ----------------------------------------------------------------------


def _address(value: str, display_name: str = "") -> Address:
    """One ASCII mail address (the policy then encodes a Vietnamese display name)."""
    name, addr = parseaddr(value)
    if not addr or addr.count("@") != 1 or any(c in value for c in "\r\n") or not addr.isascii():
        raise ComposeError(f"not a usable mail address: {value!r}")
    username, domain = addr.split("@")
    if not username or not domain:
        raise ComposeError(f"not a usable mail address: {value!r}")
    return Address(display_name=unicodedata.normalize("NFC", display_name or name), username=username, domain=domain)


def new_message_id(sender: str) -> str:
    """``<uuid@domain of the sender>``: unique, and the same on every retry (it is stored)."""
    return f"<{uuid.uuid4()}@{_address(sender).domain}>"


def compose_imip(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    ics: bytes,
    method: str,
    recipient_name: str = "",
    date: dt.datetime | None = None,
    message_id: str = "",
) -> EmailMessage:
    """One iMIP message to one attendee.

    ``sender`` is the service mailbox (``Giao Ban <giaoban@cantho.gov.vn>`` or a bare
    address) that is also the ICS ``ORGANIZER``, so that replies come back to the service.
    ``method`` must equal the METHOD inside ``ics``: a mismatch is refused.
    """
    found = ics_method(ics)
    if method.strip().upper() != found:
        raise ComposeError(f"method={method!r} but the iCalendar object says METHOD:{found}")
    message = _headers(sender=sender, recipient=recipient, recipient_name=recipient_name, subject=subject,
                       date=date, message_id=message_id)
    message.set_content(_nfc(text), subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(_nfc(html), subtype="html", charset="utf-8", cte="base64")
    message.add_alternative(ics, maintype="text", subtype="calendar", cte="base64",
                            params={"method": found, "charset": "UTF-8"})
    message.make_mixed()
    message.add_attachment(ics, maintype="application", subtype="ics", cte="base64",
                           filename=ATTACHMENT_NAME, params={"name": ATTACHMENT_NAME})
    # After make_mixed(): it moves every Content-* header into the inner part.
    message["Content-Class"] = "urn:content-classes:calendarmessage"
    return message


def compose_notice(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    recipient_name: str = "",
    date: dt.datetime | None = None,
    message_id: str = "",
) -> EmailMessage:
    """A mail without a calendar object (an RSVP confirmation, say): text + HTML alternatives."""
    message = _headers(sender=sender, recipient=recipient, recipient_name=recipient_name, subject=subject,
                       date=date, message_id=message_id)
    message.set_content(_nfc(text), subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(_nfc(html), subtype="html", charset="utf-8", cte="base64")
    return message


def _headers(
    *, sender: str, recipient: str, recipient_name: str, subject: str, date: dt.datetime | None, message_id: str
) -> EmailMessage:
    if any(c in subject for c in "\r\n"):
        raise ComposeError("a subject is one line")
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(sender)
    message["To"] = _address(recipient, recipient_name)
    message["Subject"] = _nfc(subject)  # RFC 2047-encoded by the policy
    message["Date"] = format_datetime((date or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    message["Message-ID"] = message_id or new_message_id(sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    return message


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


# --- the bodies ----------------------------------------------------------------------------

Notice = Literal["invitation", "update", "cancellation"]
SUBJECTS: dict[Notice, Text] = {  # formatted with title= and when=
    "invitation": N_("Invitation: {title}, {when}"),
    "update": N_("Changed: {title}, {when}"),
    "cancellation": N_("Cancelled: {title}, {when}"),
}
HEADLINES: dict[Notice, Text] = {
    "invitation": N_("You are invited to the meeting below."),
    "update": N_("The meeting below has changed. The details in this mail replace those sent before."),
    "cancellation": N_("The meeting below is cancelled."),
}


@dataclass(frozen=True)
class RsvpLinks:
    """Signed answer links, one per answer, made by the caller for this attendee."""

    accept: str
    tentative: str
    decline: str
    delegate: str  # "send a deputy": declines and names who attends instead


@dataclass(frozen=True)
class InvitationContext:
    notice: Notice
    title: str
    start: dt.datetime  # aware
    end: dt.datetime  # aware
    host: str  # the host unit's name
    chair: str
    recipient_name: str
    join_url: str  # "" when there is nothing to join (a cancellation)
    agenda: Sequence[str] = ()
    description: str = ""
    rsvp: RsvpLinks | None = None  # None: no answer asked (a cancellation)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@functools.cache
def _env() -> jinja2.Environment:
    # The pages' environment (filters, gettext), with plain text and CSS left unescaped.
    return make_environment().overlay(
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt", "css"), default=True)
    )


def when_text(start: dt.datetime, end: dt.datetime, translations: Translations) -> str:
    """``Thứ Hai, 12/05/2025, 08:00–10:00 (giờ Việt Nam)``: local time, dd/mm/yyyy, 24 hours."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ComposeError("meeting times must be aware datetimes")
    day = local_day(start)
    return N_("{weekday}, {date}, {time} (Vietnam time)", weekday=weekday_name(day), date=date_text(day),
              time=time_range(start, end)).render(
        translations
    )


def render_invitation(context: InvitationContext, translations: Translations) -> RenderedMail:
    """Subject, plain text and HTML of an invitation (or its update or cancellation)."""
    starts = moment_text(context.start)
    subject = Text(SUBJECTS[context.notice].msgid, {"title": _nfc(context.title), "when": starts}).render(translations)
    values = {
        "locale": translations.locale,
        "subject": subject,
        "headline": HEADLINES[context.notice].render(translations),
        "recipient_name": _nfc(context.recipient_name),
        "title": _nfc(context.title),
        "when": when_text(context.start, context.end, translations),
        "host": _nfc(context.host),
        "chair": _nfc(context.chair),
        "agenda": [_nfc(item) for item in context.agenda],
        "description": _nfc(context.description),
        "join_url": context.join_url,
        "rsvp": context.rsvp,
    }
    reset = current_translations.set(translations)
    try:
        env = _env()
        text = env.get_template("mail/invitation.txt").render(values)
        html = env.get_template("mail/invitation.html").render(values)
    finally:
        current_translations.reset(reset)
    return RenderedMail(subject=subject, text=text, html=html)
