"""The accounts API: a bearer token for a username and password (and its revocation), who is
logged in, and the person's live sessions and tokens."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.accounts.models import AuthSession, SessionKind
from server.api import ApiDoc, Param, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user, attempt_login
from server.clock import local
from server.edge import client_ip, path_int
from server.errors import InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from server.i18n import N_


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class SessionOut(BaseModel):
    id: int
    kind: str  # browser | token
    created_at: str  # ISO 8601, the city's offset
    last_seen_at: str  # to the minute: it is written at most once a minute
    expires_at: str  # the absolute end; idleness may end it sooner
    ip: str
    user_agent: str
    current: bool  # the session or token this request came with


class SessionList(BaseModel):
    items: list[SessionOut]
    total: int


class MeResponse(BaseModel):
    username: str
    full_name: str
    email: str
    role: str
    unit: str
    unit_name: str


async def api_token(request: Request) -> Response:
    body = await parse_body(request, TokenRequest)
    result = await attempt_login(request, body.username, body.password)
    if result.user is None:
        assert result.error is not None
        if result.retry_after:
            raise TooManyRequests(result.error, retry_after=result.retry_after)
        raise NotAuthenticated(result.error)
    state = app_state(request)
    secret = await state.sessions.start(
        result.user, SessionKind.token, ip=client_ip(request), user_agent=request.headers.get("user-agent", "")
    )
    token = state.token_signer.issue(secret)
    return JSONResponse(
        TokenResponse(access_token=token, expires_in=state.token_signer.max_age).model_dump(),
        headers={"Cache-Control": "no-store"},
    )


async def api_token_revoke(request: Request) -> Response:
    """End the token this request presents (a script's logout)."""
    user = api_user(request)
    if request.state.auth != "bearer" or request.state.session_id is None:
        raise InvalidInput(N_("Only a bearer token can be revoked here; a browser logs out instead."))
    await app_state(request).sessions.end(request.state.session_id, user=user, reason="logout", ip=client_ip(request))
    return Response(status_code=204)


def session_out(row: AuthSession, current: int | None) -> SessionOut:
    assert row.id is not None
    return SessionOut(
        id=row.id, kind=row.kind, created_at=local(row.created_at).isoformat(),
        last_seen_at=local(row.last_seen_at).isoformat(), expires_at=local(row.expires_at).isoformat(),
        ip=row.ip, user_agent=row.user_agent, current=row.id == current,
    )


async def api_sessions(request: Request) -> Response:
    user = api_user(request)
    rows = await app_state(request).sessions.active(user)
    items = [session_out(row, request.state.session_id) for row in rows]
    return JSONResponse(SessionList(items=items, total=len(items)).model_dump())


async def api_session_end(request: Request) -> Response:
    user = api_user(request)
    ended = await app_state(request).sessions.end(
        path_int(request), user=user, reason="ended", ip=client_ip(request), audit_action="session_ended"
    )
    if not ended:
        raise NotFound(N_("You have no live session with this id."))
    return Response(status_code=204)


async def api_me(request: Request) -> Response:
    user = api_user(request)
    unit = request.state.unit
    return JSONResponse(
        MeResponse(
            username=user.username, full_name=user.full_name, email=user.email, role=user.role,
            unit=unit.code, unit_name=unit.name,
        ).model_dump()
    )


routes = [
    api_route(
        "/api/auth/token", api_token, methods=["POST"], name="api_token",
        doc=ApiDoc("Exchange a username and password for a bearer token", "auth", body=TokenRequest,
                   response=TokenResponse, errors=(401, 429), auth=False),
    ),
    api_route(
        "/api/auth/token", api_token_revoke, methods=["DELETE"], name="api_token_revoke",
        doc=ApiDoc("Revoke the bearer token this request presents", "auth", status=204, errors=(401, 422)),
    ),
    api_route(
        "/api/auth/sessions", api_sessions, methods=["GET"], name="api_sessions",
        doc=ApiDoc("Your live browser sessions and API tokens", "auth", response=SessionList),
    ),
    api_route(
        "/api/auth/sessions/{id:int}", api_session_end, methods=["DELETE"], name="api_session_end",
        doc=ApiDoc("End one of your sessions or tokens", "auth", status=204,
                   params=(Param("id", "Session id (from GET /api/auth/sessions)", "integer", where="path"),), errors=(401, 404, 422)),
    ),
    api_route(
        "/api/me", api_me, methods=["GET"], name="api_me",
        doc=ApiDoc("The logged-in account", "auth", response=MeResponse),
    ),
]
