"""The records API: the roll-call and the minutes of one occurrence (see docs/api.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.accounts.models import User
from server.api import ApiDoc, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user
from server.edge import ID, ORIGINAL, client_ip, occurrence_in
from server.i18n import Translations, current_translations
from server.meetings.schemas import iso
from server.records import service as records
from server.records.schemas import AttendanceOut, MinutesIn, MinutesOut, RollCallIn, RollCallOut
from server.records.service import Attendance, MinutesInput, MinutesView, StatusChange


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
    await db.run(records.require_recorder, user, meeting_id, original)  # 404/403 before the body is read
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
    await db.run(records.require_recorder, user, meeting_id, original)
    body = await parse_body(request, MinutesIn)
    return JSONResponse(await db.run(_put_minutes, user, meeting_id, original, body, translations, client_ip(request)))


API = "/api/meetings/{id:int}/occurrences/{original_start}"
ERRORS = (403, 404, 409, 422)
routes = [
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
