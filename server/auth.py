"""Who is asking: the session cookie or an API bearer token, and the request's locale.

``RequestContextMiddleware`` sets ``request.state.user`` (an active ``User`` or None),
``request.state.unit``, ``request.state.auth`` ("session", "bearer" or ""), and the locale.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.accounts import service as accounts
from server.accounts.models import User
from server.accounts.service import LoginResult
from server.appstate import AppState, scope_state
from server.edge import client_ip
from server.errors import NotAuthenticated
from server.i18n import LANG_COOKIE, LOCALES, N_, current_translations
from server.responses import LoginRequired
from server.units.models import Unit

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        b"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    ),
]


def _load(session: Session, user_id: int, auth_version: int) -> tuple[User, Unit] | None:
    user = accounts.active_user(session, user_id, auth_version)
    if user is None:
        return None
    return user, accounts.unit_of(session, user)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        app = scope_state(scope)
        locale = connection.cookies.get(LANG_COOKIE, "")
        if locale not in LOCALES:
            locale = app.settings.default_locale
        state = scope.setdefault("state", {})
        state.update(locale=locale, user=None, unit=None, auth="", auth_error="")
        reset = current_translations.set(app.catalogues.get(locale))
        try:
            await self._identify(connection, state, app)
            await self.app(scope, receive, self._with_headers(scope, send))
        finally:
            current_translations.reset(reset)

    @staticmethod
    async def _identify(connection: HTTPConnection, state: dict[str, Any], app: AppState) -> None:
        authorization = connection.headers.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            claims = app.token_signer.read(token.strip()) if scheme.lower() == "bearer" else None
            found = await app.db.run(_load, *claims) if claims else None
            if found is None:
                state["auth_error"] = "invalid_token"
                return
            state.update(user=found[0], unit=found[1], auth="bearer")
            return
        session = connection.session
        user_id, version = session.get("uid"), session.get("av")
        if isinstance(user_id, int) and isinstance(version, int):
            found = await app.db.run(_load, user_id, version)
            if found is None:
                session.pop("uid", None)
                session.pop("av", None)
                return
            state.update(user=found[0], unit=found[1], auth="session")

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        if scope["type"] != "http":
            return send

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name.decode() not in headers:
                        headers.raw.append((name, value))
            await send(message)

        return send_with_headers




def log_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too: no fixation)."""
    request.session.clear()
    request.session.update({"uid": user.id, "av": user.auth_version, "csrf": secrets.token_urlsafe(32)})


def log_out(request: Request) -> None:
    request.session.clear()


def page_user(request: Request) -> User:
    user: User | None = request.state.user
    if user is None:
        raise LoginRequired()
    return user


def api_user(request: HTTPConnection) -> User:
    user: User | None = request.state.user
    if user is None:
        if request.state.auth_error:
            raise NotAuthenticated(N_("The access token is invalid or has expired."))
        raise NotAuthenticated(N_("Log in first (a bearer token or the session cookie)."))
    return user


async def attempt_login(request: Request, username: str, password: str) -> LoginResult:
    """Check a password against the per-address throttle and the per-account lock (the login
    page and the token API both log in this way)."""
    state = scope_state(request.scope)
    ip = client_ip(request)
    if not state.login_throttle.allowed(ip):
        return LoginResult(None, N_("Too many failed attempts from this address. Try again later."), state.login_throttle.retry_after(ip))
    result: LoginResult = await state.db.run(
        accounts.authenticate,
        username,
        password,
        ip=ip,
        max_failures=state.settings.login_max_failures,
        lock_seconds=state.settings.login_lock_seconds,
    )
    if result.user is None:
        state.login_throttle.failed(ip)
    return result
