"""Meeting pages: the searchable list, a meeting's page (details, occurrences, who is invited
and their answers), cancelling a meeting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server import permissions
from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import LOCAL, date_text, time_range, weekday_name
from server.db import utcnow
from server.edge import client_ip, whole_number
from server.errors import Conflict, InvalidInput
from server.i18n import N_, Text
from server.mail.invitations import notifier
from server.meetings import recurrence, service
from server.meetings.display import KIND_LABELS, RESPONSE_LABELS, RESPONSES, OccurrenceRow, occurrence_row
from server.meetings.forms import parse_date
from server.meetings.models import Meeting, MeetingParticipant
from server.units import service as units

LIST_DAYS = 60  # the list's default window, from today
SHOW_ALL_UP_TO = 20  # a series with more occurrences shows those around today
SHOW_PAST, SHOW_NEXT = 5, 15


# --- the list -----------------------------------------------------------------------------


def _window(raw_from: str, raw_to: str) -> tuple[dt.date, dt.date, dict[str, Text]]:
    """The list's dates (``to`` included); a date that cannot be read falls back to the default."""
    today = dt.datetime.now(LOCAL).date()
    errors: dict[str, Text] = {}
    first = parse_date(raw_from) if raw_from else today
    if first is None:
        errors["from"] = N_("Give the date as dd/mm/yyyy.")
        first = today
    last = parse_date(raw_to) if raw_to else first + dt.timedelta(days=LIST_DAYS)
    if last is None:
        errors["to"] = N_("Give the date as dd/mm/yyyy.")
        last = first + dt.timedelta(days=LIST_DAYS)
    return first, last, errors


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL)


def _list_context(session: Session, viewer: User, q: str, unit_code: str, first: dt.date, last: dt.date,
                  errors: dict[str, Text | str]) -> dict[str, Any]:
    unit = units.find_by_codes(session, [unit_code.lower()]).get(unit_code.lower()) if unit_code else None
    if unit_code and unit is None:
        errors["unit"] = N_("Unknown unit code: {code}", code=unit_code)
    rows: list[OccurrenceRow] = []
    if not errors:
        try:
            found = service.list_occurrences(session, viewer, _midnight(first), _midnight(last + dt.timedelta(days=1)), unit=unit, q=q)
            now = utcnow()
            rows = [occurrence_row(o, now=now) for o in found]
        except InvalidInput as exc:  # a window the service refuses (reading only: nothing to undo)
            errors.update({"to" if k == "end" else k: v for k, v in exc.fields.items()})
    return {
        "rows": rows,
        "units": units.all_units(session),
        "can_schedule": permissions.can_schedule_for(session, viewer, units.by_id(session, viewer.unit_id)),
        "errors": errors,
    }


async def list_page(request: Request) -> Response:
    viewer = page_user(request)
    params = request.query_params
    q, unit_code = params.get("q", "").strip()[:200], params.get("unit", "").strip()[:100]
    raw_from, raw_to = params.get("from", "").strip()[:20], params.get("to", "").strip()[:20]
    first, last, errors = _window(raw_from, raw_to)
    state = app_state(request)
    context = await state.db.run(_list_context, viewer, q, unit_code, first, last, dict(errors))
    context.update(q=q, unit=unit_code, date_from=raw_from or first.isoformat(), date_to=raw_to or last.isoformat(),
                   shown_from=date_text(first), shown_to=date_text(last))
    return state.pages.render(request, "meetings/list.html", context, status_code=422 if context["errors"] else 200)


# --- one meeting --------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantRow:
    name: str
    code: str
    response: str
    answer: Text
    chair: bool
    delegated_to: str


@dataclass(frozen=True)
class ParticipantGroup:
    title: str
    rows: list[ParticipantRow]


def _row(p: MeetingParticipant) -> ParticipantRow:
    return ParticipantRow(p.name, p.code, p.response, RESPONSE_LABELS.get(p.response, RESPONSE_LABELS["needs_action"]),
                          p.role == "chair", p.delegated_to)


def _grouped(rows: list[MeetingParticipant], position: dict[int, int]) -> list[ParticipantGroup]:
    """Rows grouped by ``parent_name`` as it was at saving (a unit's parent, a person's unit);
    a unit without a parent heads its own children's group. Groups and rows in tree order."""
    groups: dict[str, list[MeetingParticipant]] = {}
    for p in sorted(rows, key=lambda p: position.get(p.unit_id or 0, len(position))):
        groups.setdefault(p.parent_name or p.name, []).append(p)
    return [ParticipantGroup(title, [_row(p) for p in members]) for title, members in groups.items()]


