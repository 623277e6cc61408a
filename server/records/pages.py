"""The records of one occurrence, as pages: the roll-call and minutes page, the print-ready
minutes (with the online attendance and the chat as appendices), the online-attendance report,
and the CSV exports (roll-call, online attendance, chat). Whoever may see the meeting reads
them; the host's secretaries write the roll-call and the minutes.

The occurrence is named in the URL by its original start (ISO 8601 with offset, URL-encoded),
as in the meetings API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.clock import LOCAL, clock_text, date_text, local_day, moment_text
from server.edge import client_ip, csv_cell, csv_download, occurrence_in, occurrence_path, whole_number
from server.errors import Conflict, InvalidInput
from server.i18n import N_, Text, Translations, current_translations, render
from server.meetings.service import Occurrence
from server.records import presence
from server.records import service as records
from server.records.presence import Presence
from server.records.service import Attendance, MinutesInput, MinutesView, StatusChange
from server.rooms import service as rooms
from server.rooms.models import RoomChat

DONE: dict[str, Text] = {"roll_call": N_("The roll-call was saved."), "minutes": N_("The minutes were saved.")}
SECTIONS = ("roll_call", "minutes")


def record_url(meeting_id: int, original_start: dt.datetime) -> str:
    return occurrence_path(meeting_id, original_start, "record")


def _file_day(current: Occurrence) -> str:
    """The local day in an export's file name (``2026-12-07``: sorts by date)."""
    return local_day(current.start).isoformat()


# --- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollRow:
    """One line of the roll-call form: what is stored, or what was just sent back with an error."""

    code: str
    name: str
    parent_name: str
    status: str
    label: Text
    reason: str
    automatic: bool
    error: Text | str | None


def _roll_rows(roll: list[Attendance], sent: dict[str, tuple[str, str]], errors: dict[str, Any]) -> list[RollRow]:
    rows = []
    for a in roll:
        status, reason = sent.get(a.code, (a.status, a.reason))
        label = records.STATUS_LABELS.get(status, a.label)
        rows.append(RollRow(a.code, a.name, a.parent_name, status, label, reason, a.automatic, errors.get(a.code)))
    return rows


