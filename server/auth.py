"""Who is asking: the session cookie or an API bearer token, and the request's locale.

``RequestContextMiddleware`` sets ``request.state.user`` (an active ``User`` or None),
``request.state.unit``, ``request.state.auth`` ("session", "bearer" or ""),
``request.state.session_id`` (the live ``auth_sessions`` row, server/accounts/sessions.py),
``request.state.credential`` (its secret and kind, for a long-lived socket to check again) and
the locale. The cookie and the token carry only a session's secret: the row decides.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.accounts import service as accounts
from server.accounts.models import SessionKind, User
from server.accounts.service import LoginResult
from server.appstate import AppState, scope_state
from server.edge import client_ip
from server.errors import NotAuthenticated
from server.i18n import LANG_COOKIE, LOCALES, N_, Text, current_translations
from server.ratelimit import Wait
from server.responses import LoginRequired


def security_headers(public_url: str) -> list[tuple[bytes, bytes]]:
    """The headers every HTTP answer carries. Scripts may connect only to the service's own
    origin, over HTTP(S) and its WebSocket scheme (http→ws, https→wss), never to another host
    (WebRTC media is not governed by CSP)."""
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    socket_origin = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    policy = (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        f"connect-src 'self' {origin} {socket_origin}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"content-security-policy", policy.encode("ascii")),
    ]


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.app = app
        self.headers = list(headers)  # security_headers(), built once with the app

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
        state.update(locale=locale, user=None, unit=None, auth="", auth_error="", session_id=None, credential=None)
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
            # A forged or expired signature is refused here, before any database lookup.
            secret = app.token_signer.read(token.strip()) if scheme.lower() == "bearer" else None
            found = await app.sessions.identify(secret, SessionKind.token) if secret else None
            if found is None:
                state["auth_error"] = "invalid_token"
                return
            state.update(user=found.user, unit=found.unit, auth="bearer", session_id=found.session_id,
                         credential=(secret, SessionKind.token))
            return
        session = connection.session
        for stale in ("uid", "av"):  # cookies from before server-side sessions name no session
            session.pop(stale, None)
        secret = session.get("sid")
        if isinstance(secret, str) and secret:
            found = await app.sessions.identify(secret, SessionKind.browser)
            if found is None:
                session.pop("sid", None)
                return
            state.update(user=found.user, unit=found.unit, auth="session", session_id=found.session_id,
                         credential=(secret, SessionKind.browser))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        if scope["type"] != "http":
            return send

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name.decode() not in headers:
                        headers.raw.append((name, value))
            await send(message)

        return send_with_headers




async def log_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new secret and CSRF token: no fixation); a session
    this browser still had ends."""
    await log_out(request)
    secret = await scope_state(request.scope).sessions.start(
        user, SessionKind.browser, ip=client_ip(request), user_agent=request.headers.get("user-agent", "")
    )
    request.session.update({"sid": secret, "csrf": secrets.token_urlsafe(32)})


async def log_out(request: Request) -> None:
    """End this browser's session on the server (a copy of the cookie stops working too)."""
    user: User | None = request.state.user
    session_id: int | None = request.state.session_id
    if user is not None and session_id is not None and request.state.auth == "session":
        await scope_state(request.scope).sessions.end(session_id, user=user, reason="logout", ip=client_ip(request))
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
    """Check a password unless this address, or this username from this address, has failed
    too often (server/ratelimit.py); the login page and the token API both log in this way.
    The answer never depends on whether the account exists, and the hashing runs in a worker
    thread (``Database.run``), never on the event loop."""
    state = scope_state(request.scope)
    ip = client_ip(request)
    throttle = state.login_throttle
    wait = throttle.wait(username, ip)
    if wait.seconds:
        return LoginResult(None, _throttled_message(wait), wait.seconds)
    result: LoginResult = await state.db.run(accounts.authenticate, username, password, ip=ip)
    if result.user is None:
        throttle.failed(username, ip)
    else:
        throttle.succeeded(username, ip)
    return result


def _throttled_message(wait: Wait) -> Text:
    if wait.address:
        return N_("Too many failed attempts from this address. Try again later.")
    if wait.seconds < 120:
        return N_("Too many failed attempts. Try again in {seconds} seconds.", seconds=wait.seconds)
    return N_("Too many failed attempts. Try again in {minutes} minute(s).", minutes=(wait.seconds + 59) // 60)
