"""The records of one occurrence: the roll-call and minutes page, its print-ready minutes and
attendance CSV, and the roll-call and minutes API.

The occurrence is named in the URL by its original start (ISO 8601 with offset, URL-encoded),
as in the meetings API.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from server.accounts.models import User
from server.accounts.views import client_ip
from server.api import ApiDoc, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user, page_user
from server.clock import LOCAL
from server.errors import Conflict, InvalidInput
from server.i18n import N_, Text, Translations, current_translations, render
from server.meetings import records
from server.meetings.api import ID, ORIGINAL, parse_time
from server.meetings.records import Attendance, MinutesInput, MinutesView, StatusChange
from server.meetings.schemas import iso
from server.meetings.service import Occurrence

DONE: dict[str, Text] = {"roll_call": N_("The roll-call was saved."), "minutes": N_("The minutes were saved.")}
SECTIONS = ("roll_call", "minutes")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def record_url(meeting_id: int, original_start: dt.datetime) -> str:
    return f"/meetings/{meeting_id}/occurrences/{quote(iso(original_start), safe='')}/record"


def occurrence_in(request: Request) -> tuple[int, dt.datetime]:
    """The meeting id and occurrence (original start) an occurrence page's path names."""
    raw = str(request.path_params["id"])
    if not raw.isdigit():
        raise InvalidInput(N_("Some fields are invalid."), fields={"id": N_("Must be a whole number.")})
    return int(raw), parse_time(request.path_params["original_start"], "original_start")


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
        return state.pages.render(request, "meetings/record.html", context)
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
            version = fields.get("version", "")
            if not version.isdigit():
                raise InvalidInput(N_("The minutes were not saved."), fields={"version": N_("Must be a whole number.")})
            data = MinutesInput(*(fields.get(name, "") for name in records.MINUTES_FIELDS))
            await state.db.run(records.save_minutes, user, meeting_id, original, data, version=int(version), ip=client_ip(request))
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
        return state.pages.render(request, "meetings/record.html", context, status_code=exc.status)
    return RedirectResponse(f"{record_url(meeting_id, original)}?done={section}", status_code=303)


# --- exports --------------------------------------------------------------------------------


