"""Calendars for calendar clients: the subscription feeds (``/calendar/{secret}.ics``, no login:
the secret is the key) and the download of one meeting (``/api/meetings/{id}/ics``)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from server.accounts.models import User
from server.api import ApiDoc, api_route
from server.appstate import app_state
from server.auth import api_user
from server.calendar import ics, service
from server.edge import ID, path_int
from server.i18n import N_, Translations, current_translations, render
from server.openapi import ERROR_TEXT

CONTENT_TYPE = "text/calendar; charset=utf-8"
# Subscribers poll hourly (REFRESH-INTERVAL); a shared cache must not keep a secret feed, and
# a client may reuse its copy for five minutes before asking again with If-None-Match.
FEED_CACHE = "private, max-age=300"


# --- the feed -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFeed:
    body: bytes
    last_modified: dt.datetime | None


def _feed(session: Session, secret: str, public_url: str, organizer: ics.Mailbox, translations: Translations) -> RenderedFeed | None:
    owner = service.resolve(session, secret)
    if owner is None:
        return None
    events = service.feed_events(session, owner, public_url=public_url, organizer=organizer)
    body = ics.feed(events, service.feed_name(owner, translations), labels=service.labels(translations))
    changed = [e.updated_at for e in events if e.updated_at is not None]
    return RenderedFeed(body, max(changed) if changed else None)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:40]}"'


def _matches(header: str, etag: str) -> bool:
    """If-None-Match (RFC 9110 §13.1.2): a list of tags, weak ones compared weakly, or *."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


async def feed_view(request: Request) -> Response:
    state = app_state(request)
    # Feeds are read by calendar clients, not people with a language cookie: the default locale.
    translations = state.catalogues.get(state.settings.default_locale)
    rendered = await state.db.run(
        _feed, str(request.path_params["token"]), state.settings.effective_public_url,
        service.organizer(state.settings), translations,
    )
    if rendered is None:
        message = render(N_("This calendar feed does not exist or was revoked."), current_translations.get())
        return PlainTextResponse(message + "\n", status_code=404, headers={"Cache-Control": "no-store"})
    headers = {"ETag": etag_of(rendered.body), "Cache-Control": FEED_CACHE}
    if rendered.last_modified is not None:
        headers["Last-Modified"] = format_datetime(rendered.last_modified.astimezone(dt.UTC), usegmt=True)
    if _matches(request.headers.get("if-none-match", ""), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type=CONTENT_TYPE, headers=headers)


# --- one meeting's download -----------------------------------------------------------------------


def _download(session: Session, viewer: User, meeting_id: int, public_url: str, organizer: ics.Mailbox, translations: Translations) -> bytes:
    event = service.meeting_event(session, viewer, meeting_id, public_url=public_url, organizer=organizer)
    return ics.publish([event], labels=service.labels(translations))


async def api_meeting_ics(request: Request) -> Response:
    viewer = api_user(request)
    meeting_id = path_int(request)
    state = app_state(request)
    body = await state.db.run(_download, viewer, meeting_id, state.settings.effective_public_url,
                              service.organizer(state.settings), current_translations.get())
    return Response(body, media_type=CONTENT_TYPE, headers={
        "Content-Disposition": f'attachment; filename="giaoban-{meeting_id}.ics"', "Cache-Control": "private, no-cache"})


def _download_responses() -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "200": {"description": "The meeting as METHOD:PUBLISH (master, moved occurrences, EXDATE for cancelled ones)",
                "content": {"text/calendar": {"schema": {"type": "string"}}}},
        **{str(code): {"description": ERROR_TEXT[code], "content": error} for code in (401, 404, 422)},
    }


# --- the page of feed links ------------------------------------------------------------------------


routes = [
    Route("/calendar/{token}.ics", feed_view, methods=["GET"], name="calendar_feed"),
    api_route("/api/meetings/{id:int}/ics", api_meeting_ics, methods=["GET"], name="api_meeting_ics", doc=ApiDoc(
        "The meeting as an iCalendar file (METHOD:PUBLISH) to import into a calendar", "calendar",
        params=(ID,), errors=(404, 422),
        extra={"responses": _download_responses()})),
]
