"""The administrators' outbox page: what was sent, what waits, what failed and why; resend."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts.models import User
from server.accounts.views import client_ip
from server.appstate import app_state
from server.auth import page_user
from server.clock import moment_text
from server.errors import Forbidden
from server.i18n import N_, Text
from server.mail import outbox
from server.mail.models import OutboxMessage, OutboxState

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


def _admin(request: Request) -> User:
    user = page_user(request)
    if not permissions.is_admin(user):
        raise Forbidden(N_("Only administrators see the outgoing mail."))
    return user


async def outbox_page(request: Request) -> Response:
    _admin(request)
    state = request.query_params.get("state", "")
    if state not in STATE_LABELS:
        state = ""
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
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
    actor = _admin(request)
    outbox_id: int = request.path_params["outbox_id"]
    await app_state(request).db.run(outbox.resend, outbox_id, actor=actor, ip=client_ip(request))
    _wake_sender(request)
    return RedirectResponse(f"/admin/outbox?resent={outbox_id}", status_code=303)


def _wake_sender(request: Request) -> None:
    app_state(request).outbox_sender.wake()


routes = [
    Route("/admin/outbox", outbox_page, name="admin_outbox"),
    Route("/admin/outbox/{outbox_id:int}/resend", resend, methods=["POST"], name="admin_outbox_resend"),
]
