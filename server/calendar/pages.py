"""The calendar page where a person makes and revokes feed links (``/calendar/feeds``)."""

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
from server.calendar import service
from server.calendar.models import FeedToken
from server.edge import client_ip, whole_number
from server.errors import InvalidInput
from server.i18n import N_
from server.units import service as units


@dataclass(frozen=True)
class FeedRow:
    """A working link as the page shows it (the secret is gone: only its use is shown)."""

    id: int
    name: str
    code: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


@dataclass(frozen=True)
class NewLink:
    """A link just made: shown once, in both forms a calendar client takes."""

    owner: str
    https: str
    webcal: str


def _row(token: FeedToken, name: str = "", code: str = "") -> FeedRow:
    return FeedRow(token.id or 0, name, code, token.created_at, token.last_used_at)


def _links(public_url: str, secret: str, owner: str) -> NewLink:
    https = f"{public_url}/calendar/{secret}.ics"
    return NewLink(owner, https, "webcal://" + https.split("://", 1)[1])


def _context(session: Session, user: User) -> dict[str, Any]:
    found = service.listing(session, user)
    return {
        "own": _row(found.own) if found.own is not None else None,
        "unit_feeds": [_row(f.token, f.unit.name, f.unit.code) for f in found.units],
        "choices": [(u.code, u.name) for u in found.choices],
        "show_units": bool(found.choices or found.units),
        "new_link": None,
        "done": "",
    }


def _create(session: Session, actor: User, unit_code: str, ip: str) -> tuple[str, str]:
    unit = units.by_code(session, unit_code) if unit_code else None
    _token, secret = service.create(session, actor, unit=unit, ip=ip)
    return secret, unit.name if unit is not None else actor.full_name


async def feeds_page(request: Request) -> Response:
    user = page_user(request)
    state = app_state(request)
    context = await state.db.run(_context, user)
    done = request.query_params.get("done", "")
    context["done"] = done if done in ("revoked",) else ""
    return state.pages.render(request, "calendar/feeds.html", context)


async def feeds_action(request: Request) -> Response:
    user = page_user(request)
    state = app_state(request)
    form = await request.form()
    action, unit_code, token_id = str(form.get("action", "")), str(form.get("unit", "")).strip()[:100], str(form.get("token", ""))
    await form.close()
    if action == "revoke" and (number := whole_number(token_id)) is not None:
        await state.db.run(service.revoke, user, number, ip=client_ip(request))
        return RedirectResponse("/calendar/feeds?done=revoked", status_code=303)
    if action != "create":
        raise InvalidInput(N_("Nothing was changed."))
    secret, owner = await state.db.run(_create, user, unit_code, client_ip(request))
    # Answered here rather than after a redirect: the secret is not stored anywhere to show later.
    context = await state.db.run(_context, user)
    context["new_link"] = _links(state.settings.effective_public_url, secret, owner)
    return state.pages.render(request, "calendar/feeds.html", context)


routes = [
    Route("/calendar/feeds", feeds_page, methods=["GET"], name="calendar_feeds"),
    Route("/calendar/feeds", feeds_action, methods=["POST"], name="calendar_feeds_action"),
]
