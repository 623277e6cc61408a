"""The home page and the health check."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import permissions
from server.appstate import app_state
from server.auth import page_user
from server.errors import Forbidden
from server.i18n import N_


async def home(request: Request) -> Response:
    user = page_user(request)
    return app_state(request).pages.render(
        request, "home.html",
        {"is_admin": permissions.is_admin(user), "can_manage_units": permissions.can_manage_units(user)},
    )


def _ping(session: Session) -> None:
    session.exec(sa.text("SELECT 1"))  # type: ignore[call-overload]


async def healthz(request: Request) -> Response:
    try:
        await app_state(request).db.run(_ping)
    except Exception:
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "version": app_state(request).version})


async def administration(request: Request) -> Response:
    """Every administrator's tool on one page (the header keeps a single link to it)."""
    user = page_user(request)
    if not permissions.is_admin(user):
        raise Forbidden(N_("Only administrators may open this page."))
    return app_state(request).pages.render(request, "admin/index.html")


routes = [
    Route("/", home, name="home"),
    Route("/admin", administration, name="admin"),
    Route("/healthz", healthz, name="healthz"),
]
