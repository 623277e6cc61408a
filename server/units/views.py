"""Unit pages (browse the tree, search, a unit's page, CSV import) and the units API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import permissions
from server.accounts import service as accounts
from server.api import ApiDoc, Param, api_route, json_list, query_int
from server.appstate import app_state
from server.auth import api_user, page_user
from server.csvfile import ImportFailed
from server.errors import Forbidden
from server.i18n import N_
from server.units import csvimport, service
from server.units.models import Unit


class UnitOut(BaseModel):
    code: str
    parent_code: str | None
    level: str
    kind: str
    name: str
    active: bool
    email: str
    merged_into: str | None = None


class UnitList(BaseModel):
    items: list[UnitOut]
    total: int


def unit_out(unit: Unit, codes: dict[int, str]) -> dict[str, Any]:
    return UnitOut(
        code=unit.code,
        parent_code=codes.get(unit.parent_id) if unit.parent_id else None,
        level=unit.level,
        kind=unit.kind,
        name=unit.name,
        active=unit.active,
        email=unit.email,
        merged_into=codes.get(unit.merged_into_id) if unit.merged_into_id else None,
    ).model_dump()


def _codes(session: Session) -> dict[int, str]:
    return service.codes_by_id(session)


def _search_page(session: Session, q: str, level: str, include_inactive: bool) -> dict[str, Any]:
    results, total = service.search(session, q=q, level=level, include_inactive=include_inactive, limit=500)
    codes = _codes(session)
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


def _api_list(session: Session, q: str, level: str, parent: str, inactive: bool, offset: int, limit: int) -> dict[str, Any]:
    rows, total = service.search(session, q=q, level=level, parent=parent, include_inactive=inactive, offset=offset, limit=limit)
    codes = _codes(session)
    return {"items": [unit_out(u, codes) for u in rows], "total": total}


async def api_units(request: Request) -> Response:
    api_user(request)
    params = request.query_params
    data = await app_state(request).db.run(
        _api_list,
        params.get("q", "")[:200],
        params.get("level", "")[:50],
        params.get("parent", "")[:100],
        params.get("include_inactive") in ("1", "true"),
        query_int(request, "offset", 0, maximum=1_000_000),
        query_int(request, "limit", 1000, minimum=1, maximum=5000),
    )
    return json_list(data["items"], data["total"])


def _api_one(session: Session, code: str) -> dict[str, Any]:
    return unit_out(service.by_code(session, code), _codes(session))


async def api_unit(request: Request) -> Response:
    api_user(request)
    return JSONResponse(await app_state(request).db.run(_api_one, request.path_params["code"]))


routes = [
    Route("/units", units_page, name="units"),
    Route("/units/{code}", unit_page, name="unit"),
    Route("/admin/units/import", import_page, methods=["GET", "POST"], name="units_import"),
    api_route(
        "/api/units", api_units, methods=["GET"], name="api_units",
        doc=ApiDoc(
            "List units (active ones unless asked), optionally searched", "units", response=UnitList,
            params=(
                Param("q", "Text in the name or code; diacritics and case are ignored"),
                Param("level", "Only this level (as in the data, e.g. ward)"),
                Param("parent", "Only the children of this unit code"),
                Param("include_inactive", "1 to include merged and dissolved units"),
                Param("offset", "Skip this many", "integer"),
                Param("limit", "At most this many (default 1000)", "integer"),
            ),
            errors=(404, 422),
        ),
    ),
    api_route(
        "/api/units/{code}", api_unit, methods=["GET"], name="api_unit",
        doc=ApiDoc("One unit", "units", response=UnitOut, params=(Param("code", "Unit code", where="path"),), errors=(404,)),
    ),
]
