"""The meetings API: plan, check, list occurrences, change, cancel (see docs/api.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.accounts.models import User
from server.api import ApiDoc, Param, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user
from server.clock import TIME_SCHEMA
from server.edge import ID, ORIGINAL, client_ip, parse_time, path_int
from server.errors import Conflict
from server.i18n import current_translations
from server.mail.invitations import notifier
from server.meetings import schemas, service
from server.meetings.participants import level_counts
from server.meetings.schemas import CancelIn, MeetingIn, MeetingPatch, OccurrencePatch
from server.units import service as units


def _conflicts_json(session: Session, conflicts: list[Any]) -> list[dict[str, Any]]:
    codes = units.codes_by_id(session)
    translations = current_translations.get()
    return [schemas.conflict_out(c, translations, codes) for c in conflicts]


@contextmanager
def _conflicts_as_json(session: Session) -> Iterator[None]:
    """A 409 from the service lists its conflicts as the contract shows them."""
    try:
        yield
    except Conflict as exc:
        if "conflicts" in exc.extra:
            exc.extra["conflicts"] = _conflicts_json(session, exc.extra["conflicts"])
        raise


def _out(session: Session, meeting: Any, public_url: str, conflicts: list[Any] | None = None) -> dict[str, Any]:
    participants = service.participants(session, meeting)
    codes = units.codes_by_id(session)
    chair = session.get(User, meeting.chair_id)
    levels: dict[str, int] = {}
    for unit in units.all_units(session, include_inactive=True):
        if any(p.unit_id == unit.id for p in participants):
            levels[unit.level] = levels.get(unit.level, 0) + 1
    body = schemas.meeting_out(meeting, participants, codes.get(meeting.host_unit_id, ""), chair.username if chair else "", public_url, levels)
    body["conflicts"] = _conflicts_json(session, conflicts or [])
    return body


def _create(session: Session, actor: User, body: MeetingIn, max_endpoints: int, public_url: str, ip: str,
            notify: service.Notifier | None = None) -> dict[str, Any]:
    with _conflicts_as_json(session):
        meeting, conflicts = service.create(session, actor, body.as_input(), max_endpoints=max_endpoints, confirm=body.confirm, ip=ip,
                                            notify=notify)
    return _out(session, meeting, public_url, conflicts)


async def api_create(request: Request) -> Response:
    actor = api_user(request)
    service.require_scheduler(actor)  # the permission first: 403 before any field is looked at
    body = await parse_body(request, MeetingIn)
    state = app_state(request)
    result = await state.db.run(_create, actor, body, state.settings.max_endpoints, state.settings.effective_public_url, client_ip(request),
                                notifier(state.settings, state.catalogues))
    state.outbox_sender.wake()
    return JSONResponse(result, status_code=201)


def _check(session: Session, actor: User, body: MeetingIn, max_endpoints: int) -> dict[str, Any]:
    result = service.check(session, actor, body.as_input(), max_endpoints=max_endpoints)
    return {
        "counts": schemas.counts_out(len(result.prepared.expansion.units), len(result.prepared.expansion.people),
                                     level_counts(result.prepared.expansion)),
        "occurrences": len(result.prepared.starts),
        "conflicts": _conflicts_json(session, result.conflicts),
    }


async def api_check(request: Request) -> Response:
    actor = api_user(request)
    service.require_scheduler(actor)
    body = await parse_body(request, MeetingIn)
    state = app_state(request)
    return JSONResponse(await state.db.run(_check, actor, body, state.settings.max_endpoints))


def _list(session: Session, viewer: User, start: dt.datetime, end: dt.datetime, unit_code: str, q: str) -> dict[str, Any]:
    unit = units.by_code(session, unit_code) if unit_code else None
    found = service.list_occurrences(session, viewer, start, end, unit=unit, q=q)
    return {"items": [schemas.occurrence_out(o) for o in found], "total": len(found)}


async def api_list(request: Request) -> Response:
    viewer = api_user(request)
    params = request.query_params
    start, end = parse_time(params.get("start"), "start"), parse_time(params.get("end"), "end")
    return JSONResponse(await app_state(request).db.run(_list, viewer, start, end, params.get("unit", "")[:100], params.get("q", "")[:200]))


def _get(session: Session, viewer: User, meeting_id: int, public_url: str) -> dict[str, Any]:
    return _out(session, service.get_visible(session, viewer, meeting_id), public_url)


async def api_get(request: Request) -> Response:
    viewer = api_user(request)
    state = app_state(request)
    return JSONResponse(await state.db.run(_get, viewer, path_int(request), state.settings.effective_public_url))


def _patch(session: Session, actor: User, meeting_id: int, body: MeetingPatch, max_endpoints: int, public_url: str, ip: str,
           notify: service.Notifier | None = None) -> dict[str, Any]:
    current = service.as_input(session, service.get_editable(session, actor, meeting_id, body.version))
    changes: dict[str, Any] = {}
    for name in ("title", "start", "end", "host_unit", "chair", "kind", "description", "recurrence"):
        value = getattr(body, name)
        if value is not None:
            changes[name] = value
    if body.agenda is not None:
        changes["agenda"] = tuple(body.agenda)
    if body.participants is not None:
        changes["participants"] = body.participants.choice()
    with _conflicts_as_json(session):
        meeting, conflicts = service.update(session, actor, meeting_id, replace(current, **changes), version=body.version,
                                            max_endpoints=max_endpoints, confirm=body.confirm, ip=ip, notify=notify)
    return _out(session, meeting, public_url, conflicts)


async def api_patch(request: Request) -> Response:
    actor = api_user(request)
    state = app_state(request)
    await state.db.run(service.require_editor, actor, path_int(request))  # 404/403 before the body is read
    body = await parse_body(request, MeetingPatch)
    result = await state.db.run(_patch, actor, path_int(request), body, state.settings.max_endpoints,
                                state.settings.effective_public_url, client_ip(request), notifier(state.settings, state.catalogues))
    state.outbox_sender.wake()
    return JSONResponse(result)


def _cancel(session: Session, actor: User, meeting_id: int, body: CancelIn, public_url: str, ip: str,
            notify: service.Notifier | None = None) -> dict[str, Any]:
    return _out(session, service.cancel(session, actor, meeting_id, version=body.version, ip=ip, notify=notify), public_url)


async def _optional_body(request: Request, model: type[Any]) -> Any:
    if not (await request.body()).strip():
        return model()
    return await parse_body(request, model)


async def api_cancel(request: Request) -> Response:
    actor = api_user(request)
    state = app_state(request)
    await state.db.run(service.require_editor, actor, path_int(request))
    body = await _optional_body(request, CancelIn)
    result = await state.db.run(_cancel, actor, path_int(request), body, state.settings.effective_public_url, client_ip(request),
                                notifier(state.settings, state.catalogues))
    state.outbox_sender.wake()
    return JSONResponse(result)


def _occurrence(session: Session, viewer: User, meeting_id: int, original: dt.datetime) -> dict[str, Any]:
    meeting = service.get_visible(session, viewer, meeting_id)
    return schemas.occurrence_out(service.occurrence(session, meeting, original))


def _change_occurrence(session: Session, actor: User, meeting_id: int, original: dt.datetime, body: OccurrencePatch,
                       max_endpoints: int, public_url: str, ip: str, notify: service.Notifier | None = None) -> dict[str, Any]:
    with _conflicts_as_json(session):
        meeting, conflicts = service.change_occurrence(
            session, actor, meeting_id, original, start=body.start, end=body.end, title=body.title or "",
            scope=body.scope, version=body.version, max_endpoints=max_endpoints, confirm=body.confirm, ip=ip, notify=notify)
    return _out(session, meeting, public_url, conflicts)


async def api_occurrence(request: Request) -> Response:
    viewer = api_user(request)
    state = app_state(request)
    original = parse_time(request.path_params["original_start"], "original_start")
    if request.method == "GET":
        return JSONResponse(await state.db.run(_occurrence, viewer, path_int(request), original))
    await state.db.run(service.require_editor, viewer, path_int(request), original)
    body = await parse_body(request, OccurrencePatch)
    result = await state.db.run(_change_occurrence, viewer, path_int(request), original, body,
                                state.settings.max_endpoints, state.settings.effective_public_url, client_ip(request), notifier(state.settings, state.catalogues))
    state.outbox_sender.wake()
    return JSONResponse(result)


def _cancel_occurrence(session: Session, actor: User, meeting_id: int, original: dt.datetime, body: CancelIn, public_url: str, ip: str,
                       notify: service.Notifier | None = None) -> dict[str, Any]:
    meeting = service.cancel_occurrence(session, actor, meeting_id, original, scope=body.scope, version=body.version, ip=ip,
                                        notify=notify)
    return _out(session, meeting, public_url)


async def api_cancel_occurrence(request: Request) -> Response:
    actor = api_user(request)
    state = app_state(request)
    original = parse_time(request.path_params["original_start"], "original_start")
    await state.db.run(service.require_editor, actor, path_int(request), original)
    body = await _optional_body(request, CancelIn)
    result = await state.db.run(_cancel_occurrence, actor, path_int(request), original, body,
                                state.settings.effective_public_url, client_ip(request), notifier(state.settings, state.catalogues))
    state.outbox_sender.wake()
    return JSONResponse(result)


ERRORS = (403, 404, 409, 422)
routes = [
    api_route("/api/meetings", api_list, methods=["GET"], name="api_meetings", doc=ApiDoc(
        "Occurrences between start and end that you may see", "meetings", response=schemas.OccurrenceList,
        params=(Param("start", "ISO 8601 with offset", required=True, schema=TIME_SCHEMA), Param("end", "ISO 8601 with offset", required=True, schema=TIME_SCHEMA),
                Param("unit", "Only meetings this unit code hosts or is invited to"), Param("q", "Text in the title")),
        errors=(404, 422))),
    api_route("/api/meetings", api_create, methods=["POST"], name="api_meeting_create", doc=ApiDoc(
        "Schedule a meeting or a series; hard conflicts answer 409 unless confirm is true", "meetings",
        body=MeetingIn, response=schemas.MeetingOut, status=201, errors=ERRORS)),
    api_route("/api/meetings/check", api_check, methods=["POST"], name="api_meeting_check", doc=ApiDoc(
        "Expand the participants and list the conflicts of a plan, saving nothing", "meetings",
        body=MeetingIn, response=schemas.CheckOut, errors=(403, 422))),
    api_route("/api/meetings/{id:int}", api_get, methods=["GET"], name="api_meeting", doc=ApiDoc(
        "One meeting with its participants and their answers", "meetings", response=schemas.MeetingOut, params=(ID,), errors=(404,))),
    api_route("/api/meetings/{id:int}", api_patch, methods=["PATCH"], name="api_meeting_patch", doc=ApiDoc(
        "Change a meeting; carries the version it read (stale: 409)", "meetings", body=MeetingPatch,
        response=schemas.MeetingOut, params=(ID,), errors=ERRORS)),
    api_route("/api/meetings/{id:int}/cancel", api_cancel, methods=["POST"], name="api_meeting_cancel", doc=ApiDoc(
        "Cancel a meeting (the whole series)", "meetings", body=CancelIn, response=schemas.MeetingOut, params=(ID,), errors=ERRORS)),
    api_route("/api/meetings/{id:int}/occurrences/{original_start}", api_occurrence, methods=["GET"], name="api_occurrence", doc=ApiDoc(
        "One occurrence", "meetings", response=schemas.OccurrenceOut, params=(ID, ORIGINAL), errors=(404, 422))),
    api_route("/api/meetings/{id:int}/occurrences/{original_start}", api_occurrence, methods=["PATCH"], name="api_occurrence_patch", doc=ApiDoc(
        "Move or retitle one occurrence, or it and the following, or the series (scope)", "meetings", body=OccurrencePatch,
        response=schemas.MeetingOut, params=(ID, ORIGINAL), errors=ERRORS)),
    api_route("/api/meetings/{id:int}/occurrences/{original_start}/cancel", api_cancel_occurrence, methods=["POST"],
              name="api_occurrence_cancel", doc=ApiDoc(
        "Cancel one occurrence, or it and the following (scope)", "meetings", body=CancelIn, response=schemas.MeetingOut,
        params=(ID, ORIGINAL), errors=ERRORS)),
]
