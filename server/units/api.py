"""The units API: the units as data (list, search, one unit)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.api import ApiDoc, Param, api_route, json_list, query_int
from server.appstate import app_state
from server.auth import api_user
from server.units import service
from server.units.models import Unit

OFFSET_MAX, LIMIT_MAX = 1_000_000, 5000


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


def _api_list(session: Session, q: str, level: str, parent: str, inactive: bool, offset: int, limit: int) -> dict[str, Any]:
    rows, total = service.search(session, q=q, level=level, parent=parent, include_inactive=inactive, offset=offset, limit=limit)
    codes = service.codes_by_id(session)
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
        query_int(request, "offset", 0, maximum=OFFSET_MAX),
        query_int(request, "limit", 1000, minimum=1, maximum=LIMIT_MAX),
    )
    return json_list(data["items"], data["total"])


def _api_one(session: Session, code: str) -> dict[str, Any]:
    return unit_out(service.by_code(session, code), service.codes_by_id(session))


async def api_unit(request: Request) -> Response:
    api_user(request)
    return JSONResponse(await app_state(request).db.run(_api_one, request.path_params["code"]))


routes = [
    api_route(
        "/api/units", api_units, methods=["GET"], name="api_units",
        doc=ApiDoc(
            "List units (active ones unless asked), optionally searched", "units", response=UnitList,
            params=(
                Param("q", "Text in the name or code; diacritics and case are ignored"),
                Param("level", "Only this level (as in the data, e.g. ward)"),
                Param("parent", "Only the children of this unit code"),
                Param("include_inactive", "1 to include merged and dissolved units"),
                Param("offset", "Skip this many", "integer", schema={"minimum": 0, "maximum": OFFSET_MAX}),
                Param("limit", "At most this many (default 1000)", "integer", schema={"minimum": 1, "maximum": LIMIT_MAX}),
            ),
            errors=(404, 422),
        ),
    ),
    api_route(
        "/api/units/{code}", api_unit, methods=["GET"], name="api_unit",
        doc=ApiDoc("One unit", "units", response=UnitOut, params=(Param("code", "Unit code", where="path"),), errors=(404,)),
    ),
]
