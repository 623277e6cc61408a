"""Administrators' pages for reorganising units: rename, move, merge or dissolve one unit, or
apply a reorganisation file. The rules live in :mod:`server.units.reorganise`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts.models import User
from server.accounts.views import client_ip
from server.appstate import app_state
from server.auth import page_user
from server.csvfile import ImportFailed
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_
from server.units import reorganise, service
from server.units.models import Unit


def _admin(request: Request) -> User:
    user = page_user(request)
    if not permissions.can_manage_units(user):
        raise Forbidden(N_("Only administrators manage units."))
    return user


# --- one unit -------------------------------------------------------------------------------


def _edit_context(session: Session, code: str) -> dict[str, Any]:
    unit = service.by_code(session, code)
    return {
        "unit": unit,
        "ancestors": service.ancestors(session, unit),
        "merged_into": service.by_id(session, unit.merged_into_id) if unit.merged_into_id else None,
        "active_children": service.children(session, unit),
        "people": reorganise.people_of(session, unit, active_only=True),
        # Every active unit but this one, for the code fields' suggestions.
        "choices": [u for u in service.all_units(session) if u.id != unit.id],
        "values": {"name": unit.name, "parent": "", "into": ""},
        "errors": {},
    }


def _other(session: Session, code: str, field: str) -> Unit:
    """The unit a form field names; an unknown code is the field's error, not a 404."""
    code = code.strip().lower()
    if not code:
        raise InvalidInput(N_("Nothing was changed."), fields={field: N_("Enter a unit code.")})
    found = service.find_by_codes(session, [code]).get(code)
    if found is None:
        raise InvalidInput(N_("Nothing was changed."), fields={field: N_("Unknown unit code: {code}", code=code)})
    return found


def _rename(session: Session, code: str, value: str, actor: User, ip: str) -> str:
    unit = service.by_code(session, code)
    reorganise.rename(session, unit, value, actor=actor, ip=ip)
    return unit.code


def _move(session: Session, code: str, value: str, actor: User, ip: str) -> str:
    unit = service.by_code(session, code)
    reorganise.move(session, unit, _other(session, value, "parent"), actor=actor, ip=ip)
    return unit.code


def _merge(session: Session, code: str, value: str, actor: User, ip: str) -> str:
    unit = service.by_code(session, code)
    into = _other(session, value, "into")
    reorganise.merge(session, unit, into, actor=actor, ip=ip)
    return into.code  # the merged unit's page only points onward; show where it went


def _dissolve(session: Session, code: str, value: str, actor: User, ip: str) -> str:
    unit = service.by_code(session, code)
    reorganise.dissolve(session, unit, actor=actor, ip=ip)
    return unit.code


@dataclass(frozen=True)
class Action:
    run: Callable[[Session, str, str, User, str], str]  # returns the code of the page to show next
    field: str  # the form's input, and the key of its error
    confirm: bool  # irreversible: the form carries a "confirm" checkbox


ACTIONS = {
    "rename": Action(_rename, "name", confirm=False),
    "move": Action(_move, "parent", confirm=False),
    "merge": Action(_merge, "into", confirm=True),
    "dissolve": Action(_dissolve, "dissolve", confirm=True),
}


async def edit_page(request: Request) -> Response:
    _admin(request)
    context = await app_state(request).db.run(_edit_context, request.path_params["code"])
    return app_state(request).pages.render(request, "units/edit.html", context)


def _action_endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
    action = ACTIONS[name]

    async def endpoint(request: Request) -> Response:
        actor = _admin(request)
        code = request.path_params["code"]
        form = await request.form()
        value = str(form.get(action.field, ""))
        confirmed = form.get("confirm") == "1"
        await form.close()
        db = app_state(request).db
        try:
            if action.confirm and not confirmed:
                raise InvalidInput(N_("Nothing was changed."), fields={action.field: N_("Tick the box to confirm.")})
            destination = await db.run(action.run, code, value, actor, client_ip(request))
        except (InvalidInput, Conflict) as exc:
            context = await db.run(_edit_context, code)
            context["values"][action.field] = value
            context["errors"] = exc.fields or {action.field: exc.message}
            return app_state(request).pages.render(request, "units/edit.html", context, status_code=exc.status)
        return RedirectResponse(f"/units/{quote(destination)}", status_code=303)

    endpoint.__name__ = f"unit_{name}"
    return endpoint


# --- a reorganisation file ------------------------------------------------------------------


async def reorganise_page(request: Request) -> Response:
    actor = _admin(request)
    pages = app_state(request).pages
    context: dict[str, Any] = {"errors": [], "result": None, "missing": False, "filename": ""}
    if request.method == "GET":
        return pages.render(request, "units/reorganise.html", context)
    form = await request.form()
    upload = form.get("file")
    data, filename = b"", ""
    if upload is not None and not isinstance(upload, str):
        data, filename = await upload.read(), upload.filename or ""
    await form.close()
    if not data:
        return pages.render(request, "units/reorganise.html", {**context, "missing": True}, status_code=422)
    # The file name goes into every history row of the batch, so one reorganisation can be
    # told apart from the next.
    batch = filename[:100] or "reorganise"
    try:
        result = await app_state(request).db.run(
            reorganise.apply_file, data, actor=actor, batch=batch, ip=client_ip(request)
        )
    except ImportFailed as exc:
        return pages.render(request, "units/reorganise.html", {**context, "errors": exc.errors}, status_code=422)
    return pages.render(request, "units/reorganise.html", {**context, "result": result, "filename": batch})


routes = [
    Route("/admin/units/reorganise", reorganise_page, methods=["GET", "POST"], name="units_reorganise"),
    Route("/admin/units/{code}/edit", edit_page, methods=["GET"], name="unit_edit"),
    *(
        Route(f"/admin/units/{{code}}/{name}", _action_endpoint(name), methods=["POST"], name=f"unit_{name}")
        for name in ACTIONS
    ),
]
