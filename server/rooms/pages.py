"""The pages around a meeting's room: the room itself (pre-join, the room, the lobby — one page
driven by ``web/static/js/room.js`` and its modules under ``room/``), the page that says when a room opens, and the connection
test a ward can run before a meeting."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.appstate import app_state
from server.auth import page_user
from server.edge import parse_time, path_int
from server.i18n import current_translations
from server.rooms import access
from server.rooms.jsmessages import catalogue


def page_config(request: Request, **values: Any) -> dict[str, Any]:
    """What the page's script needs (the template embeds it with ``script_json``)."""
    state = app_state(request)
    config = {"strings": catalogue(current_translations.get()), "heartbeat": state.settings.heartbeat,
              "iceServers": state.settings.ice_server_list(), **values}
    return config


async def room_page(request: Request) -> Response:
    state = app_state(request)
    meeting_id = path_int(request)
    invite_token = request.query_params.get("invite", "")
    invite = state.join_links.read(invite_token) if invite_token else None
    user = request.state.user if invite is None else None
    if user is None and invite is None:
        user = page_user(request)  # to the login page, and back here after
    occurrence = parse_time(request.query_params["occurrence"], "occurrence") if "occurrence" in request.query_params else None
    settings = state.settings
    try:
        admission = await state.db.run(access.admit_now, settings, meeting_id, user, invite, occurrence)
    except access.NotOpen as exc:
        return state.pages.render(request, "rooms/not_open.html", {
            "message": exc.message, "opens_at": exc.fields.get("opens_at"), "closes_at": exc.fields.get("closes_at"),
            "meeting_id": meeting_id, "minutes_before": settings.room_opens_before,
        })
    query = {"occurrence": admission.occurrence.isoformat()}
    if invite is not None:
        query["invite"] = invite_token
    config = page_config(
        request, wsPath=f"/ws/meetings/{meeting_id}", query=query, meetingUrl=f"/meetings/{meeting_id}",
        me={"name": admission.name, "unit": admission.unit_name, "role": admission.role, "kind": admission.kind},
        meeting={"id": meeting_id, "title": admission.title, "start": admission.start.isoformat(), "end": admission.end.isoformat()},
    )
    return state.pages.render(request, "rooms/room.html", {"admission": admission, "config": config})


async def connection_test_page(request: Request) -> Response:
    page_user(request)
    state = app_state(request)
    return state.pages.render(request, "rooms/connection_test.html", {"config": page_config(request, wsPath="/ws/echo")})


routes = [
    Route("/meetings/{id}/room", room_page, methods=["GET"], name="meeting_room"),
    Route("/connection-test", connection_test_page, methods=["GET"], name="connection_test"),
]
