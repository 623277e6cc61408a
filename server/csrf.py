"""CSRF protection for every unsafe request that a browser could be tricked into sending.

A request needs the session's token (form field ``csrf_token`` or header ``X-CSRF-Token``)
when it is authenticated by the session cookie, or when its body is a form (a login form
included). Bearer-token requests are exempt: a browser never adds that header by itself.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import Forbidden
from server.i18n import N_
from server.responses import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
FIELD = "csrf_token"
HEADER = "x-csrf-token"


class CSRFMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        state = scope.get("state", {})
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_form = content_type in FORM_TYPES
        if state.get("auth") == "bearer" or (state.get("auth") != "session" and not is_form):
            await self.app(scope, receive, send)
            return
        expected = scope.get("session", {}).get("csrf")
        given = headers.get(HEADER, "")
        body = b""
        if not given and is_form:
            body = await _read_body(receive)
            given = await _form_token(scope, content_type, body)
        if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
            error = Forbidden(
                N_("This form has expired or did not come from this site. Reload the page and try again."),
            )
            error.code = "csrf"
            await error_response(scope, error)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive) if body else receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _form_token(scope: Scope, content_type: str, body: bytes) -> str:
    if content_type == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(FIELD, [""])
        return values[0]
    if content_type == "multipart/form-data":
        request = Request(scope, _replay(body, _never))
        try:
            form = await request.form()
        except (HTTPException, MultiPartException):  # a malformed multipart body (no boundary...): no token
            return ""
        value = form.get(FIELD, "")
        await form.close()
        return value if isinstance(value, str) else ""
    return ""


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _never() -> Message:
    return {"type": "http.disconnect"}