def _answers(rows: list[MeetingParticipant]) -> list[tuple[Text, int]]:
    counts = {r: sum(1 for p in rows if p.response == r) for r in RESPONSES}
    return [(RESPONSE_LABELS[r], n) for r, n in counts.items() if n]


def _occurrence_rows(session: Session, meeting: Meeting, editable: bool) -> tuple[list[OccurrenceRow], int]:
    """The occurrences to list (all of a short series, those around today of a long one) and
    how many there are."""
    now = utcnow()
    originals = recurrence.starts(meeting.start, meeting.rrule)
    shown = originals
    if len(originals) > SHOW_ALL_UP_TO:
        duration = meeting.end - meeting.start
        upcoming = next((i for i, s in enumerate(originals) if s + duration > now), len(originals))
        begin = max(0, min(upcoming - SHOW_PAST, len(originals) - SHOW_PAST - SHOW_NEXT))
        shown = originals[begin:begin + SHOW_PAST + SHOW_NEXT]
    rows = [occurrence_row(service.occurrence(session, meeting, s), now=now, editable=editable) for s in shown]
    return rows, len(originals)


def _meeting_context(session: Session, viewer: User, meeting_id: int) -> dict[str, Any]:
    meeting = service.get_visible(session, viewer, meeting_id)
    people = service.participants(session, meeting)
    tree_order: dict[int, int] = {}

    def walk(nodes: list[units.UnitNode]) -> None:
        for node in nodes:
            tree_order[node.unit.id or 0] = len(tree_order)
            walk(node.children)

    walk(units.tree(session, include_inactive=True))
    invited_units = [p for p in people if p.unit_id is not None]
    persons = [p for p in people if p.user_id is not None]
    editable = service.can_edit(session, viewer, meeting)
    occurrences, total = _occurrence_rows(session, meeting, editable)
    return {
        "meeting": meeting,
        "kind": KIND_LABELS.get(meeting.kind, meeting.kind),
        "series": recurrence.describe(meeting.rrule, meeting.start) if meeting.rrule else None,
        "first_date": date_text(meeting.start),
        "first_weekday": weekday_name(meeting.start),
        "time": time_range(meeting.start, meeting.end),
        "cancelled": meeting.status == "cancelled",
        "occurrences": occurrences,
        "occurrence_total": total,
        "unit_groups": _grouped(invited_units, tree_order),
        "person_groups": _grouped(persons, {}),
        "unit_count": len(invited_units),
        "person_count": len(persons),
        "unit_answers": _answers(invited_units),
        "person_answers": _answers(persons),
        "can_edit": editable,
        "documents_url": f"/meetings/{meeting_id}/documents",
        "ics_url": f"/api/meetings/{meeting_id}/ics",
        "previous_url": f"/meetings/{meeting.previous_id}" if meeting.previous_id else "",
    }


async def _render_meeting(request: Request, viewer: User, meeting_id: int, status_code: int = 200, **extra: Any) -> Response:
    state = app_state(request)
    context = await state.db.run(_meeting_context, viewer, meeting_id)
    context.update({"saved": request.query_params.get("saved") == "1", "cancel_error": None, **extra})
    return state.pages.render(request, "meetings/detail.html", context, status_code=status_code)


async def meeting_page(request: Request) -> Response:
    return await _render_meeting(request, page_user(request), int(request.path_params["id"]))


async def cancel_meeting(request: Request) -> Response:
    actor = page_user(request)
    meeting_id = int(request.path_params["id"])
    await app_state(request).db.run(service.require_editor, actor, meeting_id)  # 404/403 before the form is read
    form = await request.form()
    version = str(form.get("version", ""))
    confirmed = form.get("confirm") == "1"
    await form.close()
    try:
        if not confirmed:
            raise InvalidInput(N_("Nothing was changed."), fields={"confirm": N_("Tick the box to confirm.")})
        state = app_state(request)
        await state.db.run(service.cancel, actor, meeting_id, version=whole_number(version),
                           ip=client_ip(request), notify=notifier(state.settings, state.catalogues))
        state.outbox_sender.wake()
    except (InvalidInput, Conflict) as exc:
        return await _render_meeting(request, actor, meeting_id, exc.status, cancel_error=exc.fields.get("confirm", exc.message))
    return RedirectResponse(f"/meetings/{meeting_id}", status_code=303)
