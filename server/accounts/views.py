"""Login, logout, language switch (pages) and API tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from server.accounts import service
from server.accounts.service import LoginResult
from server.api import ApiDoc, api_route, parse_body
from server.appstate import app_state
from server.auth import api_user, log_in, log_out
from server.errors import NotAuthenticated, TooManyRequests
from server.i18n import LANG_COOKIE, LOCALES, N_, Text


def safe_next(target: str | None) -> str:
    """Only paths of this site: never ``//host`` or ``https://host`` (open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def _attempt(request: Request, username: str, password: str) -> LoginResult:
    state = app_state(request)
    ip = client_ip(request)
    if not state.login_throttle.allowed(ip):
        return LoginResult(None, N_("Too many failed attempts from this address. Try again later."), state.login_throttle.retry_after(ip))
    result: LoginResult = await state.db.run(
        service.authenticate,
        username,
        password,
        ip=ip,
        max_failures=state.settings.login_max_failures,
        lock_seconds=state.settings.login_lock_seconds,
    )
    if result.user is None:
        state.login_throttle.failed(ip)
    return result


async def login_page(request: Request) -> Response:
    pages = app_state(request).pages
    next_url = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if request.state.user is not None:
            return RedirectResponse(next_url, status_code=303)
        return pages.render(request, "login.html", {"next": next_url, "username": "", "error": None})
    form = await request.form()
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")) or next_url)
    error: Text | None
    if not username.strip() or not password:
        error, status = N_("Enter your username and password."), 422
    else:
        result = await _attempt(request, username, password)
        if result.user is not None:
            log_in(request, result.user)
            return RedirectResponse(next_url, status_code=303)
        error, status = result.error, 429 if result.retry_after else 401
    return pages.render(
        request, "login.html", {"next": next_url, "username": username, "error": error}, status_code=status
    )


async def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)


async def set_language(request: Request) -> Response:
    form = await request.form()
    locale = str(form.get("locale", ""))
    response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
    if locale in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


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
    result = await _attempt(request, body.username, body.password)
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
    Route("/login", login_page, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/lang", set_language, methods=["POST"], name="set_language"),
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
