"""The accounts API: a bearer token for a username and password, and who is logged in."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.api import ApiDoc, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user, attempt_login
from server.errors import NotAuthenticated, TooManyRequests


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


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
    assert result.user.id is not None
    token = state.token_signer.issue(result.user.id, result.user.auth_version)
    return JSONResponse(
        TokenResponse(access_token=token, expires_in=state.token_signer.max_age).model_dump(),
        headers={"Cache-Control": "no-store"},
    )


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
        "/api/me", api_me, methods=["GET"], name="api_me",
        doc=ApiDoc("The logged-in account", "auth", response=MeResponse),
    ),
]