def _when(current: Occurrence) -> dict[str, str]:
    start, end = current.start.astimezone(LOCAL), current.end.astimezone(LOCAL)
    return {"day": start.strftime("%d"), "month": start.strftime("%m"), "year": start.strftime("%Y"),
            "date": start.strftime("%d/%m/%Y"), "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}


def _print(session: Session, viewer: User, meeting_id: int, original: dt.datetime, translations: Translations) -> dict[str, Any]:
    from server.rooms import service as rooms
    from server.rooms.views import presence_rows

    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return {"occurrence": current, "meeting": current.meeting, "roll": records.attendance(session, current),
            "minutes": records.minutes(session, current, translations), "when": _when(current),
            "back": record_url(meeting_id, current.original_start),
            "rows": presence_rows(rooms.report(session, meeting_id, current.original_start)),
            "chat": rooms.chat(session, meeting_id, current.original_start)}


async def print_page(request: Request) -> Response:
    """The minutes as a print-ready A4 document (its own style sheet, no site chrome)."""
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    state = app_state(request)
    context = await state.db.run(_print, user, meeting_id, original, current_translations.get())
    return state.pages.render(request, "meetings/record_print.html", context)


def csv_cell(value: str) -> str:
    """A cell Excel will not read as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def attendance_csv_bytes(roll: list[Attendance], translations: Translations) -> bytes:
    """UTF-8 with a BOM, so that Excel shows Vietnamese names correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([render(t, translations) for t in (N_("Unit code"), N_("Unit name"), N_("Belongs to"), N_("Status"), N_("Reason"))])
    for a in roll:
        writer.writerow([csv_cell(a.code), csv_cell(a.name), csv_cell(a.parent_name), render(a.label, translations), csv_cell(a.reason)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> tuple[list[Attendance], Occurrence]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return records.attendance(session, current), current


async def attendance_csv(request: Request) -> Response:
    user = page_user(request)
    meeting_id, original = occurrence_in(request)
    roll, current = await app_state(request).db.run(_csv, user, meeting_id, original)
    day = current.start.astimezone(LOCAL).strftime("%Y-%m-%d")
    return Response(attendance_csv_bytes(roll, current_translations.get()), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="diem-danh-{meeting_id}-{day}.csv"',
        "Cache-Control": "no-store",
    })


# --- API ------------------------------------------------------------------------------------


class RollCallEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str = Field(max_length=100)
    status: str = Field(max_length=50)
    reason: str = Field(default="", max_length=10_000)


class RollCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[RollCallEntryIn] = Field(max_length=5000)


class AttendanceOut(BaseModel):
    unit: str
    name: str
    parent: str
    status: str  # present_in_person | present_online | absent | unknown
    reason: str
    automatic: bool
    updated_at: str | None


class RollCallOut(BaseModel):
    items: list[AttendanceOut]
    total: int


class MinutesIn(BaseModel):
    """The ``version`` read (0 before the first save); fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    version: int
    chair: str | None = Field(default=None, max_length=200_000)
    attendees: str | None = Field(default=None, max_length=200_000)
    proceedings: str | None = Field(default=None, max_length=200_000)
    opinions: str | None = Field(default=None, max_length=200_000)
    conclusions: str | None = Field(default=None, max_length=200_000)


class MinutesOut(BaseModel):
    chair: str
    attendees: str
    proceedings: str
    opinions: str
    conclusions: str
    version: int
    saved: bool
    updated_at: str | None
    updated_by: str


def _roll_out(roll: list[Attendance]) -> dict[str, Any]:
    items = [AttendanceOut(unit=a.code, name=a.name, parent=a.parent_name, status=a.status, reason=a.reason,
                           automatic=a.automatic, updated_at=iso(a.updated_at) if a.updated_at else None).model_dump()
             for a in roll]
    return {"items": items, "total": len(items)}


def _minutes_out(m: MinutesView) -> dict[str, Any]:
    return MinutesOut(chair=m.chair, attendees=m.attendees, proceedings=m.proceedings, opinions=m.opinions,
                      conclusions=m.conclusions, version=m.version, saved=m.version > 0,
                      updated_at=iso(m.updated_at) if m.updated_at else None, updated_by=m.updated_by).model_dump()


def _get_roll(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> dict[str, Any]:
    return _roll_out(records.attendance(session, records.visible_occurrence(session, viewer, meeting_id, original)))


def _put_roll(session: Session, actor: User, meeting_id: int, original: dt.datetime, body: RollCallIn, ip: str) -> dict[str, Any]:
    changes = [StatusChange(e.unit, e.status, e.reason) for e in body.entries]
    return _roll_out(records.record_roll_call(session, actor, meeting_id, original, changes, ip=ip))


async def api_roll_call(request: Request) -> Response:
    user = api_user(request)
    meeting_id, original = occurrence_in(request)
    db = app_state(request).db
    if request.method == "GET":
        return JSONResponse(await db.run(_get_roll, user, meeting_id, original))
    body = await parse_body(request, RollCallIn)
    return JSONResponse(await db.run(_put_roll, user, meeting_id, original, body, client_ip(request)))


def _get_minutes(session: Session, viewer: User, meeting_id: int, original: dt.datetime, translations: Translations) -> dict[str, Any]:
    current = records.visible_occurrence(session, viewer, meeting_id, original)
    return _minutes_out(records.minutes(session, current, translations))


def _put_minutes(session: Session, actor: User, meeting_id: int, original: dt.datetime, body: MinutesIn,
                 translations: Translations, ip: str) -> dict[str, Any]:
    before = records.minutes(session, records.visible_occurrence(session, actor, meeting_id, original), translations)
    data = MinutesInput(*(getattr(body, name) if getattr(body, name) is not None else getattr(before, name)
                          for name in records.MINUTES_FIELDS))
    return _minutes_out(records.save_minutes(session, actor, meeting_id, original, data, version=body.version, ip=ip))


async def api_minutes(request: Request) -> Response:
    user = api_user(request)
    meeting_id, original = occurrence_in(request)
    db = app_state(request).db
    translations = current_translations.get()
    if request.method == "GET":
        return JSONResponse(await db.run(_get_minutes, user, meeting_id, original, translations))
    body = await parse_body(request, MinutesIn)
    return JSONResponse(await db.run(_put_minutes, user, meeting_id, original, body, translations, client_ip(request)))


RECORD = "/meetings/{id:int}/occurrences/{original_start}/record"
API = "/api/meetings/{id}/occurrences/{original_start}"
ERRORS = (403, 404, 409, 422)
routes = [
    Route(RECORD, record_page, methods=["GET", "POST"], name="occurrence_record"),
    Route(f"{RECORD}/print", print_page, methods=["GET"], name="occurrence_record_print"),
    Route(f"{RECORD}/attendance.csv", attendance_csv, methods=["GET"], name="occurrence_attendance_csv"),
    api_route(f"{API}/roll-call", api_roll_call, methods=["GET"], name="api_roll_call", doc=ApiDoc(
        "The roll-call of one occurrence: every invited unit and its status", "records", response=RollCallOut,
        params=(ID, ORIGINAL), errors=(404, 422))),
    api_route(f"{API}/roll-call", api_roll_call, methods=["PUT"], name="api_roll_call_put", doc=ApiDoc(
        "Record the status of the units listed (absent needs a reason); nothing is saved when one entry is wrong",
        "records", body=RollCallIn, response=RollCallOut, params=(ID, ORIGINAL), errors=ERRORS)),
    api_route(f"{API}/minutes", api_minutes, methods=["GET"], name="api_minutes", doc=ApiDoc(
        "The minutes of one occurrence (version 0: not saved yet, with the default chair and attendees)", "records",
        response=MinutesOut, params=(ID, ORIGINAL), errors=(404, 422))),
    api_route(f"{API}/minutes", api_minutes, methods=["PUT"], name="api_minutes_put", doc=ApiDoc(
        "Save the minutes; carries the version it read (stale: 409)", "records", body=MinutesIn, response=MinutesOut,
        params=(ID, ORIGINAL), errors=ERRORS)),
]
