"""Unit pages: browse the tree, search, a unit's page, CSV import; for administrators, rename,
move, merge or dissolve one unit, or apply a reorganisation file (the rules live in
:mod:`server.units.reorganise`)."""

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
from server.accounts import service as accounts
from server.accounts.models import User
from server.appstate import app_state
from server.auth import page_user
from server.csvfile import ImportFailed
from server.edge import client_ip
from server.errors import Conflict, Forbidden, InvalidInput
from server.i18n import N_
from server.units import csvimport, reorganise, service
from server.units.models import Unit


def _search_page(session: Session, q: str, level: str, include_inactive: bool) -> dict[str, Any]:
    results, total = service.search(session, q=q, level=level, include_inactive=include_inactive, limit=500)
    codes = service.codes_by_id(session)
    return {
        "results": results,
        "total": total,
        "parents": {u.code: codes.get(u.parent_id or 0, "") for u in results},
        "names": {u.id: u.name for u in service.all_units(session, include_inactive=True)},
        "levels": service.levels(session),
        "level_names": service.level_names(session),
        "forest": service.tree(session) if not (q or level) else [],
    }


async def units_page(request: Request) -> Response:
    page_user(request)
    q = request.query_params.get("q", "").strip()[:200]
    level = request.query_params.get("level", "").strip()[:50]
    include_inactive = request.query_params.get("inactive") == "1"
    context = await app_state(request).db.run(_search_page, q, level, include_inactive)
    context.update(q=q, level=level, include_inactive=include_inactive,
                   can_import=permissions.can_manage_units(request.state.user))
    return app_state(request).pages.render(request, "units/index.html", context)


def _unit_page(session: Session, code: str, viewer: Any) -> dict[str, Any]:
    unit = service.by_code(session, code)
    merged_into = service.by_id(session, unit.merged_into_id) if unit.merged_into_id else None
    show_members = permissions.can_see_unit_members(session, viewer, unit)
    members, _ = accounts.list_users(session, unit=unit.code, limit=500) if show_members else ([], 0)
    return {
        "unit": unit,
        "ancestors": service.ancestors(session, unit),
        "children": service.children(session, unit, include_inactive=True),
        "merged_into": merged_into,
        "history": service.history(session, unit),
        "members": [u for u, _ in members],
        "show_members": show_members,
        "can_manage": permissions.can_manage_units(viewer),
    }


async def unit_page(request: Request) -> Response:
    user = page_user(request)
    context = await app_state(request).db.run(_unit_page, request.path_params["code"], user)
    return app_state(request).pages.render(request, "units/detail.html", context)


async def import_page(request: Request) -> Response:
    user = page_user(request)
    if not permissions.can_manage_units(user):
        raise Forbidden(N_("Only administrators manage units."))
    pages = app_state(request).pages
    if request.method == "GET":
        return pages.render(request, "units/import.html", {"errors": [], "result": None})
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    await form.close()
    if not data:
        return pages.render(request, "units/import.html", {"errors": [], "result": None, "missing": True}, status_code=422)
    try:
        result = await app_state(request).db.run(_import, data, user, request.client.host if request.client else "")
    except ImportFailed as exc:
        return pages.render(request, "units/import.html", {"errors": exc.errors, "result": None}, status_code=422)
    return pages.render(request, "units/import.html", {"errors": [], "result": result})


def _import(session: Session, data: bytes, actor: Any, ip: str) -> csvimport.ImportResult:
    from server.audit import service as audit

    result = csvimport.import_units(session, data, actor=actor.username, batch="import")
    accounts.sync_endpoint_accounts(session)
    audit.record(session, "units_imported", actor=actor, ip=ip, created=result.created, updated=result.updated)
    return result


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
    Route("/units", units_page, name="units"),
    Route("/units/{code}", unit_page, name="unit"),
    Route("/admin/units/import", import_page, methods=["GET", "POST"], name="units_import"),
    Route("/admin/units/reorganise", reorganise_page, methods=["GET", "POST"], name="units_reorganise"),
    Route("/admin/units/{code}/edit", edit_page, methods=["GET"], name="unit_edit"),
    *(
        Route(f"/admin/units/{{code}}/{name}", _action_endpoint(name), methods=["POST"], name=f"unit_{name}")
        for name in ACTIONS
    ),
]
