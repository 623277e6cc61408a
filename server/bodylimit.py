"""Refuse request bodies over ``GIAOBAN_MAX_BODY_BYTES`` with a clear 413, before reading them
into memory (the declared length is checked first, then the bytes as they arrive).

A few paths take larger bodies (document uploads): each is a pattern matched against the
whole path of a ``POST`` or ``PUT``, with its own limit. Every other request keeps the small one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import PayloadTooLarge
from server.i18n import N_
from server.responses import error_response

UPLOAD_METHODS = frozenset({"POST", "PUT"})


class _TooLarge(Exception):
    pass


def _closing(send: Send) -> Send:
    """Answer with ``Connection: close``: the server then closes the connection instead of
    reading (and discarding) the rest of a body it refused, however long or slow."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return send_closing


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Sequence[tuple[re.Pattern[str] | str, int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(p) if isinstance(p, str) else p, limit) for p, limit in larger]

    def limit_for(self, scope: Scope) -> int:
        if scope.get("method") in UPLOAD_METHODS:
            path = scope.get("path", "")
            for pattern, limit in self.larger:
                if pattern.fullmatch(path):
                    return limit
        return self.max_bytes

    @staticmethod
    def _error(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(N_("The request is too large (at most {size} KiB).", size=limit // 1024))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await error_response(scope, self._error(limit))(scope, receive, _closing(send))
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await error_response(scope, self._error(limit))(scope, receive, _closing(send))
