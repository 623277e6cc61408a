"""The home page, the administration index, the health check and the metrics endpoint."""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import permissions
from server.appstate import app_state
from server.auth import page_user
from server.errors import Forbidden
from server.i18n import N_
from server.metrics import Metrics
from server.permissions import can_view_metrics


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


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics_view(request: Request) -> Response:
    client = request.client.host if request.client else None
    forwarded = "x-forwarded-for" in request.headers  # behind a proxy, loopback means nothing
    if not (can_view_metrics(request.state.user) or (_is_loopback(client) and not forwarded)):
        raise Forbidden(N_("Metrics are for administrators and local scrapers only."))
    metrics: Metrics = app_state(request).metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/", home, name="home"),
    Route("/admin", administration, name="admin"),
    Route("/healthz", healthz, name="healthz"),
    Route("/metrics", metrics_view, name="metrics"),
]
