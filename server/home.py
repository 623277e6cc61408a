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


routes = [Route("/", home, name="home"), Route("/healthz", healthz, name="healthz")]
