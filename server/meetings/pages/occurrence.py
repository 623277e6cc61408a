"""One occurrence of a meeting: see it, move or retitle it, or cancel it — this occurrence
only, or this one and the following (the series ends there and a new meeting continues it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import date_text, time_range, weekday_name
from server.edge import client_ip, occurrence_path, parse_time, whole_number
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_, Text
from server.mail.invitations import notifier
from server.meetings import service
from server.meetings.display import NO_CONFLICTS, Conflicts, conflict_rows
from server.meetings.forms import local, local_clock, local_date_iso, parse_clock, parse_date

SCOPES: tuple[tuple[str, Text], ...] = (
    ("this", N_("This occurrence only")),
    ("following", N_("This and the following occurrences")),
)
FIELD_KEYS = frozenset({"date", "start", "end", "title", "scope", "version", "confirm"})


@dataclass(frozen=True)
class MoveForm:
    date: str
    start_time: str
    end_time: str
    title: str
    scope: str = "this"
    confirm: bool = False


@dataclass(frozen=True)
class Move:
    start: dt.datetime
    end: dt.datetime
    title: str
    scope: str


def _read_move(form: MoveForm) -> Move:
    errors: dict[str, Text | str] = {}
    day = parse_date(form.date)
    start, end = parse_clock(form.start_time), parse_clock(form.end_time)
    if day is None:
        errors["date"] = N_("Give the date as dd/mm/yyyy.")
    if start is None:
        errors["start"] = N_("Give the time as HH:MM (24-hour).")
    if end is None:
        errors["end"] = N_("Give the time as HH:MM (24-hour).")
    if form.scope not in dict(SCOPES):
        errors["scope"] = N_("Choose which occurrences change.")
    if errors or day is None or start is None or end is None:
        raise InvalidInput(N_("Nothing was changed."), fields=errors)
    return Move(local(day, start), local(day, end), form.title.strip(), form.scope)


def _context(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> dict[str, Any]:
    meeting = service.get_visible(session, viewer, meeting_id)
    current = service.occurrence(session, meeting, original)
    cancelled = current.cancelled or meeting.status == "cancelled"
    editable = service.can_edit(session, viewer, meeting) and not cancelled
    return {
        "meeting": meeting,
        "title": current.title,
        "date": date_text(current.start),
        "weekday": weekday_name(current.start),
        "time": time_range(current.start, current.end),
        "original": f"{date_text(current.original_start)} {local_clock(current.original_start)}",
        "changed": current.changed and current.start != current.original_start,
        "cancelled": cancelled,
        "is_series": bool(meeting.rrule),
        "can_edit": editable,
        "version": meeting.version,
        "page_url": occurrence_path(meeting_id, current.original_start),
        "record_url": occurrence_path(meeting_id, current.original_start, "record"),
        "scopes": SCOPES,
        "move": MoveForm(local_date_iso(current.start), local_clock(current.start), local_clock(current.end), current.title),
    }


def _version(raw: Any) -> int | None:
    return whole_number(raw)


def _move(session: Session, actor: User, meeting_id: int, original: dt.datetime, form: MoveForm, version: int | None,
          max_endpoints: int, ip: str, notify: service.Notifier | None = None) -> int:
    move = _read_move(form)
    meeting, _ = service.change_occurrence(
        session, actor, meeting_id, original, start=move.start, end=move.end, title=move.title, scope=move.scope,
        version=version, max_endpoints=max_endpoints, confirm=form.confirm, ip=ip, notify=notify,
    )
    return meeting.id or meeting_id


def _cancel(session: Session, actor: User, meeting_id: int, original: dt.datetime, scope: str, version: int | None, ip: str,
            notify: service.Notifier | None = None) -> int:
    if scope not in dict(SCOPES):
        raise InvalidInput(N_("Nothing was changed."), fields={"scope": N_("Choose which occurrences change.")})
    return service.cancel_occurrence(session, actor, meeting_id, original, scope=scope, version=version, ip=ip, notify=notify).id or meeting_id


async def _render(request: Request, viewer: User, meeting_id: int, original: dt.datetime, *, status_code: int = 200,
                  move: MoveForm | None = None, errors: dict[str, Text | str] | None = None, message: Text | str | None = None,
                  conflicts: Conflicts = NO_CONFLICTS, cancel_error: Text | str | None = None) -> Response:
    state = app_state(request)
    context = await state.db.run(_context, viewer, meeting_id, original)
    errors = errors or {}
    context.update(
        errors=errors, other_errors=[m for k, m in errors.items() if k not in FIELD_KEYS], message=message,
        conflicts=conflicts, show_confirm=bool(conflicts.hard), cancel_error=cancel_error, stale="version" in errors,
    )
    if move is not None:
        context["move"] = move
    return state.pages.render(request, "meetings/occurrence.html", context, status_code=status_code)


async def occurrence_page(request: Request) -> Response:
    viewer = page_user(request)
    meeting_id = int(request.path_params["id"])
    original = parse_time(request.path_params["original_start"], "original_start")
    if request.method == "GET":
        return await _render(request, viewer, meeting_id, original)
    await app_state(request).db.run(service.require_editor, viewer, meeting_id, original)  # 404/403 before the form is read
    raw = await request.form()

    def text(name: str, limit: int = 20) -> str:
        value = raw.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    action, version = text("action"), _version(raw.get("version"))
    move = MoveForm(text("date"), text("start_time"), text("end_time"), text("title", 1000), text("scope") or "this",
                    raw.get("confirm") == "1")
    cancel_scope, cancel_confirmed = text("cancel_scope") or "this", raw.get("cancel_confirm") == "1"
    await raw.close()
    state = app_state(request)
    try:
        if action == "cancel":
            if not cancel_confirmed:
                raise InvalidInput(N_("Nothing was changed."), fields={"cancel_confirm": N_("Tick the box to confirm.")})
            target = await state.db.run(_cancel, viewer, meeting_id, original, cancel_scope, version, client_ip(request),
                                        notifier(state.settings, state.catalogues))
        else:
            target = await state.db.run(_move, viewer, meeting_id, original, move, version, state.settings.max_endpoints,
                                        client_ip(request), notifier(state.settings, state.catalogues))
        state.outbox_sender.wake()
    except (InvalidInput, Conflict, Forbidden) as exc:
        if action == "cancel":
            error = exc.fields.get("cancel_confirm") or exc.fields.get("scope") or exc.message
            return await _render(request, viewer, meeting_id, original, status_code=exc.status, cancel_error=error)
        hard = exc.extra.get("conflicts") if isinstance(exc, Conflict) else None
        return await _render(request, viewer, meeting_id, original, status_code=exc.status, move=move, errors=exc.fields,
                             message=exc.message, conflicts=conflict_rows(hard) if hard else NO_CONFLICTS)
    return RedirectResponse(f"/meetings/{target}?saved=1", status_code=303)
