"""The mail pages: the signed answer page opened from an invitation (no login); for
administrators, the outbox (what was sent, what waits, what failed and why; resend) and the
upload that applies an iMIP REPLY (.ics or .eml)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts.models import User
from server.appstate import AppState, app_state
from server.auth import page_user
from server.clock import date_text, moment_text
from server.edge import client_ip, query_page
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_, Text, current_translations, render
from server.mail import outbox, replies, rsvp
from server.mail.compose import when_text
from server.mail.invitations import MailDeputyNotifier, notifier
from server.mail.models import OutboxMessage, OutboxState
from server.meetings import recurrence
from server.meetings.display import RESPONSE_LABELS

MAX_REPLY_BYTES = 1024 * 1024
ANSWER_CHOICES = ("accept", "tentative", "decline", "delegate")


@dataclass(frozen=True)
class AnswerPage:
    """The answer page, everything worked out before the template sees it."""

    title: str
    when: str
    series: Text | None  # "a series of n meetings, the last on …"
    host: str
    chair: str
    answering_for: str
    answering_for_unit: str
    current: Text
    responded_at: str
    delegated_to: str
    comment: str
    cancelled: bool
    chosen: str  # the answer the mail's link named, preselected


def _signer(state: AppState) -> rsvp.RsvpSigner:
    return rsvp.RsvpSigner(state.settings.effective_secret_key)


def answer_page(invitation: rsvp.Invitation, chosen: str) -> AnswerPage:
    meeting, participant = invitation.meeting, invitation.participant
    starts = recurrence.starts(meeting.start, meeting.rrule) if meeting.rrule else [meeting.start]
    series = N_("A series of {n} meetings; the last one on {day}.", n=len(starts), day=date_text(starts[-1])) if len(starts) > 1 else None
    return AnswerPage(
        title=meeting.title, when=when_text(meeting.start, meeting.end, current_translations.get()), series=series,
        host=meeting.host_unit_name, chair=meeting.chair_name, answering_for=participant.name,
        answering_for_unit=participant.parent_name,
        current=RESPONSE_LABELS.get(participant.response, RESPONSE_LABELS["needs_action"]),
        responded_at=moment_text(participant.responded_at), delegated_to=participant.delegated_to,
        comment=participant.comment, cancelled=invitation.cancelled, chosen=chosen if chosen in ANSWER_CHOICES else "",
    )


async def rsvp_page(request: Request) -> Response:
    state = app_state(request)
    token: str = request.path_params["token"]
    invitation = await state.db.run(rsvp.open_invitation, _signer(state), token)
    page = answer_page(invitation, request.query_params.get("answer", ""))
    return state.pages.render(request, "rsvp/answer.html", {"page": page, "token": token, "errors": {}, "form": {}, "error": ""},
                              status_code=200)


async def rsvp_answer(request: Request) -> Response:
    state = app_state(request)
    token: str = request.path_params["token"]
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("answer", "comment", "deputy_name", "deputy_email")}
    signer = _signer(state)
    choice = values["answer"]
    answer = rsvp.Answer(response=rsvp.LINK_ANSWERS.get(choice, ""), comment=values["comment"],
                         deputy_email=values["deputy_email"] if choice == "delegate" else "",
                         deputy_name=values["deputy_name"] if choice == "delegate" else "")
    try:
        recorded = await state.db.run(rsvp.answer_link, signer, token, answer, ip=client_ip(request),
                                      notify=MailDeputyNotifier(notifier(state.settings, state.catalogues)))
    except (InvalidInput, Conflict) as exc:
        invitation = await state.db.run(rsvp.open_invitation, signer, token)
        page = answer_page(invitation, choice)
        translations = current_translations.get()
        return state.pages.render(
            request, "rsvp/answer.html",
            {"page": page, "token": token, "form": values, "error": render(exc.message, translations),
             "errors": {k: render(v, translations) for k, v in exc.fields.items()}},
            status_code=exc.status,
        )
    if recorded.deputy_added:
        state.outbox_sender.wake()
    return state.pages.render(request, "rsvp/done.html", {
        "answer": RESPONSE_LABELS[recorded.participant.response], "delegated_to": recorded.participant.delegated_to,
        "deputy_added": recorded.deputy_added, "title": recorded.meeting.title,
    })


# --- the administrators' upload -------------------------------------------------------------


def _admin(request: Request, refusal: Text) -> User:
    user = page_user(request)
    if not permissions.is_admin(user):
        raise Forbidden(refusal)
    return user


@dataclass(frozen=True)
class AppliedRow:
    meeting_title: str
    attendee: str
    participant_name: str
    answer: Text
    delegated_to: str
    deputy_added: bool
    occurrence: str
    note: Text | None


def applied_row(result: replies.ReplyResult) -> AppliedRow:
    return AppliedRow(result.meeting_title, result.attendee, result.participant_name, RESPONSE_LABELS[result.response],
                      result.delegated_to, result.deputy_added, moment_text(result.occurrence), result.note)


async def replies_page(request: Request) -> Response:
    _admin(request, N_("Only administrators apply calendar replies."))
    return app_state(request).pages.render(request, "rsvp/replies.html", {"applied": None, "error": ""})


async def replies_upload(request: Request) -> Response:
    actor = _admin(request, N_("Only administrators apply calendar replies."))
    state = app_state(request)
    form = await request.form(max_files=1)
    upload = form.get("file")
    translations = current_translations.get()
    if not isinstance(upload, UploadFile):
        error = render(N_("Choose a .ics or .eml file."), translations)
        return state.pages.render(request, "rsvp/replies.html", {"applied": None, "error": error}, status_code=422)
    data = await upload.read(MAX_REPLY_BYTES + 1)
    await form.close()
    is_mail = (upload.filename or "").lower().endswith(".eml") or not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR")
    notify = MailDeputyNotifier(notifier(state.settings, state.catalogues))
    try:
        if len(data) > MAX_REPLY_BYTES:
            raise InvalidInput(N_("The file is larger than 1 MB."))
        if is_mail:
            result = await state.db.run(replies.apply_reply_mail, data, actor=actor, ip=client_ip(request), notify=notify)
        else:
            result = await state.db.run(replies.apply_reply, data, sender=None, actor=actor, ip=client_ip(request), notify=notify)
    except InvalidInput as exc:
        return state.pages.render(request, "rsvp/replies.html", {"applied": None, "error": render(exc.message, translations)},
                                  status_code=422)
    if result.deputy_added:
        state.outbox_sender.wake()
    return state.pages.render(request, "rsvp/replies.html", {"applied": applied_row(result), "error": ""})


PAGE_SIZE = 50
STATE_LABELS: dict[str, Text] = {
    OutboxState.pending.value: N_("Waiting"),
    OutboxState.sending.value: N_("Sending"),
    OutboxState.sent.value: N_("Sent"),
    OutboxState.dead.value: N_("Failed"),
}
KIND_LABELS: dict[str, Text] = {
    "invitation": N_("Invitation"),
    "update": N_("Change notice"),
    "cancellation": N_("Cancellation notice"),
    "rsvp-confirm": N_("Answer confirmation"),
}


@dataclass(frozen=True)
class OutboxRow:
    """One mail as the page shows it, everything worked out before the template sees it."""

    id: int
    created: str
    recipient: str
    subject: str
    kind: Text | str
    state: str
    state_label: Text
    attempts: int
    next_attempt: str  # only while waiting
    sent: str
    last_error: str
    resendable: bool


@dataclass(frozen=True)
class StateFilter:
    value: str  # "" for all
    label: Text
    count: int
    current: bool


def outbox_row(message: OutboxMessage) -> OutboxRow:
    return OutboxRow(
        id=message.id or 0, created=moment_text(message.created_at), recipient=message.recipient, subject=message.subject,
        kind=KIND_LABELS.get(message.kind, message.kind), state=message.state, state_label=STATE_LABELS[message.state],
        attempts=message.attempts,
        next_attempt=moment_text(message.next_attempt_at) if message.state == OutboxState.pending.value else "",
        sent=moment_text(message.sent_at), last_error=message.last_error, resendable=message.state in outbox.RESENDABLE,
    )


async def outbox_page(request: Request) -> Response:
    _admin(request, N_("Only administrators see the outgoing mail."))
    state = request.query_params.get("state", "")
    if state not in STATE_LABELS:
        state = ""
    page = query_page(request)
    db = app_state(request).db
    messages, total = await db.run(outbox.list_messages, state=state or None, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    counts = await db.run(outbox.counts)
    filters = [StateFilter("", N_("All mail"), sum(counts.values()), state == "")] + [
        StateFilter(value, label, counts[value], state == value) for value, label in STATE_LABELS.items()
    ]
    resent = request.query_params.get("resent", "")
    return app_state(request).pages.render(
        request, "admin/outbox.html",
        {"rows": [outbox_row(m) for m in messages], "total": total, "filters": filters, "state": state, "page": page,
         "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), "resent": resent.isdigit()},
    )


async def resend(request: Request) -> Response:
    actor = _admin(request, N_("Only administrators see the outgoing mail."))
    outbox_id: int = request.path_params["outbox_id"]
    await app_state(request).db.run(outbox.resend, outbox_id, actor=actor, ip=client_ip(request))
    _wake_sender(request)
    return RedirectResponse(f"/admin/outbox?resent={outbox_id}", status_code=303)


def _wake_sender(request: Request) -> None:
    app_state(request).outbox_sender.wake()


routes = [
    Route("/rsvp/{token}", rsvp_page, methods=["GET"], name="rsvp"),
    Route("/rsvp/{token}", rsvp_answer, methods=["POST"], name="rsvp_answer"),
    Route("/admin/replies", replies_page, methods=["GET"], name="admin_replies"),
    Route("/admin/replies", replies_upload, methods=["POST"], name="admin_replies_upload"),
    Route("/admin/outbox", outbox_page, name="admin_outbox"),
    Route("/admin/outbox/{outbox_id:int}/resend", resend, methods=["POST"], name="admin_outbox_resend"),
]