def _paragraphs(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _page(session: Session, viewer: User, meeting_id: int, original: dt.datetime, translations: Translations) -> dict[str, Any]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    roll = records.attendance(session, current)
    saved = records.minutes(session, current, translations)
    base = record_url(meeting_id, current.original_start)
    return {
        "occurrence": current,
        "meeting": current.meeting,
        "roll_data": roll,
        "rows": _roll_rows(roll, {}, {}),
        "counts": [(records.STATUS_LABELS[s], sum(1 for a in roll if a.status == s)) for s in records.STATUSES],
        "statuses": [(s, records.STATUS_LABELS[s]) for s in records.STATUSES],
        "minutes": saved,
        "form": _minutes_form(saved),
        "paragraphs": {name: _paragraphs(getattr(saved, name)) for name in ("attendees", "proceedings", "opinions", "conclusions")},
        "can_edit": records.can_record(session, viewer, current),
        "urls": {"self": base, "print": f"{base}/print", "csv": f"{base}/attendance.csv", "online": f"{base}/online",
                 "chat": f"{base}/chat.csv",
                 "meeting": f"/meetings/{meeting_id}", "documents": f"/meetings/{meeting_id}/documents"},
        "errors": {section: {} for section in SECTIONS},
        "roll_other_errors": [],
        "done": None,
        "theirs": None,
    }


def _minutes_form(m: MinutesView) -> dict[str, Any]:
    return {"chair": m.chair, "attendees": m.attendees, "proceedings": m.proceedings, "opinions": m.opinions,
            "conclusions": m.conclusions, "version": m.version}


async def record_page(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    state = app_state(request)
    translations = current_translations.get()
    if request.method == "GET":
        context = await state.db.run(_page, user, meeting_id, original, translations)
        context["done"] = DONE.get(request.query_params.get("done", ""))
        return state.pages.render(request, "records/record.html", context)
    await state.db.run(records.require_recorder, user, meeting_id, original)  # 404/403 before the form is read
    form = await request.form(max_files=0, max_fields=3000)
    section = str(form.get("section", ""))
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    await form.close()
    sent = {key[len("status-"):]: (value, fields.get(f"reason-{key[len('status-'):]}", ""))
            for key, value in fields.items() if key.startswith("status-")}
    try:
        if section == "roll_call":
            changes = [StatusChange(code, status, reason) for code, (status, reason) in sent.items()]
            await state.db.run(records.record_roll_call, user, meeting_id, original, changes, ip=client_ip(request))
        elif section == "minutes":
            version = whole_number(fields.get("version", ""))
            if version is None:
                raise InvalidInput(N_("The minutes were not saved."), fields={"version": N_("Must be a whole number.")})
            data = MinutesInput(*(fields.get(name, "") for name in records.MINUTES_FIELDS))
            await state.db.run(records.save_minutes, user, meeting_id, original, data, version=version, ip=client_ip(request))
        else:
            raise InvalidInput(N_("Nothing was changed."), fields={"section": N_("Unknown action.")})
    except (InvalidInput, Conflict) as exc:
        if section not in SECTIONS:
            raise
        context = await state.db.run(_page, user, meeting_id, original, translations)
        context["errors"][section] = {**exc.fields, "form": exc.message}
        if section == "roll_call":
            context["rows"] = _roll_rows(context["roll_data"], sent, exc.fields)
            codes = {a.code for a in context["roll_data"]}
            context["roll_other_errors"] = [message for key, message in exc.fields.items() if key not in codes]
        else:
            if "version" in exc.fields and isinstance(exc, Conflict):
                context["theirs"] = context["minutes"]
            context["form"] = {**{name: fields.get(name, "") for name in records.MINUTES_FIELDS},
                               "version": fields.get("version", "")}
        return state.pages.render(request, "records/record.html", context, status_code=exc.status)
    return RedirectResponse(f"{record_url(meeting_id, original)}?done={section}", status_code=303)


# --- exports --------------------------------------------------------------------------------


def _when(current: Occurrence) -> dict[str, str]:
    start = current.start.astimezone(LOCAL)
    return {"day": f"{start:%d}", "month": f"{start:%m}", "year": f"{start:%Y}",
            "date": date_text(start), "start": clock_text(start), "end": clock_text(current.end)}


def _print(session: Session, viewer: User, meeting_id: int, original: dt.datetime, translations: Translations) -> dict[str, Any]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return {"occurrence": current, "meeting": current.meeting, "roll": records.attendance(session, current),
            "minutes": records.minutes(session, current, translations), "when": _when(current),
            "back": record_url(meeting_id, current.original_start),
            "rows": presence_rows(presence.report(session, meeting_id, current.original_start)),
            "chat": rooms.chat(session, meeting_id, current.original_start)}


async def print_page(request: Request) -> Response:
    """The minutes as a print-ready A4 document (its own style sheet, no site chrome)."""
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    state = app_state(request)
    context = await state.db.run(_print, user, meeting_id, original, current_translations.get())
    return state.pages.render(request, "records/record_print.html", context)


def attendance_csv_rows(roll: list[Attendance], translations: Translations) -> list[list[str]]:
    head = [render(t, translations) for t in (N_("Unit code"), N_("Unit name"), N_("Belongs to"), N_("Status"), N_("Reason"))]
    return [head, *([csv_cell(a.code), csv_cell(a.name), csv_cell(a.parent_name), render(a.label, translations), csv_cell(a.reason)]
                    for a in roll)]


def _csv(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> tuple[list[Attendance], Occurrence]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return records.attendance(session, current), current


async def attendance_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    roll, current = await app_state(request).db.run(_csv, user, meeting_id, original)
    return csv_download(attendance_csv_rows(roll, current_translations.get()), f"diem-danh-{meeting_id}-{_file_day(current)}.csv")


# --- online attendance and chat --------------------------------------------------------------


def _local(moment: dt.datetime | None) -> str:
    return moment_text(moment, seconds=True)


def presence_rows(found: list[Presence]) -> list[dict[str, Any]]:
    return [{
        "unit": p.unit_name, "code": p.unit_code, "people": ", ".join(p.people), "first_join": _local(p.first_join),
        "last_leave": _local(p.last_leave), "minutes": p.minutes, "stays": p.stays,
        "rtt": "" if p.rtt_ms is None else f"{p.rtt_ms:.0f}", "loss": "" if p.loss_percent is None else f"{p.loss_percent:.1f}",
    } for p in found]


def _report(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> dict[str, Any]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return {"occurrence": current, "meeting": current.meeting,
            "rows": presence_rows(presence.report(session, meeting_id, current.original_start)),
            "back": record_url(meeting_id, current.original_start)}


async def presence_page(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    state = app_state(request)
    context = await state.db.run(_report, user, meeting_id, original)
    return state.pages.render(request, "records/presence_print.html", context)


def presence_csv_rows(rows: list[dict[str, Any]], translations: Translations) -> list[list[str]]:
    head = [N_("Unit or person"), N_("Unit code"), N_("People"), N_("First join"), N_("Last leave"), N_("Minutes present"),
            N_("Stays"), N_("Round-trip time (ms)"), N_("Loss (per cent)")]
    out = [[render(h, translations) for h in head]]
    for r in rows:
        out.append([csv_cell(r["unit"]), csv_cell(r["code"]), csv_cell(r["people"]), r["first_join"], r["last_leave"], str(r["minutes"]),
                    str(r["stays"]), r["rtt"], r["loss"]])
    return out


async def presence_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    context = await app_state(request).db.run(_report, user, meeting_id, original)
    day = _file_day(context["occurrence"])
    return csv_download(presence_csv_rows(context["rows"], current_translations.get()), f"tham-du-truc-tuyen-{meeting_id}-{day}.csv")


def chat_rows(chat: list[RoomChat], translations: Translations) -> list[list[str]]:
    out = [[render(h, translations) for h in (N_("Time"), N_("Name"), N_("Unit"), N_("Message"))]]
    out += [[_local(c.at), csv_cell(c.name), csv_cell(c.unit_name), csv_cell(c.text)] for c in chat]
    return out


def _chat(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> tuple[list[RoomChat], str]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return rooms.chat(session, meeting_id, current.original_start), _file_day(current)


async def chat_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    chat, day = await app_state(request).db.run(_chat, user, meeting_id, original)
    return csv_download(chat_rows(chat, current_translations.get()), f"tro-chuyen-{meeting_id}-{day}.csv")


RECORD = "/meetings/{id:int}/occurrences/{original_start}/record"
routes = [
    Route(RECORD, record_page, methods=["GET", "POST"], name="occurrence_record"),
    Route(f"{RECORD}/print", print_page, methods=["GET"], name="occurrence_record_print"),
    Route(f"{RECORD}/attendance.csv", attendance_csv, methods=["GET"], name="occurrence_attendance_csv"),
    Route(f"{RECORD}/online", presence_page, methods=["GET"], name="occurrence_presence"),
    Route(f"{RECORD}/online.csv", presence_csv, methods=["GET"], name="occurrence_presence_csv"),
    Route(f"{RECORD}/chat.csv", chat_csv, methods=["GET"], name="occurrence_chat_csv"),
]
